"""What a comparison is judged by (``Thresholds``), and the numbers it reads from a row: a finite value,
the images one timed round processes, the median time per image."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...measure.significance import P_THRESHOLD

METRICS = ("time", "accuracy", "memory", "compile")
DEFAULT_GATED = ("time", "accuracy")

@dataclass(frozen=True)
class Thresholds:
    """What counts as a change and what fails the gate (percentages of BASE, points of accuracy)."""

    fail_above_pct: float = 10.0
    min_effect_pct: float = 5.0
    p_threshold: float = P_THRESHOLD
    acc_drop_pts: float = 1.0
    gated: tuple[str, ...] = DEFAULT_GATED
    detect_pct: float = 30.0  # the slowdown a row must be able to catch, else it says it is too noisy


def number(row: dict[str, Any] | None, column: str) -> float:
    """A finite float from the row, else NaN (missing column, empty cell, text)."""
    value = (row or {}).get(column)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def images_per_round(row: dict[str, Any]) -> float:
    """Images one timed round processes: a training round's images, an inference batch."""
    return number(row, "images_per_round") if row["phase"] == "train" else number(row, "batch_size")


def time_verdict(ratio: float, different: bool, th: Thresholds) -> str:
    """slower / faster / same for a per-image time ratio NEW ÷ BASE: a real change beyond
    ``min_effect_pct`` either way."""
    effect = 1.0 + th.min_effect_pct / 100.0
    if not different or math.isnan(ratio):
        return "same"
    return "slower" if ratio > effect else ("faster" if ratio < 1.0 / effect else "same")


def unequal_work(base_rows: Sequence[dict[str, Any]], new_rows: Sequence[dict[str, Any]]) -> str:
    """Why a time change is not gated when the runs did not all do the same work per timed round, else "".

    The budget cuts a training case's steps per round when a session runs late (``experiments.plans``),
    and a round of 10 steps is not a tenth of a round of 100: its fixed costs (the loader's new epoch,
    the step's first-touch) weigh ten times more. Measured on the A/A runs (``gate_study``), v2's
    compiled training ran 33% slower per image cut than uncut on unchanged code."""
    works = [{images_per_round(r) for r in rows} for rows in (base_rows, new_rows)]
    if len(works[0] | works[1]) <= 1:
        return ""
    shown = ["/".join(f"{w:,.0f}" for w in sorted(side)) for side in works]
    return f"not gated: unequal work per round (BASE {shown[0]} images, NEW {shown[1]}: a budget cut)"


def gates_time(different: bool, ratio: float, th: Thresholds, unequal: str = "") -> bool:
    """Whether a per-image time ratio NEW ÷ BASE fails the gate: a real change, slower by more than
    ``fail_above_pct``, at equal work per round, and time among the gated metrics."""
    return (different and ratio > 1.0 + th.fail_above_pct / 100.0 and not unequal
            and "time" in th.gated)


def seconds_per_image(row: dict[str, Any]) -> float:
    """A row's median time per image (NaN where it has no sound time): what a comparison compares."""
    value = number(row, "median_s") / images_per_round(row)
    return value if value > 0 else math.nan
