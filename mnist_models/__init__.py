"""mnist_models: verified MNIST, the seed notebook's models, and honest train/eval loops.

    from mnist_models import RunConfig, fit, get_model, list_models
    result = fit(RunConfig.from_protocol("seed", model="v2"))
    result.rows[-1]["test_acc_pct"]

The command line is ``mnist-bench`` (or ``python -m mnist_models``); see README.md.
"""

from .config import ConfigError, RunConfig
from .engine import evaluate, fit, make_predictions, train_one_epoch
from .models import count_parameters, forward_flops, get_model, list_models

__all__ = [
    "ConfigError",
    "RunConfig",
    "count_parameters",
    "evaluate",
    "fit",
    "forward_flops",
    "get_model",
    "list_models",
    "make_predictions",
    "train_one_epoch",
]
