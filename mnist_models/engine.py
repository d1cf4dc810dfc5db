"""Training and evaluation loops that return tidy rows (dicts); they never print.

- ``train_one_epoch``: one pass over the training loader, timed with the device synchronised;
  loss and accuracy are accumulated on the device (no per-batch host synchronisation).
- ``evaluate``: test loss and accuracy, sample-weighted and counted on the device, timed on its own.
- ``fit(cfg)``: builds data, model, optimiser from a ``RunConfig`` and returns one row per epoch.
- ``make_predictions``: class probabilities for a list of samples, as in the seed notebook.

Row keys (units in the names): epoch, train_loss, train_acc_pct, test_loss, test_acc_pct,
train_s (seconds of the training pass, data loading included, evaluation excluded), eval_s,
train_images, train_img_per_s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from .config import RunConfig
from .data import make_loader
from .models import get_model
from .runtime import Runtime, Timer, seed_everything

# Called as on_batch(phase, done, total) after each batch; phase is "train" or "eval".
BatchCallback = Callable[[str, int, int], None]


class TrainingError(RuntimeError):
    """Training diverged (non-finite loss)."""


def _tracked(loader: Iterable, phase: str, on_batch: BatchCallback | None) -> Iterable:
    if on_batch is None:
        yield from loader
        return
    total = len(loader)  # type: ignore[arg-type]
    for done, batch in enumerate(loader, start=1):
        yield batch
        on_batch(phase, done, total)


def make_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimiser the config names: plain SGD (no momentum, no weight decay) or Adam.

    Adam uses the fused kernel (one per parameter instead of about ten small ops): on 2 CPU
    cores fastnet's bf16 step ran 5% faster with it (20.6k against 19.5k img/s), where torch's
    CPU default is the per-tensor loop. A CUDA-graph-captured Adam instead keeps its step count
    on the device (capturable=True). Fused SGD made no measurable difference, so SGD is left as
    torch defaults it.
    """
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr)
    if cfg.cuda_graph:
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, capturable=True)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)


# A training step takes a batch on the device and returns (batch mean loss, correct count) as
# device tensors, so the loop never synchronises with the host.
TrainStep = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def make_train_step(model: nn.Module, optimizer: torch.optim.Optimizer, rt: Runtime,
                    scaler: torch.amp.GradScaler, loss_fn: nn.Module) -> TrainStep:
    """Forward under autocast, (scaled) backward, optimiser update; capturable in a CUDA graph."""

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with rt.autocast():
            logits = model(x)
            loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach().float(), (logits.detach().argmax(dim=1) == y).sum()

    return step


def train_one_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, rt: Runtime,
                    scaler: torch.amp.GradScaler | None, loss_fn: nn.Module,
                    on_batch: BatchCallback | None = None, max_steps: int | None = None,
                    step: TrainStep | None = None) -> dict[str, float]:
    """One training pass (or its first ``max_steps`` batches).

    Returns train_loss, train_acc_pct, train_s, train_images, train_img_per_s. ``step`` defaults
    to ``make_train_step(...)``; ``fit`` passes a CUDA-graph-captured one when the config asks.
    """
    step = step or make_train_step(model, optimizer, rt, scaler or rt.grad_scaler(), loss_fn)
    model.train()
    loss_sum = torch.zeros((), device=rt.device)
    correct = torch.zeros((), dtype=torch.int64, device=rt.device)
    seen = 0
    with Timer(rt.synchronize) as timer:
        for i, (x, y) in enumerate(_tracked(loader, "train", on_batch)):
            if max_steps is not None and i >= max_steps:
                break
            x, y = rt.to_device(x, y)
            loss, hits = step(x, y)
            loss_sum += loss * y.shape[0]
            correct += hits
            seen += y.shape[0]
    return {
        "train_loss": loss_sum.item() / seen,
        "train_acc_pct": 100.0 * correct.item() / seen,
        "train_s": timer.seconds,
        "train_images": seen,
        "train_img_per_s": seen / timer.seconds,
    }


