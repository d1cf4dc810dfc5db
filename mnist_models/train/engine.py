"""The training loop (one, with hooks), evaluation and ``fit``; they return tidy rows and never print.

- ``Training``: everything one run needs, built by ``build_training`` from a run whose automatic
  choices are made (``runtime.resolve``; a RunConfig given instead is resolved there, once).
  ``Training.train_epoch`` is THE loop: one pass over the training loader (or its first
  ``max_steps`` batches) through the step of ``step.py``, timed with the device synchronised;
  loss and accuracy are accumulated on the device (no per-batch host synchronisation). Hooks:
  ``on_batch`` (progress), ``on_step`` (called with the run's step count after every step; it
  returns True to stop the run early; ``every(n, fn)`` makes an every-N-steps hook) and
  ``max_steps``. A non-finite training loss raises ``NonFiniteLoss`` (a ``TrainingError``) at the
  end of the pass, naming the epoch and the first step whose loss was not finite, whoever runs
  the loop (``fit``, the benchmark suite's cases, time to accuracy); its ``row()`` is the failed
  epoch's row for ``runs.jsonl`` (``status: "failed"``).
- ``evaluate``: test loss and accuracy, sample-weighted and counted on the device, timed on its own.
- ``fit(run)``: one row per epoch.
- ``make_predictions``: class probabilities for a list of samples, as in the seed notebook.

Row keys (units in the names): epoch, train_loss, train_acc_pct, test_loss, test_acc_pct,
train_s (seconds of the training pass, data loading included, evaluation excluded), eval_s,
train_images, train_img_per_s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..config import NOTEBOOK_LR, RunConfig
from ..data import make_loader
from ..errors import UserError
from ..host.clock import Timer
from ..models import get_model, parse_model_args
from .optim import SGD, Adam
from .runtime import Resolved, Runtime, ensure_resolved, seed_everything
from .step import TrainStep, make_train_step

if TYPE_CHECKING:  # data-parallel runs only: one process never imports torch.distributed's process groups
    from .dist import Dist

# Called as on_batch(phase, done, total) after each batch; phase is "train" or "eval".
BatchCallback = Callable[[str, int, int], None]
# Called as on_step(steps) after each training step with the run's step count; True stops the run.
StepHook = Callable[[int], Any]


class TrainingError(UserError, RuntimeError):
    """Training cannot go on (a non-finite loss, a worker process that failed). One line with the fix."""


class NonFiniteLoss(TrainingError):
    """The training loss became inf or nan: in which training pass (``unit`` "epoch", or "round" for
    a pass of ``max_steps`` steps; ``number`` 1-based), the step within it (1-based) whose loss first
    was not finite, and the run's step count there. ``row()`` is the failed pass's result row."""

    def __init__(self, loss: float, unit: str, number: int, step: int, run_step: int, cfg: RunConfig,
                 precision: str) -> None:
        self.loss, self.unit, self.number, self.step, self.run_step = loss, unit, number, step, run_step
        super().__init__(f"training loss became {loss} at {unit} {number}, step {step} (step {run_step} of the run; "
                         f"{cfg.model}, lr {cfg.lr:g}, {precision}); fix: lower --lr (the notebook protocol's is "
                         f"{NOTEBOOK_LR.get(cfg.model, 0.1):g})")

    def row(self) -> dict[str, Any]:
        """The failed pass's row: ``status: "failed"``, where (``epoch`` or ``round``, ``step``,
        ``run_step``), the loss and the one-line ``error``, instead of the pass's metrics, so that no
        reader counts it as a finished epoch."""
        return {self.unit: self.number, "status": "failed", "step": self.step, "run_step": self.run_step,
                "loss": str(self.loss), "error": str(self)}


def first_non_finite(weighted_losses: list[torch.Tensor]) -> tuple[int, float]:
    """The 1-based step after which the running loss sum is first not finite, and that step's loss
    (inf where finite losses overflowed the sum); read once, after the pass, from the per-step
    tensors (each step's loss × its batch size)."""
    losses = torch.stack(weighted_losses).float()
    bad = (~torch.isfinite(losses.cumsum(0))).nonzero()
    step = int(bad[0]) + 1 if bad.numel() else len(weighted_losses)
    loss = float(losses[step - 1])
    return step, loss if not math.isfinite(loss) else math.inf


def every(n: int, fn: Callable[[int], Any], start: float = 0, also_at: int | None = None) -> StepHook:
    """A step hook calling ``fn(steps)`` every ``n`` steps once ``steps >= start``, and at step ``also_at``;
    returns what ``fn`` returns there (True stops the run)."""

    def hook(steps: int) -> Any:
        return fn(steps) if (steps % n == 0 and steps >= start) or steps == also_at else None

    return hook


def _tracked(loader: Iterable, phase: str, on_batch: BatchCallback | None) -> Iterable:
    if on_batch is None:
        yield from loader
        return
    total = len(loader)  # type: ignore[arg-type]
    for done, batch in enumerate(loader, start=1):
        yield batch
        on_batch(phase, done, total)


def make_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimiser the config names: plain SGD (no momentum, no weight decay) or Adam (the fused
    kernel; ``capturable`` inside a CUDA graph), torch.optim's own without the ``torch._dynamo`` import
    (``optim.py``). Why fused: docs/decisions.md, 2026-11-25."""
    if cfg.optimizer == "sgd":
        return SGD(model.parameters(), lr=cfg.lr)
    if cfg.cuda_graph:
        return Adam(model.parameters(), lr=cfg.lr, capturable=True)
    return Adam(model.parameters(), lr=cfg.lr, fused=True)


# Sums a tensor over the ranks of a data-parallel run (``Dist.sum``); one process: nothing to add.
Reduce = Callable[[torch.Tensor], torch.Tensor]


def _alone(values: torch.Tensor) -> torch.Tensor:
    return values


def _summed(reduce: Reduce, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int) -> tuple[float, float, int]:
    """Loss sum, correct count and images seen, added over the ranks in one collective (float64: exact
    counts)."""
    total = reduce(torch.stack([loss_sum.double(), correct.double(), torch.tensor(seen, dtype=torch.float64,
                                                                                   device=loss_sum.device)]))
    loss, hits, images = total.tolist()
    return loss, hits, int(images)


def evaluate(model: nn.Module, loader: Iterable, rt: Runtime, loss_fn: nn.Module,
             on_batch: BatchCallback | None = None, reduce: Reduce = _alone) -> dict[str, float]:
    """Sample-weighted test loss, test accuracy (percent) and eval_s.

    Correct predictions and the loss (batch mean × batch size) are summed on the device and read
    once at the end, as in training. Plain counting rather than torchmetrics keeps its import
    (about a second, torchvision included) out of time-to-accuracy's start-up; the tests check
    the result against torchmetrics' ``MulticlassAccuracy`` on the real test set. The model is left
    in the mode it was in. ``reduce``: the ranks' sums added (data-parallel evaluation, each rank its
    part of the test set).
    """
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=rt.device)
    correct = torch.zeros((), dtype=torch.int64, device=rt.device)
    seen = 0
    with Timer(rt.synchronize) as timer, torch.inference_mode():
        for x, y in _tracked(loader, "eval", on_batch):
            x, y = rt.to_device(x, y)
            with rt.autocast():
                logits = model(x)
            correct += (logits.argmax(dim=1) == y).sum()
            loss_sum += loss_fn(logits.float(), y) * y.shape[0]
            seen += y.shape[0]
        loss, hits, seen = _summed(reduce, loss_sum, correct, seen)
        result = {"test_loss": loss / seen, "test_acc_pct": 100.0 * hits / seen}
    model.train(was_training)
    return {**result, "eval_s": timer.seconds}


def make_loaders(cfg: RunConfig, rt: Runtime, shard: tuple[int, int] = (0, 1)) -> tuple[Iterable, Iterable]:
    """Train and test loaders for the config (a CUDA-graph step needs equal batches: drop_last); ``shard``
    (rank, world): this rank's part of both splits (``data.make_loader``)."""
    train = make_loader(cfg.loader, "train", cfg.batch_size, rt.device, cfg.data_root, drop_last=cfg.cuda_graph,
                        dataset=cfg.dataset, augment=cfg.augment, seed=cfg.seed, shard=shard)
    test = make_loader(cfg.loader, "test", cfg.eval_batch_size or cfg.batch_size, rt.device, cfg.data_root,
                       dataset=cfg.dataset, shard=shard)
    return train, test


