"""One rank of a scaling measurement: ``python -m mnist_models.experiments.ddp_scaling_worker SPEC.json OUT.json``,
started by ``ddp_scaling.measure_layout`` through torchrun (``train.launch.launch``).

Every rank joins the job, checks that every rank runs the same config, builds the data-parallel training
(``engine.build_training`` with ``dist``; a job of one process trains the plain model, without DDP's wrapper
and its all-reduce, so that the one-process baselines are what a user runs without DDP) and then, all ranks
in step:

1. ``warmup`` global steps, not timed (first-call costs: allocator, one-off kernel choices, gloo's pairs);
2. ``rounds`` timed rounds of ``steps`` global steps each (``Training.train_epoch(max_steps=…)``: the device
   synchronised at both ends, the loss and accuracy sums added over the ranks at the end of each round);
3. an evaluation on the whole test set (sharded, summed), for the accuracy reached at this global batch
   after the same number of global steps as every other layout;
4. ``profile_steps`` more steps under ``torch.profiler``, inside one ``record_function`` range: the time within
   that range during which a collective's own event was running (``gloo:all_reduce`` on gloo's threads, NCCL's
   all-reduce kernels on the GPU; their union, each instant once) over the range's wall time is the all-reduce
   share (at most 100%). The range holds the epoch-end sums too: a rank waiting there for a slower one is
   waiting in a collective. (Measured against the timed seconds alone, which leave those sums out, a loaded CI
   machine once gave 148%.) DDP starts the
   all-reduce when a bucket of gradients is ready, so part of it can overlap the rest of the backward pass;
   for these models, whose gradients fill one bucket, it runs after the backward pass.

Rank 0 writes its figures as one JSON object to OUT.json.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from torch.profiler import ProfilerActivity, profile, record_function

from ..config import RunConfig
from ..errors import MachineLimit, UserError
from ..measure.trace import window_ms
from ..results.store import atomic_write_bytes, to_json
from ..train.dist import DEFAULT_TIMEOUT_S, Dist, rank_failed
from ..train.engine import Training, build_training
from ..train.runtime import Resolved, seed_everything

COLLECTIVES = ("gloo:all_reduce", "nccl:all_reduce")  # the collectives' own events (gloo threads, NCCL)
PROFILED = "mnist-bench: profiled steps"  # the record_function range around the profiled steps


def collective_ms(prof: profile, window: tuple[float, float]) -> float:
    """Milliseconds of ``window`` (the profiler's µs) during which an all-reduce was in flight: the union of
    gloo's and NCCL's ranges (and on CUDA, NCCL's all-reduce kernels), so that ranges recorded on several
    threads for one collective, or overlapping ones, count once."""
    return window_ms([(e.time_range.start, e.time_range.end) for e in prof.events()
                      if e.name in COLLECTIVES or (e.device_type.name == "CUDA" and "AllReduce" in e.name)], window)


def allreduce_share(training: Training, steps: int) -> dict[str, float]:
    """``steps`` global steps under the profiler, in one range: its wall time, the all-reduce time within it,
    and its share."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if training.rt.device.type == "cuda" else [])
    with profile(activities=activities) as prof, record_function(PROFILED):
        training.train_epoch(max_steps=steps)
    span = next(e.time_range for e in prof.events() if e.name == PROFILED)
    reduce_ms, wall_ms = collective_ms(prof, (span.start, span.end)), (span.end - span.start) / 1e3
    return {"profiled_steps": steps, "profiled_step_ms": wall_ms / steps, "allreduce_ms_per_step": reduce_ms / steps,
            "allreduce_pct": 100.0 * reduce_ms / wall_ms}


def measure(training: Training, spec: dict[str, Any], dist: Dist) -> dict[str, Any]:
    """Warm-up, timed rounds, evaluation and the profiled steps (the module's docstring), as one row."""
    seed_everything(training.cfg.seed)
    training.train_epoch(max_steps=spec["warmup"])
    rounds = [training.train_epoch(max_steps=spec["steps"]) for _ in range(spec["rounds"])]
    images = rounds[0]["train_images"]  # every round: steps × the global batch
    rates = [r["train_img_per_s"] for r in rounds]
    test = training.evaluate()
    return {
        "nproc": dist.world, "threads_per_rank": dist.threads, "backend": dist.backend,
        "global_batch": training.cfg.batch_size * dist.world, "warmup_steps": spec["warmup"],
        "steps": spec["steps"], "rounds": spec["rounds"],
        "global_steps": spec["warmup"] + spec["rounds"] * spec["steps"],
        "round_s": [r["train_s"] for r in rounds], "images_per_round": images,
        "img_per_s": statistics.median(rates), "img_per_s_min": min(rates), "img_per_s_max": max(rates),
        "rank_img_per_s": statistics.median(rates) / dist.world,
        "step_ms": 1e3 * statistics.median(r["train_s"] for r in rounds) / spec["steps"],
        "test_acc_pct": test["test_acc_pct"], "test_loss": test["test_loss"], "train_loss": rounds[-1]["train_loss"],
        **allreduce_share(training, spec["profile_steps"]),
    }


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    cfg = RunConfig(**spec["config"])
    dist = None
    try:
        dist = Dist.start(cfg, spec["backend"], spec.get("timeout_s", DEFAULT_TIMEOUT_S))
        dist.check_same_world(cfg)
        # One process trains without DistributedDataParallel: the baseline is what runs without DDP at all.
        training = build_training(Resolved.of(cfg), dist=dist if dist.world > 1 else None)
        row = measure(training, spec, dist)
        if dist.is_main:
            atomic_write_bytes(argv[1], to_json(row).encode())
        dist.finish(0)
    except (UserError, MachineLimit, RuntimeError) as exc:
        return rank_failed(exc, dist)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
