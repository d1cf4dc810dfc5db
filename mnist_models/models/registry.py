"""The model registry: a short name → where its class lives, one line saying what it is, and whether the
quick suite runs it by default. It imports no torch, so the command line lists the names and refuses an
unknown one at once; a model's module is imported when the model is built (``spec.py``).

A new built-in: write its class in a family module (``notebook.py``, ``fastnet.py``, ``classic.py``,
``bncnn.py``, or a new one) and add one line to ``BUILT_INS``. ``quick=False`` leaves it out of the quick
suite's default models (it runs in the full profile and with ``--bench-models all`` or by name): the quick
suite keeps its time budget because each model adds compilations no cut can shorten. ``register_model``
adds a constructor at run time (a test's model, a notebook's). Models of your own (a file, a module, an
installed package's entry point) go through ``spec.py``.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import UserError

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
ENTRY_POINT_GROUP = "mnist_bench.models"  # installed packages declare models here: name = "package.module:Name"
SPEC_FIX = "fix: pass a registered name (`mnist-bench models`), path/to/file.py:Name or package.module:Name"


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: what builds the model (``family.ClassName`` under this package, or a constructor),
    one line saying what it is, and whether the quick suite runs it by default."""

    name: str
    target: str | Callable[..., Any]
    description: str
    quick: bool = True

    def builder(self) -> Callable[..., Any]:
        """The constructor (keyword arguments optional), its module imported on first use."""
        if callable(self.target):
            return self.target
        family, _, name = self.target.rpartition(".")
        return getattr(importlib.import_module(f".{family}", __package__), name)


BUILT_INS = (
    ModelSpec("v0", "notebook.MNISTModelV0", "seed MNISTModelV0: Flatten, Linear(784,10), Linear(10,10)"),
    ModelSpec("v1", "notebook.MNISTModelV1", "seed MNISTModelV1: Flatten, Linear(784,10), ReLU, Linear(10,10), ReLU"),
    ModelSpec("v2", "notebook.MNISTModelV2",
              "seed MNISTModelV2 (TinyVGG): 4 conv3x3 (10 ch), 2 maxpool, Linear(490,10)"),
    ModelSpec("fastnet", "fastnet.MNISTFastNet",
              "time-to-accuracy CNN (to 2026-12-05): conv5x5/2 + conv3x3 (32 ch, BatchNorm), maxpool, MLP 1568-128-10",
              quick=False),
    ModelSpec("fastnet2", "fastnet.MNISTFastNet2", "time-to-accuracy CNN, `tta`'s: conv5x5/2 (32 ch, BatchNorm), "
              "maxpool, conv3x3 (48 ch, BatchNorm) at 7x7, MLP 2352-128-10"),
    ModelSpec("lenet5", "classic.LeNet5",
              "LeNet-5: conv5x5 (6, pad 2), avgpool, conv5x5 (16), avgpool, MLP 400-120-84-10, tanh", quick=False),
    ModelSpec("examples-cnn", "classic.ExamplesCNN",
              "PyTorch example CNN: conv3x3 32, conv3x3 64, maxpool, dropout, MLP 9216-128-10", quick=False),
    ModelSpec("mlp", "classic.MLP", "MLP baseline: 784-256-256-10, ReLU", quick=False),
    ModelSpec("bncnn", "bncnn.BNCNN", "modern small CNN: 5 conv3x3 + BatchNorm (32-32/2-64-64/2-128), global avg "
              "pool, Linear(128,10)", quick=False),
)
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in BUILT_INS}


def register_model(name: str, description: str,
                   quick: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding a model constructor (keyword arguments optional) to ``MODELS`` under ``name``
    (``quick``: in the quick suite's default models)."""

    def add(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = ModelSpec(name, builder, description, quick)
        return builder

    return add


class UnknownModelError(UserError, KeyError):
    """Raised for a model name that is not in the registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def list_models(pattern: str = "*", quick: bool = False) -> list[str]:
    """Names of the registered models matching a shell-style ``pattern``, in registration order (``quick``:
    only the quick suite's default models)."""
    return [name for name, spec in MODELS.items() if fnmatch.fnmatchcase(name, pattern) and (spec.quick or not quick)]


def is_spec(name: str) -> bool:
    """Whether ``name`` names a file or module (``…:Name``) rather than a registered model."""
    return ":" in name


def entry_points() -> dict[str, str]:
    """Models installed packages declare: name → ``package.module:Name``."""
    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


class ModelError(UserError, ValueError):
    """A model spec that cannot be used; the message is one line: the spec, the problem, the fix."""


def split_spec(spec: str, target_spec: str) -> tuple[str, str, bool]:
    """``path/to/net.py:Name`` or ``package.module:Name`` (``target_spec``, what ``spec`` stands for) → the
    file or module, the name in it, and whether it is a file; a malformed one is a ``ModelError``."""
    target, _, attr = target_spec.rpartition(":")
    if not target or not attr:
        raise ModelError(f"model {spec}: expected path/to/file.py:Name or package.module:Name; {SPEC_FIX}")
    return target, attr, target.endswith(".py") or "/" in target or "\\" in target


def check_name(name: str) -> None:
    """What can be said of a model spec without importing torch: a plain name must be registered or declared
    by an installed package (else ``UnknownModelError``, listing the known names); ``file.py:Name`` must be
    well formed and name an existing file (else ``ModelError``). The rest is checked when it is loaded
    (``spec.py``)."""
    if name in MODELS:
        return
    if is_spec(name):
        target, _, is_file = split_spec(name, name)
        if is_file and not Path(target).expanduser().is_file():
            raise ModelError(f"model {name}: no file {target} (from {Path.cwd()}); fix: pass path/to/file.py:Name "
                             "with the path of an existing Python file")
        return
    declared = entry_points()
    if name not in declared:
        extra = f"; installed: {', '.join(declared)}" if declared else ""
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}{extra}; or "
                                "your own as path/to/file.py:Name or package.module:Name")
