"""``mnist-bench speedup [--model v2] [--seeds 3] [--precision auto]``: the fast path against the
notebook's way, interleaved per seed → ``speedup.{csv,md}``, results-page block ``speedup-table``."""

from __future__ import annotations

import argparse

from rich.console import Console

from ...experiments.fast_path import FAST_PRECISIONS, make_cases
from ..actions import action
from ..flags import UsageError, add_config_flags, add_readme, add_results, check_readme, parse_seeds

MARKER = "speedup-table"

ORDER = 60  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("speedup", help="the fast path (fp32, bf16) against the notebook's way, interleaved")
    add_config_flags(p, ["model", "model_args"])
    p.add_argument("--seeds", default="3", help="count (3 → 0,1,2, the default) or comma list")
    p.add_argument("--precision", default=",".join(FAST_PRECISIONS),
                   help=f"comma list of fast-path precisions: fp32, bf16, fp16 (CUDA), auto (the faster here, "
                        f"measured once for all seeds); default {','.join(FAST_PRECISIONS)}; e.g. fp32,bf16")
    add_config_flags(p, ["device", "dataset", "data_root"])
    add_readme(p, MARKER)
    add_results(p)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    precisions = [p for p in args.precision.split(",") if p]
    if not precisions or len(set(precisions)) != len(precisions):
        raise UsageError(f"--precision takes a comma list without repeats, e.g. fp32,bf16, got {args.precision!r}")
    cases = make_cases(args.model or "v2", parse_seeds(args.seeds), precisions, device=args.device,
                       data_root=args.data_root, model_args=args.model_args, dataset=args.dataset)
    check_readme(args.readme, MARKER)
    return action(__name__).run(cases, MARKER, args, out, err)
