"""MNIST classifiers and their registry.

Every model takes a batch of images shaped (N, 1, 28, 28) with values in [0, 1] and returns
(N, 10) logits. Models are plain ``nn.Module`` classes with no training logic.

- ``registry.py``: the built-ins, ``register_model``, ``list_models(pattern)``;
- ``spec.py``: a spec (a registered name, ``file.py:Name``, ``module:Name``) → ``get_model(spec, **kw)``,
  ``check_model`` (one batch through it before training), ``model_source`` (what rows record);
- one module per family: ``notebook.py`` (the seed notebook's V0–V2), ``fastnet.py``, ``classic.py``
  (LeNet-5, PyTorch's example CNN, an MLP), ``bncnn.py`` (a modern small CNN for accuracy);
- ``flops.py``: parameter and FLOP counts.

    >>> from mnist_models.models import get_model, list_models
    >>> list_models()
    ['v0', 'v1', 'v2', 'fastnet', 'lenet5', 'examples-cnn', 'mlp', 'bncnn']
    >>> list_models(quick=True)
    ['v0', 'v1', 'v2', 'fastnet']
    >>> list_models("v*")
    ['v0', 'v1', 'v2']
    >>> get_model("v2")(torch.zeros(8, 1, 28, 28)).shape
    torch.Size([8, 10])
"""

from __future__ import annotations

import importlib

import torch  # noqa: F401 - the doctest above uses it

from .registry import (
    IMAGE_SHAPE,
    MODELS,
    NUM_CLASSES,
    ModelSpec,
    UnknownModelError,
    list_models,
    register_model,
)
from .spec import (
    ModelError,
    ModelSource,
    check_model,
    entry_points,
    get_model,
    is_spec,
    model_source,
    parse_model_args,
    slug,
)

# Importing a family registers its models; the registry lists them in this order. A new family
# module is added here.
FAMILIES = ("notebook", "fastnet", "classic", "bncnn")
for _family in FAMILIES:
    importlib.import_module(f".{_family}", __name__)

from .bncnn import BNCNN  # noqa: E402 - after the registration order is fixed above
from .classic import MLP, ExamplesCNN, LeNet5  # noqa: E402
from .fastnet import MNISTFastNet  # noqa: E402
from .flops import count_parameters, forward_flops, model_flops, training_flops  # noqa: E402
from .notebook import MNISTModelV0, MNISTModelV1, MNISTModelV2  # noqa: E402

__all__ = ["BNCNN", "ExamplesCNN", "FAMILIES", "IMAGE_SHAPE", "LeNet5", "MLP", "MNISTFastNet",
           "MNISTModelV0", "MNISTModelV1", "MNISTModelV2", "MODELS", "ModelError", "ModelSource",
           "ModelSpec", "NUM_CLASSES", "UnknownModelError", "check_model", "count_parameters",
           "entry_points", "forward_flops", "get_model", "is_spec", "list_models", "model_flops",
           "model_source", "parse_model_args", "register_model", "slug", "training_flops"]
