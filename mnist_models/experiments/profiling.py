"""Run the profiled steps of ``mnist-bench profile``: a short training run under ``torch.profiler``,
apart from timed runs, and what it gives as data (``run_profile`` → ``runs.profiles.ProfileData``).

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
clocks and is reported on its own. What the trace says (breakdown, operators, stacks, overhead):
``measure.trace``.

Under DDP (``prepare_profile(..., dist=dist)``) every rank runs the same passes, in step (each step's
all-reduce waits for every rank), and writes its trace as ``<id>-rank<R>.<ns>.pt.trace.json``; torch.profiler
puts ``distributedInfo`` (backend, rank, world size) in each. ``analyse`` is rank 0's.

    cfg, variant = profile_config("eager", {"model": "v2", "device": "cpu"})
    training = prepare_profile(cfg, Schedule(), "results")
    data = run_profile(training, variant, Schedule(), folder, run_id)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch.profiler import (
    ProfilerActivity,
    _ExperimentalConfig,
    profile,
    record_function,
    schedule,
)

from ..config import ConfigError, RunConfig
from ..data import prepare
from ..host.clock import Timer
from ..host.device import resolve_device
from ..host.kinds import machine_tag
from ..measure import trace
from ..measure.timing import Contention
from ..results.provenance import environment
from ..results.store import atomic_write_bytes, check_writable, write_error
from ..runs.profiles import PROFILE_FORMAT, ProfileData
from ..train.dist import Dist
from ..train.engine import Training, build_training
from ..train.runtime import Resolved, Runtime
from ..variants import Variant, get_variant
from .suite import base_config

# Kineto (the profiler's backend) logs its stages, and on a machine without a GPU driver an ERROR that
# it found no GPU, to stderr: noise beside one-line output. It reads this once, when the first
# profile starts; set KINETO_LOG_LEVEL yourself to see them.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")

TRACE_SUFFIX = ".pt.trace.json"  # what tensorboard_trace_handler writes and torch-tb-profiler reads
NOISY_OTHER_CORES = 0.5  # as the suite: other processes using more than half a core make a figure noisy
FULL_BELOW = 1 << 20  # bytes: when the profiler's export fails silently with less free than this, the disk is full
TOP_OPS_JSON = 10  # operators kept in profile.json (ops.csv has them all)


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
    """A training loader whose every batch fetch runs inside ``record_function(trace.DATA_RANGE)``."""

    def __init__(self, loader: Iterable) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        batches = iter(self.loader)
        while True:
            with record_function(trace.DATA_RANGE):
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
    without_passes: tuple[list[float], list[float]]  # seconds per step, no profiler, before and after
    profiled: StepClock
    contention: dict[str, float] = field(default_factory=dict)

    @property
    def with_profiler(self) -> list[float]:
        """Seconds of the recorded (active) steps, on the same clock as ``without_passes``."""
        return self.profiled.seconds[self.schedule.warm:self.schedule.steps]

    def overhead(self) -> dict[str, Any]:
        """The profiler's own cost (``measure.trace.overhead``)."""
        return trace.overhead(*self.without_passes, self.with_profiler, self.profiled.between, self.schedule.warm,
                              self.contention)


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


def profile_config(variant_name: str, settings: dict[str, Any]) -> tuple[RunConfig, Variant]:
    """The suite's baseline for ``settings``' model on its device, the variant's changes, then the other
    settings given (None: the variant's); ConfigError when the variant is unknown or cannot train here."""
    try:
        variant = get_variant(variant_name)
    except KeyError as exc:
        raise ConfigError(f"{exc.args[0]}; fix: --variant NAME with one of those") from None
    given = {k: v for k, v in settings.items() if v is not None}
    base = base_config(given.pop("model"), given.pop("device", "auto"), given.pop("data_root", None))
    cfg = variant.apply(base).with_(**given)
    reason = variant.skip_reason(resolve_device(cfg.device).type, "train")  # the variant's reason before the flag's
    if reason:
        raise ConfigError(f"--variant {variant.name}: {reason}; fix: pick another variant (see --help)")
    Runtime.check(cfg)
    return cfg, variant


def check_profile(cfg: RunConfig, sched: Schedule, results: str | os.PathLike[str]) -> None:
    """What can be checked before the training is built: the schedule, the data, the results folder
    (writable); ConfigError or the data's and store's own one-line errors."""
    if sched.problem():
        raise ConfigError(sched.problem())
    prepare(cfg.data_root, dataset=cfg.dataset)
    check_writable(results)


def prepare_profile(run: RunConfig | Resolved, sched: Schedule, results: str | os.PathLike[str],
                    dist: Dist | None = None) -> Training:
    """Everything that can fail before profiling, in order (``profile_config`` checked the device):
    ``check_profile``, then ``build_training(run, dist=dist)`` (``dist``: this rank's shard, the model in
    DDP), captured where the config asks, its loader labelled; ConfigError when one pass over the training
    set (this rank's shard) has fewer batches than the schedule's steps."""
    cfg = run.cfg if isinstance(run, Resolved) else run
    check_profile(cfg, sched, results)
    training = build_training(run, dist=dist)
    batches = len(training.train_loader)  # type: ignore[arg-type]
    if batches < sched.steps:
        raise ConfigError(f"the profiler schedule needs {sched.steps} steps in one pass, but batch size "
                          f"{cfg.batch_size} gives {batches}; fix: a smaller --batch-size or fewer --wait/--warmup/"
                          "--active steps")
    training.capture()  # the CUDA-graph variant's capture (a no-op otherwise), before the loader is wrapped
    training.train_loader = LabelledLoader(training.train_loader)
    return training


