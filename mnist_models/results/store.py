"""The results store: ``runs.jsonl`` (append-only), run folders with their ``latest`` link, and atomic
writes. Nothing here renders or decides what a table says (that is ``report/``).

- ``runs.jsonl``: each call appends whole lines and never rewrites what is there.
- Every other file is written atomically (temp file + fsync + rename): a reader sees the old file
  or the whole new one, never a partial write.

See ``results/README.md`` (the project's results folder) for every file and column.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
import warnings
import uuid
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Iterable

RUNS_FILE = "runs.jsonl"


class ResultsError(OSError):
    """The results directory cannot be written. The message is one line with the fix."""


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` through a temp file in the same folder, fsync, then rename over ``path``.

    A reader sees either the old file or the whole new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(directory: str | os.PathLike[str]) -> Path:
    """Create ``directory`` if needed and prove it and its ``runs.jsonl`` are writable, before any work."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
        if (path / RUNS_FILE).exists():  # appending nothing proves it is a writable file
            with open(path / RUNS_FILE, "a", encoding="utf-8"):
                pass
    except OSError as exc:
        raise ResultsError(f"results directory {path} is not writable ({exc.strerror or exc}); "
                           "fix: pass --results DIR with a writable folder") from None
    return path


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    if callable(getattr(value, "tolist", None)):  # torch tensors, numpy arrays
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def to_json(obj: Any) -> str:
    """One-line JSON with dataclasses, paths and tensors converted."""
    return json.dumps(obj, default=_jsonable, allow_nan=True)


def append_rows(directory: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> Path:
    """Append rows as whole JSON lines to ``directory/runs.jsonl``; earlier lines are never touched.

    Under an exclusive advisory lock (``flock``) so concurrent runs never interleave bytes: one
    ``os.write`` per row on an append-only descriptor, then fsync. A write that fails part-way (a
    full disk) is cut back to the file's size before this call, so the file never ends in a partial
    line; the failure is one ``ResultsError`` line naming the file and the fix.
    """
    path = Path(directory) / RUNS_FILE
    data = [(to_json(row) + "\n").encode("utf-8") for row in rows]
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise _append_error(path, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        try:
            for line in data:
                if os.write(fd, line) != len(line):
                    raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, size)
            raise _append_error(path, exc) from None
    finally:
        os.close(fd)  # releases the lock
    return path


def _append_error(path: Path, exc: OSError) -> ResultsError:
    return ResultsError(f"could not append to {path} ({exc.strerror or exc}); earlier rows are intact; fix: free "
                        "disk space or pass --results DIR with a writable folder")


def read_rows(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All rows of ``directory/runs.jsonl`` (empty when there is none). A line that is not a whole JSON
    object (a run killed mid-write by an older version, a hand edit) is skipped with a warning naming
    the file and line, never a crash."""
    path = Path(directory) / RUNS_FILE
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:
            warnings.warn(f"{path}:{number}: not a whole JSON row (a run cut off mid-write?); skipped", stacklevel=2)
    return rows


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; the previous version stays intact until the rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))



def new_run_folder(results_dir: str | os.PathLike[str], run_id: str) -> Path:
    """Create ``results_dir/run_id/`` (it must not exist: earlier runs' folders are never touched)."""
    folder = Path(results_dir) / run_id
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def point_latest(results_dir: str | os.PathLike[str], run_id: str) -> Path:
    """Point ``results_dir/latest`` at the run folder ``run_id`` (an atomic swap of the link)."""
    latest = Path(results_dir) / "latest"
    tmp = Path(results_dir) / f".latest.{uuid.uuid4().hex[:6]}"
    tmp.symlink_to(run_id, target_is_directory=True)
    os.replace(tmp, latest)
    return latest
