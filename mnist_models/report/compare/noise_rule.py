"""A comparison's time verdict against the run-to-run noise (``measure.between_runs``), for one or
several runs a side.

Each side's level for a case is the mean over its runs of ln(median time per image). The case's noise
σ comes from what is known: the runs of each side around their side's mean (replicates: several runs
a side), a noise table (``runs.noise_table``: ``--noise``, beside BASE, or shipped for the machine
kind), or both, pooled by their degrees of freedom; a case a table lacks takes its class's (phase,
compiled or not), and a case's own σ from few runs is moderated by its class's. Nothing known (one
run a side, no table): None, and the comparison falls back to the rounds of each run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...measure.between_runs import PRIOR_DOF, judge, level, moderated, pool, pooled_sigma
from ...runs.folder import RunFolder
from ...runs.keys import Key
from ...runs.noise_table import NoiseTable, noise_class
from .thresholds import Thresholds, seconds_per_image


@dataclass(frozen=True)
class Sides:
    """The runs of each side (oldest first), the noise table if any, and the σ per case class of the
    replicates (``classes``) and of the table (``table_classes``), each pooled once (``sides``)."""

    base: Sequence[RunFolder]
    new: Sequence[RunFolder]
    table: NoiseTable | None = None
    classes: dict[tuple[str, bool], float] = field(default_factory=dict)
    table_classes: dict[tuple[str, bool], float] = field(default_factory=dict)

    @property
    def runs_a_side(self) -> tuple[int, int]:
        return len(self.base), len(self.new)


def side_levels(runs: Sequence[RunFolder], key: Key) -> list[float]:
    """ln median time per image of ``key`` in each run that has a sound row for it."""
    values = [seconds_per_image(run.rows[key]) for run in runs if key in run.rows]
    return [level(v) for v in values if v > 0]


def class_sigmas(groups: dict[Key, list[list[float]]]) -> dict[tuple[str, bool], float]:
    """σ pooled per case class over every case's groups of levels (each group: runs of one code version)."""
    by_class: dict[tuple[str, bool], list[list[float]]] = {}
    for key, found in groups.items():
        by_class.setdefault(noise_class(key), []).extend(found)
    return {name: pooled_sigma(found)[0] for name, found in by_class.items()}


def sides(base: Sequence[RunFolder], new: Sequence[RunFolder], table: NoiseTable | None) -> Sides:
    """The two sides, with the replicates' σ pooled per case class (every case's runs around its side's
    mean) and the table's cases pooled per class."""
    keys = {key for run in (*base, *new) for key in run.rows}
    replicates = class_sigmas({key: [side_levels(base, key), side_levels(new, key)] for key in keys})
    by_class: dict[tuple[str, bool], list[tuple[float, int]]] = {}
    for key, found in (table.cases if table else {}).items():
        by_class.setdefault(noise_class(key), []).append(found)
    return Sides(base, new, table, replicates, {name: pool(found)[0] for name, found in by_class.items()})


def case_noise(key: Key, sides: Sides, base_levels: list[float], new_levels: list[float]) -> tuple[float, int, str]:
    """The σ, degrees of freedom and source of the noise ``key`` is judged against ((NaN, 0, "") none)."""
    own, own_dof = pooled_sigma([base_levels, new_levels])
    parts, sources = [], []
    if own_dof:
        parts.append(moderated(own, own_dof, sides.classes.get(noise_class(key), math.nan)))
        sources.append(f"{sum(sides.runs_a_side)} runs here")
    if sides.table is not None:
        table = moderated(*sides.table.cases.get(key, (math.nan, 0)),
                          sides.table_classes.get(noise_class(key), math.nan))
        if sides.table.borrowed:  # another machine kind's noise: a guess, worth no more than the prior
            table = (table[0], min(table[1], PRIOR_DOF))
        if table[1]:
            parts.append(table)
            sources.append(f"{sides.table.runs} runs of {sides.table.source}")
    sigma, dof = pool(parts)
    return sigma, dof, " + ".join(sources)


def between_runs(key: Key, sides: Sides, th: Thresholds) -> dict[str, Any] | None:
    """The time change of ``key`` judged against its noise: the row's test fields and notes; None when no
    noise is known for it (the caller tests the rounds)."""
    base_levels, new_levels = side_levels(sides.base, key), side_levels(sides.new, key)
    if not base_levels or not new_levels:
        return None
    sigma, dof, source = case_noise(key, sides, base_levels, new_levels)
    if math.isnan(sigma):
        return None
    judged = judge(base_levels, new_levels, sigma, th.detect_pct, dof)
    kb, kn = len(base_levels), len(new_levels)
    notes = []
    if judged.needed > min(kb, kn):
        notes.append(f"too noisy to gate a ×{1 + th.detect_pct / 100:g} slowdown with {min(kb, kn)} run"
                     f"{'s' if min(kb, kn) > 1 else ''} a side (noise {100 * sigma:.0f}%): needs {judged.needed}")
    return {"test": "between-run", "p": None, "different": judged.real, "noise_pct": 100.0 * sigma,
            "noise_dof": dof, "noise_source": source, "runs_base": kb, "runs_new": kn, "ratio": judged.ratio,
            "img_s_base": math.exp(-sum(base_levels) / kb), "img_s_new": math.exp(-sum(new_levels) / kn),
            "noise_notes": notes}
