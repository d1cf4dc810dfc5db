"""What a profile says: the step-time breakdown, the operator table, ``summary.md``, the bar chart and
the operator diff of two profiles (``mnist-bench profile`` and ``profile --diff``).

Breakdown: every recorded step (a ``ProfilerStep#N`` window, from one ``prof.step()`` to the next)
is cut at every event boundary; each slice of time goes to the innermost operator running then on
another thread where one runs (the step's thread is waiting for it: CUDA's autograd thread), else
to the innermost event on the step's thread, else to ``untraced``. So the categories add up to the
step's wall time by construction. An event's category comes from its name and its ancestors (``CATEGORY_HOW``).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import DeviceType

from ..report.markdown import fmt_columns, markdown_table
from .profile import DATA_RANGE

OPTIMIZER_RANGES = ("Optimizer.step#", "Optimizer.zero_grad#")  # torch.optim's own record_function labels
TO_DEVICE = re.compile(r"train/runtime\.py\(\d+\): (images_)?to_device$")  # the batch's copy / memory format
ENGINE_CALL = "<built-in method run_backward of"  # Python's call into the autograd engine
SYNC_CALLS = {"cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaEventSynchronize"}
# A Python frame recorded by with_stack, by its name: "file.py(line): function" (any file: "<string>(1): …",
# "pytest(8): <module>"), "<built-in …>", "nn.Module: …"
PYTHON_FRAME = re.compile(r"\(\d+\): |^<built-in |^nn\.Module: ")
OP_PATTERNS = (  # (category, pattern on the aten op's name without "aten::"); the first match wins
    ("convolution", r"conv(olution)?(\d?d|_|$)|convolution"),
    ("pooling", r"pool"),
    ("normalization", r"(batch|layer|group|instance)_norm"),
    ("matmul", r"^_?(addmm|mm|bmm|baddbmm|addmv|mv|dot|matmul|linear)(_|$)"),
    ("loss", r"cross_entropy|softmax|nll_loss"),
    ("elementwise", r"^_?(relu|clamp|threshold|hardtanh|gelu|silu|sigmoid|tanh|add|sub|mul|div|neg|exp|log|sqrt|"
                    r"rsqrt|pow|copy|fill|zero|lerp|where|maximum|minimum|dropout|native_dropout|foreach_)"),
)
CATEGORY_HOW = {
    "convolution": "aten ops named conv*/convolution* (forward and convolution_backward), and ops they call "
                   "(their allocations)",
    "pooling": "aten ops named *pool* (max_pool2d_with_indices and its backward)",
    "normalization": "aten *_norm ops (batch_norm, layer_norm, …)",
    "matmul": "aten addmm, mm, bmm, linear, matmul (the Linear layers, forward and backward)",
    "loss": "aten cross_entropy, log_softmax, nll_loss and their backwards",
    "elementwise": "aten pointwise ops outside the optimiser and data: relu/clamp_min, threshold_backward, add, mul, "
                   "div, copy_, fill_, zero_, … (the loop's loss and accuracy sums included)",
    "other ops": "every other aten op: reductions (sum, argmax), views, reshapes, allocations not inside a "
                 "categorised op",
    "optimizer": "everything inside torch.optim's Optimizer.step#… and Optimizer.zero_grad#… ranges "
                 "(ops and Python)",
    "data": f"everything inside the '{DATA_RANGE}' range around each batch fetch (index, uint8 → float32, "
            "the DataLoader's work) and inside Runtime.to_device (the copy to the device, the memory format)",
    "Python": "Python frames' own time (module __call__, the loop, the step function; under torch.compile also "
              "the compiled kernels, which run as calls from Python, not as aten ops): with_stack traces every "
              "Python call, so this row also carries part of the profiler's own cost",
    "autograd/dispatch overhead": "the framework's own events that are not aten ops: autograd engine nodes "
                                  "(evaluate_function, *Backward0, AccumulateGrad), the engine's own time inside "
                                  "run_backward, and CUDA runtime calls (launches)",
    "idle": "waiting for the device (cuda*Synchronize); always 0 on the CPU, which never waits for itself",
    "untraced": "time inside the step covered by no recorded event at all",
}
CATEGORIES = tuple(CATEGORY_HOW)


def op_category(name: str) -> str | None:
    """The category of an aten op by its name (``aten::`` stripped), or None."""
    return next((category for category, pattern in OP_PATTERNS if re.search(pattern, name)), None)


def classify(event: FunctionEvent) -> str:
    """The breakdown category of one event's own time (see ``CATEGORY_HOW``)."""
    found, node = None, event
    while node is not None:
        name = node.name
        if name == DATA_RANGE or TO_DEVICE.search(name):
            return "data"
        if name.startswith(OPTIMIZER_RANGES):
            return "optimizer"
        if found is None and name.startswith("aten::"):
            found = op_category(name[len("aten::"):])
        node = node.cpu_parent
    if event.name in SYNC_CALLS:
        return "idle"
    if event.name.startswith(ENGINE_CALL):  # the autograd engine's own time between backward nodes
        return "autograd/dispatch overhead"
    if found is not None:
        return found
    if event.name.startswith("aten::"):
        return "other ops"
    return "Python" if is_python(event) else "autograd/dispatch overhead"


