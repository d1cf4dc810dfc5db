"""Measurement probes: the matmul peak per precision (the roofline's ceiling), the memory bandwidth (the
bandwidth roofline's), peak memory in a pass of its own, and interleaved step timing of candidates (behind
``--precision auto``).

A new probe goes here: a function that measures one thing on this machine, caches it per process
where it is costly, and says in its docstring how it was taken.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import torch

from ..host.device import PRECISIONS, synchronizer

K = TypeVar("K", bound=Hashable)

_PEAK_CACHE: dict[tuple[str, str], tuple[float, int]] = {}
PEAK_CALL_SECONDS = 0.25  # the matmul is shrunk until one call takes about this long at most
PEAK_SECONDS = 2.0  # timed calls stop after this long (at least 3 are timed)


def _best_seconds(call: Callable[[], Any], sync: Callable[[], None], warmup: int, timed: int) -> float:
    """The fastest of up to ``timed`` calls after ``warmup`` untimed ones, device synchronised around each;
    the timed calls stop once at least 3 have run and ``PEAK_SECONDS`` have passed."""
    best, spent = float("inf"), 0.0
    for i in range(warmup + timed):
        sync()
        start = time.perf_counter()
        call()
        sync()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            best, spent = min(best, elapsed), spent + elapsed
            if i >= warmup + 2 and spent > PEAK_SECONDS:
                break
    return best


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
        dtype = PRECISIONS[precision].peak
        sync = synchronizer(device)

        def call_seconds(n: int, warmup: int, timed: int) -> float:
            a = torch.randn(n, n, device=device).to(dtype)
            b = torch.randn(n, n, device=device).to(dtype)
            return _best_seconds(lambda: a @ b, sync, warmup, timed)

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


_BANDWIDTH_CACHE: dict[str, float] = {}
BANDWIDTH_MIB = {"cpu": 256, "cuda": 2048}  # copied per call: far beyond the last-level cache


def memory_bandwidth_gbs(device: torch.device) -> float:
    """Measured memory bandwidth of ``device`` (GB/s, 10⁹ bytes): the bandwidth roofline's ceiling.

    One float32 buffer (256 MiB on the CPU, 2 GiB on CUDA) is copied into another, 2 untimed and up to
    10 timed calls, device synchronised, the best time kept; a copy reads and writes every byte, so
    twice the buffer moves per call. What this device's copy kernel reaches in practice, not its
    datasheet figure. Probed once per process per device; ``measured_bandwidths`` lists the results.
    """
    key = str(device)
    if key not in _BANDWIDTH_CACHE:
        sync = synchronizer(device)
        n = BANDWIDTH_MIB[device.type] * 2**20 // 4
        src, dst = torch.ones(n, device=device), torch.empty(n, device=device)
        _BANDWIDTH_CACHE[key] = 2 * n * 4 / _best_seconds(lambda: dst.copy_(src), sync, 2, 10) / 1e9
    return _BANDWIDTH_CACHE[key]


def measured_bandwidths() -> dict[str, float]:
    """The bandwidths probed so far in this process, as ``{"cpu": GB/s, ...}``."""
    return dict(sorted(_BANDWIDTH_CACHE.items()))


def bandwidth_roofline(precision: str, device: torch.device, activations_per_image: int,
                       img_per_s: float) -> dict[str, float]:
    """Activation traffic per image in bytes (``models.flops.activation_elements`` × the precision's element
    size: 2 for bf16/fp16, 4 for fp32), the GB/s it implies at ``img_per_s``, and its share of the device's
    measured bandwidth: beside ``roofline``'s share of the matmul peak, it says how far a memory-bound
    forward pass is from its floor."""
    per_image = activations_per_image * (4 if precision == "fp32" else 2)
    achieved = per_image * img_per_s / 1e9
    peak = memory_bandwidth_gbs(device)
    return {"bytes_per_image": per_image, "gb_per_s": achieved, "peak_gb_per_s": peak,
            "pct_of_bandwidth": 100.0 * achieved / peak}


def roofline(precision: str, device: torch.device, flops_per_image: int, img_per_s: float) -> dict[str, float]:
    """Achieved GFLOP/s and its fraction of the device's measured matmul peak in ``precision``."""
    achieved = flops_per_image * img_per_s / 1e9
    peak = matmul_peak_gflops(device, precision)
    return {"flops_per_image": flops_per_image, "gflop_per_s": achieved, "peak_gflop_per_s": peak,
            "pct_of_peak": 100.0 * achieved / peak}


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
