"""``fastnet``: a small CNN designed for time to accuracy on a CPU (why it looks like this:
docs/decisions.md, 2026-11-25)."""

from __future__ import annotations

import torch
from torch import nn

from .registry import NUM_CLASSES, register_model


class MNISTFastNet(nn.Module):
    """Few FLOPs at full resolution, capacity later.

    conv5x5 stride 2 (1→32) → BatchNorm → ReLU gives 14×14 straight away, so no layer runs at
    28×28; then conv3x3 (32→32) → BatchNorm → ReLU → maxpool2 (7×7) and an MLP head
    Linear(1568, 128) → ReLU → Linear(128, 10). BatchNorm lets it train with a large learning
    rate (Adam, one-cycle).
    """

    def __init__(self, channels: int = 32, hidden: int = 128) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=5, stride=2, padding=2, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model("fastnet", "time-to-accuracy CNN: conv5x5/2 + conv3x3 (32 ch, BatchNorm), maxpool, MLP 1568-128-10")
def _fastnet(channels: int = 32, hidden: int = 128) -> nn.Module:
    return MNISTFastNet(channels, hidden)
