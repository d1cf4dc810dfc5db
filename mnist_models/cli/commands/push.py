"""``mnist-bench push RUN_DIR... --db URL``: index run folders (a results folder stands for every run in it,
and its ``runs.jsonl``) into a history database that many machines share, so that ``mnist-bench history
--db URL`` on any of them draws every machine's runs (``cli/actions/push.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ...runs.paths import check_folder, is_results
from ..actions import action
from ..flags import add_json, check_database_url

ORDER = 96  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help="send run folders to a shared history database (PostgreSQL)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="a benchmark run folder, or a results folder (every run in it and its runs.jsonl)")
    p.add_argument("--db", metavar="URL", required=True,
                   help="the history database: postgresql://user@host:port/db (or sqlite:///path/file.db)")
    add_json(p)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    check_database_url("--db", args.db)
    folders = [Path(folder) for folder in args.run_dirs]
    for folder in folders:  # a results folder or a run folder; anything else refused before the work
        if not is_results(folder):
            check_folder(folder)
    return action(__name__).run(folders, args, out, err)
