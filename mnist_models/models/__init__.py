"""MNIST classifiers and their registry.

Every model takes a batch of images shaped (N, 1, 28, 28) with values in [0, 1] and returns
(N, 10) logits. Models are plain ``nn.Module`` classes with no training logic.

- ``registry.py``: the built-ins, ``register_model``, ``list_models(pattern)``, ``check_name``; no torch, so
  the command line checks a model name without importing it;
- ``spec.py``: a spec (a registered name, ``file.py:Name``, ``module:Name``) → ``get_model(spec, **kw)``,
  ``check_model`` (one batch through it before training), ``model_source`` (what rows record);
- one module per family: ``notebook.py`` (the seed notebook's V0–V2), ``fastnet.py``, ``classic.py``
  (LeNet-5, PyTorch's example CNN, an MLP), ``bncnn.py`` (a modern small CNN for accuracy);
- ``flops.py``: parameter and FLOP counts.

The names from ``spec.py``, ``flops.py`` and the families are imported on first use (``_LAZY``): importing
this package costs no torch.

    >>> import torch
    >>> from mnist_models.models import get_model, list_models
    >>> list_models()
    ['v0', 'v1', 'v2', 'fastnet', 'fastnet2', 'lenet5', 'examples-cnn', 'mlp', 'bncnn']
    >>> list_models(quick=True)
    ['v0', 'v1', 'v2', 'fastnet2']
    >>> list_models("v*")
    ['v0', 'v1', 'v2']
    >>> get_model("v2")(torch.zeros(8, 1, 28, 28)).shape
    torch.Size([8, 10])
"""

from __future__ import annotations

import importlib
from typing import Any

from .registry import (
    BUILT_INS,
    IMAGE_SHAPE,
    MODELS,
    NUM_CLASSES,
    ModelError,
    ModelSpec,
    UnknownModelError,
    check_name,
    entry_points,
    is_spec,
    list_models,
    register_model,
)

# name → the module (under this package) that defines it, imported when the name is first read.
_LAZY = {
    **dict.fromkeys(("ModelSource", "check_model", "get_model", "model_source", "parse_model_args",
                     "slug"), "spec"),
    **dict.fromkeys(("count_parameters", "forward_flops", "model_flops", "training_flops"), "flops"),
    **{spec.target.rpartition(".")[2]: spec.target.rpartition(".")[0] for spec in BUILT_INS},
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


__all__ = ["BUILT_INS", "IMAGE_SHAPE", "MODELS", "ModelError", "ModelSpec", "NUM_CLASSES", "UnknownModelError",
           "check_name", "entry_points", "is_spec", "list_models", "register_model", *_LAZY]
