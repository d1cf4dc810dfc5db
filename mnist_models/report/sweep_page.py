"""A sweep's page, drawn from its study alone (``results/sweeps/<study>/``): ``report.html`` (one
self-contained file, as the run report), ``sweep.md`` and ``trials.csv``.

What it shows: the objective, the space and the storage; the best trial as a ready ``mnist-bench train``
command; every trial ranked (value, the drawn settings, accuracy, training seconds, accuracy per second,
epochs, state, the machine kind that ran it); and three figures: the objective against the trial number
with the best so far, each setting's importance (Optuna's PED-ANOVA evaluator, which needs no
scikit-learn), and a slice plot (the objective against each setting's value).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import optuna
import pandas as pd

from ..config import RunConfig
from ..experiments.sweep_space import OBJECTIVES
from ..results.database import redacted
from ..results.store import write_files
from .html import page
from .markdown import markdown_table
from .plots import png

FLAG_ORDER = ("model", "model_args", "loader", "batch_size", "lr", "optimizer", "lr_schedule", "label_smoothing",
              "augment", "epochs", "precision", "channels_last", "compile", "seed", "dataset")
SHOWN = ("test_acc_pct", "train_s", "acc_per_s", "epochs", "machine_kind")


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, the drawn settings, what it measured; ranked best first
    (finished trials by value, then running, failed and waiting ones)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        acc, seconds = attrs.get("test_acc_pct"), attrs.get("train_s")
        rows.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value,
                     **{name: value for name, value in t.params.items()},
                     "test_acc_pct": acc, "train_s": seconds,
                     "acc_per_s": acc / seconds if acc is not None and seconds else None,
                     "epochs": attrs.get("epochs"), "machine_kind": attrs.get("machine_kind"),
                     "retry_of": attrs.get("retry_of"), "diverged": attrs.get("diverged")})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    best_first = study.direction == optuna.study.StudyDirection.MAXIMIZE
    order = frame["state"].map({"complete": 0, "pruned": 1, "running": 2, "fail": 3, "waiting": 4}).fillna(5)
    value = frame["value"].astype(float).fillna(-math.inf if best_first else math.inf)
    frame = frame.assign(_o=order, _v=-value if best_first else value).sort_values(["_o", "_v", "trial"])
    return frame.drop(columns=["_o", "_v"]).reset_index(drop=True)


def train_command(config: dict[str, Any]) -> str:
    """The ``mnist-bench train`` command that trains a trial's config again (every setting that differs
    from RunConfig's default, plus the seed)."""
    default = RunConfig()
    parts = ["mnist-bench train"]
    for name in FLAG_ORDER:
        value = config.get(name)
        if value is None or (name != "seed" and value == getattr(default, name)):
            continue
        flag = "--" + name.replace("_", "-")
        if name == "model_args":
            parts += [f"--model-arg {arg}" for arg in value]
        elif isinstance(value, bool):
            parts.append(flag if value else "--no-" + flag[2:])
        else:
            parts.append(f"{flag} {value!r}" if isinstance(value, float) else f"{flag} {value}")
    return " ".join(parts)


def _history_figure(frame: pd.DataFrame, maximize: bool, label: str) -> bytes:
    done = frame[frame["state"] == "complete"].sort_values("trial")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    finite = done[done["value"].astype(float).map(math.isfinite)]
    ax.scatter(finite["trial"], finite["value"], s=18, label="a complete trial")
    pruned = frame[(frame["state"] == "pruned") & frame["value"].notna()]
    if not pruned.empty:
        ax.scatter(pruned["trial"], pruned["value"], s=18, marker="x", color="grey",
                   label="pruned (its last epoch's value)")
    best = finite["value"].cummax() if maximize else finite["value"].cummin()
    ax.step(finite["trial"], best, where="post", color="black", linewidth=1.2, label="best so far")
    ax.set(xlabel="trial", ylabel=label, title="Objective by trial")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return png(fig)


def _importance_figure(study: optuna.Study) -> tuple[bytes | None, dict[str, float]]:
    try:
        importance = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    except (RuntimeError, ValueError):  # fewer than two complete trials, or nothing varied
        return None, {}
    if not importance:
        return None, {}
    names = list(importance)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(names)))
    ax.barh(names, [importance[n] for n in names])
    ax.set(xlabel="importance (PED-ANOVA, sums to 1)", title="What mattered most")
    fig.tight_layout()
    return png(fig), importance


