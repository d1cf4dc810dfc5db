"""``noise.csv``: each case's run-to-run noise on one machine kind, learned by ``mnist-bench noise``
from repeated runs of unchanged code, read by ``compare`` to judge a change against it.

One row per case (``KEYS``) with ``sigma`` (SD of ln time per image between runs), ``dof`` (its degrees
of freedom: runs − 1 per code version), ``runs``, ``machine_kind`` and ``torch``. Where compare looks
for it: ``--noise FILE``; else ``noise.csv`` in the results folder that holds BASE; else the table this
package ships for the machine kind (``mnist_models/runs/noise/<machine kind>.csv``, learned from the A/A
runs kept in ``tests/fixtures/aa/``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .files import RunFolderError
from .keys import KEYS, Key, case_key

NOISE_FILE = "noise.csv"
COLUMNS = (*KEYS, "sigma", "dof", "runs", "machine_kind", "torch")
SHIPPED = Path(__file__).resolve().parent / "noise"
FIX = "fix: pass a noise.csv written by `mnist-bench noise`"


@dataclass(frozen=True)
class NoiseTable:
    """Learned noise by case key: (σ, degrees of freedom); where it came from (``source``)."""

    machine_kind: str
    source: str
    cases: dict[Key, tuple[float, int]] = field(default_factory=dict)
    runs: int = 0
    borrowed: bool = False  # learned on another machine kind: a guess, trusted as a few runs' worth


def noise_class(key: Key) -> tuple[str, bool]:
    """A case's noise class: its phase, and whether it is compiled (a fresh compilation every run)."""
    return key[0], "compile" in key[3]


def noise_frame(sigma: pd.DataFrame, machine_kind: str, torch: str) -> pd.DataFrame:
    """The table to write: ``sigma`` (KEYS, sigma, dof, runs) with the machine kind and torch."""
    return sigma.assign(machine_kind=machine_kind, torch=torch)[list(COLUMNS)]


def read_noise(path: str | os.PathLike[str], source: str | None = None) -> NoiseTable:
    """A noise.csv; not one (missing, unreadable, other columns, not one machine kind): ``RunFolderError``."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"--noise {path} cannot be read ({type(exc).__name__}: {exc}); {FIX}") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    kinds = set(frame.get("machine_kind", pd.Series(dtype=str)).dropna())
    if missing or len(kinds) != 1:
        what = f"lacks the columns {', '.join(missing)}" if missing else f"holds {len(kinds)} machine kinds"
        raise RunFolderError(f"--noise {path} {what}; {FIX}")
    cases = {}
    for row in frame.to_dict("records"):
        sigma, dof = float(row["sigma"]), row["dof"]
        if math.isfinite(sigma) and sigma > 0 and not pd.isna(dof) and int(dof) > 0:
            cases[case_key(row)] = (sigma, int(dof))
    return NoiseTable(kinds.pop(), source or str(path), cases, int(frame["runs"].max()) if len(frame) else 0)


def find_noise(explicit: str | None, base_folders: list[Path], machine_kind: str) -> NoiseTable | None:
    """The noise to judge with (see the module); None when there is none for this machine kind, or
    ``explicit`` is "none" (judge by the runs alone)."""
    if explicit == "none":
        return None
    if explicit:
        return read_noise(explicit)
    for folder in base_folders:
        for candidate in (folder / NOISE_FILE, folder.parent / NOISE_FILE):
            if candidate.is_file():
                table = read_noise(candidate)
                if table.machine_kind == machine_kind:
                    return table
    shipped = SHIPPED / f"{machine_kind}.csv"
    if machine_kind and shipped.is_file():
        return read_noise(shipped, source=f"the table shipped for {machine_kind}")
    others = sorted(SHIPPED.glob("*.csv"))
    if not others:
        return None
    tables = [read_noise(path) for path in others]  # each case's largest noise over the kinds measured
    cases: dict[Key, tuple[float, int]] = {}
    for table in tables:
        for key, (sigma, dof) in table.cases.items():
            cases[key] = max(cases.get(key, (0.0, dof)), (sigma, dof))
    kinds = ", ".join(t.machine_kind for t in tables)
    return NoiseTable(machine_kind or "unnamed", f"no table for {machine_kind or 'this machine'}: borrowed from "
                      f"{kinds}", cases, min(t.runs for t in tables), borrowed=True)
