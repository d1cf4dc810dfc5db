"""``mnist-bench sweep``: the search space read from flags, real sweeps on real MNIST into SQLite and a real
PostgreSQL server, a sweep stopped mid-trial and resumed, two workers sharing one study, the page, and a
database that cannot be used. Bad flags are in the bad-input inventory (tests/test_bad_inputs.py)."""

from __future__ import annotations

import io
import json
import math
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from pg_server import new_database

from mnist_models.cli import main as cli
from mnist_models.experiments.sweep_space import Param, SpaceError, base_config, check_space, parse_space
from mnist_models.experiments.sweep_study import GRACE_S, TrialSeededSampler
from mnist_models.models.registry import ModelError

# One epoch of v0 on the whole split on the device, fixed precision and memory format (nothing measured):
# a trial takes about a second here.
QUICK = ["--model", "v0", "--epochs", "1", "--precision", "fp32", "--no-channels-last", "--device", "cpu"]


def sweep(argv: list[str], root: Path, results: Path) -> tuple[int, str, str]:
    """``mnist-bench sweep`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["sweep", *QUICK, *argv, "--data-root", str(root), "--results", str(results)])
    return code, out.getvalue(), err.getvalue()


def rows(results: Path) -> list[dict]:
    return [json.loads(line) for line in (results / "runs.jsonl").read_text(encoding="utf-8").splitlines()]


# --------------------------------------------------------------------------------------------
# The space


def test_the_space_reads_ranges_lists_and_fixed_values() -> None:
    space = {p.name: p for p in parse_space({"lr": "1e-4:1e-1:log", "batch_size": "32:512:log", "epochs": "2",
                                             "model": "v2,examples/own_model.py:SmallNet", "label_smoothing": "0:0.2"})}
    assert space["lr"] == Param("lr", 1e-4, 1e-1, log=True)
    assert space["batch_size"] == Param("batch_size", 32, 512, log=True) and space["batch_size"].is_int
    assert space["epochs"].fixed == 2
    assert space["model"].choices == ("v2", "examples/own_model.py:SmallNet")  # a file spec's colon is no range
    assert space["label_smoothing"] == Param("label_smoothing", 0.0, 0.2)
    assert space["optimizer"].choices == ("sgd", "adam")  # searched unless a flag fixes it


@pytest.mark.parametrize(("given", "message"), [
    ({"lr": "0.1:0.01"}, "LOW must be below HIGH"),
    ({"lr": "0:0.1:log"}, "a log range needs LOW > 0"),
    ({"lr": "1e-3:x"}, "not a number"),
    ({"batch_size": "32:64.5"}, "not a whole number"),
    ({"optimizer": "sgd:adam"}, "takes names, not a range"),
    ({"lr": "1:2:ln"}, "a range is LOW:HIGH or LOW:HIGH:log"),
    ({"batch_size": "64,64"}, "a value is repeated"),
])
def test_a_bad_space_is_one_line_naming_the_flag(given: dict, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        parse_space(given)


def test_every_bound_and_choice_makes_a_valid_config() -> None:
    space = parse_space({"lr": "1e-3:2", "optimizer": "sgd,rmsprop"})
    with pytest.raises(SpaceError, match="--optimizer rmsprop: unknown optimizer 'rmsprop'"):
        check_space(space, base_config(space))
    space = parse_space({"model": "v2,nope.py:Net"})
    with pytest.raises(ModelError, match="no file nope.py"):
        check_space(space, base_config(space))


def test_trial_draws_depend_on_the_seed_and_trial_number_only() -> None:
    """Two workers' samplers with one seed draw the same values for trial N and different ones across N,
    whatever else each has drawn before: workers started together do not repeat each other."""
    def draws(numbers: list[int]) -> dict[int, float]:
        study = optuna.create_study(sampler=TrialSeededSampler(7))
        found = {}
        for _ in range(max(numbers) + 1):
            trial = study.ask()
            found[trial.number] = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            study.tell(trial, 0.0)
        return {n: found[n] for n in numbers}

    first, second = draws([0, 1, 2]), draws([0, 1, 2])
    assert first == second
    assert len(set(first.values())) == 3


# --------------------------------------------------------------------------------------------
# Real sweeps


@pytest.mark.slow
def test_a_sweep_on_sqlite_records_every_trial_and_writes_its_page(mnist_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    code, out, err = sweep(["--trials", "4", "--lr", "0.003:0.3:log", "--batch-size", "256,512", "--json",
                            "--study", "first"], mnist_root, results)
    assert code == 0, err
    report = json.loads(out.splitlines()[-1])
    assert report["finished"] == 4 and report["ran_here"] == 4
    assert sum(line.startswith("trial ") for line in err.splitlines()) == 4
    study = optuna.load_study(study_name="first", storage=f"sqlite:///{results / 'sweeps' / 'sweeps.db'}")
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    assert len(trials) == 4
    # every trial is train's row too: one epoch each, with the study, the trial and the drawn config
    sweep_rows = [r for r in rows(results) if r["kind"] == "sweep"]
    assert sorted(r["trial"] for r in sweep_rows) == sorted(t.number for t in trials)
    for row in sweep_rows:
        trial = study.trials[row["trial"]]
        assert row["study"] == "first" and row["config"]["lr"] == trial.params["lr"]
        assert row["config"]["batch_size"] == trial.params["batch_size"] and row["environment"]["machine_kind"]
    best = report["best"]
    assert best["value"] == max(t.value for t in trials if t.value is not None) and best["test_acc_pct"] > 80
    assert best["command"].startswith("mnist-bench train --model v0 --loader fast")
    assert f"--lr {best['params']['lr']!r}" in best["command"]  # the drawn value, not a rounding of it
    page = (results / "sweeps" / "first" / "report.html").read_text(encoding="utf-8")
    for heading in ("Best trial", "Objective by trial", "What mattered", "Each setting", "Every trial, best first"):
        assert heading in page
    assert page.count("data:image/png;base64,") == 3
    ranked = (results / "sweeps" / "first" / "trials.csv").read_text(encoding="utf-8").splitlines()
    assert ranked[1].split(",")[0] == str(best["trial"])
    # the study already holds 4: the same command again trains nothing and rewrites the page
    code, out, _ = sweep(["--trials", "4", "--lr", "0.003:0.3:log", "--batch-size", "256,512", "--json",
                          "--study", "first"], mnist_root, results)
    assert code == 0 and json.loads(out.splitlines()[-1])["ran_here"] == 0


@pytest.mark.slow
def test_time_to_target_stops_each_trial_at_the_target(mnist_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    code, out, err = sweep(["--trials", "2", "--objective", "time-to-target", "--target", "85", "--epochs", "3",
                            "--lr", "0.05,0.1", "--batch-size", "256", "--optimizer", "sgd", "--no-prune", "--json"],
                           mnist_root, results)
    assert code == 0, err
    for t in optuna.load_study(study_name="sweep", storage=f"sqlite:///{results / 'sweeps' / 'sweeps.db'}").trials:
        assert t.user_attrs["test_acc_pct"] >= 85 and t.user_attrs["epochs"] < 3  # v0 passes 85% in epoch 1
        assert math.isclose(t.value, t.user_attrs["train_s"])


def worker(results: Path, root: Path, *argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mnist_models", "sweep", *QUICK, *argv, "--data-root", str(root),
                             "--results", str(results)], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def wait_for_trial_lines(proc: subprocess.Popen, count: int) -> list[str]:
    lines = []
    while sum(line.startswith("trial ") for line in lines) < count:
        line = proc.stderr.readline()
        assert line, "".join(lines)
        lines.append(line)
    return lines


@pytest.mark.slow
def test_a_sweep_stopped_mid_trial_resumes_and_retries_that_trial(mnist_root: Path, tmp_path: Path) -> None:
    """SIGTERM during trial 1 (of 4 epochs): the trial is failed and queued again with its values; the same
    command finishes the study, trial 0 is not run again, and no row is lost."""
    results = tmp_path / "results"
    argv = ("--trials", "3", "--epochs", "4", "--batch-size", "256,512", "--no-prune")  # a whole-number choice
    proc = worker(results, mnist_root, *argv)
    wait_for_trial_lines(proc, 1)
    time.sleep(0.3)  # into trial 1, long before its 4 epochs end
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    kept = (results / "runs.jsonl").read_bytes()
    storage = f"sqlite:///{results / 'sweeps' / 'sweeps.db'}"
    stopped = optuna.load_study(study_name="sweep", storage=storage).trials
    assert [t.state.name for t in stopped] == ["COMPLETE", "FAIL", "WAITING"]
    assert stopped[2].params == {} and stopped[2].user_attrs == {"retry_of": 1}
    trials_csv = (results / "sweeps" / "sweep" / "trials.csv").read_text(encoding="utf-8")  # the page, as stopped
    assert ",fail," in trials_csv and ",waiting," in trials_csv
    resumed = worker(results, mnist_root, *argv)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    trials = optuna.load_study(study_name="sweep", storage=storage).trials
    assert [t.state.name for t in trials[:2]] == ["COMPLETE", "FAIL"]
    assert trials[2].params == stopped[1].params and trials[2].state.name == "COMPLETE"  # the retry, same values
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3
    assert (results / "runs.jsonl").read_bytes().startswith(kept)  # earlier rows untouched
    epochs = [r for r in rows(results) if r.get("trial") == 0]
    assert len(epochs) == 4  # trial 0 was not trained again


@pytest.mark.slow
def test_a_worker_killed_outright_has_its_trial_retried_after_the_grace_period(mnist_root: Path,
                                                                                tmp_path: Path) -> None:
    """SIGKILL during trial 1: nothing marks it, its heartbeat stops. A worker started after the grace period
    finds it stale, fails it and runs it again with the same values (Optuna's heartbeat and retry)."""
    results = tmp_path / "results"
    argv = ("--trials", "3", "--epochs", "4", "--batch-size", "512", "--no-prune")
    proc = worker(results, mnist_root, *argv)
    wait_for_trial_lines(proc, 1)
    time.sleep(0.3)
    proc.kill()
    proc.communicate(timeout=60)
    storage = f"sqlite:///{results / 'sweeps' / 'sweeps.db'}"
    killed = optuna.load_study(study_name="sweep", storage=storage).trials
    assert [t.state.name for t in killed] == ["COMPLETE", "RUNNING"]
    time.sleep(GRACE_S + 1)
    resumed = worker(results, mnist_root, *argv)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    trials = optuna.load_study(study_name="sweep", storage=storage).trials
    assert trials[1].state.name == "FAIL"
    retry = [t for t in trials[2:] if t.params == killed[1].params]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3


@pytest.mark.slow
def test_two_workers_share_one_postgresql_study(mnist_root: Path, tmp_path: Path, postgres_url: str) -> None:
    """Two worker processes on one PostgreSQL study: 6 trials in all, each trained by one worker only,
    with different drawn values, and each worker's rows in its own results folder."""
    url = new_database(postgres_url, "shared_sweep")
    argv = ("--trials", "6", "--storage", url, "--study", "shared", "--no-prune", "--lr", "0.01:0.3:log",
            "--batch-size", "512", "--optimizer", "sgd")
    procs = [worker(tmp_path / f"worker{i}", mnist_root, *argv) for i in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=url)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert 6 <= len(done) <= 7  # a worker starting its last trial as the other finishes the sixth may add one
    ran = [{r["trial"] for r in rows(tmp_path / f"worker{i}") if r["kind"] == "sweep"} for i in range(2)]
    assert ran[0] and ran[1] and not ran[0] & ran[1]  # both worked, no trial trained twice
    assert ran[0] | ran[1] == {t.number for t in done}
    assert len({t.params["lr"] for t in done}) == len(done)


@pytest.mark.slow
def test_a_database_that_is_down_newer_or_read_only_is_one_line_and_loses_nothing(
        mnist_root: Path, tmp_path: Path, postgres_url: str) -> None:
    results = tmp_path / "results"
    down = postgres_url.replace(postgres_url.rsplit(":", 1)[1].split("/")[0], "1")  # nothing listens on port 1
    code, out, err = sweep(["--trials", "1", "--storage", down], mnist_root, results)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [err.strip()] and "cannot use the study database" in err
    assert "fix: check the server is running" in err
    # a schema written by a newer Optuna: refused, the study's trials kept
    code, _, err = sweep(["--trials", "1", "--batch-size", "512", "--optimizer", "sgd"], mnist_root, results)
    assert code == 0, err
    db = results / "sweeps" / "sweeps.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = 'v99.0.0.a'"))
    engine.dispose()
    before = db.read_bytes()
    code, out, err = sweep(["--trials", "2", "--batch-size", "512", "--optimizer", "sgd"], mnist_root, results)
    assert code == 2 and "has another Optuna schema" in err and len(err.strip().splitlines()) == 1
    assert db.read_bytes() == before
    # a read-only PostgreSQL database, holding a study: refused, nothing in it changed
    url = new_database(postgres_url, "read_only")
    code, _, err = sweep(["--trials", "1", "--storage", url, "--batch-size", "512", "--optimizer", "sgd"],
                         mnist_root, results)
    assert code == 0, err
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("ALTER DATABASE read_only SET default_transaction_read_only = on"))
    engine.dispose()
    code, out, err = sweep(["--trials", "2", "--storage", url, "--batch-size", "512", "--optimizer", "sgd"],
                           mnist_root, results)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "is read-only" in err and "fix: make it writable" in err
    assert len(optuna.load_study(study_name="sweep", storage=url).trials) == 1


@pytest.mark.slow
def test_a_worker_with_another_objective_or_space_is_refused(mnist_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    code, _, err = sweep(["--trials", "1", "--batch-size", "512", "--optimizer", "sgd"], mnist_root, results)
    assert code == 0, err
    code, _, err = sweep(["--trials", "2", "--batch-size", "256", "--optimizer", "sgd"], mnist_root, results)
    assert code == 2 and "has space" in err and "fix: pass the same flags as its first worker" in err
    code, _, err = sweep(["--trials", "2", "--batch-size", "512", "--optimizer", "sgd", "--objective",
                          "accuracy-per-second"], mnist_root, results)
    assert code == 2 and "has objective 'accuracy'" in err

