"""Profile a short training run under ``torch.profiler`` (``mnist-bench profile``), apart from timed runs.

The run is the engine's own loop, ``Training.train_epoch``, driven through its hooks: ``on_step``
calls ``prof.step()`` and ``max_steps`` ends the pass after the schedule's wait + warmup + active
steps. ``LabelledLoader`` wraps the run's training loader so that each batch fetch (the fast
loader's slicing and uint8 → float32 conversion, or the DataLoader's work) runs inside
``record_function(DATA_RANGE)``: the same batches, fetched by the same loop, named in the trace.

The profiler's own cost is measured beside it: the same Training runs ``active`` steps without
the profiler before the profiled pass and ``active`` more after it (drift shows as a difference
between the two), each pass after the same warm-up. Every step is timed with ``Timer`` from the
end of one ``on_step`` hook to the next, the device synchronised at both ends; ``prof.step()``
itself (a few µs per step, milliseconds where it starts or saves the trace) runs between two
clocks and is reported on its own.

``op_rows`` turns the key averages (grouped by input shape) into the operator table,
``folded_stacks`` the events' Python stacks into flame-graph input; the step-time breakdown is
``measure/profile_report.breakdown``.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.profiler import (
    ProfilerActivity,
    _ExperimentalConfig,
    profile,
    record_function,
    schedule,
)

from ..config import ConfigError, RunConfig
from ..host.clock import Timer
from ..results.store import atomic_write_bytes, write_error
from ..train.engine import Training, build_training
from .timing import Contention

# Kineto (the profiler's backend) logs its stages, and on a machine without a GPU driver an ERROR that
# it found no GPU, to stderr: noise beside one-line output. It reads this once, when the first
# profile starts; set KINETO_LOG_LEVEL yourself to see them.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")

DATA_RANGE = "mnist-bench: data"  # the record_function label around every batch fetch
TRACE_SUFFIX = ".pt.trace.json"  # what tensorboard_trace_handler writes and torch-tb-profiler reads
FOLD = str.maketrans(" ;\t\n", "____")  # as export_stacks: a frame may hold none of these
NOISY_OTHER_CORES = 0.5  # as the suite: other processes using more than half a core make a figure noisy
FULL_BELOW = 1 << 20  # bytes: when the profiler's export fails silently with less free than this, the disk is full


@dataclass(frozen=True)
class Schedule:
    """``torch.profiler.schedule(wait, warmup, active, repeat=1)``: steps skipped, traced but dropped,
    and recorded."""

    wait: int = 1
    warmup: int = 3
    active: int = 5

    @property
    def warm(self) -> int:
        """Steps before the recorded ones (also dropped from the unprofiled passes' clocks)."""
        return self.wait + self.warmup

    @property
    def steps(self) -> int:
        return self.wait + self.warmup + self.active

    def problem(self) -> str | None:
        """Why this schedule cannot run, with the fix, or None."""
        if min(self.wait, self.warmup) < 0 or self.active < 1:
            return f"profiler schedule wait {self.wait}, warmup {self.warmup}, active {self.active}: wait and " \
                   "warmup must be ≥ 0 and active ≥ 1; fix: e.g. --wait 1 --warmup 3 --active 5"
        if self.warmup < 1:
            return "--warmup 0: the first traced step would include the profiler's start-up and the loader's " \
                   "first batch; fix: --warmup 1 or more"
        return None


class LabelledLoader:
    """A training loader whose every batch fetch runs inside ``record_function(DATA_RANGE)``."""

    def __init__(self, loader: Iterable) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        batches = iter(self.loader)
        while True:
            with record_function(DATA_RANGE):
                batch = next(batches, None)
            if batch is None:
                return
            yield batch


class StepClock:
    """An ``on_step`` hook timing each step with ``Timer`` (device synchronised), from the end of one
    hook to the next. ``then`` (``prof.step``) runs between two clocks and is timed apart. Call
    ``start()`` just before the pass; it never stops the run."""

    def __init__(self, synchronize: Callable[[], None], then: Callable[[], Any] | None = None) -> None:
        self.synchronize, self.then = synchronize, then
        self.seconds: list[float] = []  # one per step of the pass
        self.between: list[float] = []  # seconds in ``then`` after each step
        self._timer = Timer(synchronize)

    def start(self) -> StepClock:
        self._timer = Timer(self.synchronize).__enter__()
        return self

    def __call__(self, steps: int) -> None:
        self._timer.__exit__(None, None, None)
        self.seconds.append(self._timer.seconds)
        if self.then is not None:
            with Timer(self.synchronize) as timer:
                self.then()
            self.between.append(timer.seconds)
        self.start()


@dataclass
class ProfileRun:
    """What one profiled run gives: the profiler, the clocks and where the trace went."""

    cfg: RunConfig
    runtime: dict[str, Any]
    schedule: Schedule
    prof: profile
    trace_file: Path
    without: list[float]  # seconds per step, no profiler (before and after the profiled pass)
    without_passes: tuple[list[float], list[float]]
    profiled: StepClock
    contention: dict[str, float] = field(default_factory=dict)

    @property
    def with_profiler(self) -> list[float]:
        """Seconds of the recorded (active) steps, on the same clock as ``without``."""
        return self.profiled.seconds[self.schedule.warm:self.schedule.steps]


def _timed_pass(training: Training, clock: StepClock, steps: int) -> StepClock:
    clock.start()
    training.train_epoch(max_steps=steps, on_step=clock)
    return clock


def _profiler(device: torch.device, sched: Schedule, trace_dir: Path, worker: str) -> profile:
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    # verbose=True: without it this torch keeps no Python stacks on the events (no flame graph).
    return profile(activities=activities, record_shapes=True, profile_memory=True, with_stack=True,
                   schedule=schedule(wait=sched.wait, warmup=sched.warmup, active=sched.active, repeat=1),
                   on_trace_ready=trace_handler(trace_dir, worker),
                   experimental_config=_ExperimentalConfig(verbose=True))


def trace_handler(trace_dir: Path, worker: str) -> Callable[[profile], None]:
    """``on_trace_ready``: the trace as ``tensorboard_trace_handler`` names it (``<worker>.<ns>.pt.trace.json``
    in ``trace_dir``, what torch-tb-profiler reads), written as every file here is
    (``results.store.atomic_write_bytes``): whole or not at all, one line naming it when the disk is full."""
    def save(prof: profile) -> None:
        target = trace_dir / f"{worker}.{time.time_ns()}{TRACE_SUFFIX}"
        atomic_write_bytes(target, exported_trace(prof, target))
    return save


def exported_trace(prof: profile, target: Path) -> bytes:
    """The Chrome-trace JSON of ``prof``, exported to a scratch file beside ``target`` and read back whole.
    The exporter (kineto) reports no error when it cannot write (it logs one and leaves a partial
    ``.tmp``): a missing or partial export is raised here (``write_error``: ``DiskFullError`` when the
    disk is nearly full). The scratch files are removed either way."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(target.parent, exc) from None
    scratch = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.export"
    try:
        prof.export_chrome_trace(str(scratch))
        data = scratch.read_bytes() if scratch.is_file() else b""
        try:
            json.loads(data)
        except ValueError:
            raise write_error(target, _export_failure(target.parent)) from None
        return data
    finally:
        for leftover in target.parent.glob(f"{scratch.name}*"):  # the exporter's own ``<scratch>.tmp`` too
            leftover.unlink(missing_ok=True)


def _export_failure(folder: Path) -> OSError:
    """Why the exporter wrote nothing whole: a full disk when little space is left, else an I/O error."""
    stats = os.statvfs(folder)
    if stats.f_bavail * stats.f_frsize < FULL_BELOW:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return OSError(errno.EIO, "torch.profiler could not write its trace")


def prepare_training(cfg: RunConfig, sched: Schedule) -> Training:
    """``build_training(cfg)``, captured where the config asks, its loader labelled; ConfigError when one
    pass over the training set has fewer batches than the schedule's steps."""
    training = build_training(cfg)
    batches = len(training.train_loader)  # type: ignore[arg-type]
    if batches < sched.steps:
        raise ConfigError(f"the profiler schedule needs {sched.steps} steps in one pass, but batch size "
                          f"{cfg.batch_size} gives {batches}; fix: a smaller --batch-size or fewer --wait/--warmup/"
                          "--active steps")
    training.capture()  # the CUDA-graph variant's capture (a no-op otherwise), before the loader is wrapped
    training.train_loader = LabelledLoader(training.train_loader)
    return training


def profile_training(training: Training, sched: Schedule, trace_dir: Path, worker: str) -> ProfileRun:
    """Time ``active`` steps without the profiler, profile ``sched.steps`` steps (the TensorBoard trace
    lands in ``trace_dir``), then time ``active`` more steps without it, all on one ``Training``."""
    cfg, sync = training.cfg, training.rt.synchronize
    with Contention() as plain:
        before = _timed_pass(training, StepClock(sync), sched.steps).seconds[sched.warm:]
    with _profiler(training.rt.device, sched, trace_dir, worker) as prof, Contention() as traced:
        profiled = _timed_pass(training, StepClock(sync, prof.step), sched.steps)
    with Contention() as plain_after:
        after = _timed_pass(training, StepClock(sync), 1 + sched.active).seconds[1:]
    traces = sorted(trace_dir.glob(f"*{TRACE_SUFFIX}"))
    if not traces:
        raise RuntimeError(f"torch.profiler wrote no *{TRACE_SUFFIX} into {trace_dir}")
    others = max(plain.other_cores, traced.other_cores, plain_after.other_cores)
    contention = {"other_cores_max": others, "process_cpu_util_profiled": traced.process_cpu_util,
                  "process_cpu_util_plain": plain.process_cpu_util, "noisy": bool(others > NOISY_OTHER_CORES)}
    return ProfileRun(cfg, training.rt.describe(), sched, prof, traces[-1], before + after, (before, after),
                      profiled, contention)


def _median_ms(seconds: list[float]) -> float:
    return 1e3 * statistics.median(seconds) if seconds else float("nan")


def overhead(run: ProfileRun) -> dict[str, Any]:
    """Median ms per step without and with the profiler, their ratio, and the profiler's own calls."""
    without, with_ = _median_ms(run.without), _median_ms(run.with_profiler)
    between = run.profiled.between  # prof.step() after each step: [warm - 1] starts the trace, [-1] saves it
    warm = run.schedule.warm
    return {
        "n_without": len(run.without), "n_with": len(run.with_profiler),
        "median_ms_without": without, "median_ms_with": with_, "ratio": with_ / without,
        "median_ms_without_before": _median_ms(run.without_passes[0]),
        "median_ms_without_after": _median_ms(run.without_passes[1]),
        "steps_ms_without": [1e3 * s for s in run.without], "steps_ms_with": [1e3 * s for s in run.with_profiler],
        "prof_step_call_ms": _median_ms(between[warm:-1]) if run.schedule.active > 1 else None,
        "trace_start_ms": 1e3 * between[warm - 1], "trace_save_s": between[-1],
        "contention": run.contention,
        "how": "Timer from the end of one on_step hook to the next (data fetch, step, loss bookkeeping), "
               "device synchronised; warm-up steps dropped; prof.step() itself is outside both clocks",
    }


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


def chrome_trace_gz(trace_file: Path) -> bytes:
    """The handler's Chrome-trace JSON, gzipped (Perfetto and chrome://tracing open it as it is).
    ``export_chrome_trace`` cannot be used: after the handler saved, it raises "Trace is already saved"."""
    return gzip.compress(trace_file.read_bytes(), mtime=0)
