"""The suite's plans under the time budget (``budget.py``): each case's weight when the session is
collected, and its plan (how much of its work it runs) once it has measured its own step, before
the timed rounds. Every figure here is in expected seconds at eager fp32 speed on this machine.

A plan depends on the case and the budget only, never on which cases ran before it: a variant cut
to fewer steps is always compared with eager retrained to its steps (``needs_reference``), and its
cost counts that retraining whether or not another case already paid for it.
"""

from __future__ import annotations

import math

import torch

from ..host.capabilities import bf16_note
from ..train.auto import probe_step_seconds
from ..variants import BASELINE, Variant
from .budget import Budget, cut_reason, levels, pick
from .suite import (
    BAND_SEEDS,
    TEST_IMAGES,
    WEIGHT_STEPS,
    InferenceCase,
    Profile,
    Shared,
    TrainCase,
    agree_images_nominal,
    base_config,
)
from .time_to_accuracy import TTA_BATCH, TTA_MODEL

# Compilation that no cut can shorten, allowed on top of a compiled case's work. Measured on the
# 2-core AVX-512 EPYC: compiling a training step took about 1 s plus 1,000 eager steps' worth (v0
# 1 s, v2 and fastnet about 7 s), a forward pass about 0.5 s plus 250 training steps' worth, per
# batch size. Where compiling runs slower, the budget's pace scales these up.
COMPILE_ALLOWANCE = {"train": (1.0, 1000), "inference": (0.5, 250)}  # (seconds, eager training steps)
# One evaluation of the 10,000 test images (a forward pass is about a third of a training step)
# costs at most this many training steps of batch 32.
EVAL_STEP_EQUIV = 100
CASE_OVERHEAD_S = 0.15  # building the case, the memory pass's bookkeeping, the row
CALL_OVERHEAD_S = 60e-6  # Python work around each forward pass of the agreement pass
LOADER_S_PER_IMAGE = 50e-6  # the notebook's DataLoader + ToTensor, per image (notebook-loader variant)
AUGMENT_S_PER_IMAGE = 15e-6  # --augment affine on the CPU, per image at batch 32 (14 µs, 1 thread, EPYC)
MIN_TRAIN_STEPS = 10  # a cut training round still runs at least this many steps
MIN_EVAL_IMAGES = 2000  # a cut training case is scored on at least this many test images
MIN_INFERENCE_ROUNDS = 3
MIN_AGREE_IMAGES = 1000
# Time to accuracy: a seed reaches 99% after about 0.85 of an epoch of fastnet2 at batch 256 (200 steps)
# plus three evaluations (each about 10 steps' worth); its process also starts Python and imports torch.
TTA_STEPS_EXPECTED = 230
TTA_MIN_SEEDS = 3  # the olympic mean's minimum: a cut never runs fewer


def eval_images_for(steps: int, nominal: int) -> int:
    """Test images a case cut from ``nominal`` to ``steps`` steps per round is scored on: the same
    fraction of the 10,000 as of the steps, at least ``MIN_EVAL_IMAGES``; eager's band and
    references at those steps are scored on the same images."""
    return TEST_IMAGES if steps >= nominal else max(MIN_EVAL_IMAGES, round(TEST_IMAGES * steps / nominal))


def eager_unit_s(model: str, device: str, batch_size: int, workload: str) -> float:
    """Seconds of one eager fp32 NCHW step (training) or forward pass (inference) here: the unit
    the budget's weights are counted in (``train.auto.probe_step_seconds``, cached)."""
    return probe_step_seconds(model, torch.device(device), "fp32", False, batch_size, workload)


def _compile_allowance(phase: str, model: str, device: str, variant: Variant) -> float:
    if not variant.compiles:
        return 0.0
    seconds, steps = COMPILE_ALLOWANCE[phase]
    return seconds + steps * eager_unit_s(model, device, base_config(model, device).batch_size, "train")


def train_weight(model: str, device: str, variant: Variant, profile: Profile) -> tuple[float, float]:
    """A training case's expected seconds at eager speed, as (what a cut can shorten, what it cannot):
    the warm-up, timed and memory rounds (and eager's band retraining, the notebook's loader, augmentation) scale
    with the steps; set-up, the evaluations and compilation do not."""
    batch = base_config(model, device).batch_size
    u = eager_unit_s(model, device, batch, "train")
    steps = profile.train_steps or WEIGHT_STEPS
    rounds = profile.warmup_rounds + profile.train_rounds
    work, fixed = (rounds + 1) * steps * u, CASE_OVERHEAD_S + EVAL_STEP_EQUIV * u
    if variant.name == BASELINE:
        work += len(BAND_SEEDS) * rounds * steps * u
        fixed += len(BAND_SEEDS) * EVAL_STEP_EQUIV * u
    if dict(variant.changes).get("loader") == "notebook":
        work += LOADER_S_PER_IMAGE * (rounds + 1) * steps * batch
        fixed += LOADER_S_PER_IMAGE * TEST_IMAGES
    if dict(variant.changes).get("augment", "none") != "none":  # training images only
        work += AUGMENT_S_PER_IMAGE * (rounds + 1) * steps * batch
    return work, fixed + _compile_allowance("train", model, device, variant)


