"""The training step: the one place that calls ``backward()``.

Forward under autocast, (scaled) backward, optimiser update. It takes a batch already on the
device and returns (batch mean loss, correct count) as device tensors, so a loop around it never
synchronises with the host; it is capturable in a CUDA graph. The engine's loop, the suite's
cases, time to accuracy and the automatic-precision probe all train through it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

TrainStep = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def make_train_step(model: nn.Module, optimizer: torch.optim.Optimizer, autocast: Callable[[]],
                    scaler: torch.amp.GradScaler, loss_fn: nn.Module) -> TrainStep:
    """A step function for ``model``: ``autocast`` gives the precision's context (``Runtime.autocast``),
    ``scaler`` scales the loss where the precision needs it (fp16)."""

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast():
            logits = model(x)
            loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach().float(), (logits.detach().argmax(dim=1) == y).sum()

    return step
