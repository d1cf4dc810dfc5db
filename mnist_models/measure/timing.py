"""The contention indicator and timed rounds through pytest-benchmark's ``pedantic`` (the clocks
themselves, ``Timer`` and the process's age, are ``host.clock``).

Contention: over a timed region we record this process's CPU time and the whole machine's busy
CPU time (Linux /proc/stat). ``process_cpu_util`` (process CPU s ÷ wall s) near the thread
count means our threads ran undisturbed; ``machine_busy_cores`` well above it means other
processes were competing for the cores, and the row is flagged noisy (``stats.is_noisy``).

"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _machine_busy_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Contention:
    """Measure process and machine CPU use over a region: ``with Contention() as c: ...``."""

    process_cpu_util: float = float("nan")  # process CPU seconds ÷ wall seconds
    machine_busy_cores: float = float("nan")  # all processes' CPU seconds ÷ wall seconds

    def __enter__(self) -> Contention:
        self._wall, self._cpu, self._busy = time.perf_counter(), time.process_time(), _machine_busy_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        if wall <= 0:
            return
        self.process_cpu_util = (time.process_time() - self._cpu) / wall
        busy = _machine_busy_seconds()
        if busy is not None and self._busy is not None:
            self.machine_busy_cores = (busy - self._busy) / wall

    @property
    def other_cores(self) -> float:
        """Cores' worth of CPU used by other processes during the region."""
        return self.machine_busy_cores - self.process_cpu_util


def run_pedantic(benchmark: Any, fn: Callable[[], Any], rounds: int,
                 warmup_rounds: int) -> tuple[list[float], Contention]:
    """Time ``fn`` through pytest-benchmark's ``pedantic`` (iterations=1) and our own clock.

    Returns the per-round seconds of the timed rounds (warm-up rounds dropped) and the
    ``Contention`` measured over them. ``fn`` must synchronise the device before returning.
    With ``--benchmark-disable`` pytest-benchmark calls ``fn`` once: that single call is
    returned (n = 1).
    """
    times: list[float] = []

    def timed() -> None:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)

    with Contention() as contention:
        benchmark.pedantic(timed, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1)
    return (times if benchmark.disabled else times[warmup_rounds:]), contention