def is_python(event: FunctionEvent) -> bool:
    """Whether ``event`` is a Python frame: newer torch says so (``is_python_function``); older
    releases (2.11 on the H200 image, say) only by the event's name."""
    flag = getattr(event, "is_python_function", None)
    return bool(flag) if flag is not None else bool(PYTHON_FRAME.search(event.name))


@dataclass(frozen=True)
class Span:
    start: float  # µs
    end: float
    thread: int
    category: str
    work: bool  # an operator, autograd or runtime event (not a Python frame)


def step_totals(window: tuple[float, float], spans: list[Span], main_thread: int) -> Counter[str]:
    """µs per category in one step window: each slice goes to the innermost operator running on another
    thread (the step's thread waits for it: CUDA's autograd thread), else to the innermost event of
    the step's thread, else to untraced. Other threads' Python frames never count (a compile worker
    idles in them for the whole run)."""
    w0, w1 = window
    inside = sorted((s for s in spans if s.start < w1 and s.end > w0), key=lambda s: s.start)
    points = sorted({w0, w1, *(max(s.start, w0) for s in inside), *(min(s.end, w1) for s in inside)})
    totals: Counter[str] = Counter({category: 0.0 for category in CATEGORIES})
    active: list[Span] = []
    i = 0
    for a, b in zip(points, points[1:], strict=False):
        while i < len(inside) and inside[i].start <= a:
            active.append(inside[i])
            i += 1
        active = [s for s in active if s.end > a]
        running = [s for s in active if s.thread != main_thread and s.work] or \
            [s for s in active if s.thread == main_thread]
        owner = max(running, key=lambda s: (s.start, -s.end), default=None)
        totals[owner.category if owner else "untraced"] += b - a
    return totals


def _union_us(intervals: list[tuple[float, float]]) -> float:
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered


@dataclass(frozen=True)
class Breakdown:
    rows: pd.DataFrame  # category, ms_per_step, share_pct, how
    step_ms: list[float]  # each recorded step's window (profiler clock)
    device_busy_ms: list[float]  # per step: time the GPU ran kernels or copies (empty on the CPU)

    @property
    def step_ms_mean(self) -> float:
        return sum(self.step_ms) / len(self.step_ms)


