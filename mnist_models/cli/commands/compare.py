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

from ...report.compare.compare_page import as_json, render_html, render_markdown, warning_lines
from ...report.compare.verdicts import DEFAULT_GATED, METRICS, Thresholds, compare
from ...report.publish import write_files
from ...results.store import to_json
from ...runs.folder import RUN_FIX, RunFolder, machine_kinds, read_run, runs_in
from ...runs.noise_table import find_noise
from ..flags import UsageError, add_json, float_arg

ORDER = 85  # position in `mnist-bench --help`
EXIT_REGRESSED = 1


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


def side(folder: str, role: str) -> list[RunFolder]:
    """A side's runs, oldest first: one run folder, or every run in a results folder (several runs of one
    code version on one machine kind, judged together against the run-to-run noise)."""
    runs = [read_run(path, role) for path in runs_in([folder], RUN_FIX, role)]
    kinds = machine_kinds(runs)
    if len(kinds) > 1:
        raise UsageError(f"{role} {folder} holds runs of {len(kinds)} machine kinds ({', '.join(kinds)}); fix: "
                         "pass runs of one machine kind a side")
    return runs


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    th = thresholds(args)
    base, new = side(args.base, "BASE"), side(args.new, "NEW")  # RunFolderError: exit 2
    datasets = {role: sorted({run.dataset for run in runs}) for role, runs in (("BASE", base), ("NEW", new))}
    if len(set(datasets["BASE"] + datasets["NEW"])) > 1:
        raise UsageError(f"BASE ran on {', '.join(datasets['BASE'])} and NEW on {', '.join(datasets['NEW'])}: times "
                         "and accuracies on different data sets do not compare; fix: compare runs of one data set "
                         "(--bench-dataset)")
    noise = find_noise(args.noise, [run.resolved for run in base], base[-1].machine_kind)
    comparison = compare(base, new, th, noise)
    for line in warning_lines(comparison):  # what was skipped or left out, file and line; an incomplete run
        err.print(f"mnist-bench: warning: {line}", highlight=False, markup=False, emoji=False, soft_wrap=True)
    markdown = render_markdown(comparison)
    # Both files or neither; a failure is one line naming the file (results.store.write_error): exit 2, or 1
    # for a full disk.
    write_files(comparison.new.resolved, {"compare.md": markdown + "\n", "compare.html": render_html(comparison)})
    out.print(markdown, highlight=False, soft_wrap=True, markup=False)
    counts = ", ".join(f"{k} {v}" for k, v in comparison.counts.items())
    out.print(f"verdicts: {counts}; gate {'FAILED' if comparison.failed_gate else 'passed'}", highlight=False,
              markup=False)
    if args.json:
        out.file.write(to_json(as_json(comparison)) + "\n")
        out.file.flush()
    err.print(f"wrote {comparison.new.resolved / 'compare.md'} and compare.html", highlight=False, markup=False)
    return EXIT_REGRESSED if comparison.failed_gate else 0
