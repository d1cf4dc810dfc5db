"""``mnist-bench history [RESULTS_DIR] [--db URL] [--filter PATTERN] [--json]``: index every run in a results
folder (default ``results/``) into the history database (default ``RESULTS_DIR/history.db``, or a PostgreSQL
database many machines share), incrementally, then find each case's step changes per machine kind and draw
``RESULTS_DIR/history.html`` (``cli/actions/history.py``; the index: ``history/``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..actions import action
from ..flags import UsageError, add_json, check_database_url

ORDER = 95  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("history", help="index every run in a database; trends and step changes per machine kind")
    p.add_argument("results_dir", nargs="?", default="results", metavar="RESULTS_DIR",
                   help="the results folder to index and write history.html into (default: results)")
    p.add_argument("--db", metavar="URL", help="the index: sqlite:///path/file.db or postgresql://user@host:port/db "
                   "(default: sqlite:///RESULTS_DIR/history.db)")
    p.add_argument("--filter", metavar="PATTERN", help="also draw the cases whose name matches this shell-style "
                   "pattern, e.g. 'train v2*' (cases with a step are always drawn)")
    add_json(p)


def check(args: argparse.Namespace) -> Path:
    """The results folder (which may not exist yet when --db names a database to draw from) and the URL."""
    check_database_url("--db", args.db)
    folder = Path(args.results_dir)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file, not a results folder; fix: pass the folder that holds the run "
                         "folders and runs.jsonl, e.g. results")
    if not folder.exists() and args.db is None:
        raise UsageError(f"{folder}: no such folder; fix: pass a results folder (e.g. results), or --db with a "
                         "history database to draw from")
    if args.filter is not None and not args.filter.strip():
        raise UsageError("--filter is empty; fix: a shell-style pattern such as 'train v2*'")
    return folder


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    return action(__name__).run(check(args), args, out, err)