def inference_weight(model: str, device: str, variant: Variant, batch_size: int,
                     profile: Profile) -> tuple[float, float]:
    """An inference case's expected seconds at eager speed, as (what a cut can shorten: the rounds
    and the agreement pass; what it cannot: set-up and compilation)."""
    u = eager_unit_s(model, device, batch_size, "inference")
    calls = math.ceil(agree_images_nominal(batch_size) / batch_size)
    work = (profile.warmup_rounds + profile.inference_rounds + 1 + calls) * u + calls * CALL_OVERHEAD_S
    return work, CASE_OVERHEAD_S + _compile_allowance("inference", model, device, variant)


def weights_weight(model: str, device: str) -> float:
    """Training the inference weights (one epoch) at eager speed."""
    return WEIGHT_STEPS * eager_unit_s(model, device, base_config(model, device).batch_size, "train")


def tta_seed_estimate_s(device: str, startup_s: float, precision: str = "fp32", channels_last: bool = True) -> float:
    """One time-to-accuracy seed's expected seconds: process start-up plus the expected steps."""
    step = probe_step_seconds(TTA_MODEL, torch.device(device), precision, channels_last, TTA_BATCH)
    return startup_s + TTA_STEPS_EXPECTED * step


def plan_weight_steps(budget: Budget, shared: Shared, model: str, device: str) -> int:
    """Steps of the inference weights' training (one epoch unless the budget cuts it; decided once
    per model and device, by the first inference case of them, and kept in the session's ``shared``)."""
    key = (model, device)
    if key not in shared.weight_steps:
        task = weights_task(model, device)
        u = eager_unit_s(model, device, base_config(model, device).batch_size, "train")
        steps = pick(levels(WEIGHT_STEPS, minimum=200), lambda n: n * u, budget.allowance(task))
        if steps < WEIGHT_STEPS:
            budget.cut(task, cut_reason("steps", WEIGHT_STEPS, steps, u, None, "", budget))
        shared.weight_steps[key] = steps
    return shared.weight_steps[key]


def weights_task(model: str, device: str) -> str:
    return f"inference weights {model} {device}"


def _slow_note(precision: str, device: torch.device) -> str:
    return bf16_note(device.type) if precision == "bf16" else ""


def plan_train(budget: Budget, case_id: str, case: TrainCase, variant: Variant, profile: Profile) -> None:
    """Cut ``case``'s steps per round to its allowance when the budget needs it (sets ``case.steps``
    and ``case.cut``). A cut case other than eager is later compared with eager retrained to the same
    steps: its cost counts that retraining."""
    model, device = case.cfg.model, case.rt.device.type
    nominal = case.steps or len(case.training.train_loader)
    allowance = budget.allowance(case_id)
    u, ue = case.step_s, eager_unit_s(model, device, case.cfg.batch_size, "train")
    rounds = profile.warmup_rounds + profile.train_rounds
    eager = variant.name == BASELINE

    def cost(steps: int) -> float:
        evals = EVAL_STEP_EQUIV * eval_images_for(steps, nominal) / TEST_IMAGES
        work = (rounds + 1) * steps * u + evals * u
        if eager:
            work += len(BAND_SEEDS) * (rounds * steps * u + evals * u)
        elif steps < nominal:
            work += (1 + len(BAND_SEEDS)) * (rounds * steps * ue + evals * ue)  # eager at these steps
        return work

    steps = pick(levels(nominal, minimum=min(nominal, MIN_TRAIN_STEPS)), cost, allowance)
    if steps < nominal:
        case.steps = steps
        case.eval_images = eval_images_for(steps, nominal)
        case.cut = cut_reason("steps/round", nominal, steps, u, ue, _slow_note(case.rt.precision, case.rt.device),
                              budget) + f"; accuracy on the first {case.eval_images:,} test images"
        budget.cut(case_id, case.cut)


def needs_reference(case: TrainCase, variant: Variant) -> bool:
    """Whether a case is compared with eager retrained to its steps: a variant the budget cut. (An
    uncut variant is compared with eager's row where eager ran the same steps: ``runs.frames``.)"""
    return variant.name != BASELINE and bool(case.cut)


def plan_inference(budget: Budget, case_id: str, case: InferenceCase, variant: Variant, profile: Profile) -> int:
    """Timed rounds for ``case`` (the profile's unless the budget cuts them; the agreement pass is cut
    in proportion, to ``case.agree_images``)."""
    nominal = profile.inference_rounds
    allowance = budget.allowance(case_id)
    u = case.step_s
    ue = eager_unit_s(case.cfg.model, case.rt.device.type, case.batch_size, "inference")

    full = agree_images_nominal(case.batch_size)

    def agree(rounds: int) -> int:
        return max(min(full, MIN_AGREE_IMAGES), min(full, round(full * rounds / nominal)))

    def cost(rounds: int) -> float:
        calls = math.ceil(agree(rounds) / case.batch_size)
        return (profile.warmup_rounds + rounds + 1 + calls) * u + calls * CALL_OVERHEAD_S

    rounds = pick(levels(nominal, minimum=min(nominal, MIN_INFERENCE_ROUNDS)), cost, allowance)
    if rounds < nominal:
        case.agree_images = agree(rounds)
        note = _slow_note(case.precision, case.rt.device)
        case.cut = cut_reason("rounds", nominal, rounds, u, ue, note, budget) + \
            f"; agreement over the first {case.agree_images:,} test images"
        budget.cut(case_id, case.cut)
    return rounds


