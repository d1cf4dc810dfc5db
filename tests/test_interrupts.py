"""Ctrl-C (a real SIGINT to this process) in the middle of ``tta`` and ``reproduce``: exit 130, one line
saying where the finished rows are, every finished row kept in ``runs.jsonl``, and no table written
half (the reports are published only at the end). ``train``'s Ctrl-C, SIGTERM and SIGKILL:
tests/test_reliability.py; ``profile``'s: tests/test_profile.py.

Kept short: tta trains v0 to 50% (one process per seed, seconds each); reproduce runs the notebook
protocol's cases on the fast loader at batch 1000 (the interrupt path is the same; an epoch takes a
second instead of the DataLoader's minute on a busy 2-core machine).
"""

from __future__ import annotations

import functools
import os
import signal
import threading
from pathlib import Path

import pytest

from mnist_models.cli import main as cli
from mnist_models.cli.commands import reproduce as reproduce_command
from mnist_models.experiments import reproduction
from mnist_models.experiments import time_to_accuracy as tta
from mnist_models.results.store import read_rows
from mnist_models.train.engine import Training


def ctrl_c(after_s: float = 0.0) -> None:
    """SIGINT to this process now, or from a timer while the main thread waits (for a child process)."""
    if after_s:
        threading.Timer(after_s, os.kill, (os.getpid(), signal.SIGINT)).start()
    else:
        os.kill(os.getpid(), signal.SIGINT)


def assert_interrupted(code: int, err: str, results: Path) -> None:
    lines = [line for line in err.splitlines() if line.startswith("mnist-bench:")]
    assert code == 130 and "Traceback" not in err
    assert lines == [f"mnist-bench: interrupted; every finished epoch is in {results}/runs.jsonl"], err


@pytest.mark.slow
def test_ctrl_c_in_tta_keeps_the_finished_seeds(tmp_path: Path, mnist_root: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    real, seeds = tta.run_in_process, []

    def run_in_process(cfg):
        seeds.append(cfg.seed)
        if len(seeds) == 2:  # while the parent waits for the second seed's process (its start-up alone takes seconds)
            ctrl_c(after_s=0.5)
        return real(cfg)

    monkeypatch.setattr(tta, "run_in_process", run_in_process)
    code = cli.main(["tta", "--model", "v0", "--target", "50", "--seeds", "3", "--max-epochs", "1", "--device", "cpu",
                     "--precision", "fp32", "--no-channels-last", "--data-root", str(mnist_root),
                     "--results", str(tmp_path)])
    assert_interrupted(code, capsys.readouterr().err, tmp_path)
    rows = read_rows(tmp_path)
    assert [(r["config"]["seed"], r["reached"]) for r in rows] == [(0, True)] and seeds == [0, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.jsonl"]  # no tta.csv or tta.md, whole or half


@pytest.mark.slow
def test_ctrl_c_in_reproduce_keeps_the_finished_epochs(tmp_path: Path, mnist_root: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(reproduce_command, "make_cases",
                        functools.partial(reproduction.make_cases, loader="fast", batch_size=1000))
    real, evaluations = Training.evaluate, []

    def evaluate(self, *args, **kwargs):
        evaluations.append(1)
        if len(evaluations) == 2:  # epoch 2 trained, its evaluation begins
            ctrl_c()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Training, "evaluate", evaluate)
    code = cli.main(["reproduce", "--models", "v0", "--seeds", "1", "--device", "cpu", "--data-root", str(mnist_root),
                     "--results", str(tmp_path)])
    assert_interrupted(code, capsys.readouterr().err, tmp_path)
    assert [(r["config"]["model"], r["epoch"]) for r in read_rows(tmp_path)] == [("v0", 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.jsonl"]  # no seed_reproduction.csv or .md
