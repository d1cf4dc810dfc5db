"""The benchmark suite's ``summary.md`` and its compact block: ``render`` renders a ``BenchRun`` (the
tables ``runs.frames.bench_frames`` computed, the skips, the budget and the peaks), never inside training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from ..host.kinds import machine_tag
from ..runs.keys import case_name
from . import tta_table as tta_report
from .markdown import fmt_columns, markdown_table, pick_columns


def _memory(frame: pd.DataFrame) -> pd.Series:
    """Peak memory in MiB: CUDA max allocated where measured, else the CPU process's peak RSS."""
    cuda = frame.get("peak_allocated_mib", pd.Series([None] * len(frame), index=frame.index))
    cpu = frame.get("peak_rss_mib", pd.Series([None] * len(frame), index=frame.index))
    return cuda.where(cuda.notna(), cpu)


def _budget_lines(budget: dict[str, Any], compact: bool) -> list[str]:
    """The time budget and what it cut (where a budget was set)."""
    lines = []
    if budget.get("budget_s"):
        cuts = budget.get("cuts") or []
        said = (f"{len(cuts)} cases were cut to fit it (flag `cut`; " +
                ("the run's summary.md lists what was cut and why)" if compact else "listed below with what and why)")
                if cuts else "no case needed cutting")
        lines.append(f"Time budget: {budget['budget_s']:.0f} s for the session; it took {budget['session_s']:.0f} s "
                     f"from process start; {said}.")
    if budget.get("inductor_warmup_s") is not None:
        lines.append(f"The session's first `torch.compile` (inductor start-up, {budget['inductor_warmup_s']:.1f} s) "
                     "ran before the cases, so no case's compile time carries it.")
    return [" ".join(lines), ""] if lines else []


def _flags(frame: pd.DataFrame, env: dict[str, Any]) -> list[str]:
    """The flag cell: failed (a non-finite loss; the CSV's ``error`` says where), noisy, outside eager's
    accuracy band, cut by the budget, bf16 emulated here."""
    missing = pd.Series([None] * len(frame), index=frame.index)
    emulated = env.get("bf16_native") is False and not env.get("gpu")
    out = []
    for noisy, band, cut, precision, variant, status in zip(
            frame["noisy"], frame.get("acc_band", missing), frame.get("cut", missing),
            frame.get("precision", missing), frame["variant"], frame.get("status", missing), strict=True):
        bf16 = precision == "bf16" or (precision is None and "bf16" in str(variant))
        flags = ["failed" if status == "failed" else "", "noisy" if str(noisy) == "True" else "",
                 band if isinstance(band, str) else "", "cut" if isinstance(cut, str) and cut else "",
                 "bf16 emulated" if emulated and bf16 else ""]
        out.append(", ".join(f for f in flags if f))
    return out


def _variant_cells(frame: pd.DataFrame) -> list[str]:
    """Variant names, with what an ``auto`` variant resolved to: ``auto → bf16, NHWC``."""
    if "precision" not in frame:
        return list(frame["variant"])
    return [f"{v} → {p}, {'NHWC' if cl is True else 'NCHW'}" if v == "auto" and isinstance(p, str) else v
            for v, p, cl in zip(frame["variant"], frame["precision"], frame["channels_last"], strict=True)]


@dataclass(frozen=True)
class BenchRun:
    """What one suite run's summary is made from.

    ``train``/``inference``: ``bench_frames``' tables; ``tta``: the time-to-accuracy rows (one per seed);
    ``scaling``: the ``--bench-ddp`` layouts (one row each); ``skips``: (case, reason) of the cases skipped
    while running; ``left_out``: (what, reason) of the devices and variants never collected here; ``budget``:
    ``budget_s``, ``session_s``, ``cuts``, ``inductor_warmup_s``; ``peaks``: the measured matmul peaks named in
    the footnote; ``inference_batch``: keep one batch size of the inference table and list skips and cuts as a
    count (the compact form a results page shows).
    """

    train: pd.DataFrame
    inference: pd.DataFrame
    profile: str
    tta: pd.DataFrame = field(default_factory=pd.DataFrame)
    scaling: pd.DataFrame = field(default_factory=pd.DataFrame)
    skips: Sequence[tuple[str, str]] = ()
    left_out: Sequence[tuple[str, str]] = ()
    budget: dict[str, Any] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)
    inference_batch: int | None = None

    def compact(self, batch: int) -> BenchRun:
        """The results page's form of this run: one inference batch size, skips and cuts counted."""
        return replace(self, inference_batch=batch)