def evaluate(model: nn.Module, loader: Iterable, rt: Runtime, loss_fn: nn.Module,
             on_batch: BatchCallback | None = None) -> dict[str, float]:
    """Sample-weighted test loss, test accuracy (percent) and eval_s.

    Correct predictions and the loss (batch mean × batch size) are summed on the device and read
    once at the end, as in training. Plain counting rather than torchmetrics keeps its import
    (about a second, torchvision included) out of time-to-accuracy's start-up; the tests check
    the result against torchmetrics' ``MulticlassAccuracy`` on the real test set.
    """
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
        result = {"test_loss": loss_sum.item() / seen, "test_acc_pct": 100.0 * correct.item() / seen}
    return {**result, "eval_s": timer.seconds}


def make_loaders(cfg: RunConfig, rt: Runtime) -> tuple[Iterable, Iterable]:
    """Train and test loaders for the config (a CUDA-graph step needs equal batches: drop_last)."""
    train = make_loader(cfg.loader, "train", cfg.batch_size, rt.device, cfg.data_root, drop_last=cfg.cuda_graph)
    test = make_loader(cfg.loader, "test", cfg.eval_batch_size or cfg.batch_size, rt.device, cfg.data_root)
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

    def capture(self) -> None:
        """Replace the step by its CUDA-graph capture when the config asks (a no-op otherwise)."""
        if self.cfg.cuda_graph:
            self.model.train()
            self.step = self.rt.capture(self.step, *self.rt.to_device(*first_batch(self.train_loader)))

    def train_epoch(self, on_batch: BatchCallback | None = None, max_steps: int | None = None) -> dict[str, float]:
        return train_one_epoch(self.model, self.train_loader, self.optimizer, self.rt, None, self.loss_fn,
                               on_batch, max_steps=max_steps, step=self.step)

    def evaluate(self, on_batch: BatchCallback | None = None) -> dict[str, float]:
        # The test loss is plain cross-entropy whatever the training loss smooths.
        return evaluate(self.model, self.test_loader, self.rt, nn.CrossEntropyLoss(), on_batch)


def build_training(cfg: RunConfig) -> Training:
    """Loaders, model (seeded with ``cfg.seed``, on the device, compiled if asked), optimiser, step.

    CUDA-graph capture is left to ``Training.capture()`` so that callers can time it.
    """
    rt = Runtime.from_config(cfg)
    train_loader, test_loader = make_loaders(cfg, rt)
    seed_everything(cfg.seed)
    model = rt.prepare_model(get_model(cfg.model))
    optimizer = make_optimizer(cfg, model)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    step = make_train_step(model, optimizer, rt, rt.grad_scaler(), loss_fn)
    return Training(cfg, rt, train_loader, test_loader, model, optimizer, loss_fn, step)


@dataclass
class FitResult:
    """What ``fit`` returns: the per-epoch rows and the trained model."""

    config: RunConfig
    rows: list[dict[str, float]] = field(default_factory=list)
    model: nn.Module | None = None
    runtime: dict[str, Any] = field(default_factory=dict)  # what "auto" choices resolved to


def fit(cfg: RunConfig, on_batch: BatchCallback | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None) -> FitResult:
    """Train ``cfg.model`` as the config says and evaluate after every epoch.

    The torch RNG is seeded with ``cfg.seed`` before the model is built and again before the
    first epoch (as the seed notebook does), so the shuffle order does not depend on the model.
    Set-up (data loading, model build, compilation) stays outside the per-epoch clocks.
    """
    training = build_training(cfg)
    training.capture()
    rt = training.rt
    result = FitResult(cfg, model=training.model, runtime=rt.describe())
    seed_everything(cfg.seed)
    for epoch in range(1, cfg.epochs + 1):
        row: dict[str, float] = {"epoch": epoch}
        row |= training.train_epoch(on_batch)
        if not math.isfinite(row["train_loss"]):
            raise TrainingError(f"training loss became {row['train_loss']} in epoch {epoch} "
                                f"({cfg.model}, lr {cfg.lr}, {rt.precision}); fix: lower --lr")
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
