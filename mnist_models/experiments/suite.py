"""What the benchmark suite (``bench/``) times: training and inference cases, and what they share.

A case is built outside the clock (data on the device, model, optimiser, compilation warm-up,
CUDA-graph capture). ``TrainCase.run()`` then trains ``steps`` steps (or a whole epoch) and
``InferenceCase.run()`` does one forward pass of one batch; pytest-benchmark calls them
through ``benchmark.pedantic`` with warm-up rounds and ``iterations=1``. Every train case is
evaluated on the full 10,000-image test set after its timed rounds. What the cases of one session
train once and share (eager's references, the inference weights): ``Shared``. Their rows:
``suite_rows.py``.

Profiles:

- ``quick`` (default): training rounds of ``QUICK_TRAIN_STEPS`` steps, few rounds; the whole
  CPU suite runs in minutes on 2 cores.
- ``full``: training rounds of one whole epoch, more rounds, more inference rounds.
- ``smoke``: three steps, one round: runs every code path in seconds, for the tests.

A profile is not a run's config: it is how much of the suite's work each case does (its rounds
and steps); the cases' own choices are RunConfigs (``base_config`` + a variant's changes).
What each case may cut under the session's time budget: ``plans.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import RunConfig
from ..data import FastLoader, load_split
from ..host.clock import Timer, steady_seconds
from ..host.device import resolve_device
from ..models import get_model, parse_model_args
from ..train.engine import build_training, evaluate, first_batch
from ..train.runtime import Runtime, resolve, seed_everything

QUICK_TRAIN_STEPS = 100
TEST_IMAGES = 10_000


@dataclass(frozen=True)
class Profile:
    """How much work each case does: steps per training round, rounds, warm-up rounds, and the
    seeds and target of the time-to-accuracy case (one fresh process per seed)."""

    name: str
    train_steps: int | None  # None: one whole epoch per round
    train_rounds: int
    inference_rounds: int
    warmup_rounds: int = 1
    tta_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    tta_target_pct: float = 99.0


PROFILES = {
    "quick": Profile("quick", QUICK_TRAIN_STEPS, train_rounds=3, inference_rounds=30),
    "full": Profile("full", None, train_rounds=3, inference_rounds=200),
    # Exercises every code path in seconds (the tests run it with --benchmark-disable); its
    # numbers are not measurements.
    "smoke": Profile("smoke", 3, train_rounds=1, inference_rounds=2, warmup_rounds=0, tta_seeds=(0,),
                     tta_target_pct=90.0),
}
CPU_BATCH_SIZES = (1, 64, 256, 1024)
CUDA_BATCH_SIZES = CPU_BATCH_SIZES + (8192,)


def inference_batch_sizes(device: str) -> tuple[int, ...]:
    return CUDA_BATCH_SIZES if device == "cuda" else CPU_BATCH_SIZES


# Test-set evaluations run in batches of this many images: the same accuracy as the protocol's 32
# (counted exactly, sample-weighted), in a fraction of the time.
EVAL_BATCH = 1000


def base_config(model: str, device: str, data_root: str | None = None, dataset: str = "mnist") -> RunConfig:
    """The suite's baseline: the notebook protocol's hyper-parameters, fast loader, NCHW, on ``device``, on
    ``dataset``; evaluations in batches of ``EVAL_BATCH``."""
    return RunConfig.from_protocol("notebook", model=model, device=device, loader="fast", channels_last=False,
                                   eval_batch_size=EVAL_BATCH, data_root=data_root, dataset=dataset)


def _reset_compiler(cfg: RunConfig) -> dict[str, int]:
    """Fresh dynamo state per compiled case (its recompile limit would otherwise fall back to
    eager after a few models), and its counters for the graph-break count. Dynamo is imported here, by
    the compiled cases only: importing it costs about a second of every process's start-up."""
    if cfg.compile == "none":
        return {}
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    return counters["graph_break"]


