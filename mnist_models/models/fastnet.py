"""``fastnet``: a small CNN designed for time to accuracy on a CPU (why it looks like this:
docs/decisions.md, 2026-11-25)."""

from __future__ import annotations

import torch
from torch import nn

from .registry import NUM_CLASSES


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


class MNISTFastNet2(nn.Module):
    """fastnet with its second convolution moved after the pooling: the same 14×14 start, then maxpool2
    to 7×7, where conv3x3 (32→48) costs a third of fastnet's conv at 14×14 (the step is 1.2× faster
    at batch 256 on the 2-core EPYC), and an MLP head Linear(2352, 128) → ReLU → Linear(128, 10). Chosen
    for time to accuracy by measurement (docs/decisions.md, 2026-12-06).
    """

    def __init__(self, channels: int = 32, wide: int = 48, hidden: int = 128) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=5, stride=2, padding=2, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, wide, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(wide), nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(wide * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