def first_batch(loader: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """The first batch of a loader, drawn without touching the global RNG state."""
    with torch.random.fork_rng(devices=[]):
        return next(iter(loader))


@dataclass
class Training:
    """Everything one training run needs, built from a RunConfig (see ``build_training``)."""

    cfg: RunConfig
    rt: Runtime
    train_loader: Iterable
    test_loader: Iterable
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    step: TrainStep
    schedule: Any = None  # a learning-rate scheduler stepped after every step (lr_schedule onecycle)
    dist: Dist | None = None  # this process's rank in a data-parallel run (None: one process)
    steps: int = 0  # training steps taken so far
    passes: int = 0  # training passes (epochs, or rounds of max_steps) begun so far
    stopped: bool = False  # an on_step hook asked the run to stop

    def capture(self) -> None:
        """Replace the step by its CUDA-graph capture when the config asks (a no-op otherwise)."""
        if self.cfg.cuda_graph:
            self.model.train()
            self.step = self.rt.capture(self.step, *self.rt.to_device(*first_batch(self.train_loader)))

    def train_epoch(self, on_batch: BatchCallback | None = None, max_steps: int | None = None,
                    on_step: StepHook | None = None) -> dict[str, float]:
        """One training pass (or its first ``max_steps`` batches, or until ``on_step`` returns True).

        Returns train_loss, train_acc_pct, train_s, train_images, train_img_per_s; raises
        ``NonFiniteLoss`` when the pass's loss is not finite, naming the pass ("epoch", or "round"
        when ``max_steps`` slices it) and its first step whose loss was not finite. The check runs
        once, after the pass, so the loop never waits for the device.
        """
        self.model.train()
        self.passes += 1
        loss_sum = torch.zeros((), device=self.rt.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.rt.device)
        seen, started = 0, self.steps
        weighted: list[torch.Tensor] = []  # each step's loss × batch, kept to name a non-finite step
        with Timer(self.rt.synchronize) as timer:
            for i, (x, y) in enumerate(_tracked(self.train_loader, "train", on_batch)):
                if max_steps is not None and i >= max_steps:
                    break
                x, y = self.rt.to_device(x, y)
                loss, hits = self.step(x, y)
                weighted.append(loss * y.shape[0])  # a new tensor (a CUDA graph's outputs are overwritten)
                loss_sum += weighted[-1]
                correct += hits
                seen += y.shape[0]
                self.steps += 1
                if self.schedule is not None:
                    self.schedule.step()
                if on_step is not None and on_step(self.steps):
                    self.stopped = True
                    break
        loss, hits, seen = _summed(self.reduce, loss_sum, correct, seen)  # every rank's images
        row = {"train_loss": loss / seen, "train_acc_pct": 100.0 * hits / seen,
               "train_s": timer.seconds, "train_images": seen, "train_img_per_s": seen / timer.seconds}
        if self.dist is not None:
            row |= self.dist.columns(row["train_img_per_s"], self.cfg.batch_size)
        if not math.isfinite(row["train_loss"]):
            step, loss = first_non_finite(weighted)
            unit = "epoch" if max_steps is None else "round"
            raise NonFiniteLoss(loss, unit, self.passes, step, started + step, self.cfg, self.rt.precision)
        return row

    @property
    def reduce(self) -> Reduce:
        """Adds a tensor over the ranks (one process: returns it)."""
        return _alone if self.dist is None else self.dist.sum

    @property
    def module(self) -> nn.Module:
        """The model itself, out of its DistributedDataParallel wrapper (what a checkpoint saves)."""
        return self.model.module if self.dist is not None else self.model

    def evaluate(self, on_batch: BatchCallback | None = None) -> dict[str, float]:
        # The test loss is plain cross-entropy whatever the training loss smooths.
        return evaluate(self.model, self.test_loader, self.rt, nn.CrossEntropyLoss(), on_batch, self.reduce)


def build_training(run: RunConfig | Resolved, workload: str = "train", dist: Dist | None = None) -> Training:
    """Loaders, model (seeded with ``cfg.seed``, on the device, compiled if asked), optimiser, step, for
    the resolved run (``ensure_resolved``: a RunConfig is resolved here, for ``workload``). ``dist``: one
    rank of a data-parallel run: its shard of the data, the model in DistributedDataParallel.

    CUDA-graph capture is left to ``Training.capture()`` so that callers can time it.
    """
    run = ensure_resolved(run, workload)
    cfg, rt = run.cfg, Runtime.from_config(run)
    train_loader, test_loader = make_loaders(cfg, rt, (0, 1) if dist is None else dist.shard)
    seed_everything(cfg.seed)
    model = rt.prepare_model(get_model(cfg.model, **parse_model_args(cfg.model_args)),
                             wrap=None if dist is None else dist.wrap)
    optimizer = make_optimizer(cfg, model)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    step = make_train_step(model, optimizer, rt.amp, loss_fn)
    schedule = None
    if cfg.lr_schedule == "onecycle":  # peak lr cfg.lr over the whole budget of steps
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr,
                                                       total_steps=cfg.epochs * len(train_loader))
    return Training(cfg, rt, train_loader, test_loader, model, optimizer, loss_fn, step, schedule, dist=dist)


