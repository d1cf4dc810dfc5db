"""``mnist-bench data [--data-root DIR] [--repair]``: prepare and verify MNIST (SHA-256 of the four files)."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from ...data import prepare, resolve_root
from ..flags import add_config_flags

HELP = "prepare and verify MNIST (SHA-256 of the four IDX files)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help=HELP)
    add_config_flags(p, ["data_root"])
    p.add_argument("--repair", action="store_true", help="rebuild files that fail their checksum")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    root = resolve_root(args.data_root)
    statuses = prepare(root, repair=args.repair)
    table = Table(title=f"MNIST at {root}", title_justify="left")
    for column, justify in (("file", "left"), ("source", "left"), ("bytes", "right"), ("sha256", "left"),
                            ("check", "left")):
        table.add_column(column, justify=justify, no_wrap=True)
    for s in statuses:
        table.add_row(s.name, s.source, f"{s.size_bytes:,}", s.sha256[:16] + "…", "ok")
    out.print(table)
    out.print("All four files match the official SHA-256 checksums.", highlight=False)
    return 0