def _choice(value: Any) -> str:
    """A categorical value as its choice reads (a whole-number column read back as floats, because another
    trial has no value there, gives 128.0 for 128)."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _slice_figure(frame: pd.DataFrame, study: optuna.Study, label: str) -> bytes | None:
    done = frame[frame["state"] == "complete"]
    done = done[done["value"].astype(float).map(math.isfinite)]
    spaces = study.best_trial.distributions
    if done.empty or not spaces:
        return None
    fig, axes = plt.subplots(1, len(spaces), figsize=(3.2 * len(spaces), 3.4), squeeze=False, sharey=True)
    for ax, (name, space) in zip(axes[0], spaces.items(), strict=True):
        if isinstance(space, optuna.distributions.CategoricalDistribution):  # each choice a place on the axis
            choices = [str(c) for c in space.choices]
            ax.scatter(done[name].map(_choice).map(choices.index), done["value"], s=16, c=done["trial"],
                       cmap="viridis")
            ax.set_xticks(range(len(choices)), choices)
            ax.set_xlim(-0.5, len(choices) - 0.5)
        else:
            ax.scatter(done[name], done["value"], s=16, c=done["trial"], cmap="viridis")
            ax.set_xscale("log" if getattr(space, "log", False) else "linear")
        ax.set_xlabel(name)
    axes[0][0].set_ylabel(label)
    fig.suptitle("Objective against each setting (colour: trial number)")
    fig.tight_layout()
    return png(fig)


def render(study: optuna.Study, storage: str) -> tuple[str, dict[str, bytes], pd.DataFrame]:
    """The page's Markdown, its images and the trials table."""
    frame = trials_frame(study)
    objective = study.user_attrs.get("objective", "accuracy")
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    label = f"{objective} ({'higher' if maximize else 'lower'} is better)"
    counts = frame["state"].value_counts().to_dict() if not frame.empty else {}
    lines = [f"# Sweep `{study.study_name}`", "",
             f"Objective: **{objective}**, {OBJECTIVES.get(objective, ('', ''))[1]}, {study.direction.name.lower()}d. "
             f"Space: {study.user_attrs.get('space', 'not recorded')}. Storage: `{redacted(storage)}`.", "",
             "Trials: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + ". Every trial trains "
             "with the same seed; the times are training seconds (evaluation excluded) on the machine named in "
             "its row: compare times only within one machine kind.", ""]
    images: dict[str, bytes] = {}
    complete = frame[(frame["state"] == "complete")] if not frame.empty else frame
    if not complete.empty:
        best = study.best_trial
        cfg = best.user_attrs.get("config", {})
        lines += ["## Best trial", "", f"Trial {best.number}: {objective} = {best.value:.4g}, test accuracy "
                  f"{best.user_attrs.get('test_acc_pct', float('nan')):.2f}% after {best.user_attrs.get('epochs')} "
                  f"epochs, {best.user_attrs.get('train_s', float('nan')):.2f} s of training. To train it again:", "",
                  "```", train_command(cfg), "```", ""]
        images["history.png"] = _history_figure(frame, maximize, label)
        lines += ["## Objective by trial", "", "![objective by trial](history.png)", ""]
        figure, importance = _importance_figure(study)
        if figure is not None:
            images["importance.png"] = figure
            table = pd.DataFrame({"setting": list(importance), "importance": list(importance.values())})
            lines += ["## What mattered", "", "![parameter importance](importance.png)", "",
                      markdown_table(table, floatfmt="{:.3f}"), ""]
        figure = _slice_figure(frame, study, label)
        if figure is not None:
            images["slice.png"] = figure
            lines += ["## Each setting", "", "![slice plot](slice.png)", ""]
    if not frame.empty:
        shown = ["trial", "state", "value", *[c for c in frame.columns if c in study_params(study)], *SHOWN]
        lines += ["## Every trial, best first", "", markdown_table(frame[shown], floatfmt="{:.4g}"), ""]
    return "\n".join(lines), images, frame


def study_params(study: optuna.Study) -> set[str]:
    return {name for t in study.get_trials(deepcopy=False) for name in t.params}


def write_sweep_page(study: optuna.Study, storage: str, results_dir: str | Path) -> Path:
    """Write ``results_dir/sweeps/<study>/`` (report.html, sweep.md, trials.csv, the figures), all or none;
    the page's path."""
    markdown, images, frame = render(study, storage)
    folder = Path(results_dir) / "sweeps" / study.study_name
    html = page(markdown, images, f"Sweep {study.study_name}")
    write_files(folder, {"report.html": html, "sweep.md": markdown + "\n", "trials.csv": frame, **images})
    return folder / "report.html"
