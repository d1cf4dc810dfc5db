"""Device, precision, compilation, memory format, synchronisation and timing.

This is the only module that branches on the device. ``Runtime.from_config(cfg)`` resolves a
``RunConfig`` into concrete objects (a ``torch.device``, an autocast context factory, a
GradScaler, a synchronize function); the engine's loops use them without asking which device
they run on.

Precision table (autocast dtype, GradScaler on?):

    fp32 → (none, off)      bf16 → (bfloat16, off)      fp16 → (float16, on; CUDA only)
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
    """Concrete device-side choices for one run."""

    device: torch.device
    precision: str
    compile_mode: str
    channels_last: bool
    cuda_graph: bool = False

    @classmethod
    def from_config(cls, cfg: RunConfig) -> Runtime:
        device = resolve_device(cfg.device)
        tune_host_allocator()
        if cfg.precision == "fp16" and device.type != "cuda":
            raise ConfigError("fp16 (autocast + GradScaler) runs on CUDA only; "
                              "fix: use --precision bf16 or fp32 on the CPU")
        if cfg.cuda_graph and device.type != "cuda":
            raise ConfigError("--cuda-graph needs a CUDA device; fix: drop it on the CPU")
        channels_last = cfg.channels_last
        if channels_last is None:  # auto: the notebook's NCHW for its loader, else measured
            channels_last = cfg.loader != "seed" and faster_in_channels_last(cfg.model, device, cfg.precision,
                                                                             cfg.batch_size)
        return cls(device, cfg.precision, cfg.compile, channels_last, cfg.cuda_graph)

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


_PEAK_CACHE: dict[tuple[str, str], float] = {}
PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def matmul_peak_gflops(device: torch.device, precision: str) -> float:
    """Measured matmul throughput of ``device`` in ``precision`` (GFLOP/s): the roofline's ceiling.

    A square matmul (1024 on the CPU, 8192 on CUDA) is timed 10 times after 3 warm-ups, device
    synchronised, and the best time is kept: the peak this device reaches in practice, not its
    datasheet figure. Probed once per process per (device, precision).
    """
    key = (str(device), precision)
    if key not in _PEAK_CACHE:
        n = 8192 if device.type == "cuda" else 1024
        dtype = PEAK_DTYPES[precision]
        sync = torch.cuda.synchronize if device.type == "cuda" else _no_sync
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        best = float("inf")
        for i in range(13):
            sync()
            start = time.perf_counter()
            a @ b
            sync()
            if i >= 3:
                best = min(best, time.perf_counter() - start)
        _PEAK_CACHE[key] = 2 * n**3 / best / 1e9
    return _PEAK_CACHE[key]


def measured_peaks() -> dict[str, float]:
    """The peaks probed so far in this process, as ``{"cpu/fp32": GFLOP/s, ...}``."""
    return {f"{device}/{precision}": value for (device, precision), value in sorted(_PEAK_CACHE.items())}


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


_FORMAT_CACHE: dict[tuple[str, str, str, int], bool] = {}


def faster_in_channels_last(model_name: str, device: torch.device, precision: str, batch_size: int) -> bool:
    """Whether a training step of ``model_name`` runs faster in NHWC than NCHW here (measured).

    Each format gets 3 warm-up and 8 timed SGD steps on random inputs, device synchronised; the
    median step decides. Cached per process; leaves the global RNG state untouched.
    """
    key = (model_name, str(device), precision, batch_size)
    if key not in _FORMAT_CACHE:
        from .models import IMAGE_SHAPE, get_model

        medians = {}
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for channels_last in (False, True):
                rt = Runtime(device, precision, "none", channels_last)
                model = rt.prepare_model(get_model(model_name))
                optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
                x, y = rt.to_device(torch.rand(batch_size, *IMAGE_SHAPE), torch.randint(0, 10, (batch_size,)))
                times = []
                for i in range(11):
                    with Timer(rt.synchronize) as timer, rt.autocast():
                        loss = nn.functional.cross_entropy(model(x), y)
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
                    if i >= 3:
                        times.append(timer.seconds)
                medians[channels_last] = sorted(times)[len(times) // 2]
        _FORMAT_CACHE[key] = medians[True] < medians[False]
    return _FORMAT_CACHE[key]


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
