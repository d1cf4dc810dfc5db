"""``bncnn``: a modern small CNN for accuracy: 3×3 convolutions with BatchNorm, strided convolutions in
place of pooling, global average pooling, one linear layer. Its recipe (docs/models.md) reaches 99.6%
mean test accuracy over 5 seeds on MNIST."""

from __future__ import annotations

import torch
from torch import nn

from .registry import NUM_CLASSES


def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class BNCNN(nn.Module):
    """Five conv3×3 → BatchNorm → ReLU layers, widths c, c, 2c, 2c, 4c; the 2nd and 4th have stride 2
    (28 → 14 → 7); global average pooling; Linear(4c, 10)."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = channels
        self.features = nn.Sequential(
            *_conv_bn(1, c), *_conv_bn(c, c, stride=2),
            *_conv_bn(c, 2 * c), *_conv_bn(2 * c, 2 * c, stride=2),
            *_conv_bn(2 * c, 4 * c), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.classifier = nn.Linear(4 * c, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