TRAIN_FORMATS = {"test_acc_pct": "{:.2f}", "test_loss": "{:.4f}", "median_s": "{:.3f}", "iqr_s": "{:.3f}",
                 "img_per_s": "{:,.0f}", "speedup_vs_eager": "{:.2f}×", "acc_delta_vs_eager_pct": "{:+.2f}",
                 "compile_s": "{:.2f}", "memory_mib": "{:.1f}", "gflop_per_s": "{:.1f}", "pct_of_peak": "{:.1f}"}
TRAIN_COLUMNS = {"model": "model", "device": "device", "variant": "variant", "test_acc_pct": "test acc %",
                 "test_loss": "test loss", "acc_delta_vs_eager_pct": "Δacc vs eager (pts)",
                 "images_per_round": "images/round", "n": "n", "median_s": "s/round median", "iqr_s": "IQR s",
                 "img_per_s": "img/s", "speedup_vs_eager": "speed-up vs eager", "gflop_per_s": "GFLOP/s",
                 "pct_of_peak": "% of peak²", "compile_s": "compile s", "graph_breaks": "graph breaks",
                 "memory_mib": "peak MiB¹", "noisy": "flag"}
INFERENCE_FORMATS = {"img_per_s": "{:,.0f}", "p50_ms": "{:.3f}", "p90_ms": "{:.3f}", "p99_ms": "{:.3f}",
                     "speedup_vs_eager": "{:.2f}×", "compile_s": "{:.2f}", "memory_mib": "{:.1f}",
                     "gflop_per_s": "{:.1f}", "pct_of_peak": "{:.1f}", "agree_with_eager_pct": "{:.2f}",
                     "pct_of_bandwidth": "{:.1f}"}
INFERENCE_COLUMNS = {"model": "model", "device": "device", "variant": "variant", "batch_size": "batch", "n": "n",
                     "img_per_s": "img/s", "p50_ms": "p50 ms", "p90_ms": "p90 ms", "p99_ms": "p99 ms",
                     "speedup_vs_eager": "speed-up vs eager", "agree_with_eager_pct": "same class as eager %",
                     "gflop_per_s": "GFLOP/s", "pct_of_peak": "% of peak²", "pct_of_bandwidth": "% of bandwidth³",
                     "compile_s": "compile s", "memory_mib": "peak MiB¹", "noisy": "flag"}


def table(frame: pd.DataFrame, env: dict[str, Any], formats: dict[str, str], columns: dict[str, str]) -> str:
    """A results table: memory, flags and auto cells added, formatted, the display columns picked."""
    table = frame.assign(memory_mib=_memory(frame), noisy=_flags(frame, env), variant=_variant_cells(frame))
    return markdown_table(pick_columns(fmt_columns(table, formats), columns))


def _header(run: BenchRun, env: dict[str, Any], run_id: str, heading: str) -> list[str]:
    return [f"{heading} Benchmark run `{run_id}`", "",
            f"Machine: {machine_tag(env)}; torch {env['torch']}, {env['torch_threads']} threads; "
            f"CUDA {env['cuda'] or '–'}, cuDNN {env['cudnn'] or '–'}; commit {env['git_commit'] or '–'}. "
            f"Profile: `{run.profile}`.", "",
            "Times: `benchmark.pedantic`, warm-up rounds excluded, device synchronised at the end of "
            "every round, `iterations=1`; median over n rounds with the IQR (p75 − p25). Compile = "
            "first call minus a steady call (compilation, capture, first touch). Rows marked noisy had "
            "IQR > 10% of the median or other processes using > 0.5 core beside them.", "",
            *_budget_lines(run.budget, run.inference_batch is not None)]


def _training(run: BenchRun, env: dict[str, Any], sub: str) -> list[str]:
    if run.train.empty:
        return []
    return [f"{sub} Training", "",
            "Seed-protocol hyper-parameters (batch 32, plain SGD, lr 0.1 for v0/v2 and 0.01 for v1), "
            "same seed and same number of steps for every variant; test accuracy and loss on the full "
            "10,000-image test set after the timed rounds. Eager fp32 is also trained, untimed, from "
            "other seeds; a variant whose accuracy falls outside that seed range is flagged (below or "
            "above eager band), whatever its speed. A case cut to fewer steps by the time budget is "
            "compared with eager retrained, untimed, to the same steps and seeds.", "",
            table(run.train, env, TRAIN_FORMATS, TRAIN_COLUMNS), ""]


