"""THE reader of a benchmark-suite run folder: ``read_run(folder)`` → ``RunFolder``, what the run report
(``mnist-bench report``) and ``mnist-bench compare`` are made from, read once.

A folder of any version is read (the oldest lack columns, ``rounds.csv``, ``confusion.csv``,
``predictions.csv`` and most of ``machine.json``; only runs with ``--bench-ddp`` have ``scaling.csv``; what
is missing is said, never guessed), finished or not (a session that stopped before its end has
``cases.jsonl`` and no ``machine.json``: its tables come from the rows, see ``runs.files``). Every file goes
through ``runs.files`` and its ``schema``; the train and inference tables are recomputed with
``runs.frames.bench_frames`` so every run reads by today's definitions; the skipped cases come from
machine.json's ``skips`` only (older folders had theirs copied there from their summary.md: nothing is
parsed back out of rendered Markdown).

Raw per-round samples come from ``rounds.csv`` (one line per timed round) or, for older folders, from
``benchmark.json`` (pytest-benchmark's own clock around the same rounds: a few hundred nanoseconds longer
each, up to ~2% of a batch-1 inference round, so compare never mixes the two).

A folder that cannot be read raises ``RunFolderError``: one line naming the problem and the fix, the
side (``BASE``/``NEW``) first when ``role`` is given; the CLI prints it and exits 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..results.store import RUN_ID_TIME
from .files import CASES_FILE, Incomplete, Problem, RunFileError, RunFiles
from .frames import bench_frames, is_missing
from .keys import ENV_KEYS, KEYS, Key, case_key
from .paths import RUN_FIX, RunFolderError, check_folder, runs_in
from .schema import RENAMED

__all__ = ["FILES", "RUN_FIX", "RunFolder", "RunFolderError", "check_folder", "machine_kinds", "read_run", "runs_in"]

# The files a run folder may hold that a reader names (``RunFolder.files``: those present, in this order).
FILES = ("train.csv", "inference.csv", "rounds.csv", "tta.csv", "confusion.csv", "predictions.csv", "scaling.csv",
         "machine.json", "benchmark.json", "summary.md", "compare.md", CASES_FILE)
DERIVED = ("speedup_vs_eager", "acc_delta_vs_eager_pct", "acc_band")  # recomputed by bench_frames
SAMPLE_SOURCES = ("rounds.csv", "benchmark.json")  # raw per-round seconds, the first preferred
Case = tuple[str, str, str, str]  # a skipped case: (phase, model, device, variant)


@dataclass(frozen=True)
class RunFolder:
    """One run folder, read once (``read_run``).

    ``path``: the folder as the command was given it (messages name it so); ``machine``: machine.json ({}
    when absent); ``env``: its environment completed from the rows; ``train``, ``inference``: the tables
    recomputed by ``bench_frames`` (empty when not recorded); ``rows``: each train and inference row as
    read, by its case key; ``tta``: tta.csv (empty when absent); ``rounds``, ``confusion``, ``predictions``,
    ``scaling`` (one row per ``--bench-ddp`` layout): None where the run did not write them; ``samples``:
    raw per-round seconds by source (``SAMPLE_SOURCES``) and key, only the sources it has; ``skips``: (case,
    reason) of every case skipped while running, None when the run recorded none; ``left_out``: (what,
    reason) of what the session never collected (a device not here, a variant that does not apply), empty
    when it recorded none; ``problems``: what was skipped or left out of its files (file and line);
    ``unreadable``: cases whose row was skipped as unreadable; ``incomplete``: set for a session that
    stopped before its end; ``files``: the ``FILES`` it has."""

    path: Path
    machine: dict[str, Any]
    env: dict[str, Any]
    train: pd.DataFrame
    inference: pd.DataFrame
    rows: dict[Key, dict[str, Any]]
    tta: pd.DataFrame
    rounds: pd.DataFrame | None = None
    confusion: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    scaling: pd.DataFrame | None = None
    samples: dict[str, dict[Key, list[float]]] = field(default_factory=dict)
    skips: tuple[tuple[str, str], ...] | None = None
    left_out: tuple[tuple[str, str], ...] = ()
    problems: list[Problem] = field(default_factory=list)
    unreadable: dict[Key, Problem] = field(default_factory=dict)
    incomplete: Incomplete | None = None
    files: tuple[str, ...] = ()

    @property
    def resolved(self) -> Path:
        """The folder itself (``results/latest`` read as the run it points at)."""
        return self.path.resolve()

    @property
    def run_id(self) -> str:
        return self.resolved.name

    @property
    def machine_kind(self) -> str:
        """The machine kind the run ran on ("" when it does not say)."""
        return str(self.env.get("machine_kind") or "")

    @property
    def dataset(self) -> str:
        """The data set the run trained and evaluated on (runs from before ``--bench-dataset``: MNIST)."""
        return str(self.env.get("dataset") or "mnist")

    @property
    def started(self) -> datetime | None:
        """When the session started (its run id's UTC time); None for a folder named otherwise."""
        try:
            return datetime.strptime(self.run_id[:16], RUN_ID_TIME).replace(tzinfo=timezone.utc)
        except ValueError:
            return None

    def skip_reason(self, case: Case) -> str | None:
        """Why the run skipped ``case`` (phase, model, device, variant); None when it did not list it."""
        return _skipped(self.skips).get(case)

    def selected(self, key: Key) -> bool:
        """Whether the run was asked for this case and did not list it as skipped, so that its absence
        means it failed: the case is in machine.json's models × devices × variants, the run has rows of
        the same phase, model and device (a session narrowed with ``-k`` to other phases or models
        leaves none), and for inference a row at the same batch size."""
        phase, model, device, variant, batch = key
        chosen = all(part in (self.machine.get(name) or ()) for part, name in
                     ((model, "models"), (device, "devices"), (variant, "variants")))
        ran = any(k[:3] == key[:3] for k in self.rows)
        if phase == "inference":
            ran = ran and batch in {k[4] for k in self.rows if k[0] == "inference"}
        return chosen and ran and self.skip_reason((phase, model, device, variant)) is None


def _skipped(skips: tuple[tuple[str, str], ...] | None) -> dict[Case, str]:
    """The skipped train and inference cases by (phase, model, device, variant), a variant written under
    an old name read under today's (as the rows are)."""
    out: dict[Case, str] = {}
    for case, reason in skips or ():
        parts = case.split()
        if len(parts) == 4 and parts[0] in ("train", "inference"):
            out[(parts[0], parts[1], parts[2], RENAMED["variant"].get(parts[3], parts[3]))] = reason
    return out


def _recorded(machine: dict[str, Any], key: str, name: str) -> tuple[tuple[str, str], ...] | None:
    """machine.json's ``skips`` (``name`` "case") or ``left_out`` ("what") as (name, reason) pairs, as
    recorded; None when it has none (an incomplete run, or a version before the list was kept)."""
    if not isinstance(machine.get(key), list):
        return None
    return tuple((str(entry.get(name, "")), str(entry.get("reason", ""))) for entry in machine[key])


def machine_kinds(runs: list[RunFolder]) -> list[str]:
    """The machine kinds of ``runs``, sorted ("unnamed" for a run that does not say): runs judged together
    must be of one."""
    return sorted({run.machine_kind or "unnamed" for run in runs})


def _or_empty(frame: pd.DataFrame | None) -> pd.DataFrame:
    return pd.DataFrame() if frame is None else frame


def _environment(machine: dict[str, Any], frames: list[pd.DataFrame]) -> dict[str, Any]:
    """machine.json's environment, completed from the first row's environment columns (older runs'
    machine.json lack the capabilities); keys the header needs and nobody recorded say so."""
    env: dict[str, Any] = {}
    for frame in frames:
        if not frame.empty:
            first = frame.iloc[0]
            env |= {k: first[k] for k in ENV_KEYS if k in first and not is_missing(first[k]) and k not in env}
    env |= {k: v for k, v in machine.items() if not isinstance(v, (dict, list)) and v is not None}
    return {"torch": "not recorded", "cpu": "not recorded", "torch_threads": "?", "cpu_count": "?", "cuda": None,
            "cudnn": None, "git_commit": None, "gpu": None, **env}


def _recomputed(train: pd.DataFrame, inference: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables recomputed with ``bench_frames`` (speed-up, accuracy delta, band flag), so every run
    reads by today's definitions; older runs' rows lack the band columns: no verdict then."""
    rows = [f.drop(columns=[c for c in DERIVED if c in f]).to_dict("records") for f in (train, inference)]
    return bench_frames(rows[0], rows[1])


def _rounds_samples(frame: pd.DataFrame | None) -> dict[Key, list[float]]:
    if frame is None or frame.empty or not set(KEYS) | {"seconds"} <= set(frame.columns):
        return {}
    out: dict[Key, list[float]] = {}
    for row in frame.to_dict("records"):
        out.setdefault(case_key(row), []).append(float(row["seconds"]))
    return out


def _benchmark_samples(bench: Any, problems: list[Problem]) -> dict[Key, list[float]]:
    """pytest-benchmark's per-round times by case; an entry that does not hold them is left out (said)."""
    out: dict[Key, list[float]] = {}
    entries = bench.get("benchmarks") if isinstance(bench, dict) else None
    for number, entry in enumerate(entries if isinstance(entries, list) else [], start=1):
        info = entry.get("extra_info") if isinstance(entry, dict) else None
        data = (entry.get("stats") or {}).get("data") if isinstance(entry, dict) else None
        if not isinstance(info, dict) or not all(k in info for k in ("phase", "model", "device", "variant")):
            continue  # not a suite case
        try:
            out[case_key(info)] = [float(v) for v in data]
        except (TypeError, ValueError):
            problems.append(Problem("benchmark.json", None, f"benchmark {number} ({info.get('name', 'a case')}): its "
                                                            "per-round times are not numbers; left out"))
    return out


def _unreadable(problems: list[Problem]) -> dict[Key, Problem]:
    """The cases whose train or inference row was skipped, where the row still names its case."""
    out = {}
    for problem in problems:
        for row in problem.rows:
            if row.get("phase") in ("train", "inference"):
                try:
                    out[case_key(row)] = problem
                except (KeyError, TypeError, ValueError, OverflowError):
                    continue
    return out


def read_run(folder: str | os.PathLike[str], role: str | None = None) -> RunFolder:
    """Read a run folder of any version (see the module's docstring); ``role`` (BASE or NEW) names the
    side in compare's errors. Not a run folder, or a file it cannot go on without: ``RunFolderError``
    naming the file and line; what it skipped or left out is in ``problems``."""
    path = check_folder(folder, role)
    files = RunFiles(path)
    try:
        machine = files.machine()
        raw = {name: _or_empty(files.table(name)) for name in ("train.csv", "inference.csv", "tta.csv")}
        extra = {name: files.table(name) for name in ("rounds.csv", "confusion.csv", "predictions.csv", "scaling.csv")}
        bench = files.optional_json("benchmark.json")
    except RunFileError as exc:
        raise RunFolderError(f"{role}: {exc.say(path)}" if role else exc.say(path)) from None
    tables = [raw["train.csv"], raw["inference.csv"]]
    train, inference = _recomputed(*tables)
    samples = {"rounds.csv": _rounds_samples(extra["rounds.csv"]),
               "benchmark.json": _benchmark_samples(bench, files.problems)}
    return RunFolder(
        path=path, machine=machine, env=_environment(machine, tables), train=train, inference=inference,
        rows={case_key(r): r for t in tables if not t.empty for r in t.to_dict("records")}, tta=raw["tta.csv"],
        rounds=extra["rounds.csv"], confusion=extra["confusion.csv"], predictions=extra["predictions.csv"],
        scaling=extra["scaling.csv"],
        samples={source: found for source, found in samples.items() if found},
        skips=_recorded(machine, "skips", "case"), left_out=_recorded(machine, "left_out", "what") or (),
        problems=files.problems, unreadable=_unreadable(files.problems), incomplete=files.incomplete,
        files=tuple(n for n in FILES if (path / n).is_file() and (n != CASES_FILE or files.incomplete)))


def read_tables(folder: str | os.PathLike[str]) -> RunFolder:
    """A run folder's machine.json and its train, inference and tta tables only (what a history of many runs
    needs), read as ``read_run`` reads them; the per-round samples, confusion matrices and predictions are
    left out (None or empty). The same errors as ``read_run``."""
    path = check_folder(folder)
    files = RunFiles(path)
    try:
        machine = files.machine()
        raw = {name: _or_empty(files.table(name)) for name in ("train.csv", "inference.csv", "tta.csv")}
    except RunFileError as exc:
        raise RunFolderError(exc.say(path)) from None
    tables = [raw["train.csv"], raw["inference.csv"]]
    train, inference = _recomputed(*tables)
    return RunFolder(path=path, machine=machine, env=_environment(machine, tables), train=train, inference=inference,
                     rows={}, tta=raw["tta.csv"], problems=files.problems, incomplete=files.incomplete)
