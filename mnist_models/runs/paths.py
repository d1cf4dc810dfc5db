"""Whether a folder is a run folder, and which run folders a folder stands for: the checks that need
no pandas, so the command line refuses a missing or wrong folder at once, before it imports the
reader (``folder.py``, which calls these too).

A folder is a run when it holds suite rows (``train.csv``, ``inference.csv`` or ``cases.jsonl``); a
results folder stands for every run folder in it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError

CASES_FILE = "cases.jsonl"  # a session's rows, appended as each case ends (``runs.writer.CaseLog``)
ROW_FILES = ("train.csv", "inference.csv", CASES_FILE)  # a folder holding any of them is a run
RUN_FIX = ("fix: pass a run folder written by the benchmark suite (`make bench` writes results/<run-id>/; "
           "results/latest points at the newest)")


class RunFolderError(UserError, ValueError):
    """A folder that cannot be read as a run (missing, a file, not a run, a file it cannot go on without):
    one line naming the problem and the fix; the CLI prints it and exits 2."""


def has_rows(folder: Path) -> bool:
    """Whether the folder holds suite rows at all: a train or inference table, or cases.jsonl."""
    return any((folder / name).is_file() for name in ROW_FILES)


def _not_a_folder(path: Path, role: str | None) -> str:
    """Why ``path`` is not a run folder, as one line ("" when it is one)."""
    side = f"{role} " if role else ""
    if not path.exists():
        return (f"{side}{path}: no such folder; fix: pass a benchmark run folder such as results/latest or "
                "results/<run-id>") if role else f"{path}: no such folder; {RUN_FIX}"
    if not path.is_dir():
        return f"{side}{path} is a file, not a run folder; " + ("fix: pass results/<run-id>/" if role else RUN_FIX)
    if has_rows(path):
        return ""
    if role:
        return (f"{side}{path} is not a benchmark run folder (no train.csv, inference.csv or {CASES_FILE}); fix: "
                "pass a folder written by `pytest bench --benchmark-only`, e.g. results/latest")
    if (path / "latest").is_dir():
        return f"{path} is a results folder, not a run; fix: pass {path / 'latest'} or one of its <run-id> folders"
    return f"{path} is not a benchmark run folder (no train.csv, inference.csv or {CASES_FILE} in it); {RUN_FIX}"


def is_results(path: Path) -> bool:
    """Whether ``path`` is a results folder (run folders in it, or a ``runs.jsonl``) rather than one run."""
    return path.is_dir() and not has_rows(path) and ((path / "runs.jsonl").is_file() or any(
        p.is_dir() and not p.is_symlink() and has_rows(p) for p in path.iterdir()))


def check_folder(folder: str | os.PathLike[str], role: str | None = None) -> Path:
    """The run folder, or ``RunFolderError`` saying why it is not one (``role``: BASE or NEW, for compare)."""
    path = Path(folder)
    why = _not_a_folder(path, role)
    if why:
        raise RunFolderError(why)
    return path


def runs_in(folders: list[str], fix: str, role: str | None = None) -> list[Path]:
    """The run folders named, a results folder standing for every run folder in it (``latest`` not
    counted twice), oldest first (run ids start with their UTC time); none: ``RunFolderError`` ending
    with ``fix`` (``role``: BASE or NEW, for compare's messages)."""
    found: dict[Path, Path] = {}
    for folder in folders:
        path = Path(folder)
        if path.is_dir() and not has_rows(path):
            inside = [p for p in sorted(path.iterdir()) if p.is_dir() and not p.is_symlink() and has_rows(p)]
            found |= {p.resolve(): p for p in inside}
            if inside:
                continue
        found.setdefault(check_folder(path, role).resolve(), path)
    if not found:
        raise RunFolderError(f"no run folder in {', '.join(folders)}; {fix}")
    return [found[p] for p in sorted(found, key=lambda p: p.name)]
