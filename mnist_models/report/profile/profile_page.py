"""A profile's pages, rendered from its data (``runs.profiles.ProfileData``): ``summary.md`` (what ran,
the step-time breakdown, the profiler's overhead, the top operators, the files), ``ops.md``,
``breakdown.png``, and the lines ``mnist-bench profile`` prints.

    pages(data, folder)  # {"summary.md": …, "ops.md": …, "breakdown.png": …}

A data-parallel profile's pages are rank 0's, with the job said where it ran and every rank's trace listed
under the files, with how to read them side by side (Holistic Trace Analysis, TensorBoard).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ...runs.profiles import ProfileData
from ..markdown import fmt_columns, markdown_table

TOP_OPS = 30  # rows of ops.md (ops.csv has them all)
TOP_SUMMARY = 10  # rows of summary.md's operator table
OPS_COLUMNS = {"operator": "operator", "input_shapes": "input shapes", "calls_per_step": "calls/step",
               "self_cpu_us_per_step": "self CPU µs/step", "self_cpu_pct": "self CPU %",
               "cpu_total_us_per_step": "CPU total µs/step", "self_device_us_per_step": "self device µs/step",
               "self_cpu_mem_kib_per_step": "self CPU mem KiB/step"}
BREAKDOWN_HOW = (
    "How: each recorded step (a ProfilerStep window, from one prof.step() to the next: the batch fetch, the "
    "step, the loop's bookkeeping) is cut at every event boundary, and each slice of wall time goes to the "
    "innermost operator running then on another thread where one runs (CUDA's autograd thread, while the step's "
    "thread waits), else to the innermost event of the step's thread, else to `untraced`; so the categories "
    "add up to the step's wall time (the mean over the recorded steps: one slow step weighs in fully). "
    "Times are the profiled run's, so they include the profiler's own cost (below): every recorded operator "
    "and traced Python call adds bookkeeping inside the step.")


def ops_markdown(ops: pd.DataFrame, top: int, device: bool) -> str:
    """The ``top`` operators by self CPU time as a Markdown table (device time too on a GPU)."""
    columns = {k: v for k, v in OPS_COLUMNS.items() if device or k != "self_device_us_per_step"}
    shown = fmt_columns(ops.head(top), {"calls_per_step": "{:g}", "self_cpu_us_per_step": "{:,.1f}",
                                        "self_cpu_pct": "{:.1f}", "cpu_total_us_per_step": "{:,.1f}",
                                        "self_device_us_per_step": "{:,.1f}", "self_cpu_mem_kib_per_step": "{:,.1f}"})
    shown["input_shapes"] = shown["input_shapes"].map(lambda s: f"`{s}`")
    return markdown_table(shown[list(columns)].rename(columns=columns))


def breakdown_markdown(rows: pd.DataFrame, figures: dict[str, Any]) -> str:
    """The breakdown table, its sum against the mean recorded step and, on a GPU, the device's busy time
    (``figures``: profile.json's ``breakdown``)."""
    shown = fmt_columns(rows, {"ms_per_step": "{:.3f}", "share_pct": "{:.1f}"})
    table = markdown_table(shown.rename(columns={"ms_per_step": "ms/step", "share_pct": "% of step"}))
    step_ms, mean = figures["step_ms"], figures["step_ms_mean"]
    lines = [table, "", f"Sum of the categories: {rows['ms_per_step'].sum():.3f} ms; mean recorded step "
             f"(ProfilerStep window, the profiler's clock): {mean:.3f} ms; steps: "
             f"{', '.join(f'{ms:.2f}' for ms in step_ms)} ms."]
    if figures["device_busy_ms"]:
        busy = sum(figures["device_busy_ms"]) / len(figures["device_busy_ms"])
        comm = sum(figures.get("device_comm_ms") or [0.0]) / len(figures["device_busy_ms"])
        nccl = f", {comm:.3f} ms of it in NCCL's kernels" if comm else ""
        lines.append(f"GPU busy (kernels and copies, union): {busy:.3f} ms per step, "
                     f"{100 * busy / mean:.1f}% of the step{nccl}; the rest the GPU was idle.")
    return "\n".join(lines)


def overhead_markdown(oh: dict[str, Any]) -> str:
    """The clocks with and without the profiler, their ratio, the profiler's own calls, the contention."""
    rows = pd.DataFrame({"clock": ["without the profiler", "with the profiler (recorded steps)"],
                         "n steps": [oh["n_without"], oh["n_with"]],
                         "median ms/step": [oh["median_ms_without"], oh["median_ms_with"]]})
    c, call = oh["contention"], oh["prof_step_call_ms"]
    call = "(none: one recorded step)" if call is None else f"{call:.3f} ms (median)"
    noisy = " — noisy: other processes competed for the cores" if c["noisy"] else ""
    return "\n".join([
        markdown_table(rows, "{:.3f}"), "",
        f"Ratio with ÷ without: **{oh['ratio']:.2f}×**. Without the profiler: median "
        f"{oh['median_ms_without_before']:.3f} ms over the {oh['n_without'] // 2} steps before the profiled pass and "
        f"{oh['median_ms_without_after']:.3f} ms over the {oh['n_without'] - oh['n_without'] // 2} after it.",
        f"Clock: {oh['how']}. The profiler's own calls, not in either figure: prof.step() {call} between recorded "
        f"steps, {oh['trace_start_ms']:.1f} ms to start the trace, {oh['trace_save_s']:.2f} s to save it.",
        f"Contention: other processes used up to {c['other_cores_max']:.2f} cores beside the passes{noisy}.",
    ])


def breakdown_png(rows: pd.DataFrame, step_ms: list[float], title: str) -> bytes:
    """A horizontal bar chart of ms per step by category (matplotlib, Agg canvas), as PNG bytes."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    rows = rows.iloc[::-1]
    bars = ax.barh(rows["category"], rows["ms_per_step"], color="#4c72b0")
    labels = [f"{ms:.2f} ms ({pct:.0f}%)" for ms, pct in zip(rows["ms_per_step"], rows["share_pct"], strict=True)]
    ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
    ax.set_xlabel(f"ms per step (mean of {len(step_ms)} recorded steps, {sum(step_ms) / len(step_ms):.2f} ms each)")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, max(rows["ms_per_step"].max(), 1e-3) * 1.35)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()


def _stacks_note(meta: dict[str, Any], stacks: str) -> str:
    if not stacks:
        return "empty: torch recorded no Python stacks for this run, so there is no flame graph"
    return (f"folded stacks ({meta['stacks_lines']:,} lines: the Python call stack, then the operator or Python "
            "function; its self CPU µs), for https://www.speedscope.app or flamegraph.pl "
            "(`flamegraph.pl stacks.txt > flame.svg`)")


def summary_markdown(data: ProfileData, folder: Path) -> str:
    """``summary.md``: what ran, the breakdown, the overhead, the top operators and the files."""
    meta, s = data.meta, data.meta["schedule"]
    return "\n".join([
        f"# Profile `{meta['id']}`", "", meta["ran"], "",
        f"Schedule: torch.profiler.schedule(wait={s['wait']}, warmup={s['warmup']}, active={s['active']}, repeat=1) "
        f"driven by the engine's loop (on_step → prof.step()); activities {', '.join(meta['activities'])}; "
        "record_shapes, profile_memory, with_stack. Created " + meta["created_utc"] + ".", "",
        f"## Step-time breakdown (mean over the {s['active']} recorded steps)", "",
        breakdown_markdown(data.breakdown, meta["breakdown"]), "", BREAKDOWN_HOW, "",
        "## Profiler overhead", "", overhead_markdown(meta["overhead"]), "",
        "## Top operators by self CPU time", "", ops_markdown(data.ops, TOP_SUMMARY, meta["device_time"]), "",
        f"All operators: `ops.csv`; the top {TOP_OPS}: `ops.md`.", "",
        "## Files", "", *trace_files(meta, folder),
        "- `ops.csv`, `ops.md`: operators by self CPU time, grouped by input shape (key_averages).",
        f"- `stacks.txt`: {_stacks_note(meta, data.stacks)}",
        "- `breakdown.csv`, `breakdown.png`: the step-time breakdown above; `profile.json`: all of this as data.",
    ]) + "\n"


def trace_files(meta: dict[str, Any], folder: Path) -> list[str]:
    """summary.md's lines on the trace files: one, or every rank's of a data-parallel profile."""
    board = (f"`pip install .[profile]`, then `tensorboard --logdir {folder / 'tensorboard'}` (the plugin is "
             "deprecated and its page loads Google Charts from the internet: it does not render offline).")
    if "distributed" not in meta:
        return ["- `trace.json.gz`: the Chrome-trace JSON, gzipped (the TensorBoard file's bytes). Open it at "
                "https://ui.perfetto.dev or chrome://tracing.",
                f"- `tensorboard/{meta['tensorboard_file']}`: the same trace where the torch-tb-profiler plugin "
                f"reads it: {board}"]
    info = meta["distributed"]
    return [f"- {', '.join(f'`{t}`' for t in info['traces'])}: each rank's Chrome trace, gzipped, carrying "
            f"`distributedInfo` (rank, world_size {info['world_size']}, backend {info['backend']}). Open one at "
            "https://ui.perfetto.dev or chrome://tracing.",
            f"- `tensorboard/`: every rank's trace, the same bytes unzipped "
            f"({', '.join(f'`{t}`' for t in info['tensorboard_files'])}), and nothing else: read them side by side "
            f"with Holistic Trace Analysis (`pip install HolisticTraceAnalysis`, then `TraceAnalysis(trace_dir="
            f"\"{folder / 'tensorboard'}\")`), or with the torch-tb-profiler plugin: {board}"]


def pages(data: ProfileData, folder: Path) -> dict[str, str | bytes]:
    """The rendered files of a profile folder, by name."""
    title = f"{data.meta['id']}: step time by category\n{data.meta['machine']}"
    return {"ops.md": ops_markdown(data.ops, TOP_OPS, data.meta["device_time"]) + "\n",
            "summary.md": summary_markdown(data, folder),
            "breakdown.png": breakdown_png(data.breakdown, data.meta["breakdown"]["step_ms"], title)}


def printed_lines(data: ProfileData, folder: Path) -> list[str]:
    """What ``mnist-bench profile`` prints: what ran, the step with and without the profiler, the largest
    categories, where the files are and how to open them (a line more when the machine was busy)."""
    meta, oh = data.meta, data.meta["overhead"]
    top = data.breakdown.sort_values("ms_per_step", ascending=False).head(3)
    lines = [f"{meta['ran']}\nStep {oh['median_ms_without']:.2f} ms without the profiler, {oh['median_ms_with']:.2f} "
             f"ms with it ({oh['ratio']:.2f}×; medians of {oh['n_without']} and {oh['n_with']} steps). Largest: "
             + ", ".join(f"{r.category} {r.ms_per_step:.2f} ms" for r in top.itertuples()) + f".\nWrote {folder}/"]
    if oh["contention"]["noisy"]:
        lines.append(f"Noisy: other processes used up to {oh['contention']['other_cores_max']:.2f} cores beside the "
                     "passes; rerun on a quiet machine before trusting the overhead figure")
    traces = meta["distributed"]["traces"] if "distributed" in meta else ["trace.json.gz"]
    if len(traces) > 1:
        lines.append(f"Holistic Trace Analysis, every rank side by side: pip install HolisticTraceAnalysis, then "
                     f"TraceAnalysis(trace_dir=\"{folder / 'tensorboard'}\")")
    return [*lines,
            f"Perfetto: open {' or '.join(str(folder / t) for t in traces)} at https://ui.perfetto.dev (or "
            "chrome://tracing)",
            f"TensorBoard: pip install .[profile], then tensorboard --logdir {folder / 'tensorboard'} "
            "(torch-tb-profiler is deprecated; its page loads Google Charts, so it does not render offline)",
            f"Flame graph: {folder / 'stacks.txt'} in https://www.speedscope.app or flamegraph.pl",
            f"Operators: {folder / 'ops.md'}; breakdown and overhead: {folder / 'summary.md'}"]
