"""The run report's figures, drawn with matplotlib on an Agg canvas (no pyplot, no display, no global
state) and returned as PNG bytes; each takes the run's tidy frames and returns None when there is
nothing to draw. Panels are one per (model, device); a variant keeps its colour in every figure.

Images (``sample_grid``, ``prediction_grid``) follow the seed notebook's visuals: a random grid of
test digits, and a 3×3 grid titled "Pred: p | Truth: t", green when right and red when wrong.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..variants import BASELINE, VARIANTS

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
           "#64b5cd", "#1b9e77", "#e7298a", "#66a61e", "#a6761d")
RIGHT, WRONG, FLAGGED = "#1a7f37", "#cf222e", "#cf222e"
DPI = 100


def variant_color(variant: str) -> str:
    """The same colour for a variant in every figure (registry order; unknown names after it)."""
    names = list(VARIANTS)
    index = names.index(variant) if variant in names else len(names) + sum(map(ord, variant))
    return PALETTE[index % len(PALETTE)]


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats (NaN where missing or absent: older runs lack columns)."""
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


def cases(frame: pd.DataFrame) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """The frame split per (model, device), in the run's order."""
    if frame is None or frame.empty:
        return []
    return [((str(m), str(d)), g) for (m, d), g in frame.groupby(["model", "device"], sort=False)]


