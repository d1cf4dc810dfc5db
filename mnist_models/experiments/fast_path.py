"""The fast path against the notebook's way, same protocol, interleaved, on several seeds.

The paths train the same model under the notebook protocol (batch 32, plain SGD, 3 epochs):

- ``notebook``: the torchvision DataLoader, fp32, NCHW: the seed notebook's way;
- ``fast <precision>`` for each precision asked for (by default ``auto``: ``config.MEASURED_DEFAULTS``):
  the whole split resident on the device, batches sliced there, the memory format measured faster
  (``channels_last`` auto); ``auto`` takes the faster of fp32 and bf16 on this machine, measured once
  for all the seeds (``train.runtime.resolve_all``), and the row records what it resolved to and why.

For each seed the paths run back to back (A B C A B C …) so machine drift hits all of them.
The speed-up of a path is the notebook's training time ÷ the path's, per seed; training time is
the sum of the three epochs' synchronised training passes (evaluation excluded).

Run it with ``mnist-bench speedup --seeds 3``; it writes ``speedup.csv`` and ``speedup.md``
(``report/speedup_table.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import MEASURED_DEFAULTS, RunConfig
from .reproduction import Case

BASELINE = "notebook"
FAST_PRECISIONS = (MEASURED_DEFAULTS["precision"],)  # the fast path's precisions when none are asked for


def paths(precisions: Sequence[str] = FAST_PRECISIONS) -> list[tuple[str, dict[str, Any]]]:
    """The notebook's way, then the fast path in each precision: (label, RunConfig changes)."""
    return [(BASELINE, {}), *((f"fast {p}", {"loader": "fast", "precision": p}) for p in precisions)]


def make_cases(model: str, seeds: Sequence[int], precisions: Sequence[str] = FAST_PRECISIONS,
               **overrides: Any) -> list[Case]:
    """Seed-protocol cases for each path, interleaved: all paths for one seed, then the next."""
    return [Case(label, RunConfig.from_protocol("notebook", model=model, seed=seed, **overrides, **changes))
            for seed in seeds for label, changes in paths(precisions)]
