"""Reading a benchmark run folder for ``compare``: its tables, its raw per-round samples, what it was
asked to run and what it skipped. Reads only; ``compare`` decides, ``compare_page`` renders.

Raw samples come from ``rounds.csv`` (one line per timed round, written since the round lists were
kept) or, for older folders, from ``benchmark.json`` (pytest-benchmark's own clock around the same
rounds: a few hundred nanoseconds longer each, up to ~2% of a batch-1 inference round, so the two
are never mixed in one comparison; see ``sample_sources``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .files import CASES_FILE, Incomplete, Problem, RunFileError, RunFiles, recorded_skips
from .keys import KEYS, Key, case_key


class CompareError(ValueError):
    """A folder that cannot be compared; the message is one line naming the problem and the fix."""


@dataclass(frozen=True)
class RunFolder:
    """One run folder as compare reads it.

    ``rows``: each case's row (train.csv and inference.csv) by its key (phase, model, device, variant,
    batch size); ``tta``: tta.csv (empty when absent); ``machine``: machine.json ({} when absent);
    ``samples``: raw per-round seconds by key and source (``"rounds.csv"``, ``"benchmark.json"``);
    ``skips``: (phase, model, device, variant) the run listed as skipped, with the reason; ``problems``:
    what was skipped or left out of its files (file and line); ``incomplete``: set for a session that
    stopped before its end (its rows come from cases.jsonl, and it lists no skips)."""

    path: Path
    rows: dict[Key, dict[str, Any]]
    tta: pd.DataFrame
    machine: dict[str, Any]
    samples: dict[str, dict[Key, list[float]]] = field(default_factory=dict)
    skips: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    incomplete: Incomplete | None = None
    unreadable: dict[Key, Problem] = field(default_factory=dict)  # cases whose row was skipped as unreadable

    @property
    def name(self) -> str:
        return self.path.name

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
        return chosen and ran and (phase, model, device, variant) not in self.skips


def _or_empty(frame: pd.DataFrame | None) -> pd.DataFrame:
    return pd.DataFrame() if frame is None else frame


def _rounds_samples(frame: pd.DataFrame) -> dict[Key, list[float]]:
    if frame.empty or not set(KEYS) | {"seconds"} <= set(frame.columns):
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


def _skips(machine: dict[str, Any], summary: str) -> dict[tuple[str, str, str, str], str]:
    """Skipped cases keyed ``(phase, model, device, variant)`` (``files.recorded_skips``)."""
    out = {}
    for case, reason in recorded_skips(machine, summary)[0]:
        parts = case.split()
        if len(parts) == 4 and parts[0] in ("train", "inference"):
            out[tuple(parts)] = reason
    return out


def load_run(folder: str | os.PathLike[str], role: str) -> RunFolder:
    """Read a run folder (``role`` names it in errors: BASE or NEW)."""
    path = Path(folder)
    if not path.exists():
        raise CompareError(f"{role} {folder}: no such folder; fix: pass a benchmark run folder such as "
                           "results/latest or results/<run-id>")
    if not path.is_dir():
        raise CompareError(f"{role} {folder} is a file, not a run folder; fix: pass results/<run-id>/")
    files = RunFiles(path)
    if not files.has_rows():
        raise CompareError(f"{role} {folder} is not a benchmark run folder (no train.csv, inference.csv or "
                           f"{CASES_FILE}); fix: pass a folder written by `pytest bench --benchmark-only`, e.g. "
                           "results/latest")
    try:
        machine = files.machine()
        tables = [_or_empty(files.table(name)) for name in ("train.csv", "inference.csv")]
        rounds, tta = _or_empty(files.table("rounds.csv")), _or_empty(files.table("tta.csv"))
        bench, summary = files.optional_json("benchmark.json"), files.text("summary.md")
    except RunFileError as exc:
        raise CompareError(f"{role}: {exc.say(path)}") from None
    rows = {case_key(r): r for t in tables if not t.empty for r in t.to_dict("records")}
    samples = {"rounds.csv": _rounds_samples(rounds), "benchmark.json": _benchmark_samples(bench, files.problems)}
    return RunFolder(path.resolve(), rows, tta, machine, {k: v for k, v in samples.items() if v},
                     _skips(machine, summary), files.problems, files.incomplete, _unreadable(files.problems))


def sample_source(base: RunFolder, new: RunFolder) -> str | None:
    """The raw-sample source both folders have (rounds.csv first), or None: one clock on both sides."""
    return next((s for s in ("rounds.csv", "benchmark.json") if s in base.samples and s in new.samples), None)
