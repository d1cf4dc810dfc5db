"""Data-parallel training on torch.distributed, with real processes: 2 ranks over gloo on the CPU, started
by torchrun (``torch.distributed.run``), either through ``mnist-bench train --nproc 2`` or by torchrun
itself.

- the sharded fast loader: two ranks' batches side by side are one process's batch at the global size;
- after real DDP steps every rank holds the same weights, and they are one process's weights at the same
  global batch (a BatchNorm-free model: the mean of two half-batch gradients is the full batch's);
- ``train --nproc 2`` end to end: one set of rows, written by rank 0, with world size, backend, global
  batch and per-rank throughput, accuracy in the band of one process at the same global batch;
- faults: a rank killed mid-run, Ctrl-C to the job, and ranks launched with different flags each end the
  job with one line, no rank left running and no partial or duplicate rows.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from test_cli import SUBPROCESS_TIMEOUT, console_script
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

from mnist_models.data import FastLoader, load_split, make_loader
from mnist_models.train.dist import cores
from mnist_models.train.launch import describe

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="this torch build has no torch.distributed with gloo")

# v0 (linear, no BatchNorm), fp32, NCHW, fast loader: seconds an epoch, nothing measured by auto.
QUICK = ["--model", "v0", "--precision", "fp32", "--no-channels-last", "--optimizer", "sgd", "--lr", "0.1"]


def env_for(root: Path) -> dict[str, str]:
    return {**os.environ, "MNIST_BENCH_DATA": str(root), "COLUMNS": "200"}


def cli(argv: list[str], cwd: Path, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(console_script()), *argv], cwd=cwd, env=env_for(root), capture_output=True,
                          text=True, timeout=SUBPROCESS_TIMEOUT)


def rows(results: Path) -> list[dict]:
    path = results / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def ranks_alive(launcher: int) -> list[int]:
    """Processes whose environment says they are ranks under ``launcher``'s torchrun (by its run id)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == launcher:
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if b"MNIST_BENCH_LAUNCHED=1" in env and any(v.startswith(b"RANK=") for v in env) and ") Z " not in stat:
            found.append(int(pid))
    return found


def rank_pid(rank: int, deadline: float) -> int:
    while time.monotonic() < deadline:
        for pid in ranks_alive(-1):
            if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                return pid
        time.sleep(0.05)
    raise AssertionError(f"rank {rank} never started")


def test_shards_side_by_side_are_one_process_global_batches(mnist_root: Path) -> None:
    images, labels = load_split("train", mnist_root)
    cpu = torch.device("cpu")
    whole = FastLoader(images, labels, 128, shuffle=True, device=cpu)
    shards = [FastLoader(images, labels, 64, shuffle=True, device=cpu, shard=(r, 2)) for r in range(2)]
    assert len(whole) == 469 and [len(s) for s in shards] == [468, 468]  # the last partial global batch dropped
    batches = []
    for loader in (whole, *shards):
        torch.manual_seed(7)  # every rank seeds alike, so every rank draws the same global order
        batches.append(list(loader))
    for step, (one, a, b) in enumerate(zip(*batches, strict=False)):
        assert torch.equal(torch.cat([a[0], b[0]]), one[0]) and torch.equal(torch.cat([a[1], b[1]]), one[1]), step
    tests = [make_loader("fast", "test", 1000, cpu, mnist_root, shard=(r, 3)) for r in range(3)]
    seen = torch.cat([y for loader in tests for _, y in loader])
    assert torch.equal(seen, load_split("test", mnist_root)[1])  # every test image once, in order


RANK_SCRIPT = textwrap.dedent("""
    import sys, torch
    import torch.distributed as dist
    from mnist_models.config import RunConfig
    from mnist_models.train.dist import Dist
    from mnist_models.train.engine import build_training
    from mnist_models.train.runtime import resolve, seed_everything

    cfg = RunConfig(model="v2", loader="fast", batch_size=64, precision="fp32", channels_last=False, lr=0.1,
                    optimizer="sgd", data_root=sys.argv[1])
    d = Dist.start(cfg)
    d.check_same_world(cfg)
    training = build_training(d.resolve(cfg), dist=d)
    seed_everything(cfg.seed)
    training.train_epoch(max_steps=5)
    flat = torch.cat([p.detach().flatten() for p in training.module.parameters()])
    every = [torch.empty_like(flat) for _ in range(d.world)]
    dist.all_gather(every, flat)
    if d.is_main:
        torch.save(torch.stack(every), sys.argv[2])
    d.finish(0)  # as every rank ends: no interpreter shutdown under gloo's threads (Dist.finish)
""")


def test_ranks_hold_the_same_weights_as_one_process_at_the_global_batch(mnist_root: Path, tmp_path: Path) -> None:
    from mnist_models.config import RunConfig
    from mnist_models.train.engine import build_training
    from mnist_models.train.runtime import seed_everything

    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    out = tmp_path / "weights.pt"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(script), str(mnist_root), str(out)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = torch.load(out)
    assert torch.equal(ranks[0], ranks[1])  # DDP: the same averaged gradient, the same step on every rank

    cfg = RunConfig(model="v2", loader="fast", batch_size=128, precision="fp32", channels_last=False, lr=0.1,
                    optimizer="sgd", data_root=str(mnist_root))
    one = build_training(cfg)
    seed_everything(cfg.seed)
    start = torch.cat([p.detach().flatten() for p in one.model.parameters()]).clone()
    one.train_epoch(max_steps=5)
    alone = torch.cat([p.detach().flatten() for p in one.model.parameters()])
    moved = (alone - start).abs().max().item()
    assert moved > 1e-3  # five steps moved the weights …
    assert torch.allclose(ranks[0], alone, atol=1e-5, rtol=0), (ranks[0] - alone).abs().max()  # … the same way


