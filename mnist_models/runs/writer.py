"""THE writer of a benchmark run folder ``<results>/<run-id>/``: nothing else writes its data files.

1. As each case ends (before the next starts) the suite calls ``CaseLog.record``: the rows the case
   added (training, inference, time to accuracy, data-parallel scaling) are appended to ``cases.jsonl``
   as whole JSON lines through ``store.append_rows`` (flock, one write per row, fsync), each with the run
   folder's ``format``, its ``table`` and its ``case``. The folder is made when the first case ends (a session
   that finishes nothing leaves no folder).
2. When the session ends, ``finish_run`` writes the tables (``frames.RunTables``), the rendered
   summary and pytest-benchmark's JSON beside ``cases.jsonl``, all or none, ``machine.json`` (stamped
   with ``RUN_FORMAT``) last; then ``latest`` moves to the run (``publish_run``).

A session killed at any point leaves the rows of every case it finished; ``runs.files`` reads such a
folder (``cases.jsonl``, no ``machine.json``) as an incomplete run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..results.store import (
    Content,
    ResultsError,
    append_rows,
    new_run_folder,
    point_latest,
    write_error,
    write_files,
)
from .frames import RunTables
from .schema import CASES_FILE, RUN_FORMAT

MAX_SUFFIX = 100  # run folders started in the same second on the same machine kind: <id>, <id>-2, … <id>-99


def open_run_folder(results_dir: str | os.PathLike[str], run_id: str) -> Path:
    """A new run folder ``results_dir/run_id`` (``run_id-2``, ``-3``… when sessions started in the same second
    took the name); never an existing one. One ``ResultsError`` line when it cannot be made."""
    for number in range(1, MAX_SUFFIX):
        name = run_id if number == 1 else f"{run_id}-{number}"
        try:
            return new_run_folder(results_dir, name)
        except FileExistsError:
            continue
        except ResultsError:
            raise
        except OSError as exc:
            raise write_error(Path(results_dir) / name, exc) from None
    raise ResultsError(f"{results_dir}: {run_id} and {MAX_SUFFIX - 2} suffixed names are taken; fix: pass "
                       "--bench-results DIR with another folder")


@dataclass
class CaseLog:
    """The rows of a session's finished cases, appended to its run folder's ``cases.jsonl``."""

    results: str
    run_id: str
    folder: Path | None = None  # made when the first case with rows ends
    written: dict[str, int] = field(default_factory=dict)  # rows of each table already on disk
    cases: int = 0  # cases that added rows

    def record(self, case: str, tables: Mapping[str, Sequence[dict[str, Any]]]) -> int:
        """Append the rows each table (``train``, ``inference``, ``tta``, ``scaling``) gained since the last
        call, as ``case``'s; how many. The first call with rows makes the run folder."""
        new = [(table, row) for table, rows in tables.items() for row in rows[self.written.get(table, 0):]]
        if not new:
            return 0
        if self.folder is None:
            self.folder = open_run_folder(self.results, self.run_id)
            self.run_id = self.folder.name
        append_rows(self.folder, [{"format": RUN_FORMAT, "table": table, "case": case, **row} for table, row in new],
                    name=CASES_FILE)
        self.written |= {table: len(rows) for table, rows in tables.items()}
        self.cases += 1
        return len(new)


def publish_run(results_dir: str | os.PathLike[str], run_id: str, files: Mapping[str, Content | None],
                also: Mapping[Path, str] | None = None, existing: bool = False) -> Path:
    """Write one benchmark run's ``files`` into ``results_dir/run_id/`` (a new folder; earlier runs are never
    touched) and ``also``'s files (path → text: a README with the run's block) with them, all or none,
    renamed in the order given; then point ``results_dir/latest`` at the run (only once its files are
    whole). A run whose files could not be written leaves no folder. ``existing``: the run made its
    folder itself (the suite, when its first case ended: ``cases.jsonl``)."""
    folder = Path(results_dir) / run_id if existing else new_run_folder(results_dir, run_id)
    try:
        write_files(folder, files, also)
    except BaseException:
        with contextlib.suppress(OSError):  # only while empty: nothing else is ever removed
            folder.rmdir()
        raise
    point_latest(results_dir, run_id)
    return folder


def _table(frame: Any) -> Any:
    """A table's frame, or None (no file) when it has no rows."""
    return None if frame is None or frame.empty else frame


def finish_run(log: CaseLog, tables: RunTables, summary: str, benchmark: dict[str, Any] | None,
               machine: dict[str, Any], also: Mapping[Path, str] | None = None) -> Path:
    """The end of a session: its tables, ``summary.md`` and ``benchmark.json`` (None: none) beside the
    folder's ``cases.jsonl``, ``machine.json`` last (a folder with cases.jsonl and no machine.json is an
    incomplete run), ``also`` with them; then ``latest``. A table without rows writes no file."""
    if log.folder is None:
        raise ResultsError("no case of this session finished with rows, so it has no run folder to finish")
    files = {"train.csv": _table(tables.train), "inference.csv": _table(tables.inference),
             "tta.csv": _table(tables.tta), "summary.md": summary, "benchmark.json": benchmark,
             "rounds.csv": _table(tables.rounds),
             "confusion.csv": _table(tables.confusion), "predictions.csv": _table(tables.predictions),
             "scaling.csv": _table(tables.scaling),
             "machine.json": {"format": RUN_FORMAT, **machine}}
    return publish_run(log.results, log.run_id, files, also, existing=True)