def _inference(run: BenchRun, env: dict[str, Any], sub: str) -> list[str]:
    inference = run.inference
    if run.inference_batch is not None and not inference.empty:
        inference = inference[inference["batch_size"] == run.inference_batch]
    if inference.empty:
        return []
    return [f"{sub} Inference", "", "One forward pass per round under `torch.inference_mode()`, real test "
            "images, weights trained for one epoch (fewer steps where the budget cut them: "
            "`weight_steps` in the CSV); latency percentiles over the n rounds. \"Same class as eager\": "
            "share of the 10,000 test images (2,000 at batch 1; fewer in a cut case: `agree_images`) whose "
            "predicted class equals eager fp32's.", "",
            table(inference, env, INFERENCE_FORMATS, INFERENCE_COLUMNS), ""]


def _footnotes(run: BenchRun) -> list[str]:
    return ["¹ CUDA: max allocated in a pass of its own; CPU: the whole process's peak resident set "
            "in that pass (data, model and libraries included; `peak_rss_growth_mib` in the CSV is the "
            "growth over the resident set before it).",
            "² Achieved GFLOP/s (FLOPs per image counted once per model with `torch.utils.flop_counter`: "
            "forward for inference, forward + backward for training) ÷ the device's measured matmul peak "
            "in the case's precision (" + ", ".join(f"{k} {v:,.0f}" for k, v in run.peaks.items()) + " GFLOP/s). "
            "It can pass 100% where a precision's matmul runs slower than its convolutions (bf16 emulated in "
            "software).",
            "³ Inference: activation bytes per image (the input read once, each layer's output written once and "
            "read once: `bytes_per_image` in the CSV, 2 bytes an element in bf16/fp16, 4 in fp32) × img/s ÷ the "
            "device's measured copy bandwidth (`memory_bandwidth_gb_per_s` in machine.json): how near a "
            "memory-bound forward pass is to its floor.", ""]


def render(run: BenchRun, env: dict[str, Any], run_id: str, heading: str = "#") -> str:
    """The run's summary.md (or, for ``run.compact(...)``, the results page's block): training table
    (seed-style), speed-ups with accuracy deltas, inference table, time to accuracy, where the scaling
    layouts are, what the budget cut, and what was left out or skipped with the reasons."""
    sub = heading + "#"
    lines = [*_header(run, env, run_id, heading), *_training(run, env, sub), *_inference(run, env, sub),
             *_footnotes(run)]
    for _, rows in (run.tta.groupby("device", sort=False) if not run.tta.empty else []):
        lines += [tta_report.render(rows.reset_index(drop=True), env, run_id, sub), ""]
    lines += _scaling(run, sub)
    full = run.inference_batch is None
    cuts = run.budget.get("cuts") or []
    if cuts and full:
        lines += [f"{sub} Cut to keep the time budget", "",
                  markdown_table(pd.DataFrame([(case_name(c), r) for c, r in cuts], columns=["case", "what was cut"])),
                  ""]
    return "\n".join(lines + _left_out_and_skipped(run, sub))


def _scaling(run: BenchRun, sub: str) -> list[str]:
    """Where the ``--bench-ddp`` layouts are: their table and figure (``report.scaling_table``, which draws
    with matplotlib) belong to the run's report, drawn after the session, not to this page."""
    if run.scaling.empty:
        return []
    where = "`scaling.csv`; the run's report (`report.html`) draws their table and figure"
    return [f"{sub} Data-parallel scaling", "", f"{len(run.scaling)} layouts of {run.scaling['model'].iloc[0]} "
            f"(`--bench-ddp`, processes × threads: {', '.join(map(str, run.scaling['layout']))}) are in {where}.", ""]


def _left_out_and_skipped(run: BenchRun, sub: str) -> list[str]:
    """What was never collected here and what was skipped while running, each with its reason (the
    compact form names the first and counts the second)."""
    if run.inference_batch is not None:
        lines = [f"Left out here: {', '.join(what for what, _ in run.left_out)} (the run's summary.md says why)."
                 ] if run.left_out else []
        if run.skips:
            lines.append(f"{len(run.skips)} cases skipped while running; the run's summary.md lists each with its "
                         "reason.")
        return [" ".join(lines), ""] if lines else []
    lines = []
    if run.left_out:
        lines += [f"{sub} Left out", "", "Not collected on this machine (devices it lacks, variants that do not "
                  "apply on a device or in a phase):", "",
                  markdown_table(pd.DataFrame(list(run.left_out), columns=["left out", "reason"])), ""]
    if run.skips:
        lines += [f"{sub} Skipped", "", markdown_table(pd.DataFrame(list(run.skips), columns=["case", "reason"])), ""]
    return lines
