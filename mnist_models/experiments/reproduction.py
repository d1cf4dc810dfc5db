"""Reproduce the seed notebook's results table under its exact protocol, on several seeds.

Each case is one model trained with ``RunConfig.from_protocol("notebook", ...)`` (batch 32, plain
SGD, 3 epochs, the torchvision DataLoader; lr 0.1 for V0/V2 and 0.01 for V1), plus V1 with
lr 0.1 to show that its low score comes from the learning rate. Cases are interleaved
(all models for one seed, then the next seed) so machine drift hits every model alike.

Run it with ``mnist-bench reproduce --seeds 42,0,1``; it writes ``seed_reproduction.csv``
(one row per case) and ``seed_reproduction.md`` (``report/notebook_table.py``: the seed's table beside
this run's).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import RunConfig

# The notebook's own table after 3 epochs: test accuracy (%) and test loss, mean of per-batch
# values over the 313 test batches.
NOTEBOOK_TABLE: dict[str, tuple[float, float]] = {"v0": (91.94, 0.2867), "v1": (73.27, 0.9604), "v2": (98.57, 0.0461)}
NOTEBOOK_MODELS = tuple(NOTEBOOK_TABLE)
V1_HIGH_LR = 0.1


@dataclass(frozen=True)
class Case:
    """One training run of the reproduction: a label for the table and its config."""

    label: str
    config: RunConfig


def make_cases(models: Sequence[str], seeds: Sequence[int], **overrides: Any) -> list[Case]:
    """Seed-protocol cases, seed-major (interleaved); V1 also gets an lr 0.1 case."""
    cases = []
    for seed in seeds:
        for model in models:
            cfg = RunConfig.from_protocol("notebook", model=model, seed=seed, **overrides)
            cases.append(Case(model, cfg))
            if model == "v1":
                cases.append(Case(f"v1 (lr {V1_HIGH_LR:g})", cfg.with_(lr=V1_HIGH_LR)))
    return cases


def case_row(case: Case, epochs: list[dict[str, float]]) -> dict[str, Any]:
    """One CSV row: the final epoch's metrics and the run's per-epoch training times."""
    last = epochs[-1]
    train_s = [e["train_s"] for e in epochs]
    return {
        "label": case.label, "model": case.config.model, "seed": case.config.seed, "lr": case.config.lr,
        "epochs": len(epochs), "test_acc_pct": last["test_acc_pct"], "test_loss": last["test_loss"],
        "train_acc_pct": last["train_acc_pct"], "train_loss": last["train_loss"],
        "train_s_total": float(sum(train_s)),
        "train_s_per_epoch_median": float(statistics.median(train_s)), "train_s_per_epoch_min": float(min(train_s)),
        "train_s_per_epoch_max": float(max(train_s)),
        "train_img_per_s_median": float(statistics.median(e["train_img_per_s"] for e in epochs)),
        "eval_s_median": float(statistics.median(e["eval_s"] for e in epochs)),
    }
