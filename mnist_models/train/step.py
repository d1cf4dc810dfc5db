"""The training step: the one place that calls ``backward()``.

Forward under autocast, (scaled) backward, optimiser update. The autocast context and the
GradScaler both come from one ``device.Amp``, which reads them from the precision table: there is
no scaler argument, so fp16 cannot run without loss scaling. It takes a batch already on the
device and returns (batch mean loss, correct count) as device tensors, so a loop around it never
synchronises with the host; it is capturable in a CUDA graph. The engine's loop, the suite's
cases, time to accuracy and the automatic-precision probe all train through it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..host.device import Amp

TrainStep = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def make_train_step(model: nn.Module, optimizer: torch.optim.Optimizer, amp: Amp, loss_fn: nn.Module) -> TrainStep:
    """A step function for ``model``: ``amp`` (``Runtime.amp``) gives the precision's autocast context
    and its GradScaler, which scales the loss where the precision needs it (fp16)."""
    scaler = amp.grad_scaler()

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with amp.autocast():
            logits = model(x)
            loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach().float(), (logits.detach().argmax(dim=1) == y).sum()

    return step
