"""Timing statistics and the contention indicator."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from mnist_models.measure.stats import is_noisy, latency_ms, mean_ci, quantile, time_stats
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
    """Checked against the clocks read around the same region, so that it holds on a loaded machine too
    (where a spinning thread gets less than its core), and it tells spinning from sleeping."""
    with Contention() as busy:
        wall, cpu = time.perf_counter(), time.process_time()
        while time.process_time() - cpu < 0.2:  # 0.2 s of CPU, however long a loaded machine takes to give it
            pass
        used = (time.process_time() - cpu) / (time.perf_counter() - wall)
    with Contention() as idle:
        time.sleep(0.2)
    assert busy.process_cpu_util == pytest.approx(used, rel=0.2)  # ≈ 1 core on an idle machine
    assert idle.process_cpu_util < min(0.2, busy.process_cpu_util / 2)
    # The machine's busy cores include ours (/proc/stat counts in 10 ms ticks: a loose bound).
    assert busy.machine_busy_cores >= busy.process_cpu_util / 2


def test_noisy_flag_from_spread_and_from_other_processes():
    tight = time_stats([1.0, 1.01, 0.99, 1.0])
    wide = time_stats([1.0, 1.5, 0.7, 1.2])
    calm, crowded = Contention(2.0, 2.1), Contention(2.0, 3.0)
    assert not is_noisy(tight, calm)
    assert is_noisy(wide, calm)
    assert is_noisy(tight, crowded)


def test_mean_ci_is_mean_sample_std_and_a_student_t_interval():
    five = mean_ci([99.1, 99.3, 99.2, 99.0, 99.4])
    assert five["n"] == 5 and five["mean"] == pytest.approx(99.2) and five["std"] == pytest.approx(0.158114, rel=1e-5)
    half = 2.776445 * 0.158114 / 5 ** 0.5  # t(0.975, 4 dof)
    assert five["ci_low"] == pytest.approx(99.2 - half, rel=1e-6) and five["ci_high"] == pytest.approx(99.2 + half)
    one = mean_ci([98.0])
    assert one["mean"] == 98.0 and math.isnan(one["std"]) and math.isnan(one["ci_low"])
