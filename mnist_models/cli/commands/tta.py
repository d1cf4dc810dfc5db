"""``mnist-bench tta [--model fastnet] [--target 99.0] [--seeds 5]``: time to a target test accuracy,
one fresh process per seed, MLPerf-style report → ``tta.{csv,md}``, results-page block ``tta-table``
(``cli/actions/tta.py``)."""

from __future__ import annotations

import argparse

from rich.console import Console

from ...config import MEASURED_DEFAULTS, RunConfig
from ...experiments import time_to_accuracy as tta
from ..actions import action
from ..flags import add_config_flags, add_json, add_readme, add_results, check_readme, config_values, parse_seeds

MARKER = "tta-table"
SETTINGS = ("model", "model_args", "target_pct", "device", "precision", "channels_last", "epochs", "eval_every",
            "eval_from", "dataset", "data_root")
DEFAULTS = {"model": tta.TTA_MODEL, "target_pct": tta.TTA_TARGET_PCT, **MEASURED_DEFAULTS, "epochs": tta.TTA_MAX_EPOCHS,
            "eval_every": tta.TTA_EVAL_EVERY, "eval_from": tta.TTA_EVAL_FROM}

ORDER = 70  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tta", help="time to a target test accuracy, one process per seed, MLPerf-style report")
    p.add_argument("--seeds", default="5", help="count (5 → seeds 0–4, the default) or comma list")
    add_config_flags(p, SETTINGS, defaults=DEFAULTS, flags={"epochs": "--max-epochs"},
                     notes={"precision": "measured once before the seeds", "epochs": "the training budget"})
    add_json(p)
    add_readme(p, MARKER)
    add_results(p)


def config(args: argparse.Namespace) -> RunConfig:
    """The recipe's RunConfig with the flags given (``time_to_accuracy.recipe``'s defaults elsewhere)."""
    given = {k: v for k, v in config_values(args, SETTINGS).items() if v is not None}
    if "epochs" in given:
        given["max_epochs"] = given.pop("epochs")
    return tta.recipe(**given)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    base = config(args)
    seeds = parse_seeds(args.seeds)
    check_readme(args.readme, MARKER)
    return action(__name__).run(base, seeds, MARKER, args, out, err)
