"""The benchmark suite's time budget: how much work each case may do so the session ends in time.

A quick suite that takes 15 minutes does not get run; dropping the slow cases would hide exactly
what a user needs to see (bf16 emulated on an AVX2-only CPU is tens of times slower than fp32).
So every case runs, and a case that would overrun does less of the work that can be cut:

- training: fewer steps per round (the rounds stay at the profile's n);
- inference: fewer timed rounds, and the prediction agreement over fewer test images;
- time to accuracy: fewer seeds (never fewer than 3, the olympic mean's minimum);
- inference weights: fewer training steps than one epoch.

How much a case may spend: each case is registered when the session is collected with its
expected cost *at eager fp32 speed on this machine* (``Budget.add``; the suite estimates it from a
short probe of each model's eager step), split into the work a cut can shorten and the part no
cut can (compilation, evaluations, the minimum seeds). When a case starts its allowance is fixed:
the fixed parts of all remaining cases are set aside and the case gets its own fixed part plus
its weight's share of the rest; while the cases finished so far project a finish within the
budget, it may take up to ``SLOW_RATIO`` times its own estimate instead, so only a case far slower
than eager (emulated bf16, say) is cut. Its row says what was cut and why.

``pick`` takes the largest of a few fixed levels (1, ½, ⅕, ⅒ of the nominal work) that fits, so
cut cases of one model share step counts and their eager references can be reused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# Seconds kept back from the budget for what runs after the last case (writing the run folder,
# the summary, pytest's exit) and before the session (`make bench` checks the install and
# verifies the data in a process of its own, which imports torch: 1–4 s).
RESERVE_S = 25.0
# Fractions of the nominal work a cut case may run, largest first.
LEVELS = (1.0, 0.5, 0.2, 0.1)
# A case whose step takes this many times eager's is called out as "far slower than eager".
SLOW_RATIO = 3.0
# A cut must save at least this much, or the case runs in full: cutting a case that costs a
# fraction of a second loses its figures and gains nothing.
MIN_SAVING_S = 1.0


def levels(nominal: int, minimum: int = 1) -> list[int]:
    """The amounts of work a case may be cut to: ``LEVELS`` of ``nominal``, at least ``minimum``."""
    out = []
    for fraction in LEVELS:
        value = max(minimum, min(nominal, round(nominal * fraction)))
        if value not in out:
            out.append(value)
    return out


def pick(options: Sequence[int], cost_s: Callable[[int], float], allowance_s: float | None) -> int:
    """The first of ``options`` (largest work first) whose projected ``cost_s(option)`` fits
    ``allowance_s``; the cheapest when none fits; the first when there is no allowance or when no
    option would save ``MIN_SAVING_S`` over it."""
    costs = {option: cost_s(option) for option in options}
    cheapest = min(options, key=lambda option: (costs[option], -option))
    if allowance_s is None or costs[options[0]] - costs[cheapest] < MIN_SAVING_S:
        return options[0]
    for option in options:
        if costs[option] <= allowance_s:
            return option
    return cheapest


@dataclass
class Budget:
    """The session's time budget (``seconds`` None: no budget, nothing is ever cut).

    Each case (or sub-task) is registered with ``add(name, weight, fixed_s)``: ``weight`` is the
    work a cut can shorten, ``fixed_s`` what no cut can (compilation, evaluations, the minimum
    number of seeds), both in expected seconds at eager speed. ``start(name)`` fixes a case's
    allowance when it begins; ``allowance(name)`` is what is left of it.
    """

    seconds: float | None
    started: float = field(default_factory=time.perf_counter)
    weights: dict[str, tuple[float, float, str]] = field(default_factory=dict)  # not finished: (weight, fixed, kind)
    done: dict[str, list[float]] = field(default_factory=dict)  # kind → [estimated s, actual s] of finished cases
    cuts: list[tuple[str, str]] = field(default_factory=list)  # (case, what was cut and why)
    _nested: float = 0.0  # seconds of sub-tasks inside the running case
    _running: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # case → (start, allowance)

    def add(self, case: str, weight: float, fixed_s: float = 0.0, kind: str = "") -> None:
        """Register a case (or a sub-task such as a model's inference weights). ``kind`` groups cases
        whose estimates err alike (training, inference, …): each kind's pace is tracked apart."""
        old_weight, old_fixed, _ = self.weights.get(case, (0.0, 0.0, kind))
        self.weights[case] = (old_weight + max(weight, 1e-6), old_fixed + max(fixed_s, 0.0), kind)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        """Seconds left before the reserve (None budget: infinity)."""
        return math.inf if self.seconds is None else self.seconds - RESERVE_S - self.elapsed()

    def cases_left(self) -> int:
        return len(self.weights)

    def pace(self, kind: str) -> float:
        """Actual ÷ estimated seconds of the finished cases of ``kind`` (of all kinds while none of
        this one has finished; 1 before any has); at least 0.25."""
        estimated, actual = self.done.get(kind) or [sum(d[0] for d in self.done.values()),
                                                     sum(d[1] for d in self.done.values())]
        return max(0.25, actual / estimated) if estimated > 0 else 1.0

    def _plan(self, case: str) -> float | None:
        """The whole allowance of ``case`` from now (None: no budget).

        Estimates are scaled by each kind's pace so far. While the time left covers the cases left
        at those paces, a case may take its scaled estimate times the slack (time left ÷ time
        needed), at most ``SLOW_RATIO`` times. Otherwise every remaining case's fixed part is set
        aside first, and the case gets its fixed part plus its weight's share of the rest.
        """
        if self.seconds is None:
            return None
        weight, fixed, kind = self.weights.get(case, (0.0, 0.0, ""))
        paces = {k: self.pace(k) for _, _, k in self.weights.values()} | {kind: self.pace(kind)}
        need_weight = sum(paces[k] * w for w, _, k in self.weights.values())
        need_fixed = sum(paces[k] * f for _, f, k in self.weights.values())
        left = self.left()
        slack = left / (need_weight + need_fixed) if need_weight + need_fixed > 0 else math.inf
        own = paces[kind]
        if slack >= 1:
            # On pace: a case may take its estimate times the slack, up to SLOW_RATIO times it, so
            # only one far slower than eager is cut and no case spends the others' time.
            return own * (weight + fixed) * min(SLOW_RATIO, slack)
        return own * fixed + max(0.0, left - need_fixed) * own * weight / (need_weight or 1.0)

    def start(self, case: str) -> None:
        """A case begins: fix its allowance (the time it then spends on set-up counts against it)."""
        self._running[case] = (time.perf_counter(), self._plan(case))

    def allowance(self, case: str) -> float | None:
        """What ``case`` may still spend (seconds), or None when nothing needs cutting."""
        if case not in self._running:
            return self._plan(case)
        began, planned = self._running[case]
        return None if planned is None else max(0.0, planned - (time.perf_counter() - began))

    def _record(self, case: str, seconds: float) -> None:
        weight, fixed, kind = self.weights.pop(case, (0.0, 0.0, ""))
        done = self.done.setdefault(kind, [0.0, 0.0])
        done[0] += weight + fixed
        done[1] += seconds

    def finish(self, case: str, seconds: float) -> None:
        """Record that ``case`` ran for ``seconds``; its weight leaves the remaining work. Time spent
        in sub-tasks finished during the case (``finish_task``) is not counted twice."""
        self._running.pop(case, None)
        self._record(case, max(0.0, seconds - self._nested))
        self._nested = 0.0

    def finish_task(self, task: str, seconds: float) -> None:
        """Record a sub-task run inside the current case (e.g. training a model's inference weights)."""
        self._record(task, seconds)
        self._nested += seconds

    def cut(self, case: str, reason: str) -> None:
        """Note that ``case`` was cut (listed in the run's summary)."""
        self.cuts.append((case, reason))


def cut_reason(what: str, nominal: int, chosen: int, unit_s: float, eager_unit_s: float | None,
               slow_note: str, budget: Budget) -> str:
    """One line saying what was cut, how far, and why: e.g. ``steps/round 100→10: step 41.2× eager's
    (bf16 emulated on this CPU: no avx512_bf16/amx_bf16); 212 s of the budget left for 37 cases``."""
    parts = [f"{what} {nominal}→{chosen}"]
    if eager_unit_s and eager_unit_s > 0 and unit_s > SLOW_RATIO * eager_unit_s:
        parts.append(f"step {unit_s / eager_unit_s:.1f}× eager's" + (f" ({slow_note})" if slow_note else ""))
    elif slow_note:
        parts.append(slow_note)
    parts.append(f"{max(0.0, budget.left()):.0f} s of the budget left for {budget.cases_left()} cases")
    return f"{parts[0]}: " + "; ".join(parts[1:])
