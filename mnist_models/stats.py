"""Summary statistics for timings, and the CPU contention indicator.

Every reported time carries n, median and spread (IQR, min, max). Percentiles use linear
interpolation between order statistics (numpy's default), so p99 of fewer than 100 samples
leans on the slowest ones: read it with its n.

Contention: over a timed region we record this process's CPU time and the whole machine's busy
CPU time (Linux /proc/stat). ``process_cpu_util`` (process CPU s ÷ wall s) near the thread
count means our threads ran undisturbed; ``machine_busy_cores`` well above it means other
processes were competing for the cores, and the row is flagged noisy.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

# A row is flagged noisy when others used more than this many cores beside us, or when the
# spread (IQR / median) of its rounds exceeds NOISY_SPREAD.
NOISY_OTHER_CORES = 0.5
NOISY_SPREAD = 0.10


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 ≤ q ≤ 1) with linear interpolation; NaN for no values."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = q * (len(data) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def time_stats(times: Sequence[float]) -> dict[str, float]:
    """n, median, IQR (p75 − p25), min, max and mean of a list of seconds."""
    return {
        "n": len(times),
        "median_s": quantile(times, 0.5),
        "iqr_s": quantile(times, 0.75) - quantile(times, 0.25),
        "min_s": min(times) if times else float("nan"),
        "max_s": max(times) if times else float("nan"),
        "mean_s": statistics.fmean(times) if times else float("nan"),
    }


def latency_ms(times: Sequence[float]) -> dict[str, float]:
    """p50, p90 and p99 of per-call seconds, in milliseconds."""
    return {f"p{p}_ms": 1000.0 * quantile(times, p / 100) for p in (50, 90, 99)}


def _machine_busy_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Contention:
    """Measure process and machine CPU use over a region: ``with Contention() as c: ...``."""

    process_cpu_util: float = float("nan")  # process CPU seconds ÷ wall seconds
    machine_busy_cores: float = float("nan")  # all processes' CPU seconds ÷ wall seconds

    def __enter__(self) -> Contention:
        self._wall, self._cpu, self._busy = time.perf_counter(), time.process_time(), _machine_busy_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        if wall <= 0:
            return
        self.process_cpu_util = (time.process_time() - self._cpu) / wall
        busy = _machine_busy_seconds()
        if busy is not None and self._busy is not None:
            self.machine_busy_cores = (busy - self._busy) / wall

    @property
    def other_cores(self) -> float:
        """Cores' worth of CPU used by other processes during the region."""
        return self.machine_busy_cores - self.process_cpu_util


def is_noisy(stats: dict[str, float], contention: Contention | None) -> bool:
    """Flag a row whose rounds spread widely or that ran beside other busy processes."""
    spread = stats["iqr_s"] / stats["median_s"] if stats.get("median_s") else 0.0
    crowded = contention is not None and contention.other_cores > NOISY_OTHER_CORES
    return bool(spread > NOISY_SPREAD or crowded)
