"""Reading a benchmark run folder for ``compare``: its tables, its raw per-round samples, what it was
asked to run and what it skipped. Reads only; ``compare`` decides, ``compare_render`` renders.

Raw samples come from ``rounds.csv`` (one line per timed round, written since the round lists were
kept) or, for older folders, from ``benchmark.json`` (pytest-benchmark's own clock around the same
rounds: a few hundred nanoseconds longer each, up to ~2% of a batch-1 inference round, so the two
are never mixed in one comparison; see ``sample_sources``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .run_files import UnreadableFile, read_csv, read_json, recorded_skips

KEYS = ("phase", "model", "device", "variant", "batch_size")
Key = tuple[str, str, str, str, int]


class CompareError(ValueError):
    """A folder that cannot be compared; the message is one line naming the problem and the fix."""


@dataclass(frozen=True)
class RunFolder:
    """One run folder as compare reads it.

    ``rows``: each case's row (train.csv and inference.csv) by its key (phase, model, device, variant,
    batch size); ``tta``: tta.csv (empty when absent); ``machine``: machine.json ({} when absent);
    ``samples``: raw per-round seconds by key and source (``"rounds.csv"``, ``"benchmark.json"``);
    ``skips``: (phase, model, device, variant) the run listed as skipped, with the reason."""

    path: Path
    rows: dict[Key, dict[str, Any]]
    tta: pd.DataFrame
    machine: dict[str, Any]
    samples: dict[str, dict[Key, list[float]]] = field(default_factory=dict)
    skips: dict[tuple[str, str, str, str], str] = field(default_factory=dict)

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


def case_key(row: dict[str, Any]) -> Key:
    """A row's key; training rows carry their training batch (32)."""
    batch = row.get("batch_size")
    batch = -1 if batch is None or (isinstance(batch, float) and math.isnan(batch)) else int(batch)
    return (str(row["phase"]), str(row["model"]), str(row["device"]), str(row["variant"]), batch)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = read_csv(path)
    except UnreadableFile as exc:
        raise CompareError(f"{path} cannot be read ({exc}); fix: pass a run folder "
                           "whose CSVs the benchmark suite wrote") from None
    return pd.DataFrame() if frame is None else frame


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except UnreadableFile as exc:
        raise CompareError(f"{path} is not valid JSON ({exc}); fix: pass a run folder the benchmark suite "
                           "wrote, or remove the damaged file") from None


def _rounds_samples(frame: pd.DataFrame) -> dict[Key, list[float]]:
    if frame.empty or not set(KEYS) | {"seconds"} <= set(frame.columns):
        return {}
    out: dict[Key, list[float]] = {}
    for row in frame.to_dict("records"):
        out.setdefault(case_key(row), []).append(float(row["seconds"]))
    return out


def _benchmark_samples(bench: Any) -> dict[Key, list[float]]:
    out: dict[Key, list[float]] = {}
    for entry in (bench or {}).get("benchmarks", []) if isinstance(bench, dict) else []:
        info, data = entry.get("extra_info") or {}, (entry.get("stats") or {}).get("data")
        if data and all(k in info for k in ("phase", "model", "device", "variant")):
            out[case_key(info)] = [float(v) for v in data]
    return out


def _skips(machine: dict[str, Any], summary: Path) -> dict[tuple[str, str, str, str], str]:
    """Skipped cases keyed ``(phase, model, device, variant)`` (``run_files.recorded_skips``)."""
    text = summary.read_text(encoding="utf-8") if summary.exists() else ""
    out = {}
    for case, reason in recorded_skips(machine, text)[0]:
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
    tables = [_read_csv(path / name) for name in ("train.csv", "inference.csv")]
    if not (path / "train.csv").exists() and not (path / "inference.csv").exists():
        raise CompareError(f"{role} {folder} is not a benchmark run folder (no train.csv or inference.csv); fix: "
                           "pass a folder written by `pytest bench --benchmark-only`, e.g. results/latest")
    rows = {case_key(r): r for t in tables if not t.empty and "phase" in t for r in t.to_dict("records")}
    machine = _read_json(path / "machine.json")
    machine = machine if isinstance(machine, dict) else {}
    samples = {"rounds.csv": _rounds_samples(_read_csv(path / "rounds.csv")),
               "benchmark.json": _benchmark_samples(_read_json(path / "benchmark.json"))}
    return RunFolder(path.resolve(), rows, _read_csv(path / "tta.csv"), machine,
                     {k: v for k, v in samples.items() if v}, _skips(machine, path / "summary.md"))


def sample_source(base: RunFolder, new: RunFolder) -> str | None:
    """The raw-sample source both folders have (rounds.csv first), or None: one clock on both sides."""
    return next((s for s in ("rounds.csv", "benchmark.json") if s in base.samples and s in new.samples), None)
