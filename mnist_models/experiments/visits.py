"""Spreading a case's timed rounds over the session: several short visits instead of one block.

Measured on the shared 2-core VMs (docs/noise.md): the machine's speed moves in regimes of seconds, so
the 30 rounds of a small inference case, timed back to back within a millisecond, sample it at one
instant, and a burst of other work there moves the case's median by 50–100% in that run alone (the
A/A runs' main false alarm). Timed instead in ``visits`` visits at least ``VISIT_GAP_S`` apart, a burst
catches one visit's rounds and the median over all of them stays put (a visit's rounds are the
profile's rounds ÷ visits: the same rounds in all, one warm-up call more per visit).

``Visits`` holds the cases that still owe visits. The session asks it after every case (``due``: the
visits whose gap has passed) and once at its end (``finish``: the rest, oldest first, each a gap after
the case's last); each case's ``done`` callback then rebuilds its row from every round.
A visit is one untimed warm-up call (the other cases have run since: caches, and the allocator's
state, are not this case's) and then its rounds, each timed alone (``fn`` synchronises the device).
Only uncompiled CPU cases are revisited (``visits_for``): the next compiled case resets dynamo, and an
old compiled one would recompile (``suite._reset_compiler``); on CUDA a case kept for later would add
its tensors to every later case's peak allocated memory, and the bursts were measured on CPUs. On the
CPU the cases kept add their inputs (at most a few MiB each) to later cases' absolute peak RSS, not to
its growth.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

VISIT_GAP_S = 10.0  # seconds between two visits of a case, at least (the bursts measured last seconds)


def visits_for(profile_visits: int, compiled: bool, device: str, timed: bool = True) -> int:
    """Visits an inference case's rounds are timed in: the profile's for an uncompiled CPU case whose
    rounds are timed (not under ``--benchmark-disable``), else 1 (see the module)."""
    return profile_visits if timed and not compiled and device == "cpu" else 1


@dataclass
class _Pending:
    run: Callable[[], object]
    rounds: int  # timed rounds a visit
    left: int  # visits still owed
    times: list[float]  # every timed round so far, the first visit's included
    done: Callable[[list[float]], None]  # called once with every round, when no visit is owed
    last: float  # when its last visit ended (perf_counter)


@dataclass
class Visits:
    """The cases that still owe visits (see the module)."""

    gap_s: float = VISIT_GAP_S
    clock: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep
    pending: list[_Pending] = field(default_factory=list)

    def add(self, run: Callable[[], object], rounds: int, times: list[float], visits: int,
            done: Callable[[list[float]], None]) -> None:
        """A case timed its first visit (``times``); ``visits - 1`` more of ``rounds`` rounds are owed."""
        if visits <= 1:
            done(list(times))
            return
        self.pending.append(_Pending(run, rounds, visits - 1, list(times), done, self.clock()))

    def _visit(self, case: _Pending) -> None:
        case.run()  # warm-up, untimed
        for _ in range(case.rounds):
            start = self.clock()
            case.run()
            case.times.append(self.clock() - start)
        case.left -= 1
        case.last = self.clock()
        if not case.left:
            self.pending.remove(case)
            case.done(case.times)

    def due(self) -> int:
        """Make every owed visit whose gap has passed; how many were made."""
        made = 0
        for case in list(self.pending):
            if self.clock() - case.last >= self.gap_s:
                self._visit(case)
                made += 1
        return made

    def finish(self) -> None:
        """Make every visit still owed, the case visited longest ago first, waiting out the gap only when
        even that one is not due (many cases owing visits space each other out)."""
        while self.pending:
            case = min(self.pending, key=lambda c: c.last)
            wait = self.gap_s - (self.clock() - case.last)
            if wait > 0:
                self.sleep(wait)
            self._visit(case)
