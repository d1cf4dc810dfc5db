"""The between-run noise rule (``measure.between_runs``) on simulated runs whose noise is known: false alarms
at the rate its z says, planted slowdowns caught with the runs a side it asks for."""

from __future__ import annotations

import math
import random

import pytest

from mnist_models.measure.between_runs import P_REAL, SIGMA_FLOOR, Z_REAL, judge, pooled_sigma, runs_needed, t_quantile


def test_pooled_sigma_removes_each_groups_own_mean() -> None:
    # two code versions 50% apart, each with the same spread: the step between them is not noise
    a, b = [0.0, 0.1, -0.1], [math.log(1.5) + v for v in (0.0, 0.1, -0.1)]
    sigma, dof = pooled_sigma([a, b])
    assert dof == 4 and sigma == pytest.approx(0.1)
    assert pooled_sigma([[0.2], [0.3]]) == (pytest.approx(math.nan, nan_ok=True), 0)  # no group with two runs
    assert pooled_sigma([[0.5, 0.5, 0.5]])[0] == SIGMA_FLOOR  # runs that agree by chance: not steadier than 1%


def test_runs_needed_grows_with_the_noise_and_shrinks_with_the_change() -> None:
    assert runs_needed(0.01, 30) == 1
    assert runs_needed(0.10, 30) == math.ceil(2 * ((Z_REAL + 1.645) * 0.10 / math.log(1.3)) ** 2)
    assert runs_needed(0.10, 30) > runs_needed(0.05, 30) > 1 and runs_needed(0.05, 10) > runs_needed(0.05, 30)


def test_student_quantiles_match_the_tables_and_grow_for_a_sigma_learned_from_few_runs() -> None:
    table = {(0.05, 1): 6.314, (0.025, 10): 2.228, (0.05, 2): 2.920, (0.005, 3): 5.841}  # any t table
    for (p, dof), t in table.items():
        assert t_quantile(p, dof) == pytest.approx(t, abs=1e-3)
    assert t_quantile(P_REAL, 10**6) == pytest.approx(Z_REAL, abs=1e-6)
    assert t_quantile(P_REAL, 5) > t_quantile(P_REAL, 20) > t_quantile(P_REAL, 200) > Z_REAL


def simulate(sigma: float, runs: int, factor: float, pairs: int, history: int = 0, seed: int = 0) -> float:
    """Share of pairs (``runs`` a side, levels drawn with SD ``sigma``) judged a real slowdown; σ known, or
    learned from ``history`` other runs of unchanged code."""
    rng = random.Random(seed)
    caught = 0
    for _ in range(pairs):
        base = [rng.gauss(0.0, sigma) for _ in range(runs)]
        new = [rng.gauss(math.log(factor), sigma) for _ in range(runs)]
        learned, dof = pooled_sigma([[rng.gauss(0.0, sigma) for _ in range(history)]]) if history else (sigma, 10**6)
        judged = judge(base, new, learned, detect_pct=30, dof=dof)
        caught += judged.real and judged.d > 0
    return caught / pairs


@pytest.mark.parametrize("history", [0, 3, 8])
@pytest.mark.parametrize("sigma", [0.02, 0.1])
def test_unchanged_code_almost_never_raises_an_alarm(sigma: float, history: int) -> None:
    # one-sided p 3e-5 a row, whether σ is known or learned from a few runs (Student's t widens the bar)
    assert simulate(sigma, 1, 1.0, 20_000, history) < 0.001


@pytest.mark.parametrize("sigma", [0.02, 0.06, 0.1])
def test_a_planted_slowdown_is_caught_with_the_runs_it_asks_for(sigma: float) -> None:
    needed = runs_needed(sigma, 30)
    assert simulate(sigma, needed, 1.3, 2_000) >= 0.95
    if needed > 1:  # and with fewer runs it says so: it is caught less often
        assert simulate(sigma, max(1, needed // 4), 1.3, 2_000) < 0.95