def breakdown(events: list[FunctionEvent]) -> Breakdown:
    """Mean ms per recorded step in each category (``CATEGORIES``), from the profiler's events."""
    steps = sorted((e for e in events if e.name.startswith("ProfilerStep")), key=lambda e: e.time_range.start)
    if not steps:
        raise ValueError("the profiler recorded no ProfilerStep windows")
    host = [e for e in events if e.device_type == DeviceType.CPU and not e.is_async and e.name != "[memory]"
            and not e.name.startswith("ProfilerStep") and e.time_range.end > e.time_range.start]
    spans = [Span(e.time_range.start, e.time_range.end, e.thread, classify(e), not is_python(e))
             for e in host]
    device = [(e.time_range.start, e.time_range.end) for e in events if e.device_type == DeviceType.CUDA]
    totals: Counter[str] = Counter()
    busy = []
    for step in steps:
        window = (step.time_range.start, step.time_range.end)
        totals.update(step_totals(window, spans, step.thread))
        if device:
            busy.append(_union_us([(max(s, window[0]), min(e, window[1])) for s, e in device
                                   if s < window[1] and e > window[0]]) / 1e3)
    step_ms = [(s.time_range.end - s.time_range.start) / 1e3 for s in steps]
    rows = pd.DataFrame({"category": CATEGORIES, "ms_per_step": [totals[c] / 1e3 / len(steps) for c in CATEGORIES],
                         "how": [CATEGORY_HOW[c] for c in CATEGORIES]})
    rows.insert(2, "share_pct", 100 * rows["ms_per_step"] / (sum(step_ms) / len(steps)))
    return Breakdown(rows, step_ms, busy)


