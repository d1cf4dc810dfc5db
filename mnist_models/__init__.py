"""mnist_models: verified MNIST, the seed notebook's models, and honest train/eval loops.

    from mnist_models import RunConfig, fit, get_model, list_models
    result = fit(RunConfig.from_protocol("seed", model="v2"))
    result.rows[-1]["test_acc_pct"]

The command line is ``mnist-bench`` (or ``python -m mnist_models``); see README.md.

The names below are imported on first use, so that ``import mnist_models`` (and the CLI's start,
which time to accuracy counts from process start) does not import torch before it is needed.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigError": "config",
    "RunConfig": "config",
    "evaluate": "engine",
    "fit": "engine",
    "make_predictions": "engine",
    "train_one_epoch": "engine",
    "count_parameters": "models",
    "forward_flops": "models",
    "get_model": "models",
    "list_models": "models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
