"""Three well-known MNIST baselines, for comparison with the seed's models (parameters and FLOPs are
pinned in tests/test_models.py):

- ``lenet5``: LeNet-5 (LeCun et al., 1998) on 28×28 input: the first convolution pads by 2 to keep
  the paper's 32×32 geometry; tanh and average pooling as in the paper, a linear head in place of the
  RBF output;
- ``examples-cnn``: the CNN of PyTorch's MNIST example: two 3×3 convolutions (32, 64), max-pool,
  dropout, Linear(9216, 128), dropout, Linear(128, 10); it returns logits (the example's log_softmax
  gives the same cross-entropy);
- ``mlp``: a plain multilayer perceptron, 784-256-256-10 with ReLU.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import NUM_CLASSES


class LeNet5(nn.Module):
    """conv5×5 (6, pad 2) → tanh → avgpool2 → conv5×5 (16) → tanh → avgpool2 → 120 → 84 → 10, tanh between."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5), nn.Tanh(), nn.AvgPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(),
            nn.Linear(84, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ExamplesCNN(nn.Module):
    """conv3×3 (32) → ReLU → conv3×3 (64) → ReLU → maxpool2 → dropout 0.25 → Linear(9216, 128) → ReLU →
    dropout 0.5 → Linear(128, 10); no padding, so 28 → 26 → 24 → 12."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3), nn.ReLU(), nn.Conv2d(32, 64, kernel_size=3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(0.25),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 12 * 12, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """Flatten → Linear(784, hidden) → ReLU → Linear(hidden, hidden) → ReLU → Linear(hidden, 10)."""

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
