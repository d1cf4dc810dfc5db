"""mnist_models: verified MNIST, the seed notebook's models, and honest train/eval loops.

    from mnist_models import RunConfig, fit, get_model, list_models
    result = fit(RunConfig.from_protocol("notebook", model="v2"))
    result.rows[-1]["test_acc_pct"]

The command line is ``mnist-bench`` (or ``python -m mnist_models``); see README.md.

Where things live (top layer first; every import points down this list, held by ``make lint``):
``cli/`` (one module per command), ``report/`` (run report, compare, tables; the one publish path),
``experiments/`` (the suite, reproduction, fast path, time to accuracy), ``measure/`` (timing, stats,
probes, significance), ``train/`` (runtime, the one training loop), ``runs/`` (THE run-folder format),
``data/``, ``results/`` (store, provenance), ``host/`` (machine, devices, precision table, clocks),
``variants.py``, ``config.py`` (RunConfig), ``models/``.

The names below are imported on first use, so that ``import mnist_models`` (which the
time-to-accuracy worker does before its start-up clock sees the torch import) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigError": "config",
    "RunConfig": "config",
    "evaluate": "train.engine",
    "fit": "train.engine",
    "make_predictions": "train.engine",
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