@contextlib.contextmanager
def _no_trace_on_failure(prof: profile) -> Generator[None, None, None]:
    """A profiled pass that fails (Ctrl-C, a rank gone) exports no trace as the profiler stops: its folder is
    being removed (under DDP by another rank, maybe while this one would write into it)."""
    try:
        yield
    except BaseException:
        prof.on_trace_ready = None
        raise


def profile_training(training: Training, sched: Schedule, trace_dir: Path, worker: str) -> ProfileRun:
    """Time ``active`` steps without the profiler, profile ``sched.steps`` steps (the TensorBoard trace
    lands in ``trace_dir``), then time ``active`` more steps without it, all on one ``Training``."""
    sync = training.rt.synchronize
    with Contention() as plain:
        before = _timed_pass(training, StepClock(sync), sched.steps).seconds[sched.warm:]
    with _profiler(training.rt.device, sched, trace_dir, worker) as prof, _no_trace_on_failure(prof), \
            Contention() as traced:
        profiled = _timed_pass(training, StepClock(sync, prof.step), sched.steps)
    with Contention() as plain_after:
        after = _timed_pass(training, StepClock(sync), 1 + sched.active).seconds[1:]
    traces = sorted(trace_dir.glob(f"{worker}.*{TRACE_SUFFIX}"))  # this rank's: ranks share trace_dir
    if not traces:
        raise RuntimeError(f"torch.profiler wrote no *{TRACE_SUFFIX} into {trace_dir}")
    others = max(plain.other_cores, traced.other_cores, plain_after.other_cores)
    contention = {"other_cores_max": others, "process_cpu_util_profiled": traced.process_cpu_util,
                  "process_cpu_util_plain": plain.process_cpu_util, "noisy": bool(others > NOISY_OTHER_CORES)}
    return ProfileRun(training.cfg, training.rt.describe(), sched, prof, traces[-1], (before, after), profiled,
                      contention)


def plural(n: int, noun: str) -> str:
    """``1 thread``, ``2 threads``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def ran_line(cfg: RunConfig, variant: Variant, runtime: dict[str, Any], env: dict[str, Any]) -> str:
    """profile.json's ``ran``: one sentence saying what ran, on what."""
    layout = "NHWC" if runtime["channels_last"] else "NCHW"
    return (f"Ran: model {cfg.model}, variant `{variant.name}` ({variant.description}), on {runtime['device']}: "
            f"{runtime['precision']}, {layout}, compile {cfg.compile}, {cfg.loader} loader, batch {cfg.batch_size}, "
            f"{cfg.optimizer} lr {cfg.lr:g}, seed {cfg.seed}. Machine: {machine_tag(env)}, torch {env['torch']}, "
            f"{plural(env['torch_threads'], 'thread')}.")


def worker_name(run_id: str, dist: Dist | None) -> str:
    """The TensorBoard trace's worker name: the profile's id, with ``-rank<R>`` under DDP."""
    return run_id if dist is None else f"{run_id}-rank{dist.rank}"


def run_profile(training: Training, variant: Variant, sched: Schedule, folder: Path, run_id: str) -> ProfileData:
    """Profile ``training`` (the trace into ``folder/tensorboard/``) and analyse the trace: the profile's
    data, ``profile.json`` (``runs.profiles.PROFILE_FIELDS``) included."""
    run = profile_training(training, sched, folder / "tensorboard", worker_name(run_id, training.dist))
    return analyse(run, variant, folder, run_id)


def analyse(run: ProfileRun, variant: Variant, folder: Path, run_id: str) -> ProfileData:
    """What the profiled run's events say: breakdown, operators, stacks, overhead, and ``profile.json``."""
    sched = run.schedule
    events = list(run.prof.events())
    bd, ops, stacks = trace.breakdown(events), trace.op_rows(run.prof, sched.active), trace.folded_stacks(events)
    env = environment()
    meta = {
        "format": PROFILE_FORMAT, "id": run_id, "folder": str(folder),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ran": ran_line(run.cfg, variant, run.runtime, env), "variant": variant.name, "config": asdict(run.cfg),
        "runtime": run.runtime, "machine": machine_tag(env), "environment": env, "schedule": asdict(sched),
        "activities": ["CPU"] + (["CUDA"] if run.runtime["device"].startswith("cuda") else []),
        "device_time": bool(ops["self_device_us"].sum() > 0),
        "breakdown": {"rows": bd.rows.to_dict("records"), "step_ms": bd.step_ms, "step_ms_mean": bd.step_ms_mean,
                      "categories_sum_ms": float(bd.rows["ms_per_step"].sum()), "device_busy_ms": bd.device_busy_ms,
                      "device_comm_ms": bd.device_comm_ms},
        "overhead": run.overhead(), "stacks_lines": stacks.count("\n"),
        "tensorboard_file": run.trace_file.name, "top_ops": ops.head(TOP_OPS_JSON).to_dict("records"),
    }
    return ProfileData(meta, ops, bd.rows, stacks, run.trace_file)
