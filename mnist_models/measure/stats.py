"""Summary statistics for timings (n, median, spread, percentiles), over seeds or rounds (mean ± std with
Student's t confidence interval: ``mean_ci``) and the noisy flag.

Every reported time carries n, median and spread (IQR, min, max). Percentiles use linear
interpolation between order statistics (numpy's default), so p99 of fewer than 100 samples
leans on the slowest ones: read it with its n.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from .between_runs import t_quantile
from .timing import Contention

# A row is flagged noisy when others used more than this many cores beside us, or when the
# spread (IQR / median) of its rounds exceeds NOISY_SPREAD.
NOISY_OTHER_CORES = 0.5
NOISY_SPREAD = 0.10


def mean_ci(values: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """n, mean, sample standard deviation and the ``level`` confidence interval of the mean (Student's t at
    n − 1 degrees of freedom) of one figure over seeds (or a case's timed rounds); one value has no spread (std
    and interval NaN)."""
    n, mean = len(values), statistics.fmean(values)
    if n < 2:
        return {"n": n, "mean": mean, "std": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    std = statistics.stdev(values)
    half = t_quantile((1.0 - level) / 2.0, n - 1) * std / n ** 0.5
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


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


def is_noisy(stats: dict[str, float], contention: Contention | None) -> bool:
    """Flag a row whose rounds spread widely or that ran beside other busy processes."""
    spread = stats["iqr_s"] / stats["median_s"] if stats.get("median_s") else 0.0
    crowded = contention is not None and contention.other_cores > NOISY_OTHER_CORES
    return bool(spread > NOISY_SPREAD or crowded)
