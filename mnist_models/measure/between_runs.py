"""Run-to-run noise of a timed case, and a verdict that accounts for it.

The rounds of one run are not independent draws of the run's level: a compiled case can pick other
kernels in the next process, the allocator and the caches start differently, and a shared machine's
speed drifts between runs. So two runs of unchanged code differ by more than their rounds' spread says,
and a test on the rounds alone (``measure.significance``) calls such a difference real. Here a run is one
observation, its **level** the log of its median time per image, and a case's **between-run noise** σ
the standard deviation of that level over runs of unchanged code (pooled over groups: each group one
code version, its own mean removed).

A change NEW ÷ BASE is judged on d = mean level of NEW's runs − mean level of BASE's, with standard
error SE = σ·√(1/k_b + 1/k_n) for k_b and k_n runs a side: **real** when |d| > t·SE, t the Student
quantile of the one-sided p that ``Z_REAL`` standard deviations have (3.2e-5) at σ's degrees of
freedom: a σ learned from a few runs is itself uncertain, and the quantile grows to say so (4.0 with
many runs, 6.6 with 10 degrees of freedom, 12 with 5). A row is **too noisy to gate** a change of
``detect`` when even that change would be missed one time in twenty; ``runs_needed`` says how many runs
a side would catch it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

Z_REAL = 4.0  # |d| / SE beyond which a change is real (σ known): one-sided p ≈ 3e-5 a row
P_REAL = 0.5 * math.erfc(Z_REAL / math.sqrt(2.0))
P_POWER = 0.05  # a change of `detect` is caught 19 times in 20
SIGMA_FLOOR = 0.01  # no case is steadier than 1% between runs: a few A/A runs can agree by chance
KNOWN = 10**6  # degrees of freedom of a σ taken as known (the normal quantile)
PRIOR_DOF = 4  # what the case's class says of a case's σ weighs as much as four runs of the case's own


def _two_sided_t_cdf(t: float, dof: int) -> float:
    """P(|T| < t) for Student's T with integer ``dof`` (the finite series in θ = atan(t / √dof))."""
    theta = math.atan(t / math.sqrt(dof))
    c2, term, total = math.cos(theta) ** 2, 1.0, 1.0
    if dof % 2 == 0:
        for k in range(2, dof - 1, 2):  # 1 + ½c² + (1·3)/(2·4)c⁴ + … up to c^(dof−2)
            term *= c2 * (k - 1) / k
            total += term
        return math.sin(theta) * total
    if dof == 1:
        return 2.0 * theta / math.pi
    for k in range(3, dof - 1, 2):  # 1 + (2/3)c² + (2·4)/(3·5)c⁴ + … up to c^(dof−3)
        term *= c2 * (k - 1) / k
        total += term
    return 2.0 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)


@lru_cache(maxsize=256)  # a pure function of two numbers, asked for the same few again and again
def t_quantile(p_upper: float, dof: int) -> float:
    """t with P(T > t) = ``p_upper`` for Student's T with ``dof`` degrees of freedom (the normal
    quantile from ``KNOWN`` on), by bisection."""
    if dof >= KNOWN:
        low, high = 0.0, 40.0
        while high - low > 1e-9:
            mid = (low + high) / 2.0
            low, high = (mid, high) if 0.5 * math.erfc(mid / math.sqrt(2.0)) > p_upper else (low, mid)
        return (low + high) / 2.0
    low, high = 0.0, 1.0
    while (1.0 - _two_sided_t_cdf(high, dof)) / 2.0 > p_upper:
        high *= 2.0
    while high - low > 1e-9 * high:
        mid = (low + high) / 2.0
        low, high = (mid, high) if (1.0 - _two_sided_t_cdf(mid, dof)) / 2.0 > p_upper else (low, mid)
    return (low + high) / 2.0


@dataclass(frozen=True)
class Noise:
    """A case's between-run noise: ``sigma`` (SD of ln time per image between runs of unchanged code),
    the ``runs`` it was learned from (0: not learned, a default), and where it came from."""

    sigma: float
    runs: int
    source: str


