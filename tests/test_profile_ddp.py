"""``mnist-bench profile`` under DDP: ``profile --nproc 2`` on the CPU (gloo), one trace per rank, each carrying
torch.profiler's ``distributedInfo``; rank 0 alone writes the rest and prints; a rank's bad input ends the job
with one line naming the rank. And the step-time breakdown's ``communication`` category on synthetic events:
DDP's all-reduce issued on the step's thread and its wait at the end of the backward pass count, gloo's own
threads never stand in for the step's thread.

The usage errors (``--diff`` with ``--nproc``, ``--ddp`` outside torchrun, …) are in the bad-input inventory
(tests/test_bad_inputs.py).
"""

from __future__ import annotations

import gzip
import json
import math
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from test_cli import SUBPROCESS_TIMEOUT, console_script
from test_dist import env_for
from torch.profiler import DeviceType

from mnist_models.measure.trace import breakdown, classify, reducer_waits
from mnist_models.report.profile.profile_page import printed_lines
from mnist_models.runs.profiles import ProfileData

needs_gloo = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="this torch build has no torch.distributed with gloo")

ACTIVE = 3
# v0 (two Linear layers), fp32, NCHW: nothing measured by auto, seconds per profile.
QUICK = ["profile", "--model", "v0", "--precision", "fp32", "--no-channels-last", "--device", "cpu",
         "--wait", "1", "--warmup", "1", "--active", str(ACTIVE)]


def cli(argv: list[str], cwd: Path, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(console_script()), *argv], cwd=cwd, env=env_for(root), capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)


