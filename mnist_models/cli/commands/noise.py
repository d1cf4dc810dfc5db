"""``mnist-bench noise RUNS... [--detect PCT] [--out DIR]``: how noisy is each case from run to run, and
how often would the gate cry wolf? Takes runs of unchanged code on one machine (a results folder stands
for every run in it), compares every pair, and writes ``noise.md`` (the gate's false alarms on these
A/A pairs, the planted slowdowns it catches, the noise per case class) and ``noise.csv`` (each case's
between-run σ) into ``--out`` (default: the folder of the newest run).

Example::

    for i in 1 2 3 4 5 6; do pytest bench --benchmark-only --bench-results aa/; done
    mnist-bench noise aa/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ...runs.paths import runs_in
from ..actions import action
from ..flags import UsageError, float_arg

FIX = "fix: pass a results folder holding runs of unchanged code (`pytest bench --benchmark-only --bench-results DIR`)"

ORDER = 87  # position in `mnist-bench --help`, after compare


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("noise", help="each case's run-to-run noise and the gate's false alarms, from repeated runs")
    p.add_argument("runs", nargs="+", metavar="RUNS", help="run folders of unchanged code, or a results folder "
                                                            "holding them")
    p.add_argument("--detect", type=float_arg, default=30.0, metavar="PCT",
                   help="the slowdown to catch 19 times in 20: the page says how many runs a side each case needs "
                        "(default %(default)g)")
    p.add_argument("--out", metavar="DIR", default=None, help="where noise.md and noise.csv go (default: the folder "
                                                              "holding the newest run)")


def check(args: argparse.Namespace) -> list[Path]:
    """``--detect`` within its range, else ``UsageError``; the run folders ``RUNS`` stand for, else
    ``RunFolderError``."""
    if not 0 < args.detect < 1000:
        raise UsageError(f"--detect {args.detect:g}: the slowdown to catch must be above 0% (and below 1000%); "
                         "fix: e.g. --detect 30")
    return runs_in(args.runs, FIX)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    paths = check(args)  # before torch or pandas is imported
    return action(__name__).run(paths, args, out, err)
