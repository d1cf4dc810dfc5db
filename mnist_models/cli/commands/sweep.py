"""``mnist-bench sweep [--lr 1e-4:1e-1:log] [--batch-size 64,128,256] [--optimizer sgd,adam] [--trials 20]
[--objective accuracy] [--storage URL] [--study NAME]``: search training settings with Optuna, every trial
a training run recorded like ``train``'s, into a study on SQLite (default ``results/sweeps/sweeps.db``) or
PostgreSQL that many workers can share; the page ``results/sweeps/<study>/report.html``
(``cli/actions/sweep.py``; the space's syntax: ``experiments/sweep_space.py``)."""

from __future__ import annotations

import argparse
import re
from dataclasses import MISSING

from rich.console import Console

from ...experiments.sweep_space import (
    DEFAULT_SPACE,
    FIELD_TYPES,
    OBJECTIVES,
    SWEEP_DEFAULTS,
    SWEPT,
    base_config,
    check_space,
    direction,
    parse_space,
)
from ..actions import action
from ..flags import (
    FIELDS,
    UsageError,
    add_config_flags,
    add_json,
    add_results,
    check_database_url,
    config_help,
    config_values,
    float_arg,
    int_arg,
)

FIXED = ("device", "loader", "model_args", "channels_last", "seed", "dataset", "data_root")
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # also the page's folder name

ORDER = 75  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="search training settings with Optuna (SQLite or PostgreSQL, many workers)")
    for name in SWEPT:
        p.add_argument("--" + name.replace("_", "-"), dest=name, metavar="SPACE", help=space_help(name))
    add_config_flags(p, FIXED, defaults=SWEEP_DEFAULTS,
                     notes={"seed": "every trial's training seed, and the sampler's"})
    p.add_argument("--objective", default="accuracy", choices=list(OBJECTIVES), metavar="|".join(OBJECTIVES),
                   help=("what the sweep optimises: " + "; ".join(f"{k}: {v[1]}" for k, v in OBJECTIVES.items())
                         + "; default accuracy").replace("%", "%%"))
    p.add_argument("--target", type=float_arg, default=99.0, metavar="PCT",
                   help="the test accuracy time-to-target counts to (default 99.0)")
    p.add_argument("--trials", type=int_arg, default=20, metavar="N",
                   help="the study's total: a worker stops when the study holds N finished (complete or pruned) "
                        "trials (default 20)")
    p.add_argument("--study", default="sweep", metavar="NAME", help="the study's name in the storage (default sweep)")
    p.add_argument("--storage", metavar="URL", help="sqlite:///path/file.db or postgresql://user@host:port/db; "
                   "workers given the same URL and --study share its trials (default sqlite:///RESULTS/sweeps/"
                   "sweeps.db)")
    p.add_argument("--no-prune", dest="prune", action="store_false",
                   help="train every trial to its end (default: a median pruner on each epoch's objective)")
    add_json(p)
    add_results(p)


def space_help(name: str) -> str:
    """A swept flag's help: the setting, the forms it takes, and what the sweep uses without it."""
    forms = "a list a,b or one value" if "str" in FIELD_TYPES[name] else "a range LOW:HIGH or LOW:HIGH:log, a list " \
        "a,b or one value"
    default = DEFAULT_SPACE.get(name, SWEEP_DEFAULTS.get(name, FIELDS[name].default))
    return config_help(name, MISSING).split("; default")[0] + f"; {forms}; default {default}".replace("%", "%%")


def check(args: argparse.Namespace) -> None:
    """Everything that needs no torch and no database: the space, the objective, the counts, the names."""
    direction(args.objective)
    if args.trials < 1:
        raise UsageError(f"--trials {args.trials}: a study needs at least 1 trial; fix: pass --trials 1 or more")
    if args.objective == "time-to-target" and not 0 < args.target <= 100:
        raise UsageError(f"--target {args.target:g}: outside (0, 100]; fix: a test accuracy in percent, e.g. 99")
    if not STUDY_NAME.match(args.study):
        raise UsageError(f"--study {args.study!r}: letters, digits, '.', '_' and '-' only (at most 100, no leading "
                         "punctuation); fix: e.g. --study lr-search")
    check_database_url("--storage", args.storage)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    check(args)
    space = parse_space({name: getattr(args, name) for name in SWEPT})
    base = base_config(space, **config_values(args, FIXED))
    check_space(space, base)
    return action(__name__).run(space, base, args, out, err)
