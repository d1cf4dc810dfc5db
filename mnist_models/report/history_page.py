"""The history page (``mnist-bench history`` → ``history.html``, one self-contained file like the run report;
``history.md`` with its figures in ``history_plots/``): per machine kind, what the index holds and every
case's throughput relative to its median over time (one figure per machine kind); every step
change found, with its commits, size and significance; a trend figure per case with a step or matching
``--filter`` (throughput, or a time, with its accuracy beside it where the case has one), at most
``MAX_FIGURES`` of them; and a table of every other series (runs, first and last value, change), so the
page stays one file of a few MB however long the history.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from ..history.trends import TIMED, Found
from ..results.store import write_files
from .html import page, slug
from .markdown import markdown_table
from .plots import png

MAX_FIGURES = 40
PLOTS = "history_plots"  # the figures as files beside history.md (the page embeds them)
PAGE, ANSWER = "history.html", "history.json"
PAGE_FORMAT = 2  # raise when the page changes: a page remembered from an older format is drawn again
UNITS = {"img_per_s": "images/s", "train_img_per_s": "training images/s", "from_start_s": "s to the target"}


def _figure(series: pd.DataFrame, accuracy: pd.DataFrame | None, title: str, metric: str,
            found: list[Found]) -> bytes:
    panels = 2 if accuracy is not None and not accuracy.empty else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.2), squeeze=False)
    x = range(len(series))
    ax = axes[0][0]
    ax.plot(x, series["value"], marker="o", markersize=3, linewidth=1)
    ax.set(ylabel=UNITS.get(metric, metric), xlabel="run (oldest first)")
    for f in found:
        ax.axvline(f.step.index - 0.5, color="red", linestyle="--", linewidth=1)
        ax.annotate(f"{f.step.pct:+.0f}% at {f.after_commit or '?'}", (f.step.index - 0.5, ax.get_ylim()[1]),
                    fontsize=7, color="red", ha="left", va="top", rotation=90)
    ticks = list(x)[:: max(1, len(series) // 6)]
    ax.set_xticks(ticks, [f"{str(series['time_utc'].iloc[i])[:10]}\n{str(series['commit_id'].iloc[i])[:7]}"
                          for i in ticks], fontsize=7)
    if panels == 2:
        acc = axes[0][1]
        acc.plot(range(len(accuracy)), accuracy["value"], marker="o", markersize=3, linewidth=1, color="tab:green")
        acc.set(ylabel="test accuracy (%)", xlabel="run (oldest first)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return png(fig)


def _machine_figure(kind: str, runs: pd.DataFrame) -> bytes | None:
    """Every timed case of one machine kind, each relative to its own median, over its runs' times: one
    line per case, so the machine's whole history shows in one figure."""
    timed = runs[(runs["machine_kind"] == kind) & runs["metric"].isin(list(TIMED))]
    series = [(case, frame) for (case, _), frame in timed.groupby(["case_name", "metric"]) if len(frame) > 1]
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for _, frame in series:
        when = pd.to_datetime(frame["time_utc"], utc=True, errors="coerce")
        ax.plot(when, frame["value"] / frame["value"].median(), marker=".", markersize=3, linewidth=0.6, alpha=0.6)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set(ylabel="throughput ÷ the case's median", title=f"{kind}: {len(series)} cases, each a line")
    fig.autofmt_xdate()
    fig.tight_layout()
    return png(fig)


def render(runs: pd.DataFrame, found: list[Found], pattern: str | None, db: str) -> tuple[str, dict[str, bytes]]:
    """The page's Markdown and figures from the per-run series (``trends.per_run``) and the steps."""
    lines = ["# History", "", f"Index: `{db}`. Each run is one point (the median of its rounds, epochs or "
             "seeds); a step is where a case's level moved beyond its run-to-run noise (the rule and its "
             "false-alarm rate: docs/history.md).", ""]
    if runs.empty:
        return "\n".join([*lines, "Nothing is indexed yet: run the benchmark suite or a command first.", ""]), {}
    overview = runs.groupby("machine_kind").agg(runs=("run_id", "nunique"), cases=("case_name", "nunique"),
                                                first=("time_utc", "min"), last=("time_utc", "max")).reset_index()
    lines += ["## Machines", "", markdown_table(overview), ""]
    images: dict[str, bytes] = {}
    for kind in overview["machine_kind"]:
        figure = _machine_figure(kind, runs)
        if figure is not None:
            name = f"{PLOTS}/{slug(kind)}.png"
            images[name] = figure
            lines += [f"![every case on {kind}]({name})", ""]
    lines += ["## Step changes", ""]
    if found:
        table = pd.DataFrame([f.as_dict() for f in found])
        lines += [markdown_table(table[["machine_kind", "case", "metric", "change", "pct", "z", "z_needed",
                                        "before_commit", "after_commit", "time_utc"]]), ""]
    else:
        lines += ["None: no case's level moved beyond its noise.", ""]
    by_series = {key: frame.reset_index(drop=True) for key, frame in runs.groupby(["machine_kind", "case_name",
                                                                                   "metric"], sort=True)}
    stepped = {(f.machine_kind, f.case_name, f.metric) for f in found}
    chosen = [key for key in by_series if key[2] in TIMED and
              (key in stepped or (pattern and fnmatch.fnmatch(key[1], pattern)))]
    chosen.sort(key=lambda key: (key not in stepped, key))
    lines += ["## Trends", ""]
    for kind, case, metric in chosen[:MAX_FIGURES]:
        name = f"{PLOTS}/{slug(kind + '-' + case + '-' + metric)}.png"
        accuracy = by_series.get((kind, case, "test_acc_pct"))
        images[name] = _figure(by_series[(kind, case, metric)], accuracy, f"{case} ({metric}) on {kind}", metric,
                               [f for f in found if (f.machine_kind, f.case_name, f.metric) == (kind, case, metric)])
        lines += [f"### {case} on {kind}", "", f"![{case} on {kind}]({name})", ""]
    if len(chosen) > MAX_FIGURES:
        lines += [f"{len(chosen) - MAX_FIGURES} more series matched; narrow `--filter` to draw them.", ""]
    if not chosen:
        lines += ["No case has a step; pass `--filter PATTERN` (e.g. `'train v2*'`) to draw cases.", ""]
    rest = [(key, frame) for key, frame in by_series.items() if key not in chosen[:MAX_FIGURES]]
    if rest:
        rows = [{"machine_kind": k, "case": c, "metric": m, "runs": len(f), "first": f["value"].iloc[0],
                 "last": f["value"].iloc[-1], "change_pct": 100 * (f["value"].iloc[-1] / f["value"].iloc[0] - 1)}
                for (k, c, m), f in rest]
        lines += ["## Every other series", "", markdown_table(pd.DataFrame(rows)), ""]
    return "\n".join(lines), images


def write_history_page(runs: pd.DataFrame, found: list[Found], pattern: str | None, db: str,
                       folder: str | Path, answer: dict[str, Any]) -> Path:
    """``history.html``, ``history.md`` with its figures, and ``history.json`` (``answer``: what the page
    says, as data) in ``folder``, all or none; the page's path."""
    markdown, images = render(runs, found, pattern, db)
    html = page(markdown, images, "mnist-bench history")
    write_files(folder, {PAGE: html, "history.md": markdown + "\n", ANSWER: answer, **images})
    return Path(folder) / PAGE
