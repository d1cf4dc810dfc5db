"""``mnist-bench reproduce [--seeds 42,0,1]``: v0, v1, v2 under the notebook protocol → the seed
notebook's table beside this run's (``seed_reproduction.{csv,md}``, results-page block ``seed-table``)."""

from __future__ import annotations

import argparse

from rich.console import Console

from ...experiments.reproduction import NOTEBOOK_MODELS, make_cases
from ..actions import action
from ..flags import UsageError, add_config_flags, add_readme, add_results, check_readme, parse_seeds

MARKER = "seed-table"

ORDER = 50  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="train v0, v1, v2 under the notebook protocol and write the comparison table")
    p.add_argument("--seeds", default="42,", help="count (3 → 0,1,2) or comma list (default: 42, the notebook's)")
    p.add_argument("--models", default=",".join(NOTEBOOK_MODELS), help="comma list (default v0,v1,v2)")
    add_config_flags(p, ["device", "dataset", "data_root"])
    add_readme(p, MARKER)
    add_results(p)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    models = [m for m in args.models.split(",") if m]
    if not models:
        raise UsageError(f"--models needs at least one model name, got {args.models!r}")
    cases = make_cases(models, parse_seeds(args.seeds), device=args.device, data_root=args.data_root,
                       dataset=args.dataset)
    check_readme(args.readme, MARKER)
    return action(__name__).run(cases, MARKER, args, out, err)
