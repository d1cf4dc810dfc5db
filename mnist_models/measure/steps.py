"""Step changes in a case's history: where its level moved beyond its run-to-run noise, and by how much.

A history is one level per run (``between_runs.level``: ln of the median time per image), oldest first.
First every level is replaced by the median of it and its neighbours (``despiked``): one odd run (a busy
machine) is gone, a step's edge is kept. ``find_steps`` then splits the history by binary segmentation: in
a stretch of runs, the split whose two sides differ most is judged as ``compare``'s between-run rule judges
two sets of runs (``between_runs.judge``'s z: the difference of mean levels over σ·√(1/k₁ + 1/k₂), real
beyond the Student quantile of ``P_REAL``), with ``P_REAL`` divided by the number of splits tried (each is a
test); a split is kept when it is real and at least ``min_pct`` in size, and each side is then searched
again. A side needs ``MIN_SIDE`` runs. Every split's z comes from running sums, so a history of a thousand
runs takes milliseconds.

σ comes from the caller: the case's noise learned by ``mnist-bench noise`` where there is one, else the
noise of the history itself (``series_sigma``: the spread of run-to-run differences, which a step moves
only once), moderated by the case's class as ``compare`` does. The false-alarm rate of this rule on real
A/A histories (runs of unchanged code) is measured in ``tests/test_history.py`` and stated in
``docs/history.md``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .between_runs import KNOWN, P_REAL, SIGMA_FLOOR, t_quantile

MIN_SIDE = 3  # runs each side of a step
MIN_STEP_PCT = 5.0  # smaller moves are not reported, however sure
MAD_TO_SIGMA = 1.4826  # a normal's σ from its median absolute deviation


@dataclass(frozen=True)
class Step:
    """A step before run ``index`` (the first run at the new level): the mean levels either side, the
    ratio after ÷ before in time per image (above 1: slower), z = difference ÷ its standard error, and the
    z it had to pass."""

    index: int
    before: float
    after: float
    z: float
    threshold: float

    @property
    def ratio(self) -> float:
        return math.exp(self.after - self.before)

    @property
    def pct(self) -> float:
        return 100.0 * (self.ratio - 1.0)


def series_sigma(levels: Sequence[float]) -> tuple[float, int]:
    """σ of a history's run-to-run noise from its successive differences (robust: a step moves one of
    them), floored at ``SIGMA_FLOOR``; and its degrees of freedom (NaN, 0 with under three runs)."""
    if len(levels) < 3:
        return math.nan, 0
    diffs = [abs(b - a) for a, b in zip(levels, levels[1:], strict=False)]
    return max(SIGMA_FLOOR, MAD_TO_SIGMA * statistics.median(diffs) / math.sqrt(2.0)), len(levels) - 2


def despiked(levels: Sequence[float]) -> np.ndarray:
    """Each level replaced by the median of it and its two neighbours (the ends kept): a single odd run (a busy
    machine) is gone, while a step's edge passes unchanged."""
    values = np.asarray(levels, dtype=float)
    if len(values) < 3:
        return values.copy()
    inner = np.median(np.stack([values[:-2], values[1:-1], values[2:]]), axis=0)
    return np.concatenate([values[:1], inner, values[-1:]])


def _best_split(levels: np.ndarray, lo: int, hi: int, sigma: float, dof: int) -> Step | None:
    """The most different split of ``levels[lo:hi]`` and the z it must pass (P_REAL shared among the splits
    tried); None when the stretch is too short to split. z is ``between_runs.judge``'s for that split,
    every split's at once from running sums."""
    first, last = lo + MIN_SIDE, hi - MIN_SIDE
    if last < first:
        return None
    segment = levels[lo:hi]
    sums = np.cumsum(segment)
    k = np.arange(first - lo, last - lo + 1)  # runs before each split
    before = sums[k - 1] / k
    after = (sums[-1] - sums[k - 1]) / (len(segment) - k)
    z = (after - before) / (sigma * np.sqrt(1.0 / k + 1.0 / (len(segment) - k)))
    best = int(np.argmax(np.abs(z)))
    return Step(lo + int(k[best]), float(before[best]), float(after[best]), float(z[best]),
                t_quantile(P_REAL / len(k), dof))


def find_steps(levels: Sequence[float], sigma: float, dof: int = KNOWN, min_pct: float = MIN_STEP_PCT) -> list[Step]:
    """The steps in a history of levels (oldest first), by binary segmentation; oldest first."""
    found: list[Step] = []
    values = despiked(levels)
    stack = [(0, len(values))]
    while stack:
        lo, hi = stack.pop()
        step = _best_split(values, lo, hi, sigma, dof)
        if step is None or abs(step.z) <= step.threshold or abs(step.pct) < min_pct:
            continue
        found.append(step)
        stack += [(lo, step.index), (step.index, hi)]
    return sorted(found, key=lambda s: s.index)
