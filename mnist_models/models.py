"""MNIST classifiers and the model registry.

Every model takes a batch of images shaped (N, 1, 28, 28) with values in [0, 1] and returns
(N, 10) logits. Models are plain ``nn.Module`` classes with no training logic; the registry maps a
short name to a constructor so that the CLI, the tests and the benchmarks iterate over
``list_models()`` and pick up a new model without being edited.

    >>> from mnist_models import get_model, list_models
    >>> list_models()
    ['v0', 'v1', 'v2', 'fastnet']
    >>> get_model("v2")(torch.zeros(8, 1, 28, 28)).shape
    torch.Size([8, 10])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


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


class MNISTFastNet(nn.Module):
    """A CNN designed for time to accuracy on a CPU: few FLOPs at full resolution, capacity later.

    conv5x5 stride 2 (1→32) → BatchNorm → ReLU gives 14×14 straight away, so no layer runs at
    28×28; then conv3x3 (32→32) → BatchNorm → ReLU → maxpool2 (7×7) and an MLP head
    Linear(1568, 128) → ReLU → Linear(128, 10). BatchNorm lets it train with a large learning
    rate (Adam, one-cycle). From a search on 2 CPU cores (bf16, batch 128, Adam one-cycle over one
    epoch, seed 0): two conv3x3-BN-ReLU-pool blocks of 16/32 channels trained at about 17k img/s
    and ended at 98.7%; the same with an MLP head at 15.5k img/s and 99.0%; this net at about
    19.5k img/s and 99.2%. Narrower blocks (8/16 channels) ran slower, not faster (10.7k against
    18.4k img/s for 16/32, both at batch 256).
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


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build the model and one line saying what it is."""

    name: str
    builder: Callable[[], nn.Module]
    description: str


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, description: str) -> Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]]:
    """Decorator adding a zero-argument model constructor to ``MODELS`` under ``name``."""

    def add(builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = ModelSpec(name, builder, description)
        return builder

    return add


@register_model("v0", "seed MNISTModelV0: Flatten, Linear(784,10), Linear(10,10)")
def _v0() -> nn.Module:
    return MNISTModelV0()


@register_model("v1", "seed MNISTModelV1: Flatten, Linear(784,10), ReLU, Linear(10,10), ReLU")
def _v1() -> nn.Module:
    return MNISTModelV1()


@register_model("v2", "seed MNISTModelV2 (TinyVGG): 4 conv3x3 (10 ch), 2 maxpool, Linear(490,10)")
def _v2() -> nn.Module:
    return MNISTModelV2()


@register_model("fastnet", "time-to-accuracy CNN: conv5x5/2 + conv3x3 (32 ch, BatchNorm), maxpool, MLP 1568-128-10")
def _fastnet() -> nn.Module:
    return MNISTFastNet()


class UnknownModelError(KeyError):
    """Raised for a model name that is not in the registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def list_models() -> list[str]:
    """Names of all registered models, in registration order."""
    return list(MODELS)


def get_model(name: str) -> nn.Module:
    """Build a freshly initialised model by registry name (uses the current torch RNG state)."""
    try:
        spec = MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(list_models())}"
        ) from None
    return spec.builder()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def training_flops(model: nn.Module) -> int:
    """FLOPs of one training step per image: forward plus backward, counted (not assumed 3×).

    The input needs no gradient, so the first layer's input-gradient is not counted, as in a
    real step. The model's gradients are cleared afterwards.
    """
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    batch = 2
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(batch, *IMAGE_SHAPE, device=device)).sum().backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops()) // batch


def forward_flops(model: nn.Module) -> int:
    """Forward FLOPs for one image (2 per multiply-add), counted by ``torch.utils.flop_counter``.

    Counts the matmul/conv work only (bias adds, ReLU and pooling are not counted), the usual
    convention for model FLOPs.
    """
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *IMAGE_SHAPE, device=device))
    return int(counter.get_total_flops())


@functools.lru_cache(maxsize=None)
def model_flops(name: str) -> dict[str, int]:
    """Forward and training FLOPs per image of a registry model, counted once per process
    (building the model leaves the global RNG state as it was)."""
    with torch.random.fork_rng(devices=[]):
        model = get_model(name)
        return {"forward": forward_flops(model), "training": training_flops(model)}
