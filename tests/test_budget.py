"""The suite's time budget: levels, allowances, and what a cut says."""

from __future__ import annotations

import math

import pytest

from mnist_models.experiments.budget import RESERVE_S, Budget, cut_reason, levels, pick


def test_levels_are_fractions_of_the_nominal_work_never_below_the_minimum():
    assert levels(100) == [100, 50, 20, 10]
    assert levels(100, minimum=25) == [100, 50, 25]
    assert levels(30, minimum=5) == [30, 15, 6, 5]
    assert levels(3, minimum=3) == [3]  # nothing to cut


def test_pick_takes_the_largest_option_that_fits():
    cost = lambda n: 1.0 + 0.1 * n  # noqa: E731 - fixed second plus 0.1 s per unit
    assert pick([100, 50, 20, 10], cost, None) == 100  # no allowance: the whole work
    assert pick([100, 50, 20, 10], cost, 11.0) == 100
    assert pick([100, 50, 20, 10], cost, 6.5) == 50
    assert pick([100, 50, 20, 10], cost, 0.5) == 10  # nothing fits: the smallest
    tiny = lambda n: 0.001 * n  # noqa: E731 - the whole case costs 0.1 s
    assert pick([100, 50, 20, 10], tiny, 0.0) == 100  # cutting would save < MIN_SAVING_S: not worth it


def clock_budget(seconds, monkeypatch, now=0.0):
    """A budget whose clock is under the test's control."""
    from mnist_models.experiments import budget as module

    clock = {"now": now}
    monkeypatch.setattr(module.time, "perf_counter", lambda: clock["now"])
    return Budget(seconds, started=0.0), clock


def test_no_budget_never_cuts(monkeypatch):
    budget, _ = clock_budget(None, monkeypatch)
    budget.add("a", 5.0)
    budget.start("a")
    assert budget.allowance("a") is None and budget.left() == math.inf


def test_allowance_is_the_weight_share_of_the_time_left(monkeypatch):
    budget, clock = clock_budget(100 + RESERVE_S, monkeypatch)
    for case, weight in (("a", 1.0), ("b", 3.0)):
        budget.add(case, weight)
    assert budget.allowance("a") == pytest.approx(3.0)  # 25× slack: up to SLOW_RATIO × its estimate
    clock["now"] = 20.0
    budget.finish("a", 20.0)  # a took 20 s for weight 1: b (weight 3) projects 60 s, 80 s are left
    assert budget.allowance("b") == pytest.approx(80.0)  # on pace: its estimate (60 s) × the slack (80 / 60)
    budget.add("c", 3.0)  # now 120 s projected for 80 s left: b gets its share
    assert budget.allowance("b") == pytest.approx(40.0)


def test_sub_tasks_are_not_counted_twice(monkeypatch):
    budget, _ = clock_budget(100.0, monkeypatch)
    budget.add("case", 1.0)
    budget.add("weights", 1.0)
    budget.finish_task("weights", 6.0)
    budget.finish("case", 10.0)  # 10 s in all, 6 of them the sub-task
    assert budget.done[""] == pytest.approx([2.0, 10.0])  # estimated 2 s in all, took 10 s in all


def test_cut_reason_names_the_cut_the_slowness_and_the_budget(monkeypatch):
    budget, clock = clock_budget(300.0, monkeypatch)
    budget.add("x", 1.0)
    clock["now"] = 100.0
    text = cut_reason("steps/round", 100, 10, 0.041, 0.001, "bf16 emulated on this CPU: no avx512_bf16/amx_bf16",
                      budget)
    assert text.startswith("steps/round 100→10: step 41.0× eager's (bf16 emulated on this CPU")
    assert f"{300 - RESERVE_S - 100:.0f} s of the budget left for 1 cases" in text
    plain = cut_reason("rounds", 30, 15, 0.002, 0.001, "", budget)  # 2× eager: not called slow
    assert plain.startswith("rounds 30→15: ") and "eager's" not in plain


def test_fixed_costs_of_the_cases_left_are_set_aside_first(monkeypatch):
    budget, clock = clock_budget(60 + RESERVE_S, monkeypatch)
    budget.add("a", 10.0, fixed_s=5.0)
    budget.add("b", 30.0, fixed_s=45.0)  # b cannot be cut below 45 s; 90 s of work for 60 s
    assert budget.allowance("a") == pytest.approx(5.0 + (60 - 50) * 10 / 40)
    budget.start("a")
    clock["now"] = 4.0  # a spent 4 s on set-up (compilation, say): that comes out of its allowance
    assert budget.allowance("a") == pytest.approx(7.5 - 4.0)
    clock["now"] = 30.0
    assert budget.allowance("a") == 0.0  # overspent: nothing left, never negative


def test_on_pace_a_case_may_take_at_most_slow_ratio_times_its_estimate(monkeypatch):
    from mnist_models.experiments.budget import SLOW_RATIO

    budget, clock = clock_budget(100 + RESERVE_S, monkeypatch)
    budget.add("a", 1.0)
    budget.add("b", 2.0)
    clock["now"] = 1.0
    budget.finish("a", 1.0)  # as estimated: 99 s left for 2 s of work
    assert budget.allowance("b") == pytest.approx(SLOW_RATIO * 2.0)  # a case 10× slower than eager is cut


def test_each_kind_of_case_keeps_its_own_pace(monkeypatch):
    budget, clock = clock_budget(100 + RESERVE_S, monkeypatch)
    budget.add("t1", 1.0, kind="train")
    budget.add("t2", 1.0, kind="train")
    budget.add("i1", 1.0, kind="inference")
    budget.add("i2", 1.0, kind="inference")
    assert budget.pace("train") == 1.0  # nothing finished: estimates as they are
    clock["now"] = 4.0
    budget.finish("t1", 4.0)  # training runs 4× its estimates
    assert budget.pace("train") == 4.0 and budget.pace("inference") == 4.0  # no inference yet: the overall pace
    clock["now"] = 4.5
    budget.finish("i1", 0.5)  # inference runs at half its estimates
    assert budget.pace("inference") == 0.5 and budget.pace("train") == 4.0
    # left 95.5 s for t2 (4 s at its pace) and i2 (0.5 s): plenty of slack, each may take 3× its own pace's estimate
    assert budget.allowance("t2") == pytest.approx(12.0) and budget.allowance("i2") == pytest.approx(1.5)
