"""``mnist-bench profile [--model v2] [--variant eager] [--wait 1 --warmup 3 --active 5]``: a short
training run under ``torch.profiler``, apart from any timed run, into ``results/profiles/<id>/``
(``report.profile.make_profile``; the files: ``runs/profiles.py``). ``--nproc N`` profiles a data-parallel run
of N ranks launched here through ``torch.distributed.run`` (as ``train --nproc``); ``--ddp`` is one rank of a
job ``torchrun`` started: every rank writes its own trace into the one folder, rank 0 the rest.

``mnist-bench profile --diff A B``: the operator-level diff of two such folders, printed and written as
``B/diff.md`` (``report.profile.profile_diff``).
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from ...variants import list_variants
from ..actions import action
from ..flags import (
    UsageError,
    add_config_flags,
    add_dist_flags,
    add_json,
    check_dist,
    config_values,
    distributed,
    float_arg,
    int_arg,
)

SETTINGS = ("model", "model_args", "device", "precision", "compile", "channels_last", "loader", "batch_size",
            "augment", "dataset", "data_root")
DEFAULTS = {"model": "v2", "batch_size": 32, "precision": None, "compile": None, "loader": None}  # None: the variant's
STEPS = (("wait", 1, "steps run before the profiler starts"),
         ("warmup", 3, "steps traced but dropped (the profiler's start-up)"),
         ("active", 5, "steps recorded; also the steps timed without the profiler, before and after"))

ORDER = 90  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="a short training run under torch.profiler: trace (Perfetto, TensorBoard), "
                                       "operator table, flame-graph stacks, step-time breakdown, profiler overhead")
    add_config_flags(p, SETTINGS, defaults=DEFAULTS, notes={
        "precision": "default: the variant's (fp32 for eager)", "compile": "default: the variant's (none for eager)",
        "loader": "default: the variant's (fast; notebook for notebook-loader)",
        "channels_last": "here the variant's (NCHW for eager)"})
    p.add_argument("--variant", default="eager", metavar="NAME", help="a benchmark variant applied to the suite's "
                   f"baseline, before the flags above: {', '.join(list_variants())}; default eager")
    for name, default, what in STEPS:
        p.add_argument(f"--{name}", type=int_arg, default=default, metavar="N", help=f"{what}; default {default}")
    p.add_argument("--results", metavar="DIR", default="results",
                   help="results folder; the profile goes to DIR/profiles/<id>/ (default: results)")
    p.add_argument("--diff", nargs=2, metavar=("A", "B"),
                   help="instead of profiling: compare two profile folders' operators, write B/diff.md")
    p.add_argument("--min-change", type=float_arg, default=10.0, metavar="PCT",
                   help="--diff: list an operator as slower/faster from this change in percent; default 10")
    p.add_argument("--min-us", type=float_arg, default=10.0, metavar="US",
                   help="--diff: … and from this change in µs per step; default 10")
    p.add_argument("--by", choices=("shape", "op"), default="shape", help="--diff: match operators with their "
                   "input shapes (shape) or by name alone (op); default shape")
    add_dist_flags(p, "profile")
    add_json(p)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The config flags; one not given takes the default its help states (None: the variant's)."""
    given = config_values(args, SETTINGS)
    return {name: DEFAULTS.get(name) if value is None else value for name, value in given.items()}


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.diff and distributed(args):
        raise UsageError("--diff compares two profile folders and --nproc/--ddp profile a data-parallel run; fix: "
                         "drop one (profile, then --diff the folders)")
    check_dist(args)
    if args.diff and (args.min_change < 0 or args.min_us < 0):
        raise UsageError("--min-change and --min-us must be ≥ 0")
    given = None if args.diff else settings(args)
    return action(__name__).run(given, args, out, err)
