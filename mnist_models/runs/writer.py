"""A benchmark-suite run's rows on disk as its cases finish: ``<results>/<run-id>/cases.jsonl``.

The suite (``bench/conftest.py``) calls ``CaseLog.record`` when each case ends, before the next one
starts: the rows the case added (training, inference, time to accuracy) are appended as whole JSON
lines through ``store.append_rows`` (flock, one write per row, fsync), each with the run folder's
``format``, its ``table`` and its ``case``. The run folder is made when the first case ends (a session
that finishes nothing leaves no folder); at the end of the session the tables are published beside
``cases.jsonl`` as before, ``machine.json`` last. A session killed at any point leaves the rows of every
case it finished; ``runs.files`` reads such a folder (``cases.jsonl``, no ``machine.json``) as an
incomplete run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..results.store import ResultsError, append_rows, new_run_folder, write_error
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
        """Append the rows each table (``train``, ``inference``, ``tta``) gained since the last call, as
        ``case``'s; how many. The first call with rows makes the run folder."""
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
