"""The seed notebook's V2 (TinyVGG) written out as a model of one's own: ``--model examples/tinyvgg.py:TinyVGG``.

The same layers in the same order as the built-in ``v2``, so the two train alike and, loaded by path or by
name, run at the same speed (docs/models.md shows the measurement).
"""

from torch import nn


class TinyVGG(nn.Module):
    """The seed notebook's V2, written out in a file of one's own (same layers, same order)."""

    def __init__(self, hidden_units: int = 10) -> None:
        super().__init__()
        h = hidden_units
        self.block_1 = nn.Sequential(nn.Conv2d(1, h, 3, padding=1), nn.ReLU(), nn.Conv2d(h, h, 3, padding=1),
                                     nn.ReLU(), nn.MaxPool2d(2))
        self.block_2 = nn.Sequential(nn.Conv2d(h, h, 3, padding=1), nn.ReLU(), nn.Conv2d(h, h, 3, padding=1),
                                     nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(h * 7 * 7, 10))

    def forward(self, x):
        return self.classifier(self.block_2(self.block_1(x)))
