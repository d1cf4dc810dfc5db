"""Training benchmarks: time per round of training steps, then the variant's test accuracy.

Each case trains with the notebook protocol's hyper-parameters from the same seed; the timed
rounds run through ``benchmark.pedantic`` (warm-up excluded, device synchronised,
iterations=1); compilation/capture time is reported apart; peak memory is measured in a
pass of its own after the accuracy is taken. A non-finite loss fails the case, and its row says
``status: "failed"`` with the round (or epoch) and step and the one-line ``error``. The eager case
also retrains, untimed, from ``suite.BAND_SEEDS``: the spread of those accuracies is the band each
variant is checked against.
When the session's budget cuts a variant's steps per round (and, in proportion, the test images it is
scored on), eager is retrained (untimed) to the same steps and scored on the same images, once per
session (``bench_state.shared``), and the cut case is compared with that instead.
"""

from __future__ import annotations

import math

import pytest

from mnist_models.experiments.plans import needs_reference, plan_train
from mnist_models.experiments.suite import TrainCase, accuracy_band, base_config
from mnist_models.experiments.suite_rows import band_columns, finish_row, train_row
from mnist_models.measure.probes import peak_memory
from mnist_models.measure.timing import run_pedantic
from mnist_models.train.engine import NonFiniteLoss
from mnist_models.variants import BASELINE


def test_train(benchmark, bench_state, train_spec, request):
    model, device, variant, _ = train_spec
    profile = bench_state.profile
    case = TrainCase(variant.apply(base_config(model, device, bench_state.data_root, bench_state.dataset)),
                     profile.train_steps)
    plan_train(bench_state.budget, request.node.nodeid, case, variant, profile)
    benchmark.group = f"train {model} {device}"
    try:
        times, contention = run_pedantic(benchmark, case.run, profile.train_rounds, profile.warmup_rounds)
    except NonFiniteLoss as exc:  # the case fails; its row says so, where (round or epoch, step) and why
        bench_state.train_rows.append({"phase": "train", "model": model, "device": device, "variant": variant.name,
                                       "profile": profile.name, "seed": case.cfg.seed, **exc.row()})
        pytest.fail(str(exc), pytrace=False)
    metrics = case.evaluate()
    if needs_reference(case, variant):
        case.reference = bench_state.shared.eager_reference(model, device, bench_state.data_root, bench_state.dataset,
                                                            case.steps,
                                                            len(case.rows), case.eval_images)
    row = train_row(variant, case, profile, times, metrics)
    row |= {"round_times_s": times, "round_train_loss": [r["train_loss"] for r in case.rows[-len(times):]]}
    if variant.name == BASELINE:  # eager fp32 also trains from other seeds: the accuracy band
        row |= band_columns([row["test_acc_pct"], *accuracy_band(case.cfg, case.steps, len(case.rows),
                                                                  case.eval_images)])
    row = finish_row(row, contention, peak_memory(case.run, case.rt.device))
    benchmark.extra_info.update(row)
    bench_state.train_rows.append(row)
    assert all(math.isfinite(r["train_loss"]) for r in case.rows), "non-finite training loss"
    assert math.isfinite(row["test_loss"])