def breakdown_png(bd: Breakdown, title: str) -> bytes:
    """A horizontal bar chart of ms per step by category (matplotlib, Agg canvas), as PNG bytes."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    rows = bd.rows.iloc[::-1]
    bars = ax.barh(rows["category"], rows["ms_per_step"], color="#4c72b0")
    labels = [f"{ms:.2f} ms ({pct:.0f}%)" for ms, pct in zip(rows["ms_per_step"], rows["share_pct"], strict=True)]
    ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
    ax.set_xlabel(f"ms per step (mean of {len(bd.step_ms)} recorded steps, {bd.step_ms_mean:.2f} ms each)")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, max(rows["ms_per_step"].max(), 1e-3) * 1.35)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()


OPS_COLUMNS = {"operator": "operator", "input_shapes": "input shapes", "calls_per_step": "calls/step",
               "self_cpu_us_per_step": "self CPU µs/step", "self_cpu_pct": "self CPU %",
               "cpu_total_us_per_step": "CPU total µs/step", "self_device_us_per_step": "self device µs/step",
               "self_cpu_mem_kib_per_step": "self CPU mem KiB/step"}


def ops_markdown(ops: pd.DataFrame, top: int, device: bool) -> str:
    """The ``top`` operators by self CPU time as a Markdown table (device time too on a GPU)."""
    columns = {k: v for k, v in OPS_COLUMNS.items() if device or k != "self_device_us_per_step"}
    shown = fmt_columns(ops.head(top), {"calls_per_step": "{:g}", "self_cpu_us_per_step": "{:,.1f}",
                                        "self_cpu_pct": "{:.1f}", "cpu_total_us_per_step": "{:,.1f}",
                                        "self_device_us_per_step": "{:,.1f}", "self_cpu_mem_kib_per_step": "{:,.1f}"})
    shown["input_shapes"] = shown["input_shapes"].map(lambda s: f"`{s}`")
    return markdown_table(shown[list(columns)].rename(columns=columns))


def breakdown_markdown(bd: Breakdown) -> str:
    shown = fmt_columns(bd.rows, {"ms_per_step": "{:.3f}", "share_pct": "{:.1f}"})
    table = markdown_table(shown.rename(columns={"ms_per_step": "ms/step", "share_pct": "% of step"}))
    total = bd.rows["ms_per_step"].sum()
    lines = [table, "", f"Sum of the categories: {total:.3f} ms; mean recorded step (ProfilerStep window, the "
             f"profiler's clock): {bd.step_ms_mean:.3f} ms; steps: {', '.join(f'{ms:.2f}' for ms in bd.step_ms)} ms."]
    if bd.device_busy_ms:
        busy = sum(bd.device_busy_ms) / len(bd.device_busy_ms)
        lines.append(f"GPU busy (kernels and copies, union): {busy:.3f} ms per step, "
                     f"{100 * busy / bd.step_ms_mean:.1f}% of the step; the rest the GPU was idle.")
    return "\n".join(lines)


def overhead_markdown(oh: dict[str, Any]) -> str:
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


DIFF_STATUSES = ("slower", "faster", "added", "removed")


def diff_metric(a: pd.DataFrame, b: pd.DataFrame) -> str:
    """What a diff compares: self device µs per step where both profiles have device time, else self CPU."""
    device = a["self_device_us"].sum() > 0 and b["self_device_us"].sum() > 0
    return "self_device_us_per_step" if device else "self_cpu_us_per_step"


def diff_ops(a: pd.DataFrame, b: pd.DataFrame, by: str, min_pct: float, min_us: float) -> pd.DataFrame:
    """Operators of B against A, per operator and input shapes (``by="shape"``) or per operator name:
    added, removed, slower or faster (changed by ≥ ``min_pct`` percent AND ≥ ``min_us`` µs per step),
    else same. Columns: status, operator[, input_shapes], a_us, b_us, delta_us, ratio."""
    keys = ["operator", "input_shapes"] if by == "shape" else ["operator"]
    metric = diff_metric(a, b)
    both = pd.concat({"a_us": a.groupby(keys)[metric].sum(), "b_us": b.groupby(keys)[metric].sum()}, axis=1)
    both = both.reset_index()
    both["delta_us"] = both["b_us"] - both["a_us"]
    both["ratio"] = both["b_us"] / both["a_us"].where(both["a_us"] > 0)
    factor = 1 + min_pct / 100
    slower = (both["delta_us"] >= min_us) & (both["b_us"] >= factor * both["a_us"])
    faster = (-both["delta_us"] >= min_us) & (both["a_us"] >= factor * both["b_us"])
    both.insert(0, "status", "same")
    both.loc[slower, "status"], both.loc[faster, "status"] = "slower", "faster"
    both.loc[both["a_us"].isna(), "status"], both.loc[both["b_us"].isna(), "status"] = "added", "removed"
    size = both["delta_us"].abs().fillna(both["a_us"].fillna(0) + both["b_us"].fillna(0))
    order = both["status"].map({s: i for i, s in enumerate((*DIFF_STATUSES, "same"))})
    return both.assign(_order=order, _size=size).sort_values(["_order", "_size"], ascending=[True, False]) \
        .drop(columns=["_order", "_size"]).reset_index(drop=True)


def diff_markdown(diff: pd.DataFrame, names: tuple[str, str], metric: str, thresholds: tuple[float, float]) -> str:
    """``diff.md``: what was compared, the counts, the totals and the listed operators."""
    counts = diff["status"].value_counts()
    what = "self device" if metric.startswith("self_device") else "self CPU"
    totals = diff[["a_us", "b_us"]].sum()
    listed = diff[diff["status"] != "same"]
    shown = fmt_columns(listed, {"a_us": "{:,.1f}", "b_us": "{:,.1f}", "delta_us": "{:+,.1f}", "ratio": "{:.2f}×"})
    if "input_shapes" in shown:
        shown["input_shapes"] = shown["input_shapes"].map(lambda s: f"`{s}`")
    shown = shown.rename(columns={"a_us": "A µs/step", "b_us": "B µs/step", "delta_us": "Δ µs/step",
                                  "ratio": "B ÷ A", "input_shapes": "input shapes"})
    table = markdown_table(shown) if len(listed) else "No operator changed beyond the thresholds."
    return "\n".join([
        "# Operator diff: A → B", "", f"- A: {names[0]}", f"- B: {names[1]}", "",
        f"Compared: {what} µs per recorded step, per "
        f"{'operator and input shapes' if 'input_shapes' in diff else 'operator'} (ops.csv). "
        f"Listed: slower or faster by ≥ {thresholds[0]:g}% and ≥ {thresholds[1]:g} µs per step, and "
        "operators found in one profile only.", "",
        f"Totals: A {totals['a_us']:,.1f} µs/step, B {totals['b_us']:,.1f} µs/step. "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in DIFF_STATUSES) + f", {counts.get('same', 0)} within the "
        "thresholds (not listed).", "", table, "",
        "Each side is one profiled run of a few steps, the profiler's overhead included (see each summary.md): "
        "a change near the thresholds may be run-to-run noise; profile each side twice to see its spread.",
    ]) + "\n"
