"""The seed notebook's table beside this run's (``mnist-bench reproduce``): ``summarize`` and ``render``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..experiments.reproduction import NOTEBOOK_TABLE
from .markdown import fmt_columns, machine_line, markdown_table


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per label: the seed's figures, then this run's mean and range over seeds, and time/epoch."""
    out = []
    for label, group in rows.groupby("label", sort=False):
        seed_acc, seed_loss = NOTEBOOK_TABLE.get(label, (float("nan"), float("nan")))
        out.append({
            "model": label,
            "seed acc %": seed_acc,
            "seed loss": seed_loss,
            "n seeds": len(group),
            "acc % mean": group["test_acc_pct"].mean(),
            "acc % range": f"{group['test_acc_pct'].min():.2f}–{group['test_acc_pct'].max():.2f}",
            "loss mean": group["test_loss"].mean(),
            "s/epoch median": group["train_s_per_epoch_median"].median(),
            "s/epoch range": f"{group['train_s_per_epoch_min'].min():.2f}–{group['train_s_per_epoch_max'].max():.2f}",
        })
    return pd.DataFrame(out)


def render(rows: pd.DataFrame, env: dict[str, Any], run_id: str, heading: str = "###") -> str:
    """The Markdown report of the cases' rows: the table, then how it was measured and on what."""
    seeds = ", ".join(str(s) for s in dict.fromkeys(rows["seed"]))
    table = fmt_columns(summarize(rows), {"acc % mean": "{:.2f}", "loss mean": "{:.4f}", "s/epoch median": "{:.2f}",
                                          "seed acc %": "{:.2f}", "seed loss": "{:.4f}"})
    return "\n".join([
        f"{heading} Seed notebook vs this run (3 epochs, notebook protocol)",
        "",
        markdown_table(table),
        "",
        f"Seeds: {seeds} (n = {rows['seed'].nunique()} per model). " + machine_line(env, run_id),
        "",
        "Protocol: batch 32, plain SGD (lr 0.1 for v0/v2, 0.01 for v1), 3 epochs, torchvision "
        "DataLoader + ToTensor, no normalisation. Accuracy and loss are the final epoch's, "
        "sample-weighted over the 10,000 test images (the seed's are per-batch means, within "
        "~0.01 points). Time per epoch: wall clock of the training pass with the device "
        "synchronised, data loading included and evaluation excluded; median over seeds of each "
        "run's median epoch, range = fastest–slowest single epoch. `v1 (lr 0.1)` is not in the notebook: V1 "
        "trained with the lr V0 and V2 use, to separate the learning rate's effect from that of "
        "the ReLU on V1's logits.",
    ])
