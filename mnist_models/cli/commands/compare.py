"""``mnist-bench compare BASE NEW [--fail-above PCT] [--metric time,accuracy] [--min-effect PCT] [--json]``:
compare two benchmark run folders case by case, write ``compare.md`` and ``compare.html`` into NEW, and
exit 1 when a gated metric regressed (0 otherwise), so it can gate CI.

Examples::

    mnist-bench compare results/20261126T033331Z-cpu-amd-avx512-bf16-2c results/latest
    mnist-bench compare BASE NEW --metric time,accuracy,memory --fail-above 15 --json | tail -n 1

The statistics (Mann–Whitney U where n allows, range or median ± IQR overlap otherwise, the minimum
effect size, the accuracy band) are described in ``report/compare/verdicts.py`` and docs/compare.md.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from ...report.compare.thresholds import DEFAULT_GATED, METRICS, Thresholds
from ...runs.paths import RUN_FIX, runs_in
from ..actions import action
from ..flags import UsageError, add_json, float_arg

ORDER = 85  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two benchmark run folders; exit 1 when a gated metric regressed")
    p.add_argument("base", metavar="BASE", help="the reference run folder, e.g. results/<run-id>, or a results "
                                                "folder holding several runs of one code version")
    p.add_argument("new", metavar="NEW", help="the run to judge, or a results folder of several (compare.md and "
                                              "compare.html are written into its newest run)")
    p.add_argument("--fail-above", type=float_arg, default=Thresholds.fail_above_pct, metavar="PCT",
                   help="exit 1 when a gated metric is worse by more than PCT%% (time: per-image time, and the "
                        "change must be significant; default %(default)g)")
    p.add_argument("--min-effect", type=float_arg, default=Thresholds.min_effect_pct, metavar="PCT",
                   help="smallest change reported as slower/faster, even when significant (default %(default)g)")
    p.add_argument("--metric", default=",".join(DEFAULT_GATED), metavar="LIST",
                   help=f"gated metrics, comma list of {', '.join(METRICS)} or all (default %(default)s)")
    p.add_argument("--noise", metavar="FILE", default=None,
                   help="the run-to-run noise to judge time changes against: a noise.csv written by `mnist-bench "
                        "noise` (default: noise.csv beside BASE, else the table shipped for the machine kind, "
                        "else the rounds of each run); none: the runs given alone")
    p.add_argument("--acc-drop", type=float_arg, default=Thresholds.acc_drop_pts, metavar="PTS",
                   help="an accuracy drop beyond PTS points is a regression, inside the band or not "
                        "(default %(default)g)")
    add_json(p)



def thresholds(args: argparse.Namespace) -> Thresholds:
    """The flags as ``Thresholds``; bad values → ``UsageError``."""
    gated = tuple(m.strip() for m in args.metric.split(",") if m.strip())
    gated = METRICS if gated == ("all",) else gated
    unknown = [m for m in gated if m not in METRICS]
    if unknown or not gated:
        raise UsageError(f"--metric {args.metric!r}: expected a comma list of {', '.join(METRICS)} (or all)")
    for flag, value in (("--fail-above", args.fail_above), ("--min-effect", args.min_effect),
                        ("--acc-drop", args.acc_drop)):
        if not value >= 0 or value == float("inf"):
            raise UsageError(f"{flag} must be a finite number ≥ 0, got {value:g}")
    return Thresholds(fail_above_pct=args.fail_above, min_effect_pct=args.min_effect, acc_drop_pts=args.acc_drop,
                      gated=gated)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    th = thresholds(args)  # bad flags and folders refused before the action imports pandas
    base, new = runs_in([args.base], RUN_FIX, "BASE"), runs_in([args.new], RUN_FIX, "NEW")
    return action(__name__).run(th, base, new, args, out, err)
