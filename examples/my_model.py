"""A model of your own, as mnist-bench takes it: ``--model examples/my_model.py:SmallCNN``.

Any ``nn.Module`` subclass (or a function returning one) that maps a ``(N, 1, 28, 28)`` batch of
images in [0, 1] to ``(N, 10)`` logits. Constructor arguments come from ``--model-arg key=value``,
e.g. ``--model-arg width=32``.
"""

from torch import nn


class SmallCNN(nn.Module):
    """Two 3×3 convolutions with max-pooling, then one linear layer."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 28 → 14
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14 → 7
        )
        self.classifier = nn.Linear(2 * width * 7 * 7, 10)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def wide(width: int = 32) -> nn.Module:
    """A factory: the same network, wider."""
    return SmallCNN(width=width)
