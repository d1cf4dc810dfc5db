"""``mnist-bench reproduce [--seeds 42,0,1]``: v0, v1, v2 under the seed protocol → the seed
notebook's table beside this run's (``seed_reproduction.{csv,md}``, README block ``seed-table``)."""

from __future__ import annotations

import argparse

from rich.console import Console

from ...experiments.reproduce import SEED_MODELS, make_cases
from ...report import seed_table
from ...report.publish import Report
from ...results.provenance import environment
from ..common import check_readme, prepare_run, publish_and_print, run_cases
from ..flags import UsageError, add_config_flags, add_readme, add_results, parse_seeds

MARKER = "seed-table"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="train v0, v1, v2 under the seed protocol and write the comparison table")
    p.add_argument("--seeds", default="42,", help="count (3 → 0,1,2) or comma list (default: 42, the notebook's)")
    p.add_argument("--models", default=",".join(SEED_MODELS), help="comma list (default v0,v1,v2)")
    add_config_flags(p, ["device", "data_root"])
    add_readme(p, MARKER)
    add_results(p)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    models = [m for m in args.models.split(",") if m]
    if not models:
        raise UsageError(f"--models needs at least one model name, got {args.models!r}")
    cases = make_cases(models, parse_seeds(args.seeds), device=args.device, data_root=args.data_root)
    check_readme(args.readme, MARKER)
    results_dir = prepare_run(cases[0].config, args.results)
    run_id, rows = run_cases(cases, "reproduce", results_dir, err)
    report = Report("seed_reproduction", rows, seed_table.render(rows, environment(), run_id), MARKER)
    publish_and_print(report, results_dir, args.readme, out, err)
    return 0
