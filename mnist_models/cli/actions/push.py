"""What ``mnist-bench push`` does (``cli/commands/push.py``): index the run folders given (a results folder:
every run in it and its ``runs.jsonl``) into the history database named by ``--db``."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from rich.console import Console

from ...history.index import Indexed, index_results, push
from ...history.tables import open_index
from ...results.database import redacted
from ...results.store import to_json
from ...runs.paths import is_results


def run(folders: list[Path], args: argparse.Namespace, out: Console, err: Console) -> int:
    engine = open_index(args.db)
    total = Indexed()
    for folder in folders:
        if is_results(folder):
            index_results(engine, args.db, folder, socket.gethostname(), total)
        else:
            push(engine, args.db, [folder], total)
    engine.dispose()
    for line in total.skipped:
        err.print(f"skipped: {line}", highlight=False, soft_wrap=True)
    err.print(f"pushed {total.folders} run folders and {total.rows} rows to {redacted(args.db)} ({total.unchanged} "
              f"already there, {len(total.skipped)} skipped)", highlight=False, soft_wrap=True)
    if args.json:
        out.file.write(to_json({"db": redacted(args.db), "indexed": vars(total)}) + "\n")
        out.file.flush()
    return 0
