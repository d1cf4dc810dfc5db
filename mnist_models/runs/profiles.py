"""A profile folder's data (``mnist-bench profile``): ``<results>/profiles/<id>/``, what its data files
hold, reading one back and finding the newest beside a run.

Data files (what every page of a profile is made from; ``report/profile/`` renders the pages):

- ``profile.json``: ``PROFILE_FIELDS`` (what ran, on what, the schedule, the breakdown, the profiler's
  overhead, the top operators), with ``format`` (``PROFILE_FORMAT``; folders written before the key have
  none and read the same);
- ``ops.csv``: every operator and input shapes (``measure.trace.op_rows``);
- ``breakdown.csv``: ms per step by category (``measure.trace.breakdown``);
- ``stacks.txt``: folded stacks (flame-graph input);
- ``trace.json.gz`` and ``tensorboard/<worker>.<ns>.pt.trace.json``: the profiler's Chrome trace.

A data-parallel profile (``profile --nproc N`` / ``--ddp``) is one folder too, its id chosen by rank 0: the
data files and pages are rank 0's, and each rank R writes its own trace as ``rank-R/trace.json.gz``
(``trace_name``; no top-level ``trace.json.gz``) and ``tensorboard/<id>-rankR.<ns>.pt.trace.json``, so
``tensorboard/`` holds every rank's trace and nothing else; ``profile.json``'s ``distributed`` lists them.

A profile's files, data and pages, are written all or none (``write_profile``), and ``removed_on_failure``
removes the new folder when the profile fails or is interrupted: a folder with ``profile.json`` is a
whole profile.

    from mnist_models.runs.profiles import latest_profile, read_profile
    folder = read_profile(latest_profile("results")); folder.ran, folder.ops()
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..models import slug
from ..results.store import ResultsError, write_files
from .files import RunFolderError

PROFILES = "profiles"  # <results>/profiles/<id>/
PROFILE_FILE = "profile.json"
PROFILE_FORMAT = 1  # profile.json's "format"; a higher one was written by a newer version and is not read
PROFILE_FIELDS = {
    "format": "PROFILE_FORMAT (absent before it was added)", "id": "the folder's name", "folder": "its path",
    "created_utc": "ISO time", "ran": "one sentence: model, variant, device, precision, layout, … and machine",
    "variant": "the variant's name", "config": "the RunConfig as a dict", "runtime": "what the runtime resolved",
    "machine": "machine tag", "environment": "results.provenance.environment()",
    "schedule": "wait, warmup, active", "activities": "CPU[, CUDA]", "device_time": "ops.csv has device time",
    "breakdown": "rows, step_ms, step_ms_mean, categories_sum_ms, device_busy_ms, device_comm_ms",
    "overhead": "measure.trace.overhead", "stacks_lines": "lines in stacks.txt",
    "tensorboard_file": "its name under tensorboard/", "top_ops": "the first 10 rows of ops.csv",
    "distributed": "data-parallel profiles only: world_size, backend, threads_per_rank, global_batch, traces and "
                   "tensorboard_files (one per rank, by rank), analysed_rank (0: the breakdown and operators)",
}
OPS_NEEDS = {"operator", "input_shapes", "self_cpu_us", "self_cpu_us_per_step", "self_device_us",
             "self_device_us_per_step"}
BREAKDOWN_NUMBERS = ("ms_per_step", "share_pct")
PROFILE_FIX = "fix: pass two folders written by `mnist-bench profile` (results/profiles/<id>)"
MAX_SUFFIX = 100  # profiles started in the same second: <id>, <id>-2, … <id>-99
TRACE = "trace.json.gz"


class ProfileFolderError(RunFolderError):
    """A folder that cannot be read as a profile: one line naming the problem and the fix (exit 2)."""


@dataclass(frozen=True)
class ProfileData:
    """One profile's data, as its files hold it."""

    meta: dict[str, Any]  # profile.json
    ops: pd.DataFrame  # ops.csv
    breakdown: pd.DataFrame  # breakdown.csv: category, ms_per_step, share_pct, how
    stacks: str  # stacks.txt
    trace_file: Path  # the TensorBoard trace the profiler wrote (trace.json.gz is it, gzipped)


def trace_name(rank: int | None = None) -> str:
    """Where a profile folder keeps a trace: ``trace.json.gz``, or rank R's of a data-parallel profile."""
    return TRACE if rank is None else f"rank-{rank}/{TRACE}"


def gzipped_trace(trace_file: Path) -> bytes:
    """The profiler's trace file, gzipped. mtime=0: the gzip's bytes depend on the trace alone; the trace is
    read back whole (once the handler saved it, export_chrome_trace raises "Trace is already saved")."""
    return gzip.compress(trace_file.read_bytes(), mtime=0)


def write_profile(folder: Path, data: ProfileData, pages: Mapping[str, str | bytes]) -> list[Path]:
    """The profile's data files and its rendered ``pages`` (name → text or bytes) into ``folder``, all or none
    (``results.store.write_files``: a full disk is one line naming the file, and no file is left half). The
    trace goes to ``trace.json.gz``; a data-parallel profile's ranks wrote theirs (``write_rank_trace``)."""
    files = {"profile.json": data.meta, "ops.csv": data.ops, "breakdown.csv": data.breakdown, "stacks.txt": data.stacks,
             TRACE: None if "distributed" in data.meta else gzipped_trace(data.trace_file)}
    return write_files(folder, {**files, **pages})


