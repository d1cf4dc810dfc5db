"""The scaling benchmark's table and figure (``mnist-bench scaling``, and the run report's scaling section):
``summarize``, ``render`` (Markdown) and ``figure`` (PNG), from the rows ``experiments.ddp_scaling`` measures."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .markdown import fmt_columns, machine_line, markdown_table
from .plots import PALETTE, png

ROLE_COLORS = {"scaling": PALETTE[0], "baseline": PALETTE[7], "all threads": PALETTE[1]}


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per layout: processes × threads, the global batch, img/s (all ranks: median, range; per rank),
    step time, efficiency, the ratio to one process with all threads, the all-reduce share and accuracy."""
    return pd.DataFrame({
        "processes × threads": rows["layout"], "role": rows["role"], "global batch": rows["global_batch"],
        "img/s (all ranks)": rows["img_per_s"],
        "range": [f"{lo:,.0f}–{hi:,.0f}" for lo, hi in zip(rows["img_per_s_min"], rows["img_per_s_max"], strict=True)],
        "img/s per rank": rows["rank_img_per_s"], "step ms": rows["step_ms"], "efficiency": rows["efficiency"],
        "vs 1 process, all threads": rows["vs_all_threads"], "all-reduce % of step": rows["allreduce_pct"],
        "test acc %": rows["test_acc_pct"],
    })


def render(rows: pd.DataFrame, env: dict[str, Any], run_id: str, heading: str = "###") -> str:
    """The Markdown table of the layouts, then how each figure was taken and on what."""
    first = rows.iloc[0]
    table = fmt_columns(summarize(rows), {"img/s (all ranks)": "{:,.0f}", "img/s per rank": "{:,.0f}",
                                          "step ms": "{:.2f}", "efficiency": "{:.2f}",
                                          "vs 1 process, all threads": "{:.2f}×", "all-reduce % of step": "{:.1f}",
                                          "test acc %": "{:.2f}"})
    layout = "NHWC" if first["channels_last"] else "NCHW"
    repeats = int(first.get("repeats", 1) or 1)
    passes = f", in {repeats} passes over the layouts, interleaved (rounds pooled)" if repeats > 1 else ""
    lines = [
        f"{heading} Data-parallel scaling ({first['model']}, {first['device']}, {first['precision']}, {layout}, "
        f"{first['backend']}, batch {first['batch_size']} per process)", "",
        markdown_table(table), "",
        f"Each layout is a torchrun job (DistributedDataParallel over {first['backend']}) training the same model for "
        f"the same {first['global_steps']} global steps: {first['warmup_steps']} warm-up steps (not timed), then "
        f"{first['rounds']} timed rounds of {first['steps']} steps, device synchronised{passes}; img/s is the median "
        "round (all ranks' images ÷ rank 0's round time), the range its fastest and slowest round. Efficiency: img/s ÷ "
        "(processes × one process's img/s with the same threads per process); a one-process layout trains without "
        "DDP, as it would run without it. All-reduce: the time during which a collective's event was running "
        f"(profiler) over {first['profiled_steps']} more steps' wall time, rank 0 (on gloo it "
        "runs on its own threads, after the backward pass for a model whose gradients fill one bucket). Accuracy: "
        "the whole test set after the timed rounds, at that layout's global batch. " + machine_line(env, run_id),
    ]
    if isinstance(first.get("note"), str) and first["note"]:
        lines += ["", f"Note: {first['note']}."]
    if isinstance(first.get("auto_reason"), str) and first["auto_reason"]:
        lines += ["", f"Auto choice (made once, for every layout): {first['auto_reason']}."]
    return "\n".join(lines)


def figure(rows: pd.DataFrame) -> bytes | None:
    """Images per second of each layout (all ranks), with its efficiency and accuracy written on the bar, beside
    its step time split into the all-reduce and the rest."""
    if rows.empty:
        return None
    fig = Figure(figsize=(10, 3.8))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    labels = list(rows["layout"])
    colors = [ROLE_COLORS.get(role, PALETTE[2]) for role in rows["role"]]
    left.bar(labels, rows["img_per_s"], color=colors)
    for x, (_, r) in enumerate(rows.iterrows()):
        eff = "" if pd.isna(r["efficiency"]) else f"eff {r['efficiency']:.2f}\n"
        left.annotate(f"{eff}{r['test_acc_pct']:.1f}%", (x, r["img_per_s"]), ha="center", va="bottom", fontsize=8)
    left.set_ylim(0, rows["img_per_s"].max() * 1.3)  # room for the labels above the tallest bar
    left.set_ylabel("images / s, all ranks (median round)")
    left.set_title("throughput by processes × threads")
    reduce_ms = rows["allreduce_pct"] / 100 * rows["profiled_step_ms"]
    right.bar(labels, rows["profiled_step_ms"] - reduce_ms, color=PALETTE[0], label="rest of the step")
    right.bar(labels, reduce_ms, bottom=rows["profiled_step_ms"] - reduce_ms, color=PALETTE[3], label="all-reduce")
    right.set_ylabel("ms per step (profiled)")
    right.set_title("step time, rank 0")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return png(fig)
