"""The model registry of built-ins: a short name → a constructor, so the CLI, the tests and the benchmarks iterate
``list_models()`` and pick up a new model without being edited.

A new model: write its class in a family module (``notebook.py``, ``fastnet.py``, ``classic.py``,
``bncnn.py``, or a new one imported by ``models/__init__.py``) and decorate a constructor with
``@register_model(name, description)``. ``quick=False`` leaves it out of the quick suite's default models
(it runs in the full profile and with ``--bench-models all`` or by name): the quick suite keeps its time
budget because each model adds compilations no cut can shorten.
Building one, and models of your own (a file, a module, an installed package's entry point), goes
through ``spec.py``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build the model and one line saying what it is."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    quick: bool = True  # in the quick suite's default models


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, description: str,
                   quick: bool = True) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a model constructor (keyword arguments optional) to ``MODELS`` under ``name``
    (``quick``: in the quick suite's default models)."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = ModelSpec(name, builder, description, quick)
        return builder

    return add


class UnknownModelError(KeyError):
    """Raised for a model name that is not in the registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def list_models(pattern: str = "*", quick: bool = False) -> list[str]:
    """Names of the registered models matching a shell-style ``pattern``, in registration order (``quick``:
    only the quick suite's default models)."""
    return [name for name, spec in MODELS.items() if fnmatch.fnmatchcase(name, pattern) and (spec.quick or not quick)]