def panels(groups: Sequence[tuple[Any, pd.DataFrame]], draw: Callable[[Axes, Any], None], title: str,
           ncols: int = 2, height: float = 3.2, per_row: float | None = None) -> bytes | None:
    """One subplot per (key, rows) group (``draw(ax, group)``), ``ncols`` per row, as PNG bytes; with
    ``per_row``, each subplot is that many inches per row of its largest group tall."""
    if not groups:
        return None
    if per_row is not None:
        height = 0.9 + per_row * max(len(rows) for _, rows in groups)
    ncols = min(ncols, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    fig = Figure(figsize=(11.0, height * nrows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, group in zip(axes, groups, strict=False):
        draw(ax, group)
    for ax in axes[len(groups):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    return png(fig)


def model_comparison(train: pd.DataFrame, inference: pd.DataFrame, batch: int | None) -> bytes | None:
    """Eager per model: test accuracy and training img/s (and inference img/s at ``batch``)."""
    eager = train[train["variant"] == BASELINE] if not train.empty else train
    if eager.empty:
        return None
    names = [f"{m}\n{d}" for m, d in zip(eager["model"], eager["device"], strict=True)]
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    acc_ax, speed_ax = fig.subplots(1, 2)
    bars = acc_ax.bar(names, numeric(eager, "test_acc_pct"), color="#4c72b0")
    acc_ax.bar_label(bars, fmt="%.2f", fontsize=8)
    acc_ax.set_ylabel("test accuracy %")
    acc_ax.set_ylim(0, 105)
    acc_ax.set_title("test accuracy after the timed rounds", fontsize=10)
    x = np.arange(len(names))
    width = 0.4 if batch is not None else 0.8
    bars = speed_ax.bar(x, numeric(eager, "img_per_s"), width, color="#55a868", label="training")
    speed_ax.bar_label(bars, fmt="{:,.0f}", fontsize=7)
    if batch is not None and not inference.empty:
        rows = inference[(inference["variant"] == BASELINE) & (numeric(inference, "batch_size") == batch)]
        look = {(m, d): v for m, d, v in zip(rows["model"], rows["device"], numeric(rows, "img_per_s"), strict=True)}
        values = [look.get((m, d), np.nan) for m, d in zip(eager["model"], eager["device"], strict=True)]
        bars = speed_ax.bar(x + width, values, width, color="#dd8452", label=f"inference, batch {batch}")
        speed_ax.bar_label(bars, fmt="{:,.0f}", fontsize=7)
        speed_ax.set_xticks(x + width / 2, names)
    else:
        speed_ax.set_xticks(x, names)
    speed_ax.set_yscale("log")
    speed_ax.set_ylabel("images/s (log)")
    speed_ax.legend(fontsize=8)
    speed_ax.set_title("throughput, eager fp32", fontsize=10)
    fig.suptitle("Models compared (eager)", fontsize=11)
    return png(fig)


def _speedup_panel(ax: Axes, item: tuple[tuple[str, str], pd.DataFrame]) -> None:
    (model, device), rows = item
    rows = rows.iloc[::-1]
    speed = numeric(rows, "speedup_vs_eager")
    bands = rows["acc_band"].fillna("") if "acc_band" in rows else pd.Series("", index=rows.index)
    colors = [FLAGGED if band else ("#8c8c8c" if v == BASELINE else "#4c72b0")
              for v, band in zip(rows["variant"], bands, strict=True)]
    bars = ax.barh(list(rows["variant"]), speed.fillna(0), color=colors)
    delta = numeric(rows, "acc_delta_vs_eager_pct")
    labels = [f"{s:.2f}×  ({d:+.2f} pts{', ' + b if b else ''})" if not math.isnan(s) else "n/a"
              for s, d, b in zip(speed, delta.fillna(0), bands, strict=True)]
    ax.bar_label(bars, labels=labels, padding=3, fontsize=7)
    ax.axvline(1.0, color="#444", lw=0.8, ls="--")
    ax.set_xlim(0, max(speed.max(skipna=True) if speed.notna().any() else 1, 1) * 1.9)
    ax.set_title(f"{model} · {device}", fontsize=10)
    ax.set_xlabel("speed-up vs eager (throughput)")
    ax.tick_params(labelsize=8)


def speedups(train: pd.DataFrame) -> bytes | None:
    """Per model: each variant's training speed-up over eager, its accuracy delta, red when outside
    eager's seed band."""
    return panels(cases(train), _speedup_panel, "Training speed-up per variant (label: accuracy Δ vs eager; red: "
                  "outside eager's seed band)", per_row=0.28)


def round_times(train: pd.DataFrame, rounds: pd.DataFrame | None) -> bytes | None:
    """Per model: seconds per timed round of each variant: every round (dots) and the median (bar)
    where ``rounds.csv`` exists, else the median with min–max whiskers."""
    per_round = rounds[rounds["phase"] == "train"] if rounds is not None and not rounds.empty else None

    def draw(ax: Axes, item: tuple[tuple[str, str], pd.DataFrame]) -> None:
        (model, device), rows = item
        y = np.arange(len(rows))
        median = numeric(rows, "median_s")
        ax.barh(y, median, color=[variant_color(v) for v in rows["variant"]], alpha=0.55)
        if per_round is not None:
            for i, variant in enumerate(rows["variant"]):
                mine = per_round[(per_round["model"] == model) & (per_round["device"] == device)
                                 & (per_round["variant"] == variant)]
                ax.plot(numeric(mine, "seconds"), np.full(len(mine), i), "o", color="#222", ms=3.5)
        else:
            low, high = median - numeric(rows, "min_s"), numeric(rows, "max_s") - median
            ax.errorbar(median, y, xerr=[low.clip(lower=0), high.clip(lower=0)], fmt="none", ecolor="#222",
                        capsize=3)
        steps, cut = numeric(rows, "steps_per_round"), rows.get("cut", pd.Series(None, index=rows.index))
        labels = [f"{v} ({int(s)} steps, cut)" if isinstance(c, str) and c and not math.isnan(s) else v
                  for v, s, c in zip(rows["variant"], steps, cut, strict=True)]
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{model} · {device}", fontsize=10)
        ax.set_xlabel("seconds per timed round")

    how = "dots: every timed round; bar: median" if per_round is not None else "bar: median; whiskers: min–max"
    return panels(cases(train), draw, f"Time per training round ({how})", per_row=0.28)


def training_curves(train: pd.DataFrame, rounds: pd.DataFrame | None) -> bytes | None:
    """Per model: training loss of each timed round per variant, against the steps trained so far
    (warm-up rounds included in the count)."""
    if rounds is None or rounds.empty or "train_loss" not in rounds:
        return None
    loss = rounds[(rounds["phase"] == "train") & numeric(rounds, "train_loss").notna()]
    if loss.empty:
        return None
    steps = train.set_index(["model", "device", "variant"])

    def draw(ax: Axes, item: tuple[tuple[str, str], pd.DataFrame]) -> None:
        (model, device), rows = item
        for variant, curve in rows.groupby("variant", sort=False):
            key = (model, device, variant)
            per = float(steps["steps_per_round"].get(key, np.nan)) if "steps_per_round" in steps else np.nan
            warm = float(steps["warmup_rounds"].get(key, 0)) if "warmup_rounds" in steps else 0.0
            x = (numeric(curve, "round") + warm) * per if not math.isnan(per) else numeric(curve, "round")
            ax.plot(x, numeric(curve, "train_loss"), "o-", ms=3, lw=1.2, color=variant_color(str(variant)),
                    label=str(variant))
        ax.set_title(f"{model} · {device}", fontsize=10)
        ax.set_xlabel("training steps so far" if "steps_per_round" in steps else "timed round")
        ax.set_ylabel("train loss (round mean)")
        ax.legend(fontsize=7)

    return panels(cases(loss), draw, "Training loss per timed round")


def throughput(inference: pd.DataFrame) -> bytes | None:
    """Per model: inference images/s against batch size, one line per variant (log–log)."""

    def draw(ax: Axes, item: tuple[tuple[str, str], pd.DataFrame]) -> None:
        (model, device), rows = item
        for variant, line in rows.groupby("variant", sort=False):
            line = line.sort_values("batch_size")
            ax.plot(numeric(line, "batch_size"), numeric(line, "img_per_s"), "o-", ms=3.5, lw=1.3,
                    color=variant_color(str(variant)), label=str(variant))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{model} · {device}", fontsize=10)
        ax.set_xlabel("batch size")
        ax.set_ylabel("images/s")
        ax.legend(fontsize=7)
        ax.grid(True, which="major", alpha=0.3)

    return panels(cases(inference), draw, "Inference throughput vs batch size (median over the timed rounds)",
                  height=3.6)


def latency(inference: pd.DataFrame) -> bytes | None:
    """Per model: latency of one batch, p50 (dot) to p99 (end of the line), p90 (tick), per variant at
    each batch size (log scale)."""

    def draw(ax: Axes, item: tuple[tuple[str, str], pd.DataFrame]) -> None:
        (model, device), rows = item
        batches = sorted(numeric(rows, "batch_size").dropna().unique())
        variants = list(dict.fromkeys(rows["variant"]))
        step = 0.8 / max(len(variants), 1)
        for j, variant in enumerate(variants):
            mine = rows[rows["variant"] == variant]
            x = [batches.index(b) - 0.4 + step * (j + 0.5) for b in numeric(mine, "batch_size")]
            p50, p90, p99 = (numeric(mine, c) for c in ("p50_ms", "p90_ms", "p99_ms"))
            color = variant_color(str(variant))
            ax.vlines(x, p50, p99, color=color, lw=1.2)
            ax.scatter(x, p90, marker="_", color=color, s=30)
            ax.scatter(x, p50, marker="o", color=color, s=12, label=str(variant))
        ax.set_xticks(range(len(batches)), [f"batch {int(b)}" for b in batches], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("ms per batch")
        ax.set_title(f"{model} · {device}", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(True, axis="y", which="major", alpha=0.3)

    return panels(cases(inference), draw, "Inference latency percentiles: dot p50, tick p90, line end p99",
                  height=3.6)


def _memory_mib(frame: pd.DataFrame) -> pd.Series:
    """CUDA max allocated where measured, else the CPU process's peak resident set."""
    cuda, cpu = numeric(frame, "peak_allocated_mib"), numeric(frame, "peak_rss_mib")
    return cuda.where(cuda.notna(), cpu)


def _case_bars(ax: Axes, rows: pd.DataFrame, values: pd.Series, labels: list[str], xlabel: str) -> None:
    """Horizontal bars, one per (model, variant), coloured by variant, with their labels."""
    names = [f"{m} {v}" for m, v in zip(rows["model"], rows["variant"], strict=True)]
    y = np.arange(len(rows))
    bars = ax.barh(y, values.fillna(0), color=[variant_color(str(v)) for v in rows["variant"]])
    ax.bar_label(bars, labels=labels, padding=3, fontsize=7)
    ax.set_yticks(y, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, (values.max(skipna=True) if values.notna().any() else 1) * 1.3)


def _split_phases(train: pd.DataFrame, inference: pd.DataFrame, batch: int | None) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) for training and for inference at ``batch``, per device."""
    out = []
    for phase, frame in (("training", train), (f"inference, batch {batch}", inference)):
        if frame.empty or (phase != "training" and batch is None):
            continue
        rows = frame if phase == "training" else frame[numeric(frame, "batch_size") == batch]
        for device, part in rows.groupby("device", sort=False):
            out.append((f"{phase} · {device}", part))
    return out


def memory(train: pd.DataFrame, inference: pd.DataFrame, batch: int | None) -> bytes | None:
    """Peak memory per case (its own pass): CUDA max allocated, else the process's peak RSS."""
    groups = _split_phases(train, inference, batch)

    def draw(ax: Axes, item: tuple[str, pd.DataFrame]) -> None:
        title, rows = item
        cuda = numeric(rows, "peak_allocated_mib").notna().any()
        mib, growth = _memory_mib(rows), numeric(rows, "peak_rss_growth_mib")
        labels = ["n/a" if math.isnan(v) else f"{v:,.1f}" + ("" if cuda or math.isnan(g) else f" (+{g:,.1f})")
                  for v, g in zip(mib, growth, strict=True)]
        _case_bars(ax, rows, mib, labels, "MiB, CUDA max allocated" if cuda else
                   "MiB, process peak RSS (data, model, libraries); (+ growth during the pass)")
        ax.set_title(title, fontsize=10)

    return panels(groups, draw, "Peak memory per case (a pass of its own)", per_row=0.16)


def roofline(train: pd.DataFrame, inference: pd.DataFrame, batch: int | None) -> bytes | None:
    """Achieved GFLOP/s as a share of the device's measured matmul peak in the case's precision."""
    groups = [(t, g) for t, g in _split_phases(train, inference, batch) if numeric(g, "pct_of_peak").notna().any()]

    def draw(ax: Axes, item: tuple[str, pd.DataFrame]) -> None:
        title, rows = item
        pct, gflops = numeric(rows, "pct_of_peak"), numeric(rows, "gflop_per_s")
        labels = ["n/a" if math.isnan(p) else f"{p:.1f}% ({g:,.1f} GFLOP/s)" for p, g in zip(pct, gflops, strict=True)]
        _case_bars(ax, rows, pct, labels, "% of the measured matmul peak (its precision)")
        ax.set_title(title, fontsize=10)

    return panels(groups, draw, "Roofline: achieved share of the measured matmul peak", per_row=0.16)
