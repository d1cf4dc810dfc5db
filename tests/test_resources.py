"""Running out of a resource is one line, never a traceback. Out of memory is reported per case: the
CLI stops with one line naming the batch size and a fix (exit 1), and the benchmark suite skips the case
with that reason and goes on. On a machine without a GPU the out-of-memory is injected (the same
exception class the CUDA allocator raises); with a GPU, tests/test_cuda.py makes a real one under a
memory cap. A full disk when the suite publishes its run is one line too (tests/test_full_disk.py has
the commands')."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from mnist_models.cli import main as cli
from mnist_models.models import get_model
from mnist_models.train.oom import OutOfMemory, oom_guard, oom_reason

ROOT = Path(__file__).resolve().parents[1]


def cuda_oom() -> torch.cuda.OutOfMemoryError:
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_the_reason_names_the_batch_and_halves_it() -> None:
    reason = oom_reason(cuda_oom(), 8192)
    assert reason.startswith("CUDA out of memory at batch size 8192")
    assert "fix: use --batch-size 4096 or less" in reason and "\n" not in reason
    assert oom_reason(MemoryError(), 1).startswith("host out of memory at batch size 1; fix: lower --batch-size")


def test_the_guard_turns_the_allocator_error_into_one_line() -> None:
    with pytest.raises(OutOfMemory, match="at batch size 512") as info, oom_guard(512):
        raise cuda_oom()
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_train_stops_with_one_line_and_exit_1(mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The real ``train`` path (parser, run resolution, ``fit``, the engine's step) with the model's forward
    pass running out of memory at its first batch, as the allocator would."""
    results = tmp_path / "results"
    results.mkdir()
    (results / "runs.jsonl").write_text('{"run_id": "earlier"}\n')
    batches: list[int] = []

    def out_of_memory(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        batches.append(len(x))
        raise cuda_oom()

    monkeypatch.setattr(type(get_model("v0")), "forward", out_of_memory)
    code = cli.main(["train", "--model", "v0", "--device", "cpu", "--precision", "fp32", "--batch-size", "4000",
                     "--loader", "fast", "--no-channels-last", "--epochs", "1",
                     "--data-root", str(mnist_root), "--results", str(results)])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert batches == [4000], "the injected out-of-memory was not met in the training step"
    assert code == 1 and len(lines) == 1, captured.err
    assert lines[0].startswith("mnist-bench: error: CUDA out of memory at batch size 4000")
    assert "--batch-size 2000" in lines[0] and "Traceback" not in captured.err + captured.out
    assert (results / "runs.jsonl").read_text() == '{"run_id": "earlier"}\n'


# Makes InferenceCase run out of memory at batch 1024 and above, as a small GPU would.
INJECT = """
import torch
from mnist_models.experiments import suite

real = suite.InferenceCase.__init__

def init(self, cfg, batch_size, *args, **kwargs):
    if batch_size >= 1024:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB (injected)")
    real(self, cfg, batch_size, *args, **kwargs)

suite.InferenceCase.__init__ = init
"""


@pytest.mark.slow
def test_the_suite_skips_a_case_that_runs_out_of_memory(mnist_root: Path, tmp_path: Path) -> None:
    (tmp_path / "inject_oom.py").write_text(textwrap.dedent(INJECT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-p", "inject_oom", "-q", "-rs",
         "--benchmark-disable", "--bench-profile", "smoke", "--bench-device", "cpu", "--bench-models", "v0",
         "--bench-variants", "eager", "-k", "inference", "--bench-results", str(tmp_path / "results"),
         "--bench-data-root", str(mnist_root)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "SKIPPED" in done.stdout and "out of memory at batch size 1024" in done.stdout
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink()]
    inference = pd.read_csv(run / "inference.csv")
    assert sorted(inference["batch_size"]) == [1, 64, 256]  # the others ran and were written
    skips = json.loads((run / "machine.json").read_text())["skips"]
    (oom,) = [s for s in skips if "out of memory" in s["reason"]]
    assert "1024" in oom["case"] and "batch size 1024" in oom["reason"]
    assert "out of memory at batch size 1024" in (run / "summary.md").read_text()


# The end of the session's publish meets a full disk (the run folder's tables and machine.json).
FULL_DISK = """
import errno
from pathlib import Path
from mnist_models.runs import writer
from mnist_models.results.store import write_error

def full(folder, files, *args, **kwargs):  # what the run writer's all-or-none write raises when the disk fills
    raise write_error(Path(folder) / next(iter(files)), OSError(errno.ENOSPC, "No space left on device"))

writer.write_files = full
"""


@pytest.mark.slow
def test_a_full_disk_at_the_end_of_the_suite_is_one_line(mnist_root: Path, tmp_path: Path) -> None:
    """No INTERNALERROR traceback: one line naming the file, exit 1, the finished cases' rows kept in
    cases.jsonl, and results/latest untouched."""
    (tmp_path / "full_disk.py").write_text(textwrap.dedent(FULL_DISK))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-p", "full_disk", "-q",
         "--benchmark-disable", "--bench-profile", "smoke", "--bench-device", "cpu", "--bench-models", "v0",
         "--bench-variants", "eager", "-k", "train", "--bench-results", str(tmp_path / "results"),
         "--bench-data-root", str(mnist_root)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    errors = [line for line in done.stderr.splitlines() if line.startswith("mnist-bench: error:")]
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "cases.jsonl" in errors[0]
    assert "Traceback" not in done.stdout + done.stderr and "INTERNALERROR" not in done.stdout + done.stderr
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    rows = [json.loads(line) for line in (run / "cases.jsonl").read_text().splitlines()]
    assert rows and not (run / "machine.json").exists() and not (tmp_path / "results" / "latest").exists()
