"""Each case's history per machine kind, one level per run, and its step changes.

A run's value of a metric is the median of its points (a suite case has one; a ``train`` run one per
epoch; a ``tta`` run one per seed), its time the run's first point, its commit the run's. Throughput and
time metrics are judged on their level (ln of time per image, or of seconds: ``measure.between_runs``)
with ``measure.steps``, against the series' noise (``noise``: pooled over runs of one commit); accuracy is
drawn, not judged. A step names the commits either side of it (the
last run at the old level, the first at the new), its size and its z against the z it had to pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine, select

from ..measure.between_runs import pooled_sigma
from ..measure.steps import Step, find_steps, series_sigma
from .tables import points

TIMED = {"img_per_s": -1.0, "train_img_per_s": -1.0, "from_start_s": 1.0}  # metric → sign of ln(value) in a level
SERIES = ("machine_kind", "case_name", "metric")


@dataclass(frozen=True)
class Found:
    """A step in one series, with what the page and ``--json`` say of it."""

    machine_kind: str
    case_name: str
    metric: str
    step: Step
    sigma: float
    before_commit: str | None
    after_commit: str | None
    after_run: str
    after_time: str

    def as_dict(self) -> dict[str, object]:
        slower = self.step.pct > 0
        return {"machine_kind": self.machine_kind, "case": self.case_name, "metric": self.metric,
                "change": "slower" if slower else "faster", "pct": round(self.step.pct, 2),
                "z": round(self.step.z, 2), "z_needed": round(self.step.threshold, 2), "sigma": round(self.sigma, 4),
                "before_commit": self.before_commit, "after_commit": self.after_commit, "first_run": self.after_run,
                "time_utc": self.after_time}


def load(engine: Engine) -> pd.DataFrame:
    """Every point in the index."""
    with engine.connect() as connection:
        return pd.read_sql(select(points), connection)


def per_run(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per series and run: the median value, its time, commit and how many points."""
    if frame.empty:
        return frame
    keys = [*SERIES, "run_id"]
    frame = frame.astype({key: "category" for key in keys})  # grouping on codes, not strings: 10× faster
    grouped = frame.groupby(keys, sort=False, observed=True)
    runs = pd.DataFrame({"value": grouped["value"].median(), "points": grouped.size()})
    first = frame.sort_values("time_utc", kind="stable").drop_duplicates(keys)  # ISO times sort as text
    facts = first.set_index(keys)[["time_utc", "commit_id", "kind", "host"]]
    runs = runs.join(facts).reset_index().astype({key: str for key in keys})
    return runs.sort_values([*SERIES, "time_utc", "run_id"]).reset_index(drop=True)


def levels(series: pd.DataFrame, metric: str) -> list[float]:
    """The series' levels: ln of time per image (throughput) or of seconds (a time)."""
    sign = TIMED[metric]
    return [sign * math.log(v) for v in series["value"]]


def noise(series: pd.DataFrame, values: list[float]) -> tuple[float, int]:
    """A series' run-to-run noise σ and its degrees of freedom: pooled over the runs of each commit (runs of
    unchanged code, as ``mnist-bench noise`` learns it) where some commit ran more than once; else from the
    successive differences of the whole series (``measure.steps.series_sigma``), which a step moves once but a
    machine that drifts between sessions fools (docs/history.md)."""
    groups: dict[str, list[float]] = {}
    for commit, value in zip(series["commit_id"].fillna("unknown"), values, strict=True):
        groups.setdefault(str(commit), []).append(value)
    sigma, dof = pooled_sigma(list(groups.values()))
    return (sigma, dof) if dof else series_sigma(values)


def steps(runs: pd.DataFrame) -> list[Found]:
    """The steps of every timed series."""
    found = []
    for (kind, case, metric), series in runs.groupby(list(SERIES), sort=True):
        if metric not in TIMED:
            continue
        values = levels(series, metric)
        sigma, dof = noise(series, values)
        if math.isnan(sigma):
            continue
        rows = series.reset_index(drop=True)
        for step in find_steps(values, sigma, dof):
            before, after = rows.iloc[step.index - 1], rows.iloc[step.index]
            found.append(Found(kind, case, metric, step, sigma, before["commit_id"], after["commit_id"],
                               after["run_id"], after["time_utc"]))
    return found
