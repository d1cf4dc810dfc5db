"""``mnist-bench data [--dataset mnist|fashion-mnist] [--data-root DIR] [--repair] [--json]``: prepare and verify a
data set (SHA-256 of its four files)."""

from __future__ import annotations

import argparse

from rich.console import Console

from ..actions import action
from ..flags import add_config_flags, add_json

HELP = "prepare and verify MNIST or Fashion-MNIST (SHA-256 of the four IDX files)"

ORDER = 10  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help=HELP)
    add_config_flags(p, ["dataset", "data_root"])
    p.add_argument("--repair", action="store_true", help="rebuild files that fail their checksum")
    add_json(p)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    return action(__name__).run(args, out, err)
