"""The benchmark suite's data-parallel scaling case (``pytest bench --benchmark-only --bench-ddp 1,2``):
``experiments.ddp_scaling`` run for the session's first model (``--bench-models``' first) on each of its devices,
after every other case, at the steps the profile sets (``PROFILE_STEPS``); its rows are the run folder's
``scaling`` table (``cases.jsonl``, then ``scaling.csv``).

    counts = ddp_counts("1,2")                               # None: the option is absent, no scaling case
    spec = suite_spec("v0", "cpu", "quick", counts)
    rows = scaling_rows(spec, "quick")                       # one row per layout (1 × 2 threads, 2 × 1, 1 × 1)

The config is the suite's baseline (``suite.base_config``: the notebook protocol's hyper-parameters, batch 32
per process, the fast loader, fp32, NCHW), so one process with every core's thread is the ``eager`` training
case run as a torchrun job. The time budget sets the case's expected seconds aside (``estimate_s``: each
layout's process start-ups and steps); no cut shortens it.
"""

from __future__ import annotations

from typing import Any

import torch

from .ddp_scaling import ScalingSpec, layouts, measure_scaling
from .plans import EVAL_STEP_EQUIV, eager_unit_s
from .suite import base_config

# (global steps per timed round, timed rounds, warm-up steps, profiled steps) per suite profile. The quick
# profile's case costs little more than its layouts' process start-ups (about 5 s each on 2 cores).
PROFILE_STEPS = {"quick": (30, 3, 10, 10), "full": (100, 5, 20, 20), "smoke": (3, 1, 1, 2)}
# Process start-ups per layout, each about the session's own (Python, torch): torchrun's, then its ranks'
# (in parallel; each also verifies and loads the data set).
STARTS_PER_LAYOUT = 2
FIX = "fix: --bench-ddp 1,2"


def ddp_counts(text: str | None) -> tuple[int, ...] | None:
    """``--bench-ddp``: distinct process counts ≥ 1, comma separated (None: not given). Anything else is a
    ``ValueError`` whose text is the one line the suite exits with."""
    if text is None:
        return None
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or len(set(counts)) != len(counts) or min(counts) < 1:
        raise ValueError(f"--bench-ddp takes a comma list of distinct process counts ≥ 1, got {text!r}; {FIX}")
    return counts


def suite_spec(model: str, device: str, profile: str, counts: tuple[int, ...], data_root: str | None = None,
               dataset: str = "mnist") -> ScalingSpec:
    """The scaling case of ``model`` on ``device``: the suite's baseline config, the profile's steps."""
    steps, rounds, warmup, profiled = PROFILE_STEPS[profile]
    return ScalingSpec(base_config(model, device, data_root, dataset), counts, steps, rounds, warmup, profiled)


def estimate_s(spec: ScalingSpec, startup_s: float) -> float:
    """The case's expected seconds here: per layout, its process start-ups and its steps (the evaluation counted
    as ``plans.EVAL_STEP_EQUIV`` steps) at the eager step's pace."""
    plan, _ = layouts(spec.nprocs, torch.device(spec.cfg.device))
    unit = eager_unit_s(spec.cfg.model, spec.cfg.device, spec.cfg.batch_size, "train")
    steps = spec.warmup + spec.rounds * spec.steps + spec.profile_steps + EVAL_STEP_EQUIV
    return len(plan) * (STARTS_PER_LAYOUT * startup_s + steps * unit)


def scaling_rows(spec: ScalingSpec, profile: str) -> list[dict[str, Any]]:
    """Every layout of ``spec`` measured (``ddp_scaling.measure_scaling``), each row with the suite's profile."""
    return [{**row, "profile": profile} for row in measure_scaling(spec)]
