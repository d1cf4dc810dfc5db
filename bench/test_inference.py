"""Inference benchmarks: throughput and latency percentiles per batch size.

One round is one forward pass of one batch of real test images under
``torch.inference_mode()``, the device synchronised before the clock stops; warm-up and
compilation stay outside the timed rounds (compile time is reported apart). The model carries
weights trained for one epoch (fewer steps when the budget cuts them); after timing, its
predictions on the test set are compared with eager fp32's. Peak memory is measured in a pass of
its own. When the session's budget needs it, a case runs fewer rounds and compares fewer images.
"""

from __future__ import annotations

import time

from mnist_models.experiments.plans import plan_inference, plan_weight_steps, weights_task
from mnist_models.experiments.quality import quality_rows
from mnist_models.experiments.suite import InferenceCase, base_config
from mnist_models.experiments.suite_rows import finish_row, inference_row
from mnist_models.measure.probes import peak_memory
from mnist_models.measure.timing import run_pedantic
from mnist_models.variants import BASELINE


def test_inference(benchmark, bench_state, inference_spec, request):
    model, device, variant, batch_size = inference_spec
    profile = bench_state.profile
    budget, shared = bench_state.budget, bench_state.shared
    steps = plan_weight_steps(budget, shared, model, device)
    if weights_task(model, device) in budget.weights:  # the first case of this model trains its weights
        start = time.perf_counter()
        shared.trained_state(model, device, bench_state.data_root, bench_state.dataset, steps)
        budget.finish_task(weights_task(model, device), time.perf_counter() - start)
    cfg = variant.apply(base_config(model, device, bench_state.data_root, bench_state.dataset))
    case = InferenceCase(cfg, batch_size, weight_steps=steps, shared=shared)
    rounds = plan_inference(budget, request.node.nodeid, case, variant, profile)
    benchmark.group = f"inference {model} {device} batch {batch_size}"
    times, contention = run_pedantic(benchmark, case.run, rounds, profile.warmup_rounds)
    row = finish_row(inference_row(variant, case, profile, times), contention, peak_memory(case.run, case.rt.device))
    row["round_times_s"] = times
    if variant.name == BASELINE and (model, device) not in bench_state.quality:  # for the run's report
        bench_state.quality[model, device] = quality_rows(shared, model, device, bench_state.data_root,
                                                          bench_state.dataset, steps)
    benchmark.extra_info.update(row)
    bench_state.inference_rows.append(row)
    assert row["img_per_s"] > 0 and 0 <= row["agree_with_eager_pct"] <= 100
