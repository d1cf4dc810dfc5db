"""Timing statistics and the contention indicator."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from mnist_models.measure.stats import is_noisy, latency_ms, quantile, time_stats
from mnist_models.measure.timing import Contention


@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 0.9, 0.99, 1.0])
def test_quantile_matches_numpy_linear(q):
    values = [0.3, 0.1, 0.7, 0.2, 0.9, 0.4, 0.35]
    assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))


def test_time_stats_fields():
    stats = time_stats([4.0, 1.0, 3.0, 2.0])
    assert stats == {"n": 4, "median_s": 2.5, "iqr_s": pytest.approx(1.5), "min_s": 1.0, "max_s": 4.0,
                     "mean_s": 2.5}
    assert math.isnan(time_stats([])["median_s"])


def test_latency_percentiles_in_ms():
    lat = latency_ms([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert lat["p50_ms"] == pytest.approx(50.5)
    assert lat["p90_ms"] == pytest.approx(90.1)
    assert lat["p99_ms"] == pytest.approx(99.01)


def test_contention_measures_our_cpu_use():
    with Contention() as busy:
        end = time.perf_counter() + 0.2
        while time.perf_counter() < end:
            pass
    with Contention() as idle:
        time.sleep(0.2)
    assert busy.process_cpu_util > 0.5  # one Python thread spinning ≈ 1 core
    assert idle.process_cpu_util < 0.2
    assert busy.machine_busy_cores >= 0.0


def test_noisy_flag_from_spread_and_from_other_processes():
    tight = time_stats([1.0, 1.01, 0.99, 1.0])
    wide = time_stats([1.0, 1.5, 0.7, 1.2])
    calm, crowded = Contention(2.0, 2.1), Contention(2.0, 3.0)
    assert not is_noisy(tight, calm)
    assert is_noisy(wide, calm)
    assert is_noisy(tight, crowded)