class TrainCase:
    """A training benchmark case, built and warmed outside the clock."""

    def __init__(self, cfg: RunConfig, steps: int | None) -> None:
        self.cfg, self.steps = cfg, steps
        breaks = _reset_compiler(cfg)
        self.training = build_training(cfg)
        self.rt = self.training.rt
        # First call vs a steady call (the median of STEADY_CALLS): the difference is compilation /
        # capture / first-touch cost; one steady call alone was seen to run 100× slow after a compile.
        self.training.model.train()
        batch = self.rt.to_device(*first_batch(self.training.train_loader))
        with Timer(self.rt.synchronize) as first:
            self.training.capture()
            self.training.step(*batch)
        steady = steady_seconds(lambda: self.training.step(*batch), self.rt.synchronize)
        self.compile_s = max(0.0, first.seconds - steady)
        self.step_s = steady  # one steady training step: what the budget plans with
        self.graph_breaks = sum(breaks.values())
        self.rows: list[dict[str, float]] = []
        self.cut = ""  # what the budget cut, and why ("" when the case ran in full)
        self.eval_images = TEST_IMAGES  # test images the accuracy is taken on (fewer when cut)
        self.reference: list[float] = []  # eager's accuracies at this case's steps, when it was cut
        seed_everything(cfg.seed)

    def run(self) -> dict[str, float]:
        """One timed round: ``steps`` training steps (a whole epoch when None); returns its row (a
        non-finite loss raises the engine's ``TrainingError``)."""
        row = self.training.train_epoch(max_steps=self.steps)
        self.rows.append(row)
        return row

    def evaluate(self) -> dict[str, float]:
        """Test loss and accuracy on the first ``eval_images`` test images (all 10,000 unless the
        budget cut the case), after the timed rounds. The images go through the fast loader, which
        yields the same float32 values as the notebook's (so the notebook-loader variant is scored alike)."""
        images, labels = load_split("test", self.cfg.data_root, self.cfg.dataset)
        loader = FastLoader(images[:self.eval_images], labels[:self.eval_images], EVAL_BATCH, shuffle=False,
                            device=self.rt.device)
        return evaluate(self.training.model, loader, self.rt, torch.nn.CrossEntropyLoss())


# Seeds eager fp32 also trains from (untimed) to give the accuracy band that every variant's
# accuracy is checked against; the case's own seed is the band's fourth member.
BAND_SEEDS = (0, 1, 2)


def accuracy_band(cfg: RunConfig, steps: int | None, rounds: int, eval_images: int | None = None) -> list[float]:
    """Eager's test accuracies over other seeds: ``cfg`` retrained from each of ``BAND_SEEDS`` as
    its timed case was (``steps`` per round, ``rounds`` rounds, the same start-up steps, scored on
    the same first ``eval_images`` test images), untimed. The caller adds the timed case's own
    accuracy to make the band."""
    accs = []
    for seed in BAND_SEEDS:
        if seed == cfg.seed:
            continue
        case = TrainCase(cfg.with_(seed=seed), steps)
        case.eval_images = eval_images or TEST_IMAGES
        for _ in range(rounds):
            case.run()
        accs.append(case.evaluate()["test_acc_pct"])
    return accs


# The inference cases' weights: one epoch of the notebook protocol (1,875 steps of batch 32) unless the
# budget cuts it.
WEIGHT_STEPS = 60_000 // 32


@dataclass
class Shared:
    """What the cases of one session train once and share: eager fp32's references at a cut case's
    steps, the inference weights and eager's test-set probabilities (each fixed by its key and the
    fixed seeds, whichever case asks first), and the inference weights' step count per model and
    device (``plans.plan_weight_steps``: the first inference case of the two plans it). The session
    owns it (``session.SuiteSession``), not the process: a case reads nothing an earlier case decided
    about another, so run alone (``-k``) or in another order it computes what it would in the whole suite."""

    references: dict[tuple[str, str, str | None, str, int | None, int, int], list[float]] = field(
        default_factory=dict)
    weights: dict[tuple[str, str, str | None, str, int], dict[str, torch.Tensor]] = field(default_factory=dict)
    probabilities: dict[tuple[str, str, str | None, str, int], torch.Tensor] = field(default_factory=dict)
    weight_steps: dict[tuple[str, str], int] = field(default_factory=dict)  # (model, device) → planned steps

    def eager_reference(self, model: str, device: str, data_root: str | None, dataset: str, steps: int | None,
                        rounds: int, eval_images: int = TEST_IMAGES) -> list[float]:
        """Eager fp32's test accuracies after ``rounds`` rounds of ``steps`` steps, from the notebook protocol's
        seed and from ``BAND_SEEDS`` (untimed), scored on the same test images as a case cut to ``steps``
        per round: what such a case is compared with, since eager's own row trained longer. The first
        value is the notebook protocol's."""
        key = (model, device, data_root, dataset, steps, rounds, eval_images)
        if key not in self.references:
            cfg = base_config(model, device, data_root, dataset)
            case = TrainCase(cfg, steps)
            case.eval_images = eval_images
            for _ in range(rounds):
                case.run()
            self.references[key] = [case.evaluate()["test_acc_pct"],
                                    *accuracy_band(cfg, steps, rounds, case.eval_images)]
        return self.references[key]

    def trained_state(self, model: str, device: str, data_root: str | None, dataset: str = "mnist",
                      steps: int = WEIGHT_STEPS) -> dict[str, torch.Tensor]:
        """Weights of ``model`` after ``steps`` steps of the notebook protocol on the fast loader (one epoch
        by default), so inference cases run, and compare predictions, on a real classifier. The memory
        format is the one measured faster: it changes the speed, not the model."""
        key = (model, device, data_root, dataset, steps)
        if key not in self.weights:
            cfg = base_config(model, device, data_root, dataset).with_(epochs=1, channels_last=None)
            training = build_training(cfg)
            seed_everything(cfg.seed)
            training.train_epoch(max_steps=steps)
            self.weights[key] = {k: v.detach().cpu().clone() for k, v in training.model.state_dict().items()}
        return self.weights[key]

    def reference_probabilities(self, cfg: RunConfig, weight_steps: int = WEIGHT_STEPS) -> torch.Tensor:
        """Eager fp32 class probabilities of the trained model on the 10,000 test images (per model,
        device and weights)."""
        key = (cfg.model, resolve_device(cfg.device).type, cfg.data_root, cfg.dataset, weight_steps)
        if key not in self.probabilities:
            eager = base_config(cfg.model, cfg.device, cfg.data_root, cfg.dataset)
            self.probabilities[key] = InferenceCase(eager, 1000, weight_steps, self).probabilities()
        return self.probabilities[key]

    def reference_predictions(self, cfg: RunConfig, weight_steps: int = WEIGHT_STEPS) -> torch.Tensor:
        """Eager fp32 predicted classes of the trained model on the test set (``reference_probabilities``)."""
        return self.reference_probabilities(cfg, weight_steps).argmax(dim=1)


