"""Frames computed from a run's rows: each variant's speed-up over ``eager`` and its accuracy
difference and band flag (``bench_frames``), the per-round lists split out as ``rounds.csv``
(``split_rounds``), the scaling layouts with their rounds as JSON text (``scaling_frame``), and a finished
session's tables as its folder holds them (``run_tables``). The
writer uses them on a session's rows, the reader on a folder's files, so every run reads by today's
definitions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..variants import BASELINE
from .keys import KEYS


def is_missing(value: Any) -> bool:
    """None or NaN: a cell with nothing measured (rows from older runs lack columns)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


TRAIN_KEYS = ["model", "device"]
INFERENCE_KEYS = ["model", "device", "batch_size"]


def _with_baseline(frame: pd.DataFrame, keys: list[str], columns: dict[str, str]) -> pd.DataFrame:
    """Join each row with the eager row of the same keys: adds ``eager_<col>`` for each column."""
    if frame.empty:
        return frame
    base = frame[frame["variant"] == BASELINE][keys + list(columns)].rename(columns=columns)
    return frame.merge(base, on=keys, how="left")


def bench_frames(train_rows: Sequence[dict[str, Any]], inference_rows: Sequence[dict[str, Any]]
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train and inference tables, with speed-up over eager (eager median ÷ median) and, for
    training, the test-accuracy difference from eager (percentage points) and the band flag. A
    training case the budget cut is compared with eager retrained to the same steps (its ``ref_*``
    columns); any other with eager's row where eager ran the same steps per round, else with nothing
    (no difference, no flag: eager was cut and the case was not)."""
    train = pd.DataFrame(list(train_rows))
    if not train.empty:
        # A failed case's row (status "failed": a non-finite loss) has no timings or accuracy: NaN there.
        train = train.reindex(columns=[*train.columns, *(c for c in ("img_per_s", "test_acc_pct", "noisy")
                                                          if c not in train)])
        band = {"band_min_acc_pct": "eager_band_min", "band_max_acc_pct": "eager_band_max",
                "steps_per_round": "eager_steps"}
        train = _with_baseline(train, TRAIN_KEYS, {"img_per_s": "eager_img_per_s", "test_acc_pct": "eager_acc_pct",
                                                   **{k: v for k, v in band.items() if k in train}})
        # Throughput, not time per round: a case the budget cut runs fewer steps per round than eager.
        train["speedup_vs_eager"] = train["img_per_s"] / train["eager_img_per_s"]
        missing = pd.Series([None] * len(train), index=train.index)
        low, high = train.get("eager_band_min", missing), train.get("eager_band_max", missing)
        if "eager_steps" in train:  # eager's row is no reference for a case that ran other steps per round
            steps, eager_steps = train["steps_per_round"], train["eager_steps"]
            other = steps.notna() & eager_steps.notna() & (steps != eager_steps)
            train["eager_acc_pct"] = train["eager_acc_pct"].where(~other)
            low, high = low.where(~other), high.where(~other)
        reference = train.get("ref_acc_pct", missing)
        if "ref_acc_pct" in train:  # a case the budget cut is compared with eager retrained to its steps
            cut = reference.notna()
            train["eager_acc_pct"] = train["eager_acc_pct"].where(~cut, reference)
            low = low.where(~cut, train["ref_band_min_acc_pct"])
            high = high.where(~cut, train["ref_band_max_acc_pct"])
        train["acc_delta_vs_eager_pct"] = train["test_acc_pct"] - train["eager_acc_pct"]
        train["acc_band"] = [accuracy_band_flag(acc, lo, hi)
                             for acc, lo, hi in zip(train["test_acc_pct"], low, high, strict=True)]
        train = train.drop(columns=["eager_img_per_s", "eager_acc_pct", *[v for v in band.values() if v in train]])
    inference = pd.DataFrame(list(inference_rows))
    if not inference.empty:
        inference = _with_baseline(inference, INFERENCE_KEYS, {"median_s": "eager_median_s"})
        inference["speedup_vs_eager"] = inference["eager_median_s"] / inference["median_s"]
        inference = inference.drop(columns=["eager_median_s"])
    return train, inference


ROUND_KEYS = KEYS  # rounds.csv names each round's case by its key


def split_rounds(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """The rows without their per-round lists, and those lists as one tidy frame (``rounds.csv``):
    one line per timed round with the case's keys, ``round`` (1-based), ``seconds`` and, for
    training, ``train_loss``. Compare reads the raw samples from it; the tables keep their columns."""
    kept, rounds = [], []
    for row in rows:
        row = dict(row)
        times, losses = row.pop("round_times_s", None) or [], row.pop("round_train_loss", None) or []
        keys = {k: row.get(k) for k in ROUND_KEYS}
        rounds += [{**keys, "round": i, "seconds": t, "train_loss": losses[i - 1] if i <= len(losses) else None}
                   for i, t in enumerate(times, start=1)]
        kept.append(row)
    return kept, pd.DataFrame(rounds, columns=[*ROUND_KEYS, "round", "seconds", "train_loss"])


def accuracy_band_flag(acc: float, low: float | None, high: float | None) -> str:
    """``"below eager band"`` / ``"above eager band"`` when ``acc`` lies outside eager fp32's seed
    range [low, high], else ``""`` (also when no band was measured)."""
    if is_missing(low) or is_missing(high):
        return ""
    if acc < low:
        return "below eager band"
    return "above eager band" if acc > high else ""


Rows = Sequence[dict[str, Any]]


@dataclass(frozen=True)
class RunTables:
    """A finished session's tables, as its run folder holds them (an empty one: no file)."""

    train: pd.DataFrame  # train.csv: ``bench_frames``' table, without the per-round lists
    inference: pd.DataFrame  # inference.csv
    tta: pd.DataFrame  # tta.csv: one row per time-to-accuracy seed
    rounds: pd.DataFrame  # rounds.csv: every timed round of the train and inference cases
    confusion: pd.DataFrame  # confusion.csv: the inference weights' confusion matrix per model and device
    predictions: pd.DataFrame  # predictions.csv: a fixed sample of their predictions
    scaling: pd.DataFrame = field(default_factory=pd.DataFrame)  # scaling.csv: one row per layout (--bench-ddp)


def scaling_frame(rows: Rows) -> pd.DataFrame:
    """``scaling.csv``'s table: one row per data-parallel layout, a list cell (``round_s``: each timed round's
    seconds) written as its JSON text. A layout's few rounds stay on its row: ``rounds.csv`` holds the suite
    cases' rounds, which compare reads as their samples."""
    frame = pd.DataFrame(list(rows))
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, list)).any():
            frame[column] = frame[column].map(lambda v: json.dumps(v) if isinstance(v, list) else v)
    return frame


def run_tables(train_rows: Rows, inference_rows: Rows, tta_rows: Rows,
               quality: Iterable[tuple[Rows, Rows]] = (), scaling_rows: Rows = ()) -> RunTables:
    """The tables of a session's rows (``quality``: each model and device's (confusion, sample) rows;
    ``scaling_rows``: the ``--bench-ddp`` layouts)."""
    train_rows, train_rounds = split_rounds(train_rows)
    inference_rows, inference_rounds = split_rounds(inference_rows)
    train, inference = bench_frames(train_rows, inference_rows)
    quality = list(quality)
    return RunTables(train, inference, pd.DataFrame(list(tta_rows)),
                     pd.DataFrame([*train_rounds.to_dict("records"), *inference_rounds.to_dict("records")]),
                     pd.DataFrame([row for confusion, _ in quality for row in confusion]),
                     pd.DataFrame([row for _, sample in quality for row in sample]), scaling_frame(scaling_rows))
