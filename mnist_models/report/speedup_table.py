"""The fast path against the notebook's way (``mnist-bench speedup``): ``summarize`` and ``render``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..experiments.fast_path import BASELINE
from ..measure.stats import mean_ci
from .markdown import fmt_columns, machine_line, markdown_table


def _interval(values: Any, unit: str = "") -> str:
    """± sample std and the 95% Student-t interval of the mean over seeds ("–" for one seed)."""
    s = mean_ci(list(values))
    if s["n"] < 2:
        return "–"
    return f"± {s['std']:.2f}{unit} ({s['ci_low']:.2f}–{s['ci_high']:.2f}{unit})"


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per path: n seeds, training seconds (3 epochs), img/s, speed-up over the notebook's way
    (mean, range, and ± std with the 95% confidence interval of the per-seed ratios), and test accuracy
    (the same)."""
    base = rows[rows["label"] == BASELINE].set_index("seed")["train_s_total"]
    out = []
    for label, group in rows.groupby("label", sort=False):
        ratio = base.reindex(group["seed"]).to_numpy() / group["train_s_total"].to_numpy()
        out.append({
            "path": label, "n seeds": len(group),
            "train s (3 epochs) mean": group["train_s_total"].mean(),
            "train s range": f"{group['train_s_total'].min():.2f}–{group['train_s_total'].max():.2f}",
            "img/s median": group["train_img_per_s_median"].median(),
            "speed-up mean": ratio.mean(), "speed-up range": f"{ratio.min():.2f}–{ratio.max():.2f}",
            "speed-up ± std (95% CI)": _interval(ratio, "×"),
            "wall s mean": group["wall_s"].mean(),
            "test acc % mean": group["test_acc_pct"].mean(),
            "test acc % range": f"{group['test_acc_pct'].min():.2f}–{group['test_acc_pct'].max():.2f}",
            "test acc % ± std (95% CI)": _interval(group["test_acc_pct"]),
            "precision": ", ".join(sorted({str(v) for v in group["precision"]})) if "precision" in group else "",
            "channels_last": ", ".join(sorted({str(v) for v in group["channels_last"]})),
        })
    return pd.DataFrame(out)


def render(rows: pd.DataFrame, env: dict[str, Any], run_id: str, heading: str = "###") -> str:
    """The Markdown report of the cases' rows: the table, then how it was measured and on what."""
    table = fmt_columns(summarize(rows), {"train s (3 epochs) mean": "{:.2f}", "img/s median": "{:,.0f}",
                                          "speed-up mean": "{:.2f}×", "wall s mean": "{:.2f}",
                                          "test acc % mean": "{:.2f}"})
    model = rows["model"].iloc[0]
    seeds = ", ".join(str(s) for s in dict.fromkeys(rows["seed"]))
    return "\n".join([
        f"{heading} Fast path vs the notebook's way ({model}, notebook protocol, 3 epochs)", "",
        markdown_table(table), "",
        f"Seeds: {seeds} (n = {rows['seed'].nunique()} per path), paths interleaved per seed. "
        + machine_line(env, run_id), "",
        "Training time: the three epochs' training passes, device synchronised, data loading included, "
        "evaluation excluded. Speed-up: the notebook's training time ÷ the path's, per seed; ± is the sample "
        "standard deviation over seeds, and the interval is the mean's 95% confidence interval (Student's t at "
        "n − 1 degrees of freedom). Wall: the "
        "whole run including data set-up, the memory-format probe and the three evaluations. Accuracy: "
        "final epoch, all 10,000 test images. `precision` and `channels_last` are what the runtime used "
        "(auto: measured for the fast loader, NCHW for the notebook's).",
        *_auto_reasons(rows),
    ])


def _auto_reasons(cases: pd.DataFrame) -> list[str]:
    """One line per distinct automatic choice made in the run, with its measured reason."""
    if "auto_reason" not in cases:
        return []
    reasons = [r for r in dict.fromkeys(cases["auto_reason"]) if isinstance(r, str) and r]
    return ["", *(f"Auto choice: {r}." for r in reasons)] if reasons else []