@dataclass
class FitResult:
    """What ``fit`` returns: the per-epoch rows and the trained model."""

    config: RunConfig  # the concrete config that ran (automatic choices made)
    rows: list[dict[str, float]] = field(default_factory=list)
    model: nn.Module | None = None
    runtime: dict[str, Any] = field(default_factory=dict)  # what "auto" choices resolved to, and why


def fit(run: RunConfig | Resolved, on_batch: BatchCallback | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None, dist: Dist | None = None) -> FitResult:
    """Train the run's model as its config says and evaluate after every epoch (``run``: resolved, or a
    RunConfig, resolved here once: ``ensure_resolved``).

    The torch RNG is seeded with ``cfg.seed`` before the model is built and again before the
    first epoch (as the seed notebook does), so the shuffle order does not depend on the model.
    Set-up (data loading, model build, compilation) stays outside the per-epoch clocks. ``dist``: this
    process is one rank of a data-parallel run (``train/dist.py``); every rank gets the same rows.
    """
    training = build_training(run, dist=dist)
    training.capture()
    cfg = training.cfg
    result = FitResult(cfg, model=training.module, runtime=training.rt.describe())
    seed_everything(cfg.seed)
    for epoch in range(1, cfg.epochs + 1):
        row: dict[str, float] = {"epoch": epoch}
        row |= training.train_epoch(on_batch)
        row |= training.evaluate(on_batch)
        result.rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return result


def make_predictions(model: nn.Module, samples: Sequence[torch.Tensor],
                     device: torch.device | None = None) -> torch.Tensor:
    """Class probabilities (N, 10) on the CPU for samples shaped (1, 28, 28), as in the notebook."""
    device = device or next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        batch = torch.stack([torch.as_tensor(s) for s in samples]).to(device)
        return torch.softmax(model(batch), dim=1).cpu()
