"""A sweep worker: trials drawn by Optuna from the search space, each trained by ``train.engine.fit`` and
recorded as ``train``'s rows are, until the study holds ``--trials`` finished trials.

Each trial trains the base config with the drawn values (every trial the same seed, so they differ only
in what was drawn), reports its objective's running value after each epoch to the median pruner (stopped
early when it is worse than the median of earlier trials at that epoch), and appends each epoch's row to
``runs.jsonl`` (kind ``sweep``, with ``study`` and ``trial``). What it measured is also kept on the trial
(``user_attrs``: accuracy, training seconds, images/s, machine kind, run id), so the sweep's page can be
drawn from the database alone, whichever machine ran each trial.

Objectives (``sweep_space.OBJECTIVES``): ``accuracy`` after the epochs; ``time-to-target``: training
seconds (evaluation excluded) to the end of the first epoch whose test accuracy reaches the target, the
trial stopping there (inf when none does); ``accuracy-per-second``: accuracy ÷ training seconds. A trial
whose loss goes non-finite is pruned (a result, not a failure to retry), its failed row kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ..config import RunConfig
from ..results.provenance import environment, epoch_records, new_run_id
from ..results.store import append_rows
from ..train.engine import NonFiniteLoss, fit
from ..train.runtime import resolve
from .sweep_space import Param
from .sweep_study import finished, requeue

KIND = "sweep"  # the rows' kind in runs.jsonl


class _Reached(Exception):
    """The time-to-target objective's trial reached the target: stop training there."""


@dataclass(frozen=True)
class Sweep:
    """What one worker runs: the study, the base config and space, the objective, the study's total."""

    study: optuna.Study
    base: RunConfig
    space: tuple[Param, ...]
    objective: str
    target: float
    trials: int
    results_dir: Path


def draw(trial: optuna.Trial, space: tuple[Param, ...]) -> dict[str, Any]:
    """The values of one trial: each searched setting drawn from its range or choices (fixed ones are in
    the base config)."""
    values: dict[str, Any] = {}
    for p in space:
        if p.fixed is not None:
            continue
        if p.choices:
            values[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.is_int:
            values[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
        else:
            values[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
    return values


def running_value(objective: str, acc: float, seconds: float) -> float:
    """The objective's value after an epoch with test accuracy ``acc`` and ``seconds`` of training so far
    (time-to-target: the seconds so far, a lower bound of the final value)."""
    if objective == "accuracy":
        return acc
    if objective == "accuracy-per-second":
        return acc / seconds
    return seconds


def train_trial(sweep: Sweep, trial: optuna.Trial) -> float:
    """Train one trial; its objective value (``optuna.TrialPruned`` when the pruner stops it or its loss
    goes non-finite)."""
    cfg = sweep.base.with_(**draw(trial, sweep.space))
    run = resolve(cfg)
    run_id, runtime = new_run_id(), run.describe()
    tag = {"study": sweep.study.study_name, "trial": trial.number}
    seconds, rows = 0.0, []
    trial.set_user_attr("run_id", run_id)
    trial.set_user_attr("machine_kind", environment().get("machine_kind"))
    trial.set_user_attr("config", {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(run.cfg).items()})

    def on_epoch(row: dict[str, Any]) -> None:
        nonlocal seconds
        seconds += row["train_s"]
        rows.append(row)
        append_rows(sweep.results_dir, epoch_records(run_id, KIND, run.cfg, [{**row, **tag}], runtime))
        keep(trial, rows, seconds)
        if sweep.objective == "time-to-target" and row["test_acc_pct"] >= sweep.target:
            raise _Reached
        trial.report(running_value(sweep.objective, row["test_acc_pct"], seconds), row["epoch"])
        if trial.should_prune():
            raise optuna.TrialPruned(f"epoch {row['epoch']}: worse than the median of earlier trials")

    try:
        fit(run, on_epoch=on_epoch)
    except _Reached:
        return seconds
    except NonFiniteLoss as exc:
        append_rows(sweep.results_dir, epoch_records(run_id, KIND, run.cfg, [{**exc.row(), **tag}], runtime))
        trial.set_user_attr("diverged", str(exc))
        raise optuna.TrialPruned(str(exc)) from None
    if sweep.objective == "time-to-target":
        return math.inf  # no epoch reached the target within the budget
    return running_value(sweep.objective, rows[-1]["test_acc_pct"], seconds)


def keep(trial: optuna.Trial, rows: list[dict[str, Any]], seconds: float) -> None:
    """What the trial measured so far, on the trial itself (the page reads it from the database)."""
    last = rows[-1]
    images = sum(r["train_images"] for r in rows)
    trial.set_user_attr("test_acc_pct", last["test_acc_pct"])
    trial.set_user_attr("test_loss", last["test_loss"])
    trial.set_user_attr("epochs", len(rows))
    trial.set_user_attr("train_s", seconds)
    trial.set_user_attr("train_img_per_s", images / seconds if seconds else None)


def run_worker(sweep: Sweep, on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None]) -> int:
    """Run trials until the study holds ``sweep.trials`` finished ones (``on_trial`` after each of this
    worker's); how many trials this worker ran to an end.
    An interrupt puts the running trial back in the queue (its rows so far stay in runs.jsonl) and
    re-raises."""
    study, current, done = sweep.study, [], []

    def objective(trial: optuna.Trial) -> float:
        current[:] = [trial]
        return train_trial(sweep, trial)

    def after(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        done.append(frozen.number)
        on_trial(study, frozen)
        if finished(study) >= sweep.trials:
            study.stop()

    if finished(study) >= sweep.trials:
        return 0
    try:
        study.optimize(objective, callbacks=[after], gc_after_trial=False)
    except BaseException:
        failed = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        if current and current[0].number in failed:  # stopped inside the trial, not after it finished
            requeue(study, current[0])
        raise
    return len(done)
