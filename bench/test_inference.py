"""Inference benchmarks: throughput and latency percentiles per batch size.

One round is one forward pass of one batch of real test images under
``torch.inference_mode()``, the device synchronised before the clock stops; warm-up and
compilation stay outside the timed rounds (compile time is reported apart). The model carries
weights trained for one epoch; after timing, its predictions on the whole test set are compared
with eager fp32's. Peak memory is measured in a pass of its own.
"""

from __future__ import annotations

from mnist_models.runtime import peak_memory
from mnist_models.suite import InferenceCase, base_config, finish_row, inference_row, run_pedantic


def test_inference(benchmark, bench_state, inference_spec):
    model, device, variant, batch_size = inference_spec
    profile = bench_state.profile
    case = InferenceCase(variant.apply(base_config(model, device, bench_state.data_root)), batch_size, variant)
    benchmark.group = f"inference {model} {device} batch {batch_size}"
    times, contention = run_pedantic(benchmark, case.run, profile.inference_rounds, profile.warmup_rounds)
    row = finish_row(inference_row(variant, case, profile, times), contention, peak_memory(case.run, case.rt.device))
    benchmark.extra_info.update(row)
    bench_state.inference_rows.append(row)
    assert row["img_per_s"] > 0 and 0 <= row["agree_with_eager_pct"] <= 100
