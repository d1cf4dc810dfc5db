"""A case's rounds timed in visits spread over the session (``experiments/visits.py``), on a clock the
test moves: a visit is made only once its gap has passed, the session's end makes the rest a gap
apart, and the case gets every round back once, when it owes nothing."""

from __future__ import annotations

from mnist_models.experiments.visits import Visits, visits_for


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_visits_wait_for_their_gap_and_the_end_makes_the_rest() -> None:
    clock = Clock()
    visits = Visits(gap_s=10.0, clock=clock, sleep=clock.sleep)
    calls: list[float] = []
    got: list[list[float]] = []

    def run() -> None:  # each call takes a second of the test's clock
        calls.append(clock.now)
        clock.now += 1.0

    visits.add(run, rounds=2, times=[5.0, 5.0], visits=3, done=got.append)
    assert visits.due() == 0 and not calls  # the gap has not passed
    clock.now += 10.0
    assert visits.due() == 1 and len(calls) == 3  # one warm-up call, two timed rounds
    assert visits.due() == 0 and not got
    visits.finish()  # the last visit, a gap after the second: the end waits it out
    assert len(calls) == 6 and calls[3] - calls[2] >= 10.0
    assert got == [[5.0, 5.0, 1.0, 1.0, 1.0, 1.0]] and not visits.pending


def test_a_case_with_one_visit_is_done_at_once() -> None:
    got: list[list[float]] = []
    Visits().add(lambda: None, rounds=30, times=[1.0, 2.0], visits=1, done=got.append)
    assert got == [[1.0, 2.0]]


def test_only_timed_uncompiled_cpu_cases_are_revisited() -> None:
    assert visits_for(3, compiled=False, device="cpu") == 3
    assert visits_for(3, compiled=True, device="cpu") == 1  # dynamo's reset would recompile it
    assert visits_for(3, compiled=False, device="cuda") == 1
    assert visits_for(3, compiled=False, device="cpu", timed=False) == 1  # --benchmark-disable: one call
