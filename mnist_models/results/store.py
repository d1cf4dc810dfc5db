"""The results store: ``runs.jsonl`` (append-only), run folders with their ``latest`` link, and atomic
writes. Nothing here renders or decides what a table says (that is ``report/``).

- ``runs.jsonl``: each call appends whole lines and never rewrites what is there.
- Every other file is written atomically (temp file + fsync + rename) by ``atomic_write_files``: a
  reader sees the old file or the whole new one, never a partial write, and the files of one call are
  all written or none (a full disk leaves every earlier file as it was, and no temp file behind).
  ``write_files`` is the same for named contents (a table → CSV, a dict → JSON, text, bytes).
- A write that fails is one line naming the file and why: ``DiskFullError`` (exit 1) for a full
  disk or quota, ``WriteError`` / ``ResultsError`` (exit 2) for a folder that cannot be written.

See ``results/README.md`` (the project's results folder) for every file and column.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any
from ..errors import MachineLimit, UserError

RUNS_FILE = "runs.jsonl"
RUN_ID_TIME = "%Y%m%dT%H%M%SZ"  # a run id (a run folder's name) starts with its UTC start time


class ResultsError(UserError, OSError):
    """The results directory cannot be written. The message is one line with the fix."""


class WriteError(ResultsError):
    """A file could not be written (a read-only folder, a file in the way): one line naming the file and
    why; the file as it was before is intact. The CLI exits 2: the fix is a writable folder."""


class DiskFullError(WriteError, MachineLimit):
    """The disk (or the quota) filled while writing: one line naming the file; every file written before
    is intact. Not a usage error: the CLI exits 1, as for running out of memory."""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def write_error(path: str | os.PathLike[str] | None, exc: OSError) -> WriteError:
    """``exc``, raised while writing ``path``, as one line naming the file and why: ``DiskFullError`` for a
    full disk or quota, else ``WriteError`` (one already converted passes through). ``errno`` is kept."""
    if isinstance(exc, WriteError):
        return exc
    what = path if path is not None else exc.filename if exc.filename is not None else "a file"
    why = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in DISK_FULL_ERRNOS:
        error: WriteError = DiskFullError(
            f"could not write {what} ({why}); every file written before is intact; fix: free space on that "
            "disk (or point the command at a folder on another one) and run it again")
    else:
        error = WriteError(f"could not write {what} ({why}); the file as it was before is intact; fix: pass a "
                           "folder this user can write")
    error.errno = exc.errno  # set alone, it leaves the message as it is
    return error


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is down (a regular file may take a write in parts)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _stage(path: Path, data: bytes) -> str:
    """``data`` complete and fsync'd in a temp file beside ``path`` (``.<name>.<random>.tmp``, the usual
    permissions); the temp file's name. A failure removes the temp file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_files(files: Mapping[str | os.PathLike[str], bytes]) -> list[Path]:
    """Write every file of ``files`` (path → bytes), or none of them: the one way files are written here.

    Each goes to a temp file in its own folder, written whole and fsync'd; only when all are complete are
    they renamed over their targets. A reader sees each old file or the whole new one, and a failure while
    writing (a full disk) leaves every target as it was and removes every temp file. The failure is one
    line naming the file (``write_error``): ``DiskFullError`` for a full disk, else ``WriteError``.
    """
    paths = [Path(path) for path in files]
    temps: list[str] = []
    renamed = 0
    try:
        for path, data in zip(paths, files.values(), strict=True):
            temps.append(_stage(path, data))
        for path, tmp in zip(paths, temps, strict=True):
            os.replace(tmp, path)
            renamed += 1
    except BaseException as exc:
        for tmp in temps[renamed:]:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            failed = paths[len(temps)] if len(temps) < len(paths) else paths[renamed]
            raise write_error(failed, exc) from None
        raise
    return paths


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` through a temp file in the same folder, fsync, then rename over ``path``
    (``atomic_write_files`` with one file): a reader sees the old file or the whole new one."""
    return atomic_write_files({path: data})[0]


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
        if exc.errno in DISK_FULL_ERRNOS:
            raise write_error(path, exc) from None
        raise ResultsError(f"results directory {path} is not writable ({exc.strerror or exc}); "
                           "fix: pass --results DIR with a writable folder") from None
    return path


def jsonable(value: Any) -> Any:
    """``json.dumps``' ``default``: dataclasses, paths, tensors and arrays as JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    if callable(getattr(value, "tolist", None)):  # torch tensors, numpy arrays
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


Content = Any  # what ``write_files`` writes: str, bytes, a dict (JSON) or a table with ``to_csv`` (pandas)


def file_bytes(name: str, content: Content) -> bytes:
    """The bytes of file ``name``: bytes as they are (a PNG, a gzipped trace), a table as CSV without its
    index, a dict as JSON (pytest-benchmark's own ``benchmark.json`` compactly), text as UTF-8."""
    if isinstance(content, bytes):
        return content
    if callable(getattr(content, "to_csv", None)):  # a pandas DataFrame, without importing pandas here
        return content.to_csv(index=False).encode("utf-8")
    if isinstance(content, dict):
        indent = 1 if name == "benchmark.json" else 2
        content = json.dumps(content, indent=indent, default=jsonable if indent == 2 else str) + "\n"
    return content.encode("utf-8")


def write_files(folder: str | os.PathLike[str], files: Mapping[str, Content | None],
                also: Mapping[Path, str] | None = None) -> list[Path]:
    """Write each named file into ``folder`` (``file_bytes``; None entries skipped), and ``also``'s files
    (path → text) with them: all of them or none (``atomic_write_files``, renamed in the order given).
    The paths written, ``folder``'s first."""
    contents = {Path(folder) / name: file_bytes(name, content) for name, content in files.items()
                if content is not None}
    contents |= {Path(path): text.encode("utf-8") for path, text in (also or {}).items()}
    return atomic_write_files(contents)


def to_json(obj: Any) -> str:
    """One-line JSON with dataclasses, paths and tensors converted."""
    return json.dumps(obj, default=jsonable, allow_nan=True)


def append_rows(directory: str | os.PathLike[str], rows: Iterable[dict[str, Any]], name: str = RUNS_FILE
                ) -> Path:
    """Append rows as whole JSON lines to ``directory/runs.jsonl`` (or ``name``: a suite run folder's
    ``cases.jsonl``); earlier lines are never touched.

    Under an exclusive advisory lock (``flock``) so concurrent runs never interleave bytes: one
    ``os.write`` per row on an append-only descriptor, then fsync. A write that fails part-way (a
    full disk) is cut back to the file's size before this call, so the file never ends in a partial
    line; the failure is one ``ResultsError`` line naming the file and the fix.
    """
    path = Path(directory) / name
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
    kind = DiskFullError if exc.errno in DISK_FULL_ERRNOS else ResultsError  # a full disk: exit 1, not 2
    error = kind(f"could not append to {path} ({exc.strerror or exc}); earlier rows are intact; fix: free "
                 "disk space or pass --results DIR with a writable folder")
    error.errno = exc.errno
    return error


def read_rows(directory: str | os.PathLike[str], name: str = RUNS_FILE) -> list[dict[str, Any]]:
    """All rows of ``directory/runs.jsonl`` (or ``name``; empty when there is none). A line that is not a
    whole JSON object (a run killed mid-write by an older version, a hand edit) is skipped with a warning
    naming the file and line, never a crash."""
    return [row for _, row in numbered_rows(directory, name)]


def numbered_rows(directory: str | os.PathLike[str], name: str = RUNS_FILE,
                  problems: list[tuple[int, str]] | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(line, row) of every whole JSON object in ``directory/name``, lines numbered as an editor shows
    them (the first is 1). A line that is not one is skipped: with ``problems`` given, (line, why) is
    added to it, else a warning names the file and line. A file that cannot be read: ``ResultsError``."""
    path = Path(directory) / name
    if not path.is_file():
        return []
    try:
        text = path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")  # an editor's BOM
    except OSError as exc:
        raise ResultsError(f"cannot read {path} ({exc.strerror or exc}); fix: make it readable") from None
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            row = None
        if isinstance(row, dict):
            rows.append((number, row))
        elif problems is not None:
            problems.append((number, "not a whole JSON row (a run cut off mid-write, or a hand edit?); skipped"))
        else:
            warnings.warn(f"{path}:{number}: not a whole JSON row (a run cut off mid-write?); skipped", stacklevel=3)
    return rows


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; the previous version stays intact until the rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def new_run_folder(results_dir: str | os.PathLike[str], run_id: str) -> Path:
    """Create ``results_dir/run_id/`` (it must not exist: earlier runs' folders are never touched)."""
    folder = Path(results_dir) / run_id
    try:
        folder.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise write_error(folder, exc) from None
        raise
    return folder


def point_latest(results_dir: str | os.PathLike[str], run_id: str) -> Path:
    """Point ``results_dir/latest`` at the run folder ``run_id`` (an atomic swap of the link)."""
    latest = Path(results_dir) / "latest"
    tmp = Path(results_dir) / f".latest.{uuid.uuid4().hex[:6]}"
    try:
        tmp.symlink_to(run_id, target_is_directory=True)
        os.replace(tmp, latest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(latest, exc) from None
    return latest
