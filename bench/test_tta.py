"""Time-to-accuracy benchmark: ``fastnet`` trained to the profile's target, one fresh process per seed.

Each timed round of ``benchmark.pedantic`` (no warm-up: a cold start is the point) is one seed's
whole process, as ``mnist-bench tta`` runs it; the rows keep the in-process clocks (from process
start and from the first step, to the evaluation that reached the target) and the start-up
phases. The precision and memory format are resolved once here, by measuring (``time_to_accuracy.resolve``),
as the command does. The run's ``tta.csv`` holds one row per seed and ``summary.md`` the
MLPerf-style figures. When the session's budget needs it, fewer seeds run (at least 3).
"""

from __future__ import annotations

import math

from mnist_models.experiments.budget import cut_reason, pick
from mnist_models.experiments.plans import TTA_MIN_SEEDS, tta_seed_estimate_s
from mnist_models.experiments.time_to_accuracy import TTA_MODEL, recipe, resolve, run_in_process
from mnist_models.measure.timing import run_pedantic


def test_time_to_accuracy(benchmark, bench_state, tta_device, request):
    profile = bench_state.profile
    budget = bench_state.budget
    base, auto = resolve(recipe(TTA_MODEL, target_pct=profile.tta_target_pct, device=tta_device,
                                data_root=bench_state.data_root, dataset=bench_state.dataset))
    nominal = len(profile.tta_seeds)
    seed_s = tta_seed_estimate_s(tta_device, bench_state.startup_s, base.precision, base.channels_last)
    options = list(range(nominal, min(nominal, TTA_MIN_SEEDS) - 1, -1))
    count = pick(options, lambda n: n * seed_s, budget.allowance(request.node.nodeid))
    cut = ""
    if count < nominal:
        cut = cut_reason("seeds", nominal, count, seed_s, None, "", budget)
        budget.cut(request.node.nodeid, cut)
    seeds = iter(profile.tta_seeds[:count])
    rows = []

    def one_seed() -> None:
        rows.append({**run_in_process(base.with_(seed=next(seeds))), **auto})

    benchmark.group = f"time to accuracy {TTA_MODEL} {tta_device}"
    run_pedantic(benchmark, one_seed, rounds=count, warmup_rounds=0)
    bench_state.tta_rows.extend({**row, "profile": profile.name, "cut": cut} for row in rows)
    assert rows and all(math.isfinite(r["from_start_s"]) for r in rows if r["reached"])
