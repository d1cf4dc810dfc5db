"""``mnist-bench profile --diff A B``: the operators of two profile folders against each other (their
``ops.csv``, ``measure.trace.diff_ops``), rendered as ``diff.md`` and written into B.

    diff = diff_profiles("results/profiles/A", "results/profiles/B", "shape", 10, 10)
    print(diff.markdown)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ...measure.trace import DIFF_STATUSES, diff_metric, diff_ops
from ...results.store import DiskFullError, ResultsError
from ...runs.profiles import ProfileFolderError, read_profile
from ..markdown import fmt_columns, markdown_table
from ..publish import write_files


def diff_markdown(diff: pd.DataFrame, names: tuple[str, str], metric: str, thresholds: tuple[float, float]) -> str:
    """``diff.md``: what was compared, the counts, the totals and the listed operators."""
    counts = diff["status"].value_counts()
    what = "self device" if metric.startswith("self_device") else "self CPU"
    totals = diff[["a_us", "b_us"]].sum()
    listed = diff[diff["status"] != "same"]
    shown = fmt_columns(listed, {"a_us": "{:,.1f}", "b_us": "{:,.1f}", "delta_us": "{:+,.1f}", "ratio": "{:.2f}×"})
    if "input_shapes" in shown:
        shown["input_shapes"] = shown["input_shapes"].map(lambda s: f"`{s}`")
    shown = shown.rename(columns={"a_us": "A µs/step", "b_us": "B µs/step", "delta_us": "Δ µs/step",
                                  "ratio": "B ÷ A", "input_shapes": "input shapes"})
    table = markdown_table(shown) if len(listed) else "No operator changed beyond the thresholds."
    return "\n".join([
        "# Operator diff: A → B", "", f"- A: {names[0]}", f"- B: {names[1]}", "",
        f"Compared: {what} µs per recorded step, per "
        f"{'operator and input shapes' if 'input_shapes' in diff else 'operator'} (ops.csv). "
        f"Listed: slower or faster by ≥ {thresholds[0]:g}% and ≥ {thresholds[1]:g} µs per step, and "
        "operators found in one profile only.", "",
        f"Totals: A {totals['a_us']:,.1f} µs/step, B {totals['b_us']:,.1f} µs/step. "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in DIFF_STATUSES) + f", {counts.get('same', 0)} within the "
        "thresholds (not listed).", "", table, "",
        "Each side is one profiled run of a few steps, the profiler's overhead included (see each summary.md): "
        "a change near the thresholds may be run-to-run noise; profile each side twice to see its spread.",
    ]) + "\n"


@dataclass(frozen=True)
class ProfileDiff:
    """A diff as rendered (``markdown``, written to ``path``) and as data (``as_json``)."""

    markdown: str
    path: Path
    as_json: dict[str, Any]


def _side(folder: str | os.PathLike[str]) -> tuple[pd.DataFrame, str]:
    """A profile folder's operator table and a one-line description; ``ProfileFolderError`` naming the problem."""
    try:
        profile = read_profile(folder)
        ops = profile.ops()
    except ProfileFolderError as exc:
        raise ProfileFolderError(f"--diff: {exc}") from None
    return ops, f"`{profile.path}` — {profile.ran or '(no readable profile.json)'}"


def diff_profiles(a: str | os.PathLike[str], b: str | os.PathLike[str], by: str, min_pct: float,
                  min_us: float) -> ProfileDiff:
    """Operators of B against A (``by``: "shape" or "op"; listed from ``min_pct`` percent AND ``min_us`` µs per
    step), written as ``B/diff.md``. A folder that is not a profile, or B not writable: one line."""
    (ops_a, line_a), (ops_b, line_b) = _side(a), _side(b)
    diff = diff_ops(ops_a, ops_b, by, min_pct, min_us)
    metric = diff_metric(ops_a, ops_b)
    markdown = diff_markdown(diff, (line_a, line_b), metric, (min_pct, min_us))
    path = Path(b) / "diff.md"
    try:
        write_files(b, {"diff.md": markdown})
    except DiskFullError:  # one line naming the file, exit 1
        raise
    except OSError as exc:
        raise ResultsError(f"--diff: cannot write {path} ({exc.strerror or exc}); fix: make B a writable profile "
                           "folder") from None
    listed = diff[diff["status"] != "same"]
    return ProfileDiff(markdown, path, {
        "a": str(a), "b": str(b), "metric": metric, "counts": diff["status"].value_counts().to_dict(),
        "rows": listed.astype(object).where(listed.notna(), None).to_dict("records")})
