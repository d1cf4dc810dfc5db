"""``mnist-bench profile [--model v2] [--variant eager] [--wait 1 --warmup 3 --active 5]``: a short
training run under ``torch.profiler``, apart from any timed run, into ``results/profiles/<id>/``
(``report.profile.make_profile``; the files: ``runs/profiles.py``).

``mnist-bench profile --diff A B``: the operator-level diff of two such folders, printed and written as
``B/diff.md`` (``report.profile.profile_diff``).
"""

from __future__ import annotations

import argparse

from rich.console import Console

from ...experiments.profiling import Schedule
from ...report.profile.make_profile import make_profile
from ...report.profile.profile_diff import diff_profiles
from ...report.profile.profile_page import printed_lines
from ...results.store import to_json
from ...variants import list_variants
from ..flags import UsageError, add_config_flags, add_json, config_values, float_arg, int_arg

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
    add_json(p)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.diff:
        if args.min_change < 0 or args.min_us < 0:
            raise UsageError("--min-change and --min-us must be ≥ 0")
        diff = diff_profiles(*args.diff, args.by, args.min_change, args.min_us)
        result, lines = diff.as_json, [diff.markdown, f"Wrote {diff.path}"]
    else:
        # a flag not given takes the default its help states (None: the variant's)
        settings = {name: DEFAULTS.get(name) if value is None else value
                    for name, value in config_values(args, SETTINGS).items()}
        data, folder = make_profile(args.variant, settings,
                                    Schedule(args.wait, args.warmup, args.active), args.results,
                                    say=lambda line: err.print(line, highlight=False))
        result, lines = data.meta, printed_lines(data, folder)
    if args.json:  # written as it is: rich would read markup or emoji codes in the JSON
        out.file.write(to_json(result) + "\n")
        out.file.flush()
        return 0
    for line in lines:
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0
