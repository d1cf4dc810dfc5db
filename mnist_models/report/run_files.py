"""Reading a benchmark-suite run folder's files, for the run report and for compare: a CSV or JSON
file that may be absent, empty or damaged, and the skipped cases a run recorded (machine.json's
``skips``, or the "Skipped" table of an older summary.md). Callers turn ``UnreadableFile`` into
their own one-line error."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd


class UnreadableFile(ValueError):
    """A run file exists but cannot be read; the message is the reason (one line)."""


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def read_csv(path: Path) -> pd.DataFrame | None:
    """The CSV as a frame; None when there is no such file, an empty frame when it is empty."""
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise UnreadableFile(_reason(exc)) from None


def read_json(path: Path) -> Any:
    """The JSON value; None when there is no such file."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise UnreadableFile(str(exc)) from None


def recorded_skips(machine: dict[str, Any], summary: str) -> tuple[list[tuple[str, str]], str | None]:
    """(case, reason) of every skipped case and where they were read: machine.json's ``skips``, else
    summary.md's Skipped table (older runs); None when the run recorded neither."""
    if isinstance(machine.get("skips"), list):
        return [(str(s.get("case", "")), str(s.get("reason", ""))) for s in machine["skips"]], "machine.json"
    found, inside, seen = [], False, False
    for line in summary.splitlines():
        if line.startswith("#"):
            inside = line.lstrip("#").strip() == "Skipped"
            seen = seen or inside
        elif inside and line.startswith("|") and not re.match(r"^\|\s*(case|-)", line):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            if len(cells) >= 2:
                found.append((cells[0], cells[1].replace("\\|", "|")))
    return found, "summary.md" if seen else None
