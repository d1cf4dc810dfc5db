"""The tidy rows of the benchmark suite's cases (``suite.TrainCase``, ``suite.InferenceCase``): what each
case measured, what it ran in (auto settings resolved, what the budget cut), and the software and
hardware it ran on, so that each row stands on its own in ``cases.jsonl`` and the run's tables.
"""

from __future__ import annotations

from typing import Any

from ..data import dataset_record
from ..measure.probes import bandwidth_roofline, roofline
from ..measure.stats import is_noisy, latency_ms, mean_ci, time_stats
from ..measure.timing import Contention
from ..models import model_flops, model_source
from ..results.provenance import environment
from ..train.runtime import Runtime
from ..variants import Variant
from .suite import InferenceCase, Profile, TrainCase


def train_row(variant: Variant, case: TrainCase, profile: Profile, times: list[float],
              metrics: dict[str, float]) -> dict[str, Any]:
    """The tidy row of a training case (times from the timed rounds, warm-up excluded)."""
    images = case.rows[-1]["train_images"]
    stats = time_stats(times)
    spread = mean_ci(times)  # the rounds' mean round time: sample std and Student's t 95% interval
    flops = model_flops(case.cfg.model, case.cfg.model_args)["training"]
    return {
        "phase": "train", "model": case.cfg.model, "dataset": case.cfg.dataset, **dataset_record(case.cfg.dataset),
        **model_source(case.cfg.model).fields(),
        "device": case.rt.device.type, "variant": variant.name,
        "profile": profile.name, "batch_size": case.cfg.batch_size, "steps_per_round": images // case.cfg.batch_size,
        "images_per_round": images, "warmup_rounds": profile.warmup_rounds, **stats,
        "std_s": spread["std"], "ci_low_s": spread["ci_low"], "ci_high_s": spread["ci_high"],
        "img_per_s": images / stats["median_s"], "compile_s": case.compile_s, "graph_breaks": case.graph_breaks,
        "train_loss": case.rows[-1]["train_loss"], "test_acc_pct": metrics["test_acc_pct"],
        "test_loss": metrics["test_loss"], "test_images": case.eval_images, "seed": case.cfg.seed,
        **_resolved(case.rt, case.cut),
        **roofline(case.rt.precision, case.rt.device, flops, images / stats["median_s"]),
        **_reference_columns(case.reference),
    }


def _resolved(rt: Runtime, cut: str) -> dict[str, Any]:
    """What the case ran in (auto settings resolved, with the reason) and what the budget cut."""
    return {"precision": rt.precision, "channels_last": rt.channels_last, "auto_reason": rt.auto_reason, "cut": cut}


def band_columns(accuracies: list[float], prefix: str = "") -> dict[str, float]:
    """Eager fp32's accuracy band over seeds (``suite.accuracy_band``): min, max, n, and mean, sample std and
    Student's t 95% interval of the mean, as ``{prefix}band_*_acc_pct`` (and ``{prefix}band_n``)."""
    s = mean_ci(accuracies)
    return {f"{prefix}band_min_acc_pct": min(accuracies), f"{prefix}band_max_acc_pct": max(accuracies),
            f"{prefix}band_n": len(accuracies), f"{prefix}band_mean_acc_pct": s["mean"],
            f"{prefix}band_std_acc_pct": s["std"], f"{prefix}band_ci_low_acc_pct": s["ci_low"],
            f"{prefix}band_ci_high_acc_pct": s["ci_high"]}


def _reference_columns(reference: list[float]) -> dict[str, float]:
    """Eager's accuracy at a cut case's step count (its own seed first, then the band seeds)."""
    if not reference:
        return {}
    return {"ref_acc_pct": reference[0], **band_columns(reference, "ref_")}


def inference_row(variant: Variant, case: InferenceCase, profile: Profile, times: list[float]) -> dict[str, Any]:
    """The tidy row of an inference case: throughput, latency percentiles, and the share of test
    images whose predicted class equals eager fp32's (same trained weights)."""
    stats = time_stats(times)
    reference = case.shared.reference_predictions(case.cfg, case.weight_steps)[:case.agree_images]
    agree = (case.predictions(case.agree_images) == reference).double().mean().item()
    counts, rate = model_flops(case.cfg.model, case.cfg.model_args), case.batch_size / stats["median_s"]
    return {
        "phase": "inference", "model": case.cfg.model, "dataset": case.cfg.dataset, **dataset_record(case.cfg.dataset),
        **model_source(case.cfg.model).fields(),
        "device": case.rt.device.type, "variant": variant.name,
        "profile": profile.name, "batch_size": case.batch_size, "warmup_rounds": profile.warmup_rounds, **stats,
        **latency_ms(times), "img_per_s": case.batch_size / stats["median_s"], "compile_s": case.compile_s,
        "graph_breaks": case.graph_breaks, "seed": case.cfg.seed, "agree_with_eager_pct": 100.0 * agree,
        "agree_images": case.agree_images, "weight_steps": case.weight_steps, **_resolved(case.rt, case.cut),
        "precision": case.precision,
        **roofline(case.precision, case.rt.device, counts["forward"], rate),
        **bandwidth_roofline(case.precision, case.rt.device, counts["activations"], rate),
    }


ROW_ENVIRONMENT = ("torch", "cuda", "cudnn", "gpu", "cpu", "cpu_capability", "cpu_isa", "bf16_native", "machine_kind",
                   "torch_threads", "git_commit")


def finish_row(row: dict[str, Any], contention: Contention, memory: dict[str, Any]) -> dict[str, Any]:
    """Add the memory pass, the contention indicator, the noisy flag and the software/hardware
    it ran on (so each row stands on its own) to a row."""
    env = environment()
    return {**row, **memory, "process_cpu_util": contention.process_cpu_util,
            "machine_busy_cores": contention.machine_busy_cores, "noisy": is_noisy(row, contention),
            **{key: env[key] for key in ROW_ENVIRONMENT}}
