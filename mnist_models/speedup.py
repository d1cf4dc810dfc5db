"""The fast path against the notebook's way, same protocol, interleaved, on several seeds.

The paths train the same model under the seed protocol (batch 32, plain SGD, 3 epochs):

- ``notebook``: the torchvision DataLoader, fp32, NCHW: the seed notebook's way;
- ``fast <precision>`` for each precision asked for (default ``auto``): the whole split resident
  on the device, batches sliced there, the memory format the runtime measures faster
  (``channels_last`` auto); ``auto`` takes the faster of fp32 and bf16 on this machine, measured,
  and the row records what it resolved to and why.

For each seed the paths run back to back (A B C A B C …) so machine drift hits all of them.
The speed-up of a path is the notebook's training time ÷ the path's, per seed; training time is
the sum of the three epochs' synchronised training passes (evaluation excluded).

Run it with ``mnist-bench speedup --seeds 3``; it writes ``speedup.csv`` and ``speedup.md``.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from .config import RunConfig
from .reproduce import Case

BASELINE = "notebook"


def paths(precisions: Sequence[str] = ("auto",)) -> list[tuple[str, dict[str, Any]]]:
    """The notebook's way, then the fast path in each precision: (label, RunConfig changes)."""
    return [(BASELINE, {}), *((f"fast {p}", {"loader": "fast", "precision": p}) for p in precisions)]


def make_cases(model: str, seeds: Sequence[int], precisions: Sequence[str] = ("auto",), **overrides: Any) -> list[Case]:
    """Seed-protocol cases for each path, interleaved: all paths for one seed, then the next."""
    return [Case(label, RunConfig.from_protocol("seed", model=model, seed=seed, **overrides, **changes))
            for seed in seeds for label, changes in paths(precisions)]


def summarize(cases: pd.DataFrame) -> pd.DataFrame:
    """Per path: n seeds, training seconds (3 epochs), img/s, speed-up over the notebook's way
    (mean and range of the per-seed ratios), and test accuracy (mean and range)."""
    base = cases[cases["label"] == BASELINE].set_index("seed")["train_s_total"]
    rows = []
    for label, group in cases.groupby("label", sort=False):
        ratio = base.reindex(group["seed"]).to_numpy() / group["train_s_total"].to_numpy()
        rows.append({
            "path": label, "n seeds": len(group),
            "train s (3 epochs) mean": group["train_s_total"].mean(),
            "train s range": f"{group['train_s_total'].min():.2f}–{group['train_s_total'].max():.2f}",
            "img/s median": group["train_img_per_s_median"].median(),
            "speed-up mean": ratio.mean(), "speed-up range": f"{ratio.min():.2f}–{ratio.max():.2f}",
            "wall s mean": group["wall_s"].mean(),
            "test acc % mean": group["test_acc_pct"].mean(),
            "test acc % range": f"{group['test_acc_pct'].min():.2f}–{group['test_acc_pct'].max():.2f}",
            "precision": ", ".join(sorted({str(v) for v in group["precision"]})) if "precision" in group else "",
            "channels_last": ", ".join(sorted({str(v) for v in group["channels_last"]})),
        })
    return pd.DataFrame(rows)


def report_markdown(summary: pd.DataFrame, cases: pd.DataFrame, env: dict[str, Any], run_id: str) -> str:
    """The Markdown report: the table, then how it was measured and on what."""
    from .results import machine_tag, markdown_table

    table = summary.copy()
    for column, fmt in (("train s (3 epochs) mean", "{:.2f}"), ("img/s median", "{:,.0f}"),
                        ("speed-up mean", "{:.2f}×"), ("wall s mean", "{:.2f}"), ("test acc % mean", "{:.2f}")):
        table[column] = table[column].map(fmt.format)
    model = cases["model"].iloc[0]
    seeds = ", ".join(str(s) for s in dict.fromkeys(cases["seed"]))
    return "\n".join([
        f"### Fast path vs the notebook's way ({model}, seed protocol, 3 epochs)", "",
        markdown_table(table), "",
        f"Seeds: {seeds} (n = {cases['seed'].nunique()} per path), paths interleaved per seed. Machine: "
        f"{machine_tag(env)}, torch {env['torch']}, {env['torch_threads']} threads. Run `{run_id}`.", "",
        "Training time: the three epochs' training passes, device synchronised, data loading included, "
        "evaluation excluded. Speed-up: the notebook's training time ÷ the path's, per seed. Wall: the "
        "whole run including data set-up, the memory-format probe and the three evaluations. Accuracy: "
        "final epoch, all 10,000 test images. `precision` and `channels_last` are what the runtime used "
        "(auto: measured for the fast loader, NCHW for the notebook's).",
        *_auto_reasons(cases),
    ])


def _auto_reasons(cases: pd.DataFrame) -> list[str]:
    """One line per distinct automatic choice made in the run, with its measured reason."""
    if "auto_reason" not in cases:
        return []
    reasons = [r for r in dict.fromkeys(cases["auto_reason"]) if isinstance(r, str) and r]
    return ["", *(f"Auto choice: {r}." for r in reasons)] if reasons else []
