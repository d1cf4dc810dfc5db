"""What ``mnist-bench history`` does (``cli/commands/history.py``): open the index, index the results folder
(new and changed runs only; a damaged run skipped with its line), find the steps, write history.html and
``history.json`` (the answer: runs, machine kinds, every step) beside it; ``--json`` prints what was indexed and
that answer. When nothing changed since the page was drawn (the index's generation, the database and
``--filter`` as recorded in ``history.json``), the page and its answer stand as they are."""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path
from typing import Any

from rich.console import Console

from ...history.index import index_results
from ...history.tables import RESUME, WHAT, generation, open_index
from ...history.trends import load, per_run, steps
from ...report.history_page import ANSWER, PAGE, PAGE_FORMAT, write_history_page
from ...results.database import database_errors, redacted
from ...results.store import to_json


def default_db(results: Path) -> str:
    """``sqlite:///RESULTS/history.db``."""
    return f"sqlite:///{(results / 'history.db').resolve()}"


def remembered(results: Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """The answer beside the page when it was drawn from this very index state, else None."""
    try:
        answer = json.loads((results / ANSWER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return answer if answer.get("state") == state and (results / PAGE).is_file() else None


def run(results: Path, args: argparse.Namespace, out: Console, err: Console) -> int:
    db = args.db or default_db(results)
    engine = open_index(db)
    done = index_results(engine, db, results, socket.gethostname())
    for line in done.skipped:
        err.print(f"skipped: {line}", highlight=False, soft_wrap=True)
    with database_errors(WHAT, db, RESUME):
        state = {"db": redacted(db), "filter": args.filter, "generation": generation(engine), "format": PAGE_FORMAT}
        answer = remembered(results, state)
        if answer is None:
            runs = per_run(load(engine))
            found = steps(runs)
            kinds = sorted(runs["machine_kind"].unique()) if not runs.empty else []
            answer = {"state": state, "runs": int(runs["run_id"].nunique()) if not runs.empty else 0,
                      "machine_kinds": kinds, "steps": [f.as_dict() for f in found], "page": str(results / PAGE)}
            results.mkdir(parents=True, exist_ok=True)
            write_history_page(runs, found, args.filter, redacted(db), results, answer)
    engine.dispose()
    err.print(f"indexed {done.folders} new or changed run folders and {done.rows} rows ({done.unchanged} folders "
              f"unchanged, {len(done.skipped)} skipped); {answer['runs']} runs on {len(answer['machine_kinds'])} "
              f"machine kinds; {len(answer['steps'])} step changes; the page: {answer['page']}", highlight=False,
              soft_wrap=True)
    for step in answer["steps"]:
        out.print(f"step: {step['case']} ({step['metric']}) on {step['machine_kind']}: {step['pct']:+.1f}% from "
                  f"{step['before_commit']} to {step['after_commit']} (z {step['z']:.1f}, needed "
                  f"{step['z_needed']:.1f})", highlight=False, soft_wrap=True)
    if args.json:
        out.file.write(to_json({"db": redacted(db), "indexed": vars(done), **answer}) + "\n")
        out.file.flush()
    return 0
