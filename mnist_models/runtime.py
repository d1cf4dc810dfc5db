"""Device, precision, compilation, memory format, synchronisation and timing.

This is the only module that branches on the device. ``Runtime.from_config(cfg)`` resolves a
``RunConfig`` into concrete objects (a ``torch.device``, an autocast context factory, a
GradScaler, a synchronize function); the engine's loops use them without asking which device
they run on.

Precision table (autocast dtype, GradScaler on?):

    fp32 → (none, off)      bf16 → (bfloat16, off)      fp16 → (float16, on; CUDA only)

``auto`` settings (precision ``auto``, ``channels_last=None``) are resolved here by measuring a few
steps of the model on this machine (``resolve_auto``), never assumed: bf16 is fast on a CPU with
AMX or AVX-512 BF16 and emulated, tens of times slower, on an AVX2-only one.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager

import torch
from torch import nn

from .config import ConfigError, RunConfig

PRECISION_TABLE: dict[str, tuple[torch.dtype | None, bool]] = {
    "fp32": (None, False),
    "bf16": (torch.bfloat16, False),
    "fp16": (torch.float16, True),
}


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; ``cuda`` without a GPU raises ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but this machine has no CUDA device; "
                          "fix: use --device cpu (or auto)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's RNGs (all devices)."""
    random.seed(seed)
    torch.manual_seed(seed)


def _no_sync() -> None:
    return None


# glibc malloc settings for a process that allocates and frees the same large tensors every
# step (mallopt parameter numbers from <malloc.h>). By default glibc serves blocks above a
# threshold (128 KiB, raised on the fly only up to 32 MiB and not after a larger block, such
# as a whole MNIST split, is freed) with fresh mmap()s and unmaps them on free, so every batch
# touches new pages: measured on 2 CPU cores, one 10,000-image evaluation of fastnet took
# 95,000 page faults and 0.25 s instead of 0.08 s, and V2's fp32 step spent 1 ms of its 4.3 ms
# in the kernel. Serving blocks up to 32 MiB from the heap and not trimming it keeps pages mapped.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HOST_ALLOCATOR = {"mmap_threshold": 32 << 20, "trim_threshold": 1 << 30}
_allocator_state: str | None = None


def tune_host_allocator() -> str:
    """Apply the glibc malloc settings above once per process; say what this process uses.

    Called by ``Runtime.from_config`` for every run, so all paths compared in one process (the
    notebook's way included) run under the same allocator. Returns a short description, e.g.
    ``"glibc mmap_threshold=32MiB trim_threshold=1024MiB"``, or ``"default"`` where glibc's
    ``mallopt`` is unavailable (musl, macOS).
    """
    global _allocator_state
    if _allocator_state is None:
        _allocator_state = "default"
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            if (libc.mallopt(_M_MMAP_THRESHOLD, _HOST_ALLOCATOR["mmap_threshold"]) == 1 and
                    libc.mallopt(_M_TRIM_THRESHOLD, _HOST_ALLOCATOR["trim_threshold"]) == 1):
                _allocator_state = ("glibc " + " ".join(f"{k}={v >> 20}MiB" for k, v in _HOST_ALLOCATOR.items()))
        except (OSError, AttributeError):
            pass
    return _allocator_state


def host_allocator() -> str:
    """What ``tune_host_allocator`` set in this process, or ``"default"`` when it has not run."""
    return _allocator_state or "default"


