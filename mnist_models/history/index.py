"""Indexing a results folder into the history database, incrementally.

- A run folder (``runs.paths.runs_in``) is read through the one reader (``runs.folder.read_tables``) only
  when it is new or its files changed since it was indexed (sizes and modification times: its
  fingerprint); its cases become points (``img_per_s`` with the rounds' spread, and the accuracy of a
  training case). A folder that cannot be read is skipped with its one line, and not read again until its
  files change.
- ``runs.jsonl`` (train, reproduce, speedup, sweep and tta rows) is read from the byte where the last call
  stopped; a file that was replaced (shorter, or another first line) is indexed again from its start. Each
  epoch row becomes points (``train_img_per_s``, ``test_acc_pct``), each tta seed one (``from_start_s``).
- Every source is written in one transaction: its old points deleted, its new ones and its fingerprint
  inserted, so an interrupted or failed call leaves the index as it was before that source.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select

from ..host.kinds import machine_kind
from ..results.database import database_errors
from ..results.store import RUN_ID_TIME, RUNS_FILE
from ..runs.folder import RunFolderError, read_tables
from ..runs.paths import ROW_FILES, has_rows
from .tables import RESUME, WHAT, points, renew_generation, sources

FINGERPRINT_FILES = (*ROW_FILES, "machine.json")
BATCH = 50  # run folders a transaction
UNRECORDED = "unrecorded"  # the machine kind of a run that recorded too little to tell
PARALLEL_FROM = 16  # run folders to read before it pays to start worker processes
MAX_WORKERS = 8
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"  # no torch here to fork
ROW_KINDS = ("train", "reproduce", "speedup", "sweep")  # epoch rows


@dataclass
class Indexed:
    """What one call did: run folders indexed, left as they were (unchanged), skipped (their one line), and
    rows read from ``runs.jsonl``."""

    folders: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    rows: int = 0


def fingerprint(folder: Path) -> str:
    """The sizes and modification times of a run folder's row files and machine.json, hashed."""
    parts = []
    for name in FINGERPRINT_FILES:
        try:
            stat = (folder / name).stat()
        except FileNotFoundError:
            continue
        parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def run_time(run_id: str, fallback: str = "") -> str:
    """A run's UTC time (ISO) from its id's leading timestamp, else ``fallback``."""
    try:
        stamp = datetime.strptime(run_id.split("-", 1)[0], RUN_ID_TIME).replace(tzinfo=timezone.utc)
    except ValueError:
        return fallback
    return stamp.isoformat(timespec="seconds")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def kind_of(env: dict[str, Any]) -> str:
    """The machine kind a run recorded, else the one its recorded facts give (``host.kinds``), else
    ``unrecorded`` (the oldest rows kept no CPU flags to tell)."""
    if env.get("machine_kind"):
        return str(env["machine_kind"])
    return machine_kind(env) if env.get("gpu") or env.get("cpu_isa") else UNRECORDED


def suite_case(row: dict[str, Any]) -> str:
    """A suite row's case name: phase, model, device, variant and batch size."""
    return f"{row['phase']} {row['model']} {row['device']} {row['variant']} b{int(row['batch_size'])}"


def folder_points(folder: Path) -> list[dict[str, Any]]:
    """The points of one run folder: per case its throughput with the rounds' spread, and a training
    case's test accuracy."""
    run = read_tables(folder)
    env, run_id = run.env, folder.name
    common = {"source": f"folder:{run_id}", "run_id": run_id, "kind": "suite",
              "machine_kind": kind_of(env), "commit_id": env.get("git_commit"),
              "time_utc": run_time(run_id, str(run.machine.get("time_utc", ""))), "host": env.get("hostname"),
              "dataset": run.dataset}
    found = []
    for table in (run.train, run.inference):
        for row in table.to_dict("records"):
            if not _finite(row.get("img_per_s")):
                continue
            case, median = suite_case(row), row.get("median_s")
            low = row["img_per_s"] * median / row["max_s"] if _finite(row.get("max_s")) and _finite(median) else None
            high = row["img_per_s"] * median / row["min_s"] if _finite(row.get("min_s")) and _finite(median) else None
            n = int(row["n"]) if _finite(row.get("n")) else None
            found.append({**common, "case_name": case, "metric": "img_per_s", "value": float(row["img_per_s"]),
                          "low": low, "high": high, "n": n})
            if row.get("phase") == "train" and _finite(row.get("test_acc_pct")):
                found.append({**common, "case_name": case, "metric": "test_acc_pct",
                              "value": float(row["test_acc_pct"]), "low": None, "high": None, "n": None})
    return found


