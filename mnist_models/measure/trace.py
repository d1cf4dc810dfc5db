"""Profiler trace analysis (``mnist-bench profile``): what a ``torch.profiler`` run's events say, as
data; no rendering here (``report/profile/``) and no file I/O (``runs/profiles.py``).

- ``breakdown``: every recorded step (a ``ProfilerStep#N`` window, from one ``prof.step()`` to the
  next) is cut at every event boundary; each slice of time goes to the innermost operator running then
  on another thread where one runs (the step's thread is waiting for it: CUDA's autograd thread), else
  to the innermost event on the step's thread, else to ``untraced``. So the categories add up to the
  step's wall time by construction. An event's category comes from its name and its ancestors
  (``CATEGORY_HOW``). Under DDP the collectives are ``communication`` (``reducer_waits``): DDP's reducer
  issues each bucket's all-reduce from the backward pass (``c10d::allreduce_`` on the step's thread), gloo
  runs it on its own threads (``gloo:all_reduce``: beside the step's thread, so never instead of it), and
  the step's thread waits for it at the end of the backward pass inside the autograd engine, where no
  event of its own marks the wait: that wait is communication.
- ``op_rows``: the operator table (key averages grouped by input shape); ``folded_stacks``: the events'
  Python stacks as flame-graph input.
- ``overhead``: the profiler's own cost, from the step clocks of the passes with and without it.
- ``diff_ops``: two operator tables against each other (``profile --diff``).

    from mnist_models.measure.trace import breakdown, op_rows
    bd = breakdown(list(prof.events())); ops = op_rows(prof, active_steps=5)
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import DeviceType, profile

DATA_RANGE = "mnist-bench: data"  # the record_function label around every batch fetch (experiments/profiling.py)
FOLD = str.maketrans(" ;\t\n", "____")  # as export_stacks: a frame may hold none of these

OPTIMIZER_RANGES = ("Optimizer.step#", "Optimizer.zero_grad#")  # torch.optim's own record_function labels
TO_DEVICE = re.compile(r"train/runtime\.py\(\d+\): (images_)?to_device$")  # the batch's copy / memory format
ENGINE_CALL = "<built-in method run_backward of"  # Python's call into the autograd engine
SYNC_CALLS = {"cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaEventSynchronize"}
# torch.distributed's events: the c10d ops on the step's thread (c10d::allreduce_ …), the backends' own ranges
# (gloo:all_reduce on gloo's threads, nccl:all_reduce), record_param_comms, and NCCL's kernels on the GPU
GLOO = "gloo:"  # gloo's own ranges (gloo:all_reduce …), on its worker threads
COMMUNICATION = re.compile(r"^(c10d::|(gloo|nccl|mpi|ucc):|record_param_comms$|nccl(Dev)?Kernel)")
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
    "communication": "data-parallel runs: torch.distributed's collectives on the step's thread (c10d::allreduce_ "
                     "and the ops inside it; nccl:all_reduce) and its wait for them at the end of the backward "
                     "pass (from the first all-reduce DDP issued to the pass's end, outside the backward nodes): "
                     "the all-reduce and the wait for the slowest rank; gloo:all_reduce itself runs on gloo's "
                     "threads, beside the step's thread",
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
        if COMMUNICATION.search(name):
            return "communication"
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


def reducer_waits(host: list[FunctionEvent]) -> list[Span]:
    """DDP's wait for its all-reduce, as ``communication`` spans: in each backward pass (``run_backward``) that
    issued a collective on its own thread, from the first one to the pass's end. The reducer waits for the
    all-reduce at the pass's end (gloo runs it on its own threads) inside the autograd engine, with no event
    of its own; the backward nodes that run after the first collective (DDP overlaps the all-reduce of one
    bucket with the backward of the next) start later, so they stay the innermost events of their time.
    None in a one-process run, nor on CUDA, where the backward runs on the autograd thread."""
    issued = [e for e in host if e.name.startswith("c10d::")]
    waits = []
    for call in (e for e in host if e.name.startswith(ENGINE_CALL)):
        start, end = call.time_range.start, call.time_range.end
        first = min((c.time_range.start for c in issued if c.thread == call.thread and start <= c.time_range.start
                     < end), default=None)
        if first is not None:
            waits.append(Span(first, end, call.thread, "communication", False))
    return waits


def union_us(intervals: list[tuple[float, float]]) -> float:
    """The length covered by the union of ``intervals`` (each instant once)."""
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered


def window_ms(intervals: list[tuple[float, float]], window: tuple[float, float]) -> float:
    """Milliseconds of ``window`` (µs) covered by the union of ``intervals`` (µs)."""
    return union_us([(max(s, window[0]), min(e, window[1])) for s, e in intervals
                      if s < window[1] and e > window[0]]) / 1e3


@dataclass(frozen=True)
class Breakdown:
    rows: pd.DataFrame  # category, ms_per_step, share_pct, how
    step_ms: list[float]  # each recorded step's window (profiler clock)
    device_busy_ms: list[float]  # per step: time the GPU ran kernels or copies (empty on the CPU)
    device_comm_ms: list[float]  # per step: of that, time in NCCL's kernels (empty on the CPU)

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
    # gloo's threads run its collectives beside the step's thread, not instead of it (unlike CUDA's autograd
    # thread): the step's time is its own work, or its wait for them (reducer_waits)
    spans = [Span(e.time_range.start, e.time_range.end, e.thread, classify(e),
                  not is_python(e) and not e.name.startswith(GLOO)) for e in host] + reducer_waits(host)
    gpu = [e for e in events if e.device_type == DeviceType.CUDA]
    device = [(e.time_range.start, e.time_range.end) for e in gpu]
    comm = [(e.time_range.start, e.time_range.end) for e in gpu if COMMUNICATION.search(e.name)]
    totals: Counter[str] = Counter()
    busy, comm_busy = [], []
    for step in steps:
        window = (step.time_range.start, step.time_range.end)
        totals.update(step_totals(window, spans, step.thread))
        if device:
            busy.append(window_ms(device, window))
            comm_busy.append(window_ms(comm, window))
    step_ms = [(s.time_range.end - s.time_range.start) / 1e3 for s in steps]
    rows = pd.DataFrame({"category": CATEGORIES, "ms_per_step": [totals[c] / 1e3 / len(steps) for c in CATEGORIES],
                         "how": [CATEGORY_HOW[c] for c in CATEGORIES]})
    rows.insert(2, "share_pct", 100 * rows["ms_per_step"] / (sum(step_ms) / len(steps)))
    return Breakdown(rows, step_ms, busy, comm_busy)


def op_rows(prof: profile, active_steps: int) -> pd.DataFrame:
    """One row per operator and input shapes (``key_averages(group_by_input_shape=True)``), sorted by
    self CPU time: calls, self and total CPU (and device) µs, self CPU memory, in all recorded steps and per
    step, and the share of self CPU time."""
    rows = [{"operator": avg.key, "input_shapes": str(avg.input_shapes), "calls": avg.count,
             "self_cpu_us": float(avg.self_cpu_time_total), "cpu_total_us": float(avg.cpu_time_total),
             "self_device_us": float(avg.self_device_time_total), "device_total_us": float(avg.device_time_total),
             "self_cpu_mem_kib": avg.self_cpu_memory_usage / 1024}
            for avg in prof.key_averages(group_by_input_shape=True)
            if not avg.key.startswith("ProfilerStep") and avg.key != "[memory]"]
    frame = pd.DataFrame(rows)
    frame["calls_per_step"] = frame["calls"] / active_steps
    for column in ("self_cpu_us", "cpu_total_us", "self_device_us", "self_cpu_mem_kib"):
        frame[column + "_per_step"] = frame[column] / active_steps
    total = frame["self_cpu_us"].sum()
    frame["self_cpu_pct"] = 100 * frame["self_cpu_us"] / total if total else 0.0
    frame = frame.sort_values(["self_cpu_us", "operator"], ascending=[False, True], ignore_index=True)
    return frame[["operator", "input_shapes", "calls", "calls_per_step", "self_cpu_us", "self_cpu_us_per_step",
                  "self_cpu_pct", "cpu_total_us", "cpu_total_us_per_step", "self_device_us", "self_device_us_per_step",
                  "device_total_us", "self_cpu_mem_kib", "self_cpu_mem_kib_per_step"]]


def folded_stacks(events: Iterable[Any]) -> str:
    """Folded stacks for flamegraph.pl and speedscope: ``export_stacks``' format and rules (events with a
    Python stack, root first, their self CPU µs, `` ;\\t\\n`` → ``_``) with the event's own name as the leaf
    frame, identical stacks summed. (This torch's ``export_stacks`` ends each line at the calling Python
    frame, so no operator would be named in the flame graph.) Empty when torch recorded no stacks."""
    totals: Counter[str] = Counter()
    for event in events:
        value = int(event.self_cpu_time_total)
        if event.stack and value > 0:
            frames = [*reversed(event.stack), event.name]
            totals[";".join(frame.translate(FOLD) for frame in frames)] += value
    return "".join(f"{stack} {value}\n" for stack, value in sorted(totals.items()))

def _median_ms(seconds: list[float]) -> float:
    return 1e3 * statistics.median(seconds) if seconds else float("nan")


def overhead(before: list[float], after: list[float], with_profiler: list[float], between: list[float], warm: int,
             contention: dict[str, Any]) -> dict[str, Any]:
    """Median ms per step without the profiler (``before`` and ``after`` the profiled pass, seconds per step)
    and with it (``with_profiler``: the recorded steps), their ratio, and the profiler's own calls
    (``between``: seconds in ``prof.step()`` after each profiled step; ``warm`` steps precede the recorded
    ones, so ``between[warm - 1]`` starts the trace and ``between[-1]`` saves it)."""
    without = before + after
    without_ms, with_ms = _median_ms(without), _median_ms(with_profiler)
    return {
        "n_without": len(without), "n_with": len(with_profiler),
        "median_ms_without": without_ms, "median_ms_with": with_ms, "ratio": with_ms / without_ms,
        "median_ms_without_before": _median_ms(before), "median_ms_without_after": _median_ms(after),
        "steps_ms_without": [1e3 * s for s in without], "steps_ms_with": [1e3 * s for s in with_profiler],
        "prof_step_call_ms": _median_ms(between[warm:-1]) if len(with_profiler) > 1 else None,
        "trace_start_ms": 1e3 * between[warm - 1], "trace_save_s": between[-1],
        "contention": contention,
        "how": "Timer from the end of one on_step hook to the next (data fetch, step, loss bookkeeping), "
               "device synchronised; warm-up steps dropped; prof.step() itself is outside both clocks",
    }


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
