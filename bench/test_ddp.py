"""Data-parallel scaling (``--bench-ddp 1,2``): the session's first model trained for the same global steps as
1, 2, … DDP processes, each layout a torchrun job (``experiments/suite_scaling.py``), after every other case.

One timed round of ``benchmark.pedantic`` is the whole measurement (every layout, one after another); the
figures are the ranks' own clocks. The run's ``scaling.csv`` holds one row per layout, and its report the
table and figure. Without ``--bench-ddp`` nothing here is collected.
"""

from __future__ import annotations

import math

from mnist_models.experiments.suite_scaling import scaling_rows
from mnist_models.measure.timing import run_pedantic


def test_ddp_scaling(benchmark, bench_state, ddp_device):
    spec = bench_state.ddp_spec(ddp_device)
    rows = []
    benchmark.group = f"ddp scaling {spec.cfg.model} {ddp_device}"
    run_pedantic(benchmark, lambda: rows.extend(scaling_rows(spec, bench_state.profile.name)), rounds=1,
                 warmup_rounds=0)
    bench_state.scaling_rows.extend(rows)
    assert rows and all(math.isfinite(r["img_per_s"]) and math.isfinite(r["test_acc_pct"]) for r in rows)