def row_points(row: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """The points of one ``runs.jsonl`` row (none for a failed epoch or a kind not indexed)."""
    kind, cfg, env = row.get("kind"), row.get("config") or {}, row.get("environment") or {}
    if row.get("status") == "failed" or kind not in (*ROW_KINDS, "tta"):
        return []
    common = {"source": source, "run_id": str(row.get("run_id")), "kind": kind,
              "machine_kind": kind_of(env), "commit_id": env.get("git_commit"),
              "time_utc": str(row.get("time_utc") or run_time(str(row.get("run_id")))),
              "host": env.get("hostname"), "dataset": cfg.get("dataset", "mnist"), "low": None, "high": None}
    if kind == "tta":
        case = f"tta {row.get('model')} {row.get('device')} {row.get('precision')}"
        return [{**common, "case_name": case, "metric": "from_start_s", "value": float(row["from_start_s"]),
                 "n": None}] if _finite(row.get("from_start_s")) and row.get("reached") else []
    case = (f"{kind} {cfg.get('model')} {cfg.get('device')} {cfg.get('precision')} {cfg.get('loader')} "
            f"b{cfg.get('batch_size')}")
    epoch = row.get("epoch") if isinstance(row.get("epoch"), int) else None
    return [{**common, "case_name": case, "metric": metric, "value": float(row[metric]), "n": epoch}
            for metric in ("train_img_per_s", "test_acc_pct") if _finite(row.get(metric))]


@dataclass(frozen=True)
class Source:
    """One source's new state: its points, fingerprint, the offset read to (``runs.jsonl``), and the line of
    a run it could not read; ``fresh``: its old points go first."""

    source: str
    kind: str
    mark: str
    found: list[dict[str, Any]]
    offset: int = 0
    problem: str | None = None
    fresh: bool = True


def write(engine: Engine, batch: list[Source]) -> None:
    """Sources written in one transaction (each one's old points and fingerprint replaced), and the index's
    generation renewed, so an answer drawn from the index before is known to be stale."""
    if not batch:
        return
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with engine.begin() as connection:
        for item in batch:
            if item.fresh:
                connection.execute(delete(points).where(points.c.source == item.source))
            connection.execute(delete(sources).where(sources.c.source == item.source))
            if item.found:
                connection.execute(points.insert(), item.found)
            connection.execute(sources.insert().values(source=item.source, kind=item.kind, fingerprint=item.mark,
                                                       offset=item.offset, problem=item.problem, indexed_utc=stamp))
        renew_generation(connection)


def read_folder(folder_and_mark: tuple[Path, str]) -> Source:
    """A run folder (with its fingerprint) as a Source: its points, or the one line saying why it cannot be
    read."""
    folder, mark = folder_and_mark
    source = f"folder:{folder.name}"
    try:
        return Source(source, "folder", mark, folder_points(folder))
    except (RunFolderError, OSError, ValueError, KeyError) as exc:  # a damaged run: its line, then go on
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Source(source, "folder", mark, [], problem=f"{folder}: {why}")


def index_folders(engine: Engine, folders: list[Path], known: dict[str, tuple[str, int]], done: Indexed) -> None:
    """Index the run folders that are new or changed: read by one process per core when there are many
    (``PARALLEL_FROM``), written ``BATCH`` to a transaction."""
    marked = [(f, fingerprint(f)) for f in folders]  # each folder's files stat'ed once
    todo = [(f, mark) for f, mark in marked if known.get(f"folder:{f.name}", ("", 0))[0] != mark]
    done.unchanged += len(folders) - len(todo)
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if len(todo) < PARALLEL_FROM or workers < 2:
        _write_all(engine, map(read_folder, todo), done)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(START_METHOD)) as pool:
        _write_all(engine, pool.map(read_folder, todo, chunksize=max(1, BATCH // workers)), done)


def _write_all(engine: Engine, read: Iterable[Source], done: Indexed) -> None:
    batch: list[Source] = []
    for item in read:
        batch.append(item)
        if item.problem:
            done.skipped.append(item.problem)
        else:
            done.folders += 1
        if len(batch) == BATCH:
            write(engine, batch)
            batch = []
    write(engine, batch)


def index_rows(engine: Engine, path: Path, host: str, known: dict[str, tuple[str, int]], done: Indexed) -> None:
    """Index what ``runs.jsonl`` gained since the last call (all of it when it was replaced)."""
    source = f"rows:{host}:{path.resolve()}"
    with path.open("rb") as handle:
        mark = hashlib.sha1(handle.readline()).hexdigest()
        mark_known, offset = known.get(source, ("", 0))
        size = os.fstat(handle.fileno()).st_size
        fresh = mark_known != mark or size < offset
        if not fresh and size == offset:
            return
        start = 0 if fresh else offset
        handle.seek(start)
        data = handle.read()
    whole = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next call
    found: list[dict[str, Any]] = []
    for number, line in enumerate(whole.splitlines(), start=1):
        try:
            found += row_points(json.loads(line), source)
        except (ValueError, TypeError, KeyError):
            done.skipped.append(f"{path}: line {number} after byte {start} is not a row; skipped")
        done.rows += 1
    write(engine, [Source(source, "rows", mark, found, start + len(whole), None, fresh)])


def known_sources(engine: Engine) -> dict[str, tuple[str, int]]:
    with engine.connect() as connection:
        return {r.source: (r.fingerprint, r.offset or 0)
                for r in connection.execute(select(sources.c.source, sources.c.fingerprint, sources.c.offset))}


def index_results(engine: Engine, url: str, results: Path, host: str, done: Indexed | None = None) -> Indexed:
    """Index every run folder in ``results`` and its ``runs.jsonl`` (sweep trials' rows among them), adding to
    ``done`` (a new tally without one)."""
    done = done or Indexed()
    with database_errors(WHAT, url, RESUME):
        known = known_sources(engine)
        folders = [p for p in sorted(results.iterdir()) if p.is_dir() and not p.is_symlink() and has_rows(p)] \
            if results.is_dir() else []
        index_folders(engine, folders, known, done)
        if (results / RUNS_FILE).is_file():
            index_rows(engine, results / RUNS_FILE, host, known, done)
    return done


def push(engine: Engine, url: str, folders: list[Path], done: Indexed | None = None) -> Indexed:
    """Index the run folders given (``mnist-bench push``), adding to ``done`` (a new tally without one)."""
    done = done or Indexed()
    with database_errors(WHAT, url, RESUME):
        index_folders(engine, folders, known_sources(engine), done)
    return done