@pytest.mark.slow
def test_two_ranks_train_like_one_process_and_rank_zero_alone_writes(mnist_root: Path, tmp_path: Path) -> None:
    two, one = tmp_path / "two", tmp_path / "one"
    done = cli(["train", *QUICK, "--epochs", "1", "--batch-size", "64", "--nproc", "2", "--save",
                str(tmp_path / "m.pt"), "--json", "--results", str(two)], tmp_path, mnist_root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.strip().splitlines()) == 1  # one JSON object: rank 1 printed nothing
    figures = json.loads(done.stdout)
    (row,) = rows(two)  # one epoch, one row: rank 0's
    assert (row["world_size"], row["backend"], row["global_batch"]) == (2, "gloo", 128)
    assert row["threads_per_rank"] == max(1, cores() // 2)
    assert row["rank_img_per_s"] == pytest.approx(row["train_img_per_s"] / 2)
    assert row["train_images"] == 468 * 128 and row["config"]["batch_size"] == 64
    assert figures["test_acc_pct"] == row["test_acc_pct"] and (tmp_path / "m.pt").is_file()

    alone = cli(["train", *QUICK, "--epochs", "1", "--batch-size", "128", "--loader", "fast", "--json",
                 "--results", str(one)], tmp_path, mnist_root)
    assert alone.returncode == 0, alone.stderr[-3000:]
    (single,) = rows(one)
    assert "world_size" not in single
    assert abs(row["test_acc_pct"] - single["test_acc_pct"]) < 0.5, (row["test_acc_pct"], single["test_acc_pct"])
    assert row["test_acc_pct"] > 85


def test_the_killed_rank_is_named_when_the_rank_torchrun_stopped_failed_in_the_same_second() -> None:
    """Torchrun stamps failures in whole seconds: rank 1 killed and rank 0 then stopped by torchrun (exit 143,
    having handled the SIGTERM) often tie, and the tie must not name rank 0 (it did once in CI)."""
    killed, stopped = ProcessFailure(1, 12, -9, "/nonexistent"), ProcessFailure(0, 11, 143, "/nonexistent")
    stopped.timestamp = killed.timestamp
    line, code = describe({0: stopped, 1: killed})
    assert line.startswith("rank 1 (pid 12) was killed by SIGKILL; torchrun stopped the other ranks") and code == 1


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill-rank-1", "ctrl-c"])
def test_a_fault_ends_every_rank_with_one_line_and_whole_rows(fault: str, mnist_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    job = subprocess.Popen([str(console_script()), "train", *QUICK, "--epochs", "20", "--batch-size", "64",
                            "--nproc", "2", "--results", str(results)], cwd=tmp_path, env=env_for(mnist_root),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while not rows(results) and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.05)
    assert rows(results), "no epoch finished"
    if fault == "kill-rank-1":
        victim = rank_pid(1, deadline)
        os.kill(victim, signal.SIGKILL)
    else:
        os.killpg(job.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    stopped = time.monotonic()
    _, err = job.communicate(timeout=60)
    took = time.monotonic() - stopped
    assert took < 15, took
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1]
    if fault == "kill-rank-1":
        assert job.returncode == 1
        assert last.startswith(f"mnist-bench: error: rank 1 (pid {victim}) was killed by SIGKILL"), lines
    else:
        assert job.returncode == 130
        assert last.startswith("mnist-bench: interrupted; every finished epoch is in"), lines
    assert "Traceback" not in err
    assert sum("mnist-bench:" in line for line in lines) == 1, lines  # one line, from the launcher alone
    assert not ranks_alive(job.pid)
    epochs = [row["epoch"] for row in rows(results)]  # every line whole JSON (rows() parsed it), none twice
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) < 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ranks_launched_with_different_flags_are_refused_before_training(mnist_root: Path, tmp_path: Path) -> None:
    results, port = tmp_path / "results", free_port()
    jobs = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={node}",
                              "--nproc-per-node=1", "--master-addr=127.0.0.1", f"--master-port={port}",
                              "-m", "mnist_models", "train", "--ddp", *QUICK[:-1], lr, "--results", str(results)],
                             cwd=tmp_path, env={**env_for(mnist_root), "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for node, lr in ((0, "0.1"), (1, "0.05"))]
    outcomes = [job.communicate(timeout=SUBPROCESS_TIMEOUT) for job in jobs]
    for job, (_, err) in zip(jobs, outcomes, strict=True):
        assert job.returncode != 0
        mine = [line for line in err.splitlines() if line.startswith("mnist-bench: error:")]
        assert len(mine) == 1, err[-2000:]
        assert "rank 1 was launched with a different run: lr 0.05 (rank 0: 0.1)" in mine[0]
        assert "fix: launch every rank with the same flags" in mine[0]
    assert rows(results) == []  # nothing trained, nothing written


def test_the_launcher_leaves_this_process_as_it_found_it() -> None:
    """torchrun's agent installs its own signal handlers and the ranks need their environment; neither may
    outlive the job in the launching process (the suite launches jobs between its other cases)."""
    from mnist_models.errors import JobFailed
    from mnist_models.train.launch import HANDLED, launch

    handlers = {sig: signal.getsignal(sig) for sig in HANDLED}
    env = dict(os.environ)
    launch(["--help"], 2, module="json.tool")  # two ranks that print json.tool's help and exit 0
    with pytest.raises(JobFailed, match=r"^rank [01] \(pid \d+\) exited with code [12]"):
        launch(["/no/such/file.json"], 2, module="json.tool")  # ranks that fail without their own line
    assert dict(os.environ) == env
    assert {sig: signal.getsignal(sig) for sig in HANDLED} == handlers
