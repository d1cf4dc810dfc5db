"""Clocks: a timer that synchronises the device at both ends, the steady-call median, the
process's age, and interleaved timing of candidates (behind ``--precision auto``).

This module imports nothing heavy: the time-to-accuracy worker reads ``process_age_s`` before it
imports torch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)


def _no_sync() -> None:
    return None


class Timer:
    """Wall-clock timer that synchronises the device before reading the clock at both ends.

        with Timer(rt.synchronize) as t:
            work()
        t.seconds
    """

    def __init__(self, synchronize: Callable[[], None] = _no_sync) -> None:
        self.synchronize = synchronize
        self.seconds = float("nan")

    def __enter__(self) -> Timer:
        self.synchronize()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.synchronize()
        self.seconds = time.perf_counter() - self._start


STEADY_CALLS = 3


def steady_seconds(call: Callable[[], Any], synchronize: Callable[[], None]) -> float:
    """Median seconds of ``STEADY_CALLS`` calls, device synchronised (one steady call alone was seen
    running 100× slow right after a compile)."""
    times = []
    for _ in range(STEADY_CALLS):
        with Timer(synchronize) as timer:
            call()
        times.append(timer.seconds)
    return sorted(times)[len(times) // 2]


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc), so interpreter start-up is counted."""
    ticks = os.sysconf("SC_CLK_TCK")
    start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return max(0.0, uptime - start)


# Interleaved step timing (behind ``--precision auto``): the candidates take their calls in turn
# (A B A B …, so drift hits all of them alike): PROBE_WARMUP_STEPS untimed rounds, then timed rounds, up
# to PROBE_MAX_STEPS each, fewer once each has PROBE_MIN_STEPS and PROBE_SECONDS have passed per
# candidate: an emulated precision costs about a second to rule out, not minutes. A candidate whose
# call, from the second warm-up round on, takes over RULE_OUT times the fastest candidate's in that
# round is ruled out there: its median is that of the calls it made (a far slower path, bf16 emulated
# on an AVX2-only CPU say, cannot win, and each more call of it cost 1–8 s in the suite's probes).
# Why 30 and 0.25 s: docs/decisions.md (2026-11-26, "probe length"); RULE_OUT: 2026-12-06.
PROBE_WARMUP_STEPS = 3
PROBE_MAX_STEPS = 30
PROBE_MIN_STEPS = 3
PROBE_SECONDS = 0.25
RULE_OUT = 4.0


def interleaved_medians(candidates: Mapping[K, tuple[Callable[[], Any], Callable[[], None]]]) -> dict[K, float]:
    """Median seconds of one call of each candidate ``(call, synchronize)``, timed interleaved as above
    (a candidate ruled out: the median of the calls it made)."""
    times: dict[K, list[float]] = {k: [] for k in candidates}
    running = dict(candidates)
    spent = 0.0
    for i in range(PROBE_WARMUP_STEPS + PROBE_MAX_STEPS):
        timed = i - PROBE_WARMUP_STEPS
        if timed >= PROBE_MIN_STEPS and spent >= PROBE_SECONDS * len(running):
            break
        latest = {}
        for k, (call, sync) in running.items():
            with Timer(sync) as timer:
                call()
            latest[k] = timer.seconds
            if timed >= 0:
                times[k].append(timer.seconds)
                spent += timer.seconds
        fastest = min(latest.values())
        for k in [k for k, s in latest.items() if i >= 1 and s > RULE_OUT * fastest and len(running) > 1]:
            times[k] = times[k] or [latest[k]]  # ruled out in warm-up: its warm call stands for it
            del running[k]
    return {k: sorted(values)[len(values) // 2] for k, values in times.items()}
