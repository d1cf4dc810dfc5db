"""The model registry: a short name → a constructor, so the CLI, the tests and the benchmarks iterate
``list_models()`` and pick up a new model without being edited.

A new model: write its class in a family module (``notebook.py``, ``fastnet.py``, or a new one imported
by ``models/__init__.py``) and decorate a constructor with ``@register_model(name, description)``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: how to build the model and one line saying what it is."""

    name: str
    builder: Callable[..., nn.Module]
    description: str


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, description: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a model constructor (keyword arguments optional) to ``MODELS`` under ``name``."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = ModelSpec(name, builder, description)
        return builder

    return add


class UnknownModelError(KeyError):
    """Raised for a model name that is not in the registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a shell-style ``pattern``, in registration order."""
    return [name for name in MODELS if fnmatch.fnmatchcase(name, pattern)]


def check_model(name: str) -> None:
    """Raise ``UnknownModelError`` (listing the known names) unless ``name`` is registered."""
    if name not in MODELS:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}")


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a freshly initialised model by registry name (uses the current torch RNG state);
    ``kwargs`` go to its constructor (e.g. ``hidden_units=16`` for the seed models)."""
    check_model(name)
    return MODELS[name].builder(**kwargs)
