"""A sweep's study on Optuna's relational storage: SQLite for one machine, PostgreSQL for workers on many.

- ``open_study``: the study named ``--study`` in ``--storage``, created on first use, with its objective
  and search space recorded; a worker whose objective or space differs from the study's is refused, so
  every trial of a study answers the same question.
- Trials that stop without finishing are retried once with the same parameters: a worker that is
  interrupted (Ctrl-C, SIGTERM) puts its trial back itself (``requeue``); one that is killed outright
  stops beating (``HEARTBEAT_S``) and the next worker to start a trial after ``GRACE_S`` marks it failed
  and queues it again (Optuna's ``fail_stale_trials`` and ``RetryHeartbeatStaleTrialCallback``).
- ``TrialSeededSampler``: TPE whose random draws for trial N depend only on the seed and N, so one
  worker's sweep is repeatable and workers started together do not draw the same parameters.
- A database that cannot be opened (down, unknown host, read-only, a schema newer than this Optuna) is
  one line naming the database (password hidden) and the fix; a full one is the machine's limit (exit 1).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning, StorageInternalError
from optuna.samplers import BaseSampler, TPESampler
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from ..results.database import DatabaseError, DatabaseFull, connect_args, redacted, sqlite_folder
from ..results.database import database_errors as shared_errors
from .sweep_space import direction

HEARTBEAT_S = 5  # a running trial's heartbeat, written by its worker
GRACE_S = 20  # a trial whose heartbeat is older than this belongs to a killed worker: failed and queued again
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # what --trials counts
SEED_STRIDE = 1_000_003
SCHEMA_RACE_TRIES = 5  # opening a new database: another worker may be creating its tables at that moment
WHAT = "the study database"
RESUME = "run the same command again to resume"

optuna.logging.set_verbosity(optuna.logging.ERROR)  # the command prints one line per trial itself


def default_storage(results_dir: str | Path) -> str:
    """``sqlite:///<results>/sweeps/sweeps.db``: one file holding every study on this machine."""
    return f"sqlite:///{(Path(results_dir) / 'sweeps' / 'sweeps.db').resolve()}"


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """The study database's failures as one line each (``results.database``; Optuna's wrapper of SQLAlchemy's
    errors and its schema check included); Optuna's notes that heartbeats and retries are experimental, which
    say nothing to the user, silenced."""
    try:
        with warnings.catch_warnings(), shared_errors(WHAT, url, RESUME, wrapped=(StorageInternalError,)):
            warnings.simplefilter("ignore", ExperimentalWarning)
            yield
    except RuntimeError as exc:
        if isinstance(exc, DatabaseError | DatabaseFull) or not ("compatible" in str(exc) or "schema" in str(exc)):
            raise
        raise DatabaseError(f"{WHAT} {redacted(url)} has another Optuna schema ({str(exc).splitlines()[0]}); fix: use "
                            f"the Optuna that wrote it, or a new --storage (this is {optuna.__version__})") from None


class TrialSeededSampler(BaseSampler):
    """Optuna's TPE sampler, built afresh for each trial with the seed ``seed × 1000003 + N``: the draws of
    trial N depend on the seed, N and the finished trials only (TPE reads them from the study)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._inner = TPESampler(seed=seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._inner = TPESampler(seed=(self.seed * SEED_STRIDE + trial.number) % 2**32)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Any) -> None:
        self._inner.after_trial(study, trial, state, values)


def open_storage(url: str) -> RDBStorage:
    """Optuna's relational storage at ``url`` (an SQLite file's folder is created), with heartbeats and
    one retry of a killed worker's trial."""
    sqlite_folder(url)
    connect = connect_args(url)
    attempt = 0
    while True:
        try:
            with database_errors(url):
                return RDBStorage(url, engine_kwargs={"connect_args": connect}, heartbeat_interval=HEARTBEAT_S,
                                  grace_period=GRACE_S,
                                  heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
        except DatabaseError as exc:  # workers creating the tables of a new database at once: one wins
            attempt += 1
            if attempt == SCHEMA_RACE_TRIES or "duplicate" not in str(exc).lower():
                raise
            time.sleep(0.5 * attempt)


def open_study(url: str, name: str, objective: str, space: str, seed: int, prune: bool) -> optuna.Study:
    """The study ``name`` in ``url``, created with this objective and space (``space``: its description) if
    new; a StorageError if it exists with another objective or space."""
    storage = open_storage(url)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0) if prune else optuna.pruners.NopPruner()
    with database_errors(url):
        study = optuna.create_study(study_name=name, storage=storage, direction=direction(objective),
                                    sampler=TrialSeededSampler(seed), pruner=pruner, load_if_exists=True)
        recorded = study.user_attrs
        if not recorded:
            study.set_user_attr("objective", objective)
            study.set_user_attr("space", space)
            recorded = {"objective": objective, "space": space}
    for key, mine in (("objective", objective), ("space", space)):
        if recorded.get(key) != mine:
            raise DatabaseError(f"study {name!r} in {redacted(url)} has {key} {recorded.get(key)!r}, not {mine!r}; "
                               f"fix: pass the same flags as its first worker, or a new --study NAME")
    return study


def finished(study: optuna.Study) -> int:
    """Trials that count toward --trials: complete or pruned (failed ones are retried, not counted)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def requeue(study: optuna.Study, trial: optuna.Trial) -> None:
    """Put an interrupted trial's parameters back at the head of the queue, for the next worker."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number}, skip_if_exists=False)


def load_study(url: str, name: str) -> optuna.Study:
    """An existing study, read-only use (the report); a StorageError if there is none."""
    storage = open_storage(url)
    with database_errors(url):
        names = optuna.get_all_study_names(storage)
        if name not in names:
            raise DatabaseError(f"no study {name!r} in {redacted(url)} (it holds: {', '.join(names) or 'none'}); fix: "
                               "pass --study with one of those, or run a sweep first")
        return optuna.load_study(study_name=name, storage=storage)