def write_rank_trace(folder: Path, trace_file: Path, rank: int) -> str:
    """Rank ``rank``'s trace of a data-parallel profile into ``folder`` (``trace_name``), whole or not at all;
    its name in the folder."""
    write_files(folder, {trace_name(rank): gzipped_trace(trace_file)})
    return trace_name(rank)


def profile_folder(results: str | os.PathLike[str], run_id: str) -> Path:
    """The folder of profile ``run_id`` in ``results`` (made by ``new_profile_folder``)."""
    return Path(results) / PROFILES / run_id


def new_profile_folder(results: str | os.PathLike[str], model: str, variant: str) -> tuple[str, Path]:
    """``results/profiles/<UTC timestamp>-<model>-<variant>/`` (a model of your own by ``models.slug``),
    created new (``-2``, ``-3``… when a profile started in the same second); its id and path."""
    stem = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{slug(model)}-{variant}".replace("+", "-")
    for n in range(1, MAX_SUFFIX):
        run_id = stem if n == 1 else f"{stem}-{n}"
        folder = profile_folder(results, run_id)
        try:
            folder.mkdir(parents=True)
            return run_id, folder
        except FileExistsError:
            continue
    raise ResultsError(f"{Path(results) / PROFILES} already holds {MAX_SUFFIX - 1} profiles named {stem}*; "
                       "fix: wait a second")


@contextlib.contextmanager
def removed_on_failure(folder: Path) -> Iterator[Path]:
    """The new profile folder, removed with what it holds when the profile fails (a full disk, Ctrl-C):
    no half profile is left for ``--diff`` or the run report to trip over. Nothing else is ever removed."""
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@dataclass(frozen=True)
class ProfileFolder:
    """A profile folder as read back: ``meta`` (profile.json; empty when it cannot be read, ``problem``
    says why), and its tables on demand."""

    path: Path
    meta: dict[str, Any]
    problem: str = ""

    @property
    def ran(self) -> str | None:
        """What ran, on what (profile.json's ``ran``), or None where the folder does not record it."""
        ran = self.meta.get("ran")
        return ran if isinstance(ran, str) and ran else None

    def ops(self) -> pd.DataFrame:
        """ops.csv, with the columns a diff needs; ``ProfileFolderError`` naming the problem otherwise."""
        path = self.path / "ops.csv"
        if not path.is_file():
            raise ProfileFolderError(f"{self.path} is not a profile folder (no ops.csv in it); {PROFILE_FIX}")
        try:
            ops = pd.read_csv(path, dtype={"operator": str, "input_shapes": str}, keep_default_na=False)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProfileFolderError(f"{path} cannot be read as a table ({exc}); {PROFILE_FIX}") from None
        missing = OPS_NEEDS - set(ops.columns)
        if missing or ops.empty:
            what = f"lacks the columns {', '.join(sorted(missing))}" if missing else "has no operators"
            raise ProfileFolderError(f"{path} {what}; {PROFILE_FIX}")
        return ops

    def breakdown(self) -> pd.DataFrame | None:
        """breakdown.csv with numeric ``ms_per_step`` and ``share_pct``; None when absent, damaged or
        hand-edited (text where a number belongs)."""
        try:
            rows = pd.read_csv(self.path / "breakdown.csv")
            for column in BREAKDOWN_NUMBERS:
                rows[column] = pd.to_numeric(rows[column])
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, KeyError, ValueError,
                TypeError):
            return None
        return rows


def _meta(path: Path) -> tuple[dict[str, Any], str]:
    """profile.json's fields and "", or {} and why they cannot be read."""
    try:
        meta = json.loads((path / PROFILE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, f"no {PROFILE_FILE}"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, f"{PROFILE_FILE} cannot be read ({type(exc).__name__})"
    if not isinstance(meta, dict):
        return {}, f"{PROFILE_FILE} is not a JSON object"
    fmt = meta.get("format", PROFILE_FORMAT)
    if not isinstance(fmt, int) or fmt > PROFILE_FORMAT:
        return {}, f"{PROFILE_FILE} has format {fmt!r}, newer than this version reads ({PROFILE_FORMAT})"
    return meta, ""


def read_profile(folder: str | os.PathLike[str]) -> ProfileFolder:
    """The profile folder ``folder``; ``ProfileFolderError`` when it is not a folder."""
    path = Path(folder)
    if not path.is_dir():
        raise ProfileFolderError(f"{folder} is not a folder; {PROFILE_FIX}")
    meta, problem = _meta(path)
    return ProfileFolder(path, meta, problem)


def latest_profile(results_dir: str | os.PathLike[str]) -> Path | None:
    """The newest profile folder in ``results_dir/profiles/`` (ids sort by time), or None: one holding
    profile.json or summary.md (a profile is written whole, so either says the folder is one)."""
    root = Path(results_dir) / PROFILES
    found = sorted(p for p in root.iterdir() if (p / PROFILE_FILE).is_file() or (p / "summary.md").is_file()) \
        if root.is_dir() else []
    return found[-1] if found else None