@dataclass(frozen=True)
class Judged:
    """A change judged against the noise: ``d`` (ln NEW ÷ BASE), its standard error, ``z`` = d / SE,
    whether it is ``real``, and how many runs a side would catch a change of ``detect`` 19 times in
    20 (``needed``; 1: one run a side already does)."""

    d: float
    se: float
    z: float
    real: bool
    needed: int

    @property
    def ratio(self) -> float:
        return math.exp(self.d)


def level(seconds_per_image: float) -> float:
    """A run's level: ln of its median time per image."""
    return math.log(seconds_per_image)


def pooled_sigma(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """The pooled SD of levels within groups (each group: runs of one code version) and its degrees of
    freedom; (NaN, 0) when no group has two runs. Floored at ``SIGMA_FLOOR``."""
    squares, dof = 0.0, 0
    for values in groups:
        finite = [v for v in values if math.isfinite(v)]
        if len(finite) < 2:
            continue
        mean = sum(finite) / len(finite)
        squares += sum((v - mean) ** 2 for v in finite)
        dof += len(finite) - 1
    if not dof:
        return math.nan, 0
    return max(SIGMA_FLOOR, math.sqrt(squares / dof)), dof


def pool(parts: Sequence[tuple[float, int]]) -> tuple[float, int]:
    """σs learned apart (each with its degrees of freedom) pooled into one: their variances averaged
    with those weights, the degrees of freedom added; parts without a σ or a degree of freedom are
    left out ((NaN, 0) when none is left)."""
    kept = [(s, d) for s, d in parts if d and not math.isnan(s)]
    dof = sum(d for _, d in kept)
    return (math.sqrt(sum(d * s * s for s, d in kept) / dof), dof) if dof else (math.nan, 0)


def moderated(sigma: float, dof: int, class_sigma: float, prior_dof: int = PRIOR_DOF) -> tuple[float, int]:
    """A case's σ learned from few runs, moderated by its class's (the cases of the same phase and kind,
    pooled: many degrees of freedom) as if the class had ``prior_dof`` runs' worth of say in it: the
    variances averaged with those weights, the degrees of freedom added. A case with no σ of its own
    takes the class's at ``prior_dof``."""
    if math.isnan(class_sigma):
        return sigma, dof
    if not dof:
        return class_sigma, prior_dof
    variance = (dof * sigma**2 + prior_dof * class_sigma**2) / (dof + prior_dof)
    return math.sqrt(variance), dof + prior_dof


def runs_needed(sigma: float, detect_pct: float, dof: int = KNOWN, p_real: float = P_REAL) -> int:
    """Runs a side for a change of ``detect_pct`` % to be caught 19 times in 20 at noise ``sigma``
    learned with ``dof`` degrees of freedom."""
    if not sigma > 0:
        return 1
    margin = t_quantile(p_real, dof) + t_quantile(P_POWER, dof)
    per_side = 2.0 * (margin * sigma / math.log(1.0 + detect_pct / 100.0)) ** 2
    return max(1, math.ceil(per_side))


def judge(base: Sequence[float], new: Sequence[float], sigma: float, detect_pct: float, dof: int = KNOWN,
          p_real: float = P_REAL) -> Judged:
    """NEW's levels against BASE's (one per run) at between-run noise ``sigma`` (``dof``: the degrees of
    freedom it was learned with; ``needed``: the runs a side that catch a change of ``detect_pct`` 19 times
    in 20 with σ known as well as now)."""
    kb, kn = len(base), len(new)
    d = sum(new) / kn - sum(base) / kb
    se = sigma * math.sqrt(1.0 / kb + 1.0 / kn)
    z = d / se if se > 0 else 0.0
    real = se > 0 and abs(z) > t_quantile(p_real, dof)
    return Judged(d=d, se=se, z=z, real=real, needed=runs_needed(sigma, detect_pct, dof, p_real))
