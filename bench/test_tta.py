"""Time-to-accuracy benchmark: ``fastnet`` trained to the profile's target, one fresh process per seed.

Each timed round of ``benchmark.pedantic`` (no warm-up: a cold start is the point) is one seed's
whole process, as ``mnist-bench tta`` runs it; the rows keep the in-process clocks (from process
start and from the first step, to the evaluation that reached the target). The run's
``tta.csv`` holds one row per seed and ``summary.md`` the MLPerf-style figures.
"""

from __future__ import annotations

import math
from dataclasses import replace

from mnist_models.suite import TTA_MODEL, run_pedantic
from mnist_models.tta import TTASettings, run_in_process


def test_time_to_accuracy(benchmark, bench_state, tta_device):
    profile = bench_state.profile
    base = TTASettings(model=TTA_MODEL, target_pct=profile.tta_target_pct, device=tta_device,
                       data_root=bench_state.data_root)
    seeds = iter(profile.tta_seeds)
    rows = []

    def one_seed() -> None:
        rows.append(run_in_process(replace(base, seed=next(seeds))))

    benchmark.group = f"time to accuracy {TTA_MODEL} {tta_device}"
    run_pedantic(benchmark, one_seed, rounds=len(profile.tta_seeds), warmup_rounds=0)
    bench_state.tta_rows.extend({**row, "profile": profile.name} for row in rows)
    assert rows and all(math.isfinite(r["from_start_s"]) for r in rows if r["reached"])
