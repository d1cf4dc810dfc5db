"""Reading a benchmark-suite run folder's files, for ``runs.folder`` (the one reader the run report and
compare use): each CSV and JSON file, checked against ``schema`` (the one place that says what a file
must hold), and the rows of a session that never finished (``cases.jsonl``).

``RunFiles(folder)`` reads what is asked of it and keeps one ``Problem`` per thing it skipped or left
out (file and line as an editor shows them); the commands print each on stderr and the report lists
them. What it cannot go on without raises ``RunFileError``: one line with the file, the line and the fix.

A finished session writes ``machine.json`` last; a folder with ``cases.jsonl`` and no ``machine.json``
is an incomplete run (killed, or stopped before its end): its train, inference, time-to-accuracy, scaling
and per-round tables are made from ``cases.jsonl`` (see ``incomplete``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..results.store import ResultsError, numbered_rows
from .frames import split_rounds
from .paths import RunFolderError, has_rows
from .schema import (
    CASES_FILE,
    FIX,
    RUN_FORMAT,
    SCHEMAS,
    Problem,
    RunFileError,
    check_format,
    check_machine,
    check_table,
    is_number,
)

__all__ = ["CASES_FILE", "RUN_FORMAT", "Incomplete", "Problem", "RunFileError", "RunFiles", "RunFolderError"]
CASE_TABLES = {"train": "train.csv", "inference": "inference.csv", "tta": "tta.csv",  # cases.jsonl's "table"
               "scaling": "scaling.csv"}


def _records(text: str, name: str) -> list[tuple[int, list[str]]]:
    """(first line, fields) of every non-blank CSV record, lines counted as an editor counts them."""
    reader = csv.reader(io.StringIO(text, newline=""))
    out, start = [], 1
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                out.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise RunFileError(Problem(name, reader.line_num, f"not CSV ({exc})")) from None
    return out


def _seconds(value: Any) -> bool:
    """A time a round can take: a finite number above 0."""
    return is_number(value) and 0 < float(value) < math.inf


def _not_utf8(raw: bytes) -> list[int]:
    """The lines of ``raw`` that are not UTF-8 text."""
    bad = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(number)
    return bad


def parse_csv(raw: bytes, name: str, problems: list[Problem]) -> tuple[pd.DataFrame, list[int]] | None:
    """The CSV's rows as pandas reads them, and the line each came from; None for an empty file. A row
    with more or fewer fields than the header is skipped (said in ``problems``); bytes that are not UTF-8
    are read as U+FFFD (said too)."""
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark some editors add
    problems += [Problem(name, n, "not UTF-8 text; its undecodable bytes read as \ufffd") for n in _not_utf8(raw)]
    records = _records(raw.decode("utf-8", errors="replace"), name)
    if not records:
        return None
    header = records[0][1]
    rows = []
    for line, fields in records[1:]:
        if len(fields) == len(header):
            rows.append((line, fields))
        else:
            problems.append(Problem(name, line, f"{len(fields)} fields where the header (line {records[0][0]}) has "
                                                f"{len(header)}; row skipped"))
    text = io.StringIO()
    csv.writer(text).writerows([header, *(fields for _, fields in rows)])  # pandas types the clean rows
    try:
        frame = pd.read_csv(io.StringIO(text.getvalue()))
    except (pd.errors.ParserError, ValueError) as exc:
        raise RunFileError(Problem(name, None, f"not CSV ({str(exc).splitlines()[0]})")) from None
    return frame, [line for line, _ in rows]


@dataclass(frozen=True)
class Incomplete:
    """A session that stopped before its end: how many cases it finished, the last one, and why the report
    has no summary, skips or cuts."""

    cases: int
    last: str

    def detail(self) -> str:
        """What stopped and what that means, as a sentence without its full stop."""
        last = f" (the last: {self.last})" if self.last else ""
        return (f"The session stopped after {self.cases} finished case{'s' if self.cases != 1 else ''}{last}; "
                f"no summary, skips or cuts were written, and the tables come from {CASES_FILE}")

    def say(self) -> str:
        """One line for stderr."""
        return f"incomplete run: {self.detail()[0].lower()}{self.detail()[1:]}"


@dataclass
class RunFiles:
    """One run folder's files, read on demand through the schema; ``problems``: what was skipped or left
    out, one per problem."""

    folder: Path
    problems: list[Problem] = field(default_factory=list)
    incomplete: Incomplete | None = field(default=None, init=False)  # set once an unfinished folder's rows are read
    _cases: dict[str, pd.DataFrame | None] | None = field(default=None, init=False, repr=False)

    def unfinished(self) -> bool:
        """Whether the folder is a session that stopped before its end: cases.jsonl and no machine.json."""
        return (self.folder / CASES_FILE).is_file() and not (self.folder / "machine.json").is_file()

    def _bytes(self, name: str, essential: bool) -> bytes | None:
        path = self.folder / name
        if not path.exists():
            return None
        try:
            raw = path.read_bytes()
        except OSError as exc:
            problem = Problem(name, None, f"cannot be read ({exc.strerror or exc})")
            if essential:
                raise RunFileError(problem, "fix: make it a readable file, or remove it") from None
            self.problems.append(Problem(name, None, f"{problem.text}; left out"))
            return None
        if not raw.strip():
            self.problems.append(Problem(name, None, "an empty file; treated as not recorded"))
            return None
        return raw

    def table(self, name: str) -> pd.DataFrame | None:
        """A table of the run (``SCHEMAS``), its unusable rows dropped; None when not recorded. An
        incomplete run's train, inference, time-to-accuracy, scaling and rounds tables come from ``cases.jsonl``
        where the CSV is not there."""
        if self.unfinished() and name in ("rounds.csv", *CASE_TABLES.values()) and not (self.folder / name).exists():
            if self._cases is None:
                self._cases = self._read_cases()
            return self._cases[name]
        essential = SCHEMAS[name].essential
        raw = self._bytes(name, essential)
        try:
            said = len(self.problems)
            parsed = None if raw is None else parse_csv(raw, name, self.problems)
            if raw is not None and (parsed is None or parsed[0].empty and len(self.problems) > said):
                self.problems.append(Problem(name, None, "no usable row; treated as not recorded"))
                return None
            return None if parsed is None else check_table(name, *parsed, self.problems)
        except RunFileError as exc:
            if essential:
                raise
            self.problems.append(Problem(name, exc.problem.line, f"{exc.problem.text}; left out"))
            return None

    def json(self, name: str) -> tuple[Any, str]:
        """(the JSON value, its text); (None, "") when absent or empty. Not JSON: ``RunFileError`` naming
        the line."""
        raw = self._bytes(name, essential=True)
        if raw is None:
            return None, ""
        text = raw.decode("utf-8", errors="replace").removeprefix("\ufeff")  # an editor's byte-order mark
        try:
            return json.loads(text), text
        except (ValueError, RecursionError) as exc:
            decode = isinstance(exc, json.JSONDecodeError)
            why = f"not valid JSON ({exc.msg}, column {exc.colno})" if decode else f"not valid JSON ({exc})"
            raise RunFileError(Problem(name, exc.lineno if decode else None, why),
                               f"{FIX}, or remove the file") from None

    def machine(self) -> dict[str, Any]:
        """machine.json checked (``schema.check_machine``); {} when the run has none."""
        value, text = self.json("machine.json")
        return {} if value is None else check_machine(value, text, self.problems)

    def optional_json(self, name: str) -> Any:
        """A JSON file the command can do without (benchmark.json): None, with a warning, when damaged."""
        try:
            return self.json(name)[0]
        except RunFileError as exc:
            self.problems.append(Problem(name, exc.problem.line, f"{exc.problem.text}; left out"))
            return None

    def has_rows(self) -> bool:
        """Whether the folder holds suite rows at all: a train or inference table, or cases.jsonl."""
        return has_rows(self.folder)

    def _read_cases(self) -> dict[str, pd.DataFrame | None]:
        """The tables of an incomplete run, from ``cases.jsonl`` (sets ``incomplete``)."""
        found: list[tuple[int, str]] = []
        try:
            numbered = numbered_rows(self.folder, CASES_FILE, found)
        except ResultsError as exc:
            raise RunFileError(Problem(CASES_FILE, None, str(exc).split("; fix:")[0]),
                               "fix: make it readable") from None
        self.problems += [Problem(CASES_FILE, line, why) for line, why in found]
        tables: dict[str, list[tuple[int, dict[str, Any]]]] = {t: [] for t in CASE_TABLES.values()}
        cases = []
        for line, row in numbered:
            check_format(row.get("format"), CASES_FILE, line)
            table = CASE_TABLES.get(str(row.get("table")))
            if table is None:
                self.problems.append(Problem(CASES_FILE, line, f"table {row.get('table')!r} is not one of "
                                                               f"{', '.join(CASE_TABLES)}; row skipped"))
                continue
            cases.append(str(row.get("case") or ""))
            row = {k: v for k, v in row.items() if k not in ("table", "case", "format")}
            times = row.get("round_times_s")
            if times is not None and not (isinstance(times, list) and all(_seconds(t) for t in times)):
                self.problems.append(Problem(CASES_FILE, line, "round_times_s is not a list of seconds; the row "
                                                               "is kept without its per-round times"))
                row = {k: v for k, v in row.items() if k not in ("round_times_s", "round_train_loss")}
            tables[table].append((line, row))
        self.incomplete = Incomplete(len(dict.fromkeys(cases)), cases[-1] if cases else "")
        out = {name: self._case_table(name, rows) for name, rows in tables.items()}
        timed = [*(out["train.csv"] if out["train.csv"] is not None else pd.DataFrame()).to_dict("records"),
                 *(out["inference.csv"] if out["inference.csv"] is not None else pd.DataFrame()).to_dict("records")]
        rounds = split_rounds([r for r in timed if isinstance(r.get("round_times_s"), list)])[1]
        out["rounds.csv"] = None if rounds.empty else rounds
        for name in ("train.csv", "inference.csv"):
            if out[name] is not None:
                out[name] = out[name].drop(columns=["round_times_s", "round_train_loss"], errors="ignore")
        return out

    def _case_table(self, name: str, rows: list[tuple[int, dict[str, Any]]]) -> pd.DataFrame | None:
        if not rows:
            return None
        frame = pd.DataFrame([row for _, row in rows])
        return check_table(name, frame, [line for line, _ in rows], self.problems, source=CASES_FILE)

