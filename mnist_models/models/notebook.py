"""The seed notebook's three models, kept exactly as published: V0 (linear), V1 (linear + ReLU),
V2 (TinyVGG). Each takes (N, 1, 28, 28) images in [0, 1] and returns (N, 10) logits."""

from __future__ import annotations

import torch
from torch import nn

from .registry import NUM_CLASSES


class MNISTModelV0(nn.Module):
    """The seed's linear baseline: Flatten → Linear(784, hidden) → Linear(hidden, 10)."""

    def __init__(self, hidden_units: int = 10) -> None:
        super().__init__()
        self.layer_stack = nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, hidden_units),
            nn.Linear(hidden_units, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_stack(x)


class MNISTModelV1(nn.Module):
    """The seed's non-linear MLP, kept exactly as published.

    The final ReLU sits on the logits, so negative logits are clipped to zero; with the seed's
    lr 0.01 that is why V1 scores well below V0. It is a faithful reproduction, not a bug fix.
    """

    def __init__(self, hidden_units: int = 10) -> None:
        super().__init__()
        self.layer_stack = nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, hidden_units),
            nn.ReLU(),
            nn.Linear(hidden_units, NUM_CLASSES),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_stack(x)


class MNISTModelV2(nn.Module):
    """TinyVGG: two blocks of (conv3x3 → ReLU → conv3x3 → ReLU → maxpool2), then a linear head.

    padding=1 keeps 28×28 through each conv; the two pools give 7×7, so the head sees
    hidden_units × 7 × 7 = 490 features.
    """

    def __init__(self, hidden_units: int = 10) -> None:
        super().__init__()
        self.block_1 = nn.Sequential(
            nn.Conv2d(1, hidden_units, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden_units, hidden_units, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
        )
        self.block_2 = nn.Sequential(
            nn.Conv2d(hidden_units, hidden_units, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden_units, hidden_units, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(hidden_units * 7 * 7, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.block_2(self.block_1(x)))
