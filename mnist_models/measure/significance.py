"""Is a timing change real? The Mann–Whitney U test (numpy and the standard library only), and the
interval-overlap fallbacks for samples too few for it or runs without raw samples.

The rule follows asv's ``compare`` (docs/compare.md):

- **Mann–Whitney U**, two-sided, when both sides have raw samples and n allows the threshold to be
  reached at all: the smallest two-sided p of n₁ and n₂ untied samples is 2 / C(n₁+n₂, n₁), so at
  p < 0.002 each side needs ≥ 7 rounds (7 vs 7: 0.00058; 6 vs 6: 0.0022 can never pass). The p-value
  is **exact** (the permutation distribution of U, counted) when there are no ties and n₁ + n₂ ≤
  ``EXACT_MAX_N``; otherwise the **normal approximation with the tie correction** of the variance and
  a continuity correction of ½ (what scipy's ``mannwhitneyu(method="asymptotic")`` computes).
- **Range overlap** when there are samples but too few for the test (the quick profile's 3 training
  rounds: 3 vs 3 cannot go below p = 0.1): different only when [min, max] of one side lies wholly
  above the other's, i.e. every new round slower than every old one (U = 0).
- **median ± IQR overlap** when a side has no raw samples (only the CSV's ``median_s`` and
  ``iqr_s``): different only when [median − IQR, median + IQR] of the two sides do not overlap.
  That interval holds [p25, p75] and is wider than a 99% interval of the median for n ≥ 10 (about
  median ± 0.44 IQR at n = 30 for normal data), so it errs towards "same".

``significance`` picks among them; callers add the minimum effect size (a change is only reported
when it is significant AND larger than that).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

P_THRESHOLD = 0.002  # asv's: two-sided Mann–Whitney p below this is a real change
EXACT_MAX_N = 60  # exact U distribution up to this many samples in all (counts stay < 2**63)


@dataclass(frozen=True)
class UResult:
    """A Mann–Whitney U test: ``u`` = pairs (a, b) with a > b (ties count ½), two-sided ``p``,
    ``method`` ``"exact"`` or ``"normal"``."""

    u: float
    p: float
    method: str


@dataclass(frozen=True)
class Significance:
    """Whether two sets of timings differ, how that was decided (``method``: ``"mann-whitney"``,
    ``"range overlap"``, ``"median±IQR overlap"``), the p-value where a test gave one, and the n of each
    side (None where a side had no raw samples)."""

    different: bool
    method: str
    p: float | None = None
    n: tuple[int | None, int | None] = (None, None)


def _ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties share their mean rank) and the sizes of the tie groups."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    _, starts, counts = np.unique(ordered, return_index=True, return_counts=True)
    mean_rank = starts + (counts + 1) / 2.0  # ranks starts+1 … starts+count, averaged
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, counts)
    return ranks, counts


@functools.lru_cache(maxsize=256)
def u_distribution(m: int, n: int) -> np.ndarray:
    """How many of the C(m+n, m) orderings of m a's and n b's give U_a = k, for k = 0 … m·n (read-only).

    Recurrence on the largest value: an a there beats all n b's (f(m−1, n) shifted by n), a b there
    beats nothing (f(m, n−1)). It depends on the sizes alone, so it is built once per (m, n): a comparison of
    two runs tests hundreds of rows with the same round counts, and the gate study thousands (``noise`` on
    16 A/A runs makes 11,728 tests: 29 s before the cache, 4.8 s after, the same tables)."""
    row = [np.ones(1, dtype=np.int64) for _ in range(n + 1)]  # i = 0: U = 0 only
    for i in range(1, m + 1):
        cur = [np.ones(1, dtype=np.int64)]
        for j in range(1, n + 1):
            counts = np.zeros(i * j + 1, dtype=np.int64)
            counts[j:j + len(row[j])] += row[j]
            counts[:len(cur[j - 1])] += cur[j - 1]
            cur.append(counts)
        row = cur
    counts = row[n]
    counts.setflags(write=False)  # shared by every caller through the cache
    return counts


def mann_whitney_u(a: Sequence[float], b: Sequence[float], method: str = "auto") -> UResult:
    """Two-sided Mann–Whitney U test of ``a`` against ``b`` (NaNs dropped). ``method="auto"``: exact
    without ties when n₁ + n₂ ≤ ``EXACT_MAX_N``, else normal with tie and continuity corrections;
    ``"exact"`` / ``"normal"`` force one (exact with ties is not offered: it falls back to normal)."""
    x = np.asarray([v for v in a if not math.isnan(v)], dtype=float)
    y = np.asarray([v for v in b if not math.isnan(v)], dtype=float)
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        raise ValueError("mann_whitney_u needs at least one sample on each side")
    ranks, ties = _ranks(np.concatenate([x, y]))
    u = float(ranks[:m].sum() - m * (m + 1) / 2.0)
    if ties.max() == 1 and (method == "exact" or (method == "auto" and m + n <= EXACT_MAX_N)):
        counts = u_distribution(m, n)
        total = float(counts.sum())
        k = int(round(u))
        below, above = counts[:k + 1].sum() / total, counts[k:].sum() / total
        return UResult(u, float(min(1.0, 2.0 * min(below, above))), "exact")
    total_n = m + n
    tie_term = float(((ties ** 3) - ties).sum()) / (total_n * (total_n - 1))
    variance = m * n / 12.0 * ((total_n + 1) - tie_term)
    if variance <= 0:  # every value equal: no evidence of any difference
        return UResult(u, 1.0, "normal")
    z = max(abs(u - m * n / 2.0) - 0.5, 0.0) / math.sqrt(variance)
    return UResult(u, min(1.0, math.erfc(z / math.sqrt(2.0))), "normal")


def min_two_sided_p(m: int, n: int) -> float:
    """The smallest two-sided p a Mann–Whitney test of m against n untied samples can give."""
    return 2.0 / math.comb(m + n, m) if m and n else 1.0


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether the closed intervals [a₀, a₁] and [b₀, b₁] share a point."""
    return a[0] <= b[1] and b[0] <= a[1]


def significance(base: Sequence[float] | None, new: Sequence[float] | None,
                 base_median_iqr: tuple[float, float], new_median_iqr: tuple[float, float],
                 p_threshold: float = P_THRESHOLD) -> Significance:
    """Whether ``new`` differs from ``base``: Mann–Whitney where n allows ``p_threshold``, range
    overlap where the samples are too few, median ± IQR overlap where a side has no samples."""
    if base is not None and new is not None and len(base) and len(new):
        n = (len(base), len(new))
        if min_two_sided_p(*n) < p_threshold:
            result = mann_whitney_u(base, new)
            return Significance(result.p < p_threshold, "mann-whitney", result.p, n)
        apart = not intervals_overlap((min(base), max(base)), (min(new), max(new)))
        return Significance(apart, "range overlap", None, n)
    (bm, biqr), (nm, niqr) = base_median_iqr, new_median_iqr
    if math.isnan(bm) or math.isnan(nm):  # nothing measured on a side: nothing to call different
        return Significance(False, "median±IQR overlap")
    biqr, niqr = (0.0 if math.isnan(v) else v for v in (biqr, niqr))  # no IQR recorded: the median alone
    apart = not intervals_overlap((bm - biqr, bm + biqr), (nm - niqr, nm + niqr))
    return Significance(apart, "median±IQR overlap", None,
                        (len(base) if base is not None else None, len(new) if new is not None else None))
