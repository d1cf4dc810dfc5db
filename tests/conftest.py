"""Shared fixtures, each made once per session: real MNIST prepared; one model trained through the engine
(and its checkpoint) for every test that needs a model that really recognises digits; one ``mnist-bench
train`` run through the CLI for every test of what that command prints and writes; three real benchmark-suite
sessions for the suite's and the run report's tests (one with ``--bench-ddp``). And the CUDA skip marker.

Ctrl-C reaches the tests whatever started pytest: a shell without job control starts a background job with
SIGINT ignored, every process it starts inherits that, and the interrupt tests (in this process and in
the ``pytest bench`` processes they start) would then see a Ctrl-C do nothing."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
from pg_server import postgres_server

from mnist_models import data
from mnist_models.cli import main as cli
from mnist_models.config import RunConfig
from mnist_models.train.checkpoint import save_checkpoint
from mnist_models.train.engine import build_training

ROOT = Path(__file__).resolve().parents[1]
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                   reason="no CUDA device on this machine; CUDA paths run where a GPU is present")

# FastNet with Adam, 150 steps of 128 images (under a third of an epoch) on the fast loader: ~97% on the
# whole test set, enough for predict to read 9 of 10 photographed digits. Trained once per session.
TRAINED_RECIPE = {"model": "fastnet", "optimizer": "adam", "lr": 3e-3, "batch_size": 128}
TRAINED_STEPS = 150


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_interrupts() -> None:
    """SIGINT raises KeyboardInterrupt in this process and in the processes it starts, as in a terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session (``tests/postgres.py``), or a skip naming why not."""
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The verified real-MNIST root ($MNIST_BENCH_DATA or the per-user cache), prepared once."""
    root = data.resolve_root(None)
    data.prepare(root)
    return root


@pytest.fixture(scope="session")
def trained_model(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """FastNet trained briefly through the engine (``Training.train_epoch(max_steps=...)``) and evaluated on
    the whole test set, once per session: its config, model (in eval mode), metrics, training seconds, and
    a checkpoint of it. Tests read it and never change it (a test that needs a file to alter copies it)."""
    cfg = RunConfig(device="cpu", loader="fast", epochs=1, precision="fp32", channels_last=False,
                    data_root=str(mnist_root), **TRAINED_RECIPE)
    start = time.perf_counter()
    training = build_training(cfg)
    metrics = training.train_epoch(max_steps=TRAINED_STEPS)
    seconds = time.perf_counter() - start
    metrics |= training.evaluate()
    model = training.model.eval()
    path = save_checkpoint(tmp_path_factory.mktemp("trained") / "fastnet.pt", model, cfg, metrics)
    return {"cfg": cfg, "model": model, "metrics": metrics, "train_s": seconds, "path": path}


# What the CLI smoke run trains: `mnist-bench train`'s default path (precision and memory format auto,
# measured) on a quick run: v0, fast loader, one epoch in batches of 128 (469 steps, ~90% on the test set).
CLI_TRAIN = ("train", "--model", "v0", "--loader", "fast", "--epochs", "1", "--batch-size", "128", "--json")


@pytest.fixture(scope="session")
def cli_train(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One ``mnist-bench train ... --json --results DIR --save PATH`` through ``cli.main`` in process, from
    an empty working directory, once per session: its exit code, stdout, stderr, the working directory,
    the results folder and the checkpoint path."""
    work = tmp_path_factory.mktemp("cli-train")
    results, checkpoint = work / "out", work / "models" / "v0.pt"
    argv = [*CLI_TRAIN, "--data-root", str(mnist_root), "--results", str(results), "--save", str(checkpoint)]
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
        patch.chdir(work)
        code = cli.main(argv)
    return {"code": code, "out": out.getvalue(), "err": err.getvalue(), "work": work, "results": results,
            "checkpoint": checkpoint, "argv": argv}


# --------------------------------------------------------------------------------------------
# Real benchmark-suite sessions (``--bench-profile smoke``: every code path, one round per case), each
# run once per test session and read by the suite's tests (tests/test_bench_suite.py) and the run report's
# (tests/test_run_report.py).

def run_bench(results: Path, mnist_root: Path, *args: str) -> subprocess.CompletedProcess:
    """``pytest bench`` at the smoke profile into ``results``, each case run once (no timing rounds)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-q", "--benchmark-disable",
         "--bench-profile", "smoke", "--bench-results", str(results), "--bench-data-root", str(mnist_root), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=900)


def one_run(results: Path, mnist_root: Path, *args: str) -> tuple[Path, str]:
    """A real session into ``results``: its run folder (``latest``) and what it printed."""
    done = run_bench(results, mnist_root, *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    assert (results / "latest").resolve() == run.resolve()
    return run, done.stdout


@pytest.fixture(scope="session")
def variants_run(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> tuple[Path, str]:
    """Every variant of v0 on the devices this machine has."""
    return one_run(tmp_path_factory.mktemp("variants") / "results", mnist_root, "--bench-models", "v0")


@pytest.fixture(scope="session")
def models_run(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> tuple[Path, str]:
    """v2's variants that need no compiling, and fastnet's time to accuracy (its own cases deselected): a
    process of its own, because eager cases timed after compiled ones in one process ran several times
    slower on a loaded 2-core box. Read-only: a test that changes the run works on a copy."""
    return one_run(tmp_path_factory.mktemp("models") / "results", mnist_root, "--bench-models", "v2,fastnet2",
                   "--bench-variants", "eager,bf16+channels_last,notebook-loader", "--bench-device", "cpu",
                   "-k", "v2- or time_to_accuracy")


@pytest.fixture(scope="session")
def ddp_run(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> tuple[Path, str]:
    """The smallest session with data-parallel scaling: v0's eager training case, then ``--bench-ddp 1,2`` on the
    CPU (three torchrun jobs on 2 cores); its inference cases deselected."""
    return one_run(tmp_path_factory.mktemp("ddp") / "results", mnist_root, "--bench-models", "v0", "--bench-variants",
                   "eager", "--bench-device", "cpu", "--bench-ddp", "1,2", "-k", "train or ddp")