@dataclass(frozen=True)
class Runtime:
    """Concrete device-side choices for one run (``auto`` settings already resolved)."""

    device: torch.device
    precision: str
    compile_mode: str
    channels_last: bool
    cuda_graph: bool = False
    auto_reason: str = ""  # what the automatic choices resolved to and why ("" when none were automatic)

    @classmethod
    def from_config(cls, cfg: RunConfig, workload: str = "train") -> Runtime:
        """Resolve ``cfg`` on this machine. ``precision="auto"`` and ``channels_last=None`` are
        measured with ``resolve_auto`` (for ``workload`` "train" or "inference", at
        ``cfg.batch_size``); impossible combinations raise ConfigError before anything runs."""
        device = cls.check(cfg)
        tune_host_allocator()
        choice = resolve_auto(cfg.model, device, cfg.precision, cfg.channels_last, cfg.loader, cfg.batch_size,
                              workload)
        return cls(device, choice.precision, cfg.compile, choice.channels_last, cfg.cuda_graph, choice.reason)

    @staticmethod
    def check(cfg: RunConfig) -> torch.device:
        """The config's device, once it is known to be able to run the config (no measuring):
        ConfigError for a missing GPU, fp16 or a CUDA graph on the CPU."""
        device = resolve_device(cfg.device)
        if cfg.precision == "fp16" and device.type != "cuda":
            raise ConfigError("fp16 (autocast + GradScaler) runs on CUDA only; "
                              "fix: use --precision bf16, fp32 or auto on the CPU")
        if cfg.cuda_graph and device.type != "cuda":
            raise ConfigError("--cuda-graph needs a CUDA device; fix: drop it on the CPU")
        return device

    def describe(self) -> dict[str, Any]:
        """What the run used, for result rows: device, precision, memory format, and why (auto)."""
        return {"device": str(self.device), "precision": self.precision, "channels_last": self.channels_last,
                "auto_reason": self.auto_reason}

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def synchronize(self) -> Callable[[], None]:
        """Wait for queued device work; a no-op on the CPU, where work is synchronous."""
        return torch.cuda.synchronize if self.device.type == "cuda" else _no_sync

    def autocast(self) -> ContextManager:
        """The autocast context for this precision (a null context for fp32)."""
        dtype, _ = PRECISION_TABLE[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        # The autocast weight cast cache must be off inside CUDA-graph capture.
        return torch.autocast(device_type=self.device.type, dtype=dtype, cache_enabled=not self.cuda_graph)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only where the precision needs one (fp16)."""
        _, scaled = PRECISION_TABLE[self.precision]
        return torch.amp.GradScaler(self.device.type, enabled=scaled)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Move the model to the device and memory format; compile it if asked."""
        model = model.to(self.device, memory_format=self.memory_format)
        if self.compile_mode != "none":
            model = torch.compile(model, mode=self.compile_mode)
        return model

    def prepare_inference(self, model: nn.Module, weights_bf16: bool = False, freeze: bool = False) -> nn.Module:
        """An eval-mode model for inference: device, memory format, optionally bf16 weights, compiled
        if asked, with inductor freezing (weights folded into constants) when ``freeze``."""
        model = model.eval().to(self.device, memory_format=self.memory_format)
        if weights_bf16:
            model = model.to(torch.bfloat16)
        if self.compile_mode == "none":
            return model
        if freeze:  # torch.compile takes a mode or inductor options, not both
            if self.compile_mode != "default":
                raise ConfigError("inductor freezing is applied with compile mode 'default' only")
            return torch.compile(model, options={"freezing": True})
        return torch.compile(model, mode=self.compile_mode)

    def images_to_device(self, x: torch.Tensor) -> torch.Tensor:
        """Move images to the device (non-blocking) in the run's memory format."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Move a batch (images, labels) to the device, images in the run's memory format."""
        return self.images_to_device(x), y.to(self.device, non_blocking=True)


    def capture(self, fn: Callable[..., Any], *example: torch.Tensor, warmup: int = 3) -> Callable[..., Any]:
        """Capture ``fn(*inputs)`` in one CUDA graph; return a replay function with the same call.

        ``fn`` runs ``warmup`` times on ``example`` on a side stream first (CUDA needs this
        before capture; for a training step these are real optimiser steps on the first batch).
        The replay copies its inputs into the static buffers and returns the static outputs,
        which the next replay overwrites: consume them before calling again. Inputs must have
        the example's shapes.
        """
        if self.device.type != "cuda":
            raise ConfigError("CUDA-graph capture needs a CUDA device")
        static = [t.clone() for t in example]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = fn(*static)

        def replay(*inputs: torch.Tensor) -> Any:
            for buffer, value in zip(static, inputs, strict=True):
                buffer.copy_(value, non_blocking=True)
            graph.replay()
            return outputs

        return replay


_PEAK_CACHE: dict[tuple[str, str], tuple[float, int]] = {}
PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PEAK_CALL_SECONDS = 0.25  # the matmul is shrunk until one call takes about this long at most
PEAK_SECONDS = 2.0  # timed calls stop after this long (at least 3 are timed)


def matmul_peak_gflops(device: torch.device, precision: str) -> float:
    """Measured matmul throughput of ``device`` in ``precision`` (GFLOP/s): the roofline's ceiling.

    A square matmul (1024 on the CPU, 8192 on CUDA) is timed up to 10 times after 3 warm-ups,
    device synchronised, and the best time is kept: the peak this device reaches in practice, not
    its datasheet figure. Where a 256-wide call shows that the full size would take longer than
    ``PEAK_CALL_SECONDS`` per call (a dtype emulated in software: bf16 on an AVX2-only CPU ran at
    0.3 GFLOP/s), the size is halved until it would not, so the probe stays within seconds.
    Probed once per process per (device, precision); ``measured_peaks`` lists the results.
    """
    key = (str(device), precision)
    if key not in _PEAK_CACHE:
        dtype = PEAK_DTYPES[precision]
        sync = torch.cuda.synchronize if device.type == "cuda" else _no_sync

        def call_seconds(n: int, warmup: int, timed: int) -> float:
            a = torch.randn(n, n, device=device).to(dtype)
            b = torch.randn(n, n, device=device).to(dtype)
            best, spent = float("inf"), 0.0
            for i in range(warmup + timed):
                sync()
                start = time.perf_counter()
                a @ b
                sync()
                elapsed = time.perf_counter() - start
                if i >= warmup:
                    best, spent = min(best, elapsed), spent + elapsed
                    if i >= warmup + 2 and spent > PEAK_SECONDS:
                        break
            return best

        n = 8192 if device.type == "cuda" else 1024
        small = 256
        rate = 2 * small**3 / call_seconds(small, warmup=1, timed=1)
        while n > small and 2 * n**3 / rate > PEAK_CALL_SECONDS:
            n //= 2
        _PEAK_CACHE[key] = (2 * n**3 / call_seconds(n, warmup=3, timed=10) / 1e9, n)
    return _PEAK_CACHE[key][0]


def measured_peaks() -> dict[str, float]:
    """The peaks probed so far in this process, as ``{"cpu/fp32": GFLOP/s, ...}``."""
    return {f"{device}/{precision}": value for (device, precision), (value, _) in sorted(_PEAK_CACHE.items())}


def measured_peak_sizes() -> dict[str, int]:
    """The matmul size behind each peak in ``measured_peaks`` (smaller where the dtype is emulated)."""
    return {f"{device}/{precision}": n for (device, precision), (_, n) in sorted(_PEAK_CACHE.items())}


def peak_precisions(device: torch.device) -> tuple[str, ...]:
    """The precisions whose matmul peak describes ``device``: fp32 and bf16, and fp16 on CUDA."""
    return ("fp32", "bf16", "fp16") if device.type == "cuda" else ("fp32", "bf16")


def peak_memory(fn: Callable[[], Any], device: torch.device) -> dict[str, float | None]:
    """Run ``fn`` once and report its peak memory in MiB, in a pass of its own.

    CUDA: ``max_memory_allocated`` and ``max_memory_reserved`` after ``reset_peak_memory_stats``.
    CPU: the process's peak resident set during the call (Linux VmHWM, reset through
    /proc/self/clear_refs) and its growth over the resident set before the call (0 when the call
    reuses memory the allocator already holds); None where that is unavailable.
    """
    mib = 1024 * 1024
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize()
        return {"peak_allocated_mib": torch.cuda.max_memory_allocated(device) / mib,
                "peak_reserved_mib": torch.cuda.max_memory_reserved(device) / mib,
                "peak_rss_mib": None, "peak_rss_growth_mib": None}
    before = _proc_status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        before = None
    fn()
    after = _proc_status_kib("VmHWM")
    growth = None if before is None or after is None else max(0.0, (after - before) / 1024)
    return {"peak_allocated_mib": None, "peak_reserved_mib": None,
            "peak_rss_mib": None if before is None or after is None else after / 1024, "peak_rss_growth_mib": growth}


def _proc_status_kib(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


# The step-time probe behind the automatic choices: a few real steps of the model on random
# inputs, device synchronised. It stops timing after PROBE_SECONDS per candidate (with at least
# PROBE_MIN_STEPS timed), so a precision that is emulated on this CPU (an AVX2-only EPYC ran a bf16
# matmul at 0.3 GFLOP/s against 121 in fp32) costs about a second to rule out, not minutes. Up to
# 30 steps for fast models: with 8, v2's bf16 gain on the AVX-512 EPYC (1.27× over whole epochs)
# read 1.13–1.28× in six probes and once fell under BF16_MIN_GAIN; with 30, 1.17–1.28×.
PROBE_WARMUP_STEPS = 3
PROBE_MAX_STEPS = 30
PROBE_MIN_STEPS = 3
PROBE_SECONDS = 0.25
# bf16 is chosen only when its step is at least this much faster than fp32's: bf16 autocast
# costs accuracy on these models (in the quick suite on the AMX Xeon, 100 SGD steps in bf16 ended
# 0.04 points below fp32 for v2 and 0.44 below for fastnet), so a gain within probe noise
# does not pay for it.
BF16_MIN_GAIN = 1.10
WORKLOADS = ("train", "inference")
ProbeKey = tuple[str, str, str, bool, int, str]  # model, device, precision, channels_last, batch, workload
_STEP_CACHE: dict[ProbeKey, float] = {}  # see probe_steps


def _stepper(key: ProbeKey) -> tuple[Callable[[], None], Runtime]:
    """One step of the probe for ``key``, and the runtime it runs in."""
    from .models import IMAGE_SHAPE, get_model

    model_name, device_name, precision, channels_last, batch_size, workload = key
    rt = Runtime(torch.device(device_name), precision, "none", channels_last)
    model = rt.prepare_model(get_model(model_name))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = rt.to_device(torch.rand(batch_size, *IMAGE_SHAPE), torch.randint(0, 10, (batch_size,)))
    if workload == "inference":
        model.eval()

    def step() -> None:
        if workload == "inference":
            with torch.inference_mode(), rt.autocast():
                model(x)
            return
        with rt.autocast():
            loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, rt


def probe_steps(keys: list[ProbeKey]) -> dict[ProbeKey, float]:
    """Median seconds of one step for each probe key, measured interleaved (cached per process).

    ``workload`` "train": forward under autocast, cross-entropy, backward and an SGD update;
    "inference": one forward pass under ``torch.inference_mode``. Random inputs of ``batch``
    images in the given memory format. Each candidate gets ``PROBE_WARMUP_STEPS`` untimed steps;
    then the candidates take timed steps in turn (A B A B …, so drift hits all of them alike), up
    to ``PROBE_MAX_STEPS`` each, fewer once each has ``PROBE_MIN_STEPS`` and ``PROBE_SECONDS`` have
    passed per candidate. The global RNG state is left as it was.
    """
    todo = [k for k in dict.fromkeys(keys) if k not in _STEP_CACHE]
    if todo:
        devices = sorted({k[1] for k in todo if k[1].startswith("cuda")})
        with torch.random.fork_rng(devices=devices):
            steppers = {k: _stepper(k) for k in todo}
            for step, _ in steppers.values():
                for _ in range(PROBE_WARMUP_STEPS):
                    step()
            times: dict[ProbeKey, list[float]] = {k: [] for k in todo}
            spent = 0.0
            for i in range(PROBE_MAX_STEPS):
                if i >= PROBE_MIN_STEPS and spent >= PROBE_SECONDS * len(todo):
                    break
                for k, (step, rt) in steppers.items():
                    with Timer(rt.synchronize) as timer:
                        step()
                    times[k].append(timer.seconds)
                    spent += timer.seconds
        for k, values in times.items():
            _STEP_CACHE[k] = sorted(values)[len(values) // 2]
    return {k: _STEP_CACHE[k] for k in keys}


def probe_step_seconds(model_name: str, device: torch.device, precision: str, channels_last: bool,
                       batch_size: int, workload: str = "train") -> float:
    """Median seconds of one step of ``model_name`` here (``probe_steps`` for one candidate)."""
    key = (model_name, str(device), precision, channels_last, batch_size, workload)
    return probe_steps([key])[key]


@dataclass(frozen=True)
class AutoChoice:
    """What ``resolve_auto`` picked, and why (empty ``reason`` when nothing was automatic)."""

    precision: str
    channels_last: bool
    reason: str = ""
    step_ms: tuple[tuple[str, float], ...] = ()  # ("bf16/NHWC", median probe step in ms), ...


def _format_name(channels_last: bool) -> str:
    return "NHWC" if channels_last else "NCHW"


def resolve_auto(model_name: str, device: torch.device, precision: str, channels_last: bool | None,
                 loader: str, batch_size: int, workload: str = "train") -> AutoChoice:
    """Resolve ``precision="auto"`` and ``channels_last=None`` for this model on this device by measuring.

    Precision auto: the faster of fp32 and bf16 by ``probe_step_seconds`` (each in its faster
    memory format when the format is auto too); bf16 must be ``BF16_MIN_GAIN`` times faster to be
    picked. Memory format auto: NCHW with the notebook's ``seed`` loader, else the faster of NCHW and
    NHWC in the chosen precision. Explicit values are kept and not measured.
    """
    if workload not in WORKLOADS:
        raise ConfigError(f"unknown workload {workload!r}; choose one of: {', '.join(WORKLOADS)}")
    precisions = ["fp32", "bf16"] if precision == "auto" else [precision]
    formats = [channels_last] if channels_last is not None else ([False] if loader == "seed" else [False, True])
    if len(precisions) == 1 and len(formats) == 1:
        return AutoChoice(precisions[0], bool(formats[0]))
    keys = {(p, f): (model_name, str(device), p, f, batch_size, workload) for p in precisions for f in formats}
    measured = probe_steps(list(keys.values()))
    times = {combo: measured[key] for combo, key in keys.items()}
    best = {p: min(formats, key=lambda f, p=p: times[p, f]) for p in precisions}
    what = "training step" if workload == "train" else "forward pass"
    reasons = []
    chosen = precisions[0]
    if precision == "auto":
        fp32, bf16 = times["fp32", best["fp32"]], times["bf16", best["bf16"]]
        gain = fp32 / bf16
        chosen = "bf16" if gain >= BF16_MIN_GAIN else "fp32"
        text = (f"precision auto → {chosen}: bf16 {what} {gain:.2f}× the speed of fp32 "
                f"({1e3 * bf16:.2f} vs {1e3 * fp32:.2f} ms, median probe step, batch {batch_size})")
        if chosen == "fp32":
            from .machine import bf16_note

            note = bf16_note(device.type)
            if gain > 1:
                text += f"; bf16 needs ≥ {BF16_MIN_GAIN:.2f}× to be picked, as it costs accuracy"
            elif note:
                text += f"; {note}"
        reasons.append(text)
    fmt = best[chosen]
    if len(formats) > 1:
        reasons.append(f"memory format auto → {_format_name(fmt)} ({1e3 * times[chosen, True]:.2f} ms NHWC vs "
                       f"{1e3 * times[chosen, False]:.2f} ms NCHW)")
    step_ms = tuple((f"{p}/{_format_name(f)}", round(1e3 * t, 4)) for (p, f), t in times.items())
    return AutoChoice(chosen, fmt, "; ".join(reasons), step_ms)


class Timer:
    """Wall-clock timer that synchronises the device before reading the clock at both ends.

        with Timer(rt.synchronize) as t:
            work()
        t.seconds
    """

    def __init__(self, synchronize: Callable[[], None] = _no_sync) -> None:
        self.synchronize = synchronize
        self.seconds = float("nan")

    def __enter__(self) -> Timer:
        self.synchronize()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.synchronize()
        self.seconds = time.perf_counter() - self._start
