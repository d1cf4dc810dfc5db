"""Nothing already written is lost: whole-line appends under a lock, a full disk, a truncated file,
Ctrl-C, SIGTERM and SIGKILL in the middle of training (issue 11's first promises)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnist_models.cli import main as cli
from mnist_models.results import store
from mnist_models.results.store import ResultsError, append_rows, read_rows
from mnist_models.train import engine

ROOT = Path(__file__).resolve().parents[1]


def test_a_full_disk_mid_append_leaves_whole_lines_and_says_so_in_one_line(tmp_path, monkeypatch) -> None:
    append_rows(tmp_path, [{"epoch": 1, "x": "a" * 100}])
    before = (tmp_path / "runs.jsonl").read_bytes()
    real_write, calls = os.write, []

    def full_disk(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 2:  # the second row: half of it lands, then the disk is full
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(store.os, "write", full_disk)
    with pytest.raises(ResultsError) as info:
        append_rows(tmp_path, [{"epoch": 2}, {"epoch": 3}])
    message = str(info.value)
    assert "\n" not in message and "No space left" in message and "runs.jsonl" in message and "fix:" in message
    assert (tmp_path / "runs.jsonl").read_bytes() == before  # the half line was cut back


def test_a_truncated_last_line_is_skipped_with_a_warning_naming_file_and_line(tmp_path) -> None:
    append_rows(tmp_path, [{"epoch": 1}, {"epoch": 2}])
    with open(tmp_path / "runs.jsonl", "a", encoding="utf-8") as f:
        f.write('{"epoch": 3, "train_lo')  # a run killed mid-write by an older version
    with pytest.warns(UserWarning, match=r"runs\.jsonl:3: not a whole JSON row"):
        rows = read_rows(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2]


def test_four_runs_appending_at_once_lose_and_mangle_nothing(tmp_path) -> None:
    code = ("import sys; from mnist_models.results.store import append_rows\n"
            "for i in range(150):\n"
            "    append_rows(sys.argv[1], [{'writer': int(sys.argv[2]), 'i': i, 'pad': 'x' * 3000}])\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(w)]) for w in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    lines = (tmp_path / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]  # every line is whole
    assert len(rows) == 600
    for writer in range(4):
        assert [r["i"] for r in rows if r["writer"] == writer] == list(range(150))  # in order, none lost


def fast_train(results: Path, mnist_root: Path, epochs: int) -> list[str]:
    """V0 in batches of 1,000 (60 steps an epoch, a fraction of a second): epochs end, and rows are appended,
    many times a second."""
    return ["train", "--model", "v0", "--loader", "fast", "--device", "cpu", "--precision", "fp32", "--batch-size",
            "1000", "--no-channels-last", "--epochs", str(epochs), "--data-root", str(mnist_root), "--results",
            str(results)]


def test_ctrl_c_in_epoch_2_keeps_epoch_1_and_says_where(tmp_path, mnist_root, monkeypatch, capsys) -> None:
    real_evaluate, calls = engine.Training.evaluate, []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_evaluate(self, *args, **kwargs)

    monkeypatch.setattr(engine.Training, "evaluate", interrupted)
    assert cli.main(fast_train(tmp_path, mnist_root, 3)) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"mnist-bench: interrupted; every finished epoch is in {tmp_path}/runs.jsonl"
    assert [r["epoch"] for r in read_rows(tmp_path)] == [1]  # epoch 1 was on disk before epoch 2 began


@pytest.fixture
def training(tmp_path: Path, mnist_root: Path) -> Iterator[subprocess.Popen]:
    """A long training run in its own process, given once its first epoch's row is on disk; killed at the
    end of the test whatever happened (a failed test leaves no 200-epoch run behind)."""
    proc = subprocess.Popen([sys.executable, "-m", "mnist_models", *fast_train(tmp_path, mnist_root, 200)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 180
        while not (tmp_path / "runs.jsonl").exists() or not (tmp_path / "runs.jsonl").read_text().strip():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no epoch finished in 180 s"
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 143)])
def test_a_killed_or_terminated_run_keeps_every_finished_epoch(training: subprocess.Popen, tmp_path: Path,
                                                               sig: signal.Signals, code: int) -> None:
    time.sleep(0.5)  # a few epochs later: mid-epoch, mid-evaluation or mid-append
    training.send_signal(sig)
    assert training.wait(timeout=60) == code
    rows = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows and [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))  # whole, in order
    if sig == signal.SIGTERM:
        assert training.stderr.read().strip().splitlines()[-1].startswith("mnist-bench: terminated; every finished")