@pytest.fixture(scope="module")
def ddp_profile(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> dict:
    """One real ``profile --nproc 2 --json`` (two ranks, gloo): its process, folder and profile.json."""
    results = tmp_path_factory.mktemp("ddp-profile")
    done = cli([*QUICK, "--nproc", "2", "--json", "--results", str(results)], results, mnist_root)
    folders = list((results / "profiles").iterdir()) if (results / "profiles").is_dir() else []
    return {"done": done, "folders": folders, "results": results}


def trace(path: Path) -> dict:
    return json.loads(gzip.decompress(path.read_bytes()))


@needs_gloo
@pytest.mark.slow
def test_two_ranks_write_one_folder_with_a_trace_each(ddp_profile: dict) -> None:
    done = ddp_profile["done"]
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = ddp_profile["folders"]  # one folder: its id chosen by rank 0, sent to rank 1
    meta = json.loads(done.stdout)  # one JSON object on stdout: rank 1 printed nothing
    assert len(done.stdout.strip().splitlines()) == 1 and meta["folder"] == str(folder)
    assert sum(line.startswith("profiling v0 eager on 2 ranks") for line in done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr and "mnist-bench: error" not in done.stderr
    assert json.loads((folder / "profile.json").read_text()) == meta
    info = meta["distributed"]
    assert (info["world_size"], info["backend"], info["global_batch"], info["analysed_rank"]) == (2, "gloo", 64, 0)
    assert info["traces"] == ["rank-0/trace.json.gz", "rank-1/trace.json.gz"]
    assert "Data-parallel: 2 ranks over gloo" in meta["ran"]
    assert not (folder / "trace.json.gz").exists()  # every rank's trace is in its own rank-R/
    boards = sorted((folder / "tensorboard").iterdir())
    assert [p.name for p in boards] == info["tensorboard_files"]
    for rank, (name, board) in enumerate(zip(info["traces"], boards, strict=True)):
        assert board.name.startswith(f"{folder.name}-rank{rank}.") and board.name.endswith(".pt.trace.json")
        assert gzip.decompress((folder / name).read_bytes()) == board.read_bytes()  # the same bytes
        distributed = trace(folder / name)["distributedInfo"]
        assert (distributed["rank"], distributed["world_size"], distributed["backend"]) == (rank, 2, "gloo")


@needs_gloo
@pytest.mark.slow
def test_each_trace_holds_real_ddp_steps_and_the_breakdown_counts_communication(ddp_profile: dict) -> None:
    (folder,) = ddp_profile["folders"]
    meta = json.loads((folder / "profile.json").read_text())
    for name in meta["distributed"]["traces"]:
        events = trace(folder / name)["traceEvents"]
        names = [e.get("name", "") for e in events if e.get("ph") == "X"]
        assert sum(n.startswith("ProfilerStep#") for n in names) == ACTIVE
        assert sum(n == "c10d::allreduce_" for n in names) == ACTIVE  # one bucket, one all-reduce per step
        assert "gloo:all_reduce" in names and "DistributedDataParallel.forward" in names
    rows = pd.read_csv(folder / "breakdown.csv")
    by = dict(zip(rows["category"], rows["ms_per_step"], strict=True))
    assert by["communication"] > 0 and by["matmul"] > 0
    assert math.isclose(rows["ms_per_step"].sum(), meta["breakdown"]["step_ms_mean"], rel_tol=1e-3)
    summary = (folder / "summary.md").read_text()
    assert "| communication |" in summary and "`rank-1/trace.json.gz`" in summary
    assert f'TraceAnalysis(trace_dir="{folder / "tensorboard"}")' in summary


@needs_gloo
@pytest.mark.slow
def test_the_printed_lines_name_every_rank_trace(ddp_profile: dict) -> None:
    (folder,) = ddp_profile["folders"]
    meta = json.loads((folder / "profile.json").read_text())
    data = ProfileData(meta, pd.read_csv(folder / "ops.csv"), pd.read_csv(folder / "breakdown.csv"), "", Path())
    text = "\n".join(printed_lines(data, folder))
    assert f'TraceAnalysis(trace_dir="{folder / "tensorboard"}")' in text
    assert str(folder / "rank-0/trace.json.gz") in text and str(folder / "rank-1/trace.json.gz") in text


@needs_gloo
@pytest.mark.slow
def test_a_rank_refusing_its_input_ends_the_job_with_one_line(mnist_root: Path, tmp_path: Path) -> None:
    """Each rank's shard of 60,000 images in batches of 20,000 is one batch, fewer than the schedule's steps:
    found in the ranks (after the launch), reported once by the launcher, naming the rank; nothing written."""
    done = cli([*QUICK, "--nproc", "2", "--batch-size", "20000", "--results", str(tmp_path / "results")], tmp_path,
               mnist_root)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("mnist-bench:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert lines[0].startswith(("mnist-bench: error: rank 0: the profiler schedule needs 5 steps",
                                "mnist-bench: error: rank 1: the profiler schedule needs 5 steps")), lines
    assert done.stdout == "" and not (tmp_path / "results" / "profiles").exists()


def event(name: str, start: float, end: float, thread: int, parent: object = None) -> SimpleNamespace:
    """A profiler event as the breakdown reads it (a host event, not a Python frame)."""
    return SimpleNamespace(name=name, time_range=SimpleNamespace(start=start, end=end), thread=thread,
                           cpu_parent=parent, device_type=DeviceType.CPU, is_async=False, is_python_function=False)


def test_collectives_and_the_ops_inside_them_are_communication() -> None:
    node = event("autograd::engine::evaluate_function: AccumulateGrad", 0, 10, 1)
    issued = event("c10d::allreduce_", 2, 4, 1, node)
    assert classify(issued) == "communication"
    assert classify(event("aten::empty", 2.5, 3, 1, issued)) == "communication"  # inside the collective
    for name in ("gloo:all_reduce", "nccl:all_reduce", "record_param_comms",
                 "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)"):
        assert classify(event(name, 0, 1, 2)) == "communication", name
    assert classify(event("aten::addmm", 0, 1, 1, node)) == "matmul"


def test_the_step_thread_waiting_for_the_all_reduce_is_communication() -> None:
    """Synthetic events (µs) of one DDP step on the CPU: the backward pass (run_backward) runs a Linear's
    backward (20–30), issues the all-reduce at 40, runs one more op (50–60), then waits until 90 while gloo's
    thread runs the all-reduce (45–85); the optimizer ends the step. The wait is communication; gloo's own
    event never stands in for the step's thread (the op at 50–60 keeps its time)."""
    main, gloo = 1, 7
    backward = event("<built-in method run_backward of torch._C._EngineBase object at 0x7f>", 10, 90, main)
    events = [event("ProfilerStep#1", 0, 100, main), backward, event("aten::addmm", 20, 30, main, backward),
              event("c10d::allreduce_", 40, 45, main, backward), event("aten::add_", 50, 60, main, backward),
              event("gloo:all_reduce", 45, 85, gloo), event("Optimizer.step#SGD.step", 90, 100, main),
              event("c10d::allreduce_", 105, 106, main)]  # outside a backward pass: no wait follows it
    assert [(w.start, w.end, w.category) for w in reducer_waits(events)] == [(40, 90, "communication")]
    bd = breakdown(events)  # type: ignore[arg-type]
    by = {row.category: row.ms_per_step * 1e3 for row in bd.rows.itertuples() if row.ms_per_step}
    assert by == pytest.approx({"untraced": 10, "autograd/dispatch overhead": 20, "matmul": 10,
                                "communication": 40, "elementwise": 10, "optimizer": 10})
    assert bd.step_ms == [0.1] and bd.device_busy_ms == []