def agree_images_nominal(batch_size: int) -> int:
    """Test images the agreement pass covers when nothing is cut: all 10,000, or 2,000 at batch 1,
    where 10,000 one-image passes cost far more than the timing itself (0.05-point resolution)."""
    return TEST_IMAGES if batch_size > 1 else 2_000


class InferenceCase:
    """Forward passes of one batch of real test images under ``torch.inference_mode``.

    The model carries trained weights (``Shared.trained_state``, ``weight_steps`` steps, from ``shared``:
    the session's, or the case's own); ``predictions`` gives its classes for the first ``agree_images``
    test images, compared with ``Shared.reference_predictions`` (eager fp32) in the row
    (``suite_rows.inference_row``). A precision or memory format left to ``auto`` is resolved by
    measuring forward passes at this batch size.
    """

    def __init__(self, cfg: RunConfig, batch_size: int, weight_steps: int = WEIGHT_STEPS,
                 shared: Shared | None = None) -> None:
        self.cfg, self.batch_size, self.weight_steps = cfg, batch_size, weight_steps
        self.shared = shared if shared is not None else Shared()
        self.rt = Runtime.from_config(resolve(cfg.with_(batch_size=batch_size), "inference"))  # auto: once, here
        breaks = _reset_compiler(cfg)
        model = get_model(cfg.model, **parse_model_args(cfg.model_args))
        model.load_state_dict(self.shared.trained_state(cfg.model, self.rt.device.type, cfg.data_root, cfg.dataset,
                                                          weight_steps))
        self.model = self.rt.prepare_inference(model, cfg.weights_bf16, cfg.freeze)
        self.input_dtype = torch.bfloat16 if cfg.weights_bf16 else torch.float32
        self.precision = "bf16" if cfg.weights_bf16 else self.rt.precision  # what the matmuls run in
        images, labels = load_split("test", cfg.data_root, cfg.dataset)
        index = torch.arange(batch_size) % len(labels)  # repeat the test set for large batches
        x = self._inputs(images[index])

        def forward(inputs: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), self.rt.autocast():
                return self.model(inputs)

        with Timer(self.rt.synchronize) as first:
            fn = self.rt.capture(forward, x) if cfg.cuda_graph else forward
            fn(x)
        steady = steady_seconds(lambda: fn(x), self.rt.synchronize)
        self.forward, self.x = fn, x
        self.compile_s = max(0.0, first.seconds - steady)
        self.step_s = steady  # one steady forward pass: what the budget plans with
        self.graph_breaks = sum(breaks.values())
        self.agree_images = agree_images_nominal(batch_size)
        self.cut = ""

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        return self.rt.images_to_device(images.unsqueeze(1).float().div_(255)).to(self.input_dtype)

    def run(self) -> None:
        """One forward pass, waited for."""
        self.forward(self.x)
        self.rt.synchronize()

    def predictions(self, limit: int | None = None) -> torch.Tensor:
        """Predicted classes for the first ``limit`` test images (all by default)."""
        return self.probabilities(limit).argmax(dim=1)

    def probabilities(self, limit: int | None = None) -> torch.Tensor:
        """Class probabilities (N, 10, float32, CPU) for the first ``limit`` test images, in batches of
        this case's size (the last one padded, so fixed-shape paths such as CUDA graphs run unchanged)."""
        images, _ = load_split("test", self.cfg.data_root, self.cfg.dataset)
        images = images[:limit]
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            padded = torch.zeros(self.batch_size, 28, 28, dtype=chunk.dtype)
            padded[:len(chunk)] = chunk
            logits = self.forward(self._inputs(padded))[:len(chunk)]
            out.append(torch.softmax(logits.float(), dim=1).cpu())
        return torch.cat(out)
