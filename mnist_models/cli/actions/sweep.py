"""What ``mnist-bench sweep`` does (``cli/commands/sweep.py``): open or create the study, prepare the data,
run trials until the study holds ``--trials`` finished ones (one line per trial on stderr), then write the
sweep's page; ``--json`` prints the best trial and the page's path."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import optuna
from rich.console import Console

from ...config import RunConfig
from ...data import prepare
from ...experiments.sweep_space import Param
from ...experiments.sweep_study import database_errors, default_storage, finished, open_study
from ...experiments.sweep_worker import Sweep, run_worker
from ...report.sweep_page import train_command, write_sweep_page
from ...results.database import redacted
from ...results.store import check_writable, to_json
from ...train.runtime import Runtime


def describe(space: tuple[Param, ...]) -> str:
    """The space as one line (recorded on the study; workers must agree on it)."""
    return "; ".join(f"{p.name} {p.describe()}" for p in space)


def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial, total: int) -> str:
    drawn = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in trial.params.items())
    attrs = trial.user_attrs
    state = trial.state.name.lower()
    what = f"{trial.value:.4g}" if trial.value is not None and math.isfinite(trial.value) else (
        "not reached" if trial.value is not None else state)
    acc = attrs.get("test_acc_pct")
    epochs = attrs.get("epochs")
    plural = "s" * (epochs != 1)
    measured = f" ({acc:.2f}% after {epochs} epoch{plural}, {attrs.get('train_s', 0):.1f} s)" if acc else ""
    try:
        best = f"; best {study.best_value:.4g} (trial {study.best_trial.number})"
    except ValueError:  # no complete trial yet
        best = ""
    return f"trial {trial.number} [{finished(study)}/{total}] {drawn}: {what}{measured} {state}{best}"


def run(space: tuple[Param, ...], base: RunConfig, args: argparse.Namespace, out: Console, err: Console) -> int:
    results = check_writable(args.results)
    storage = args.storage or default_storage(results)
    Runtime.check(base)
    prepare(base.data_root, dataset=base.dataset)
    study = open_study(storage, args.study, args.objective, describe(space), base.seed, args.prune)
    err.print(f"sweep {args.study!r} in {redacted(storage)}: {args.objective}, {describe(space)}; "
              f"{finished(study)}/{args.trials} trials finished so far", highlight=False, soft_wrap=True)
    sweep = Sweep(study, base, space, args.objective, args.target, args.trials, results)
    try:
        with database_errors(storage):
            ran = run_worker(sweep, lambda s, t: err.print(trial_line(s, t, args.trials), highlight=False,
                                                           soft_wrap=True))
    finally:
        with database_errors(storage):
            page = write_sweep_page(study, storage, results)
    err.print(f"this worker ran {ran} trials; the page: {page}", highlight=False, soft_wrap=True)
    best = None
    if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        trial = study.best_trial
        best = {"trial": trial.number, "value": trial.value, "params": trial.params, **trial.user_attrs,
                "command": train_command(trial.user_attrs.get("config", {}))}
        out.print(f"best: trial {trial.number}, {args.objective} {trial.value:.4g}\n  {best['command']}",
                  highlight=False, soft_wrap=True)
    if args.json:
        out.file.write(to_json({"study": args.study, "storage": redacted(storage), "objective": args.objective,
                                "finished": finished(study), "ran_here": ran, "best": best,
                                "page": str(Path(page))}) + "\n")
        out.file.flush()
    return 0
