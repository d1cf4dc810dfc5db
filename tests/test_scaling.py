"""The scaling benchmark (``mnist-bench scaling``): which jobs run on which machine, and a real run of 2 gloo ranks
beside one process, through the command line."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
import torch
from test_cli import SUBPROCESS_TIMEOUT, console_script
from test_dist import env_for

from mnist_models.experiments.ddp_scaling import default_counts, layouts
from mnist_models.train.dist import cores


def plan(nprocs: tuple[int, ...], available: int) -> list[tuple[int, int, str]]:
    runs, _ = layouts(nprocs, torch.device("cpu"), available)
    return [(r.nproc, r.threads, r.role) for r in runs]


def test_cpu_layouts_never_oversubscribe_and_measure_their_baselines() -> None:
    assert plan((1, 2), 2) == [(1, 2, "scaling"), (2, 1, "scaling"), (1, 1, "baseline")]
    assert plan((1, 2, 4), 4) == [(1, 4, "scaling"), (2, 2, "scaling"), (4, 1, "scaling"), (1, 1, "baseline"),
                                  (1, 2, "baseline")]
    assert plan((2,), 2) == [(2, 1, "scaling"), (1, 1, "baseline"), (1, 2, "all threads")]
    for nprocs, available in (((1, 2), 2), ((1, 2, 4), 4), ((1, 3), 16)):
        assert all(n * t <= available for n, t, _ in plan(nprocs, available))
    _, note = layouts((1, 4), torch.device("cpu"), 2)
    assert "4 processes on 2 cores" in note and "oversubscribed" in note
    assert default_counts(torch.device("cpu"))[:2] == (1, 2) or cores() == 1


def test_one_gpu_runs_world_size_one_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    runs, note = layouts((1, 2), torch.device("cuda"), 16)
    assert [(r.nproc, r.role) for r in runs] == [(1, "scaling")]
    assert note == "1 GPU here: process counts over 1 left out (one process per GPU)"


@pytest.mark.slow
def test_scaling_measures_each_layout_and_writes_its_table(mnist_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = subprocess.run([str(console_script()), "scaling", "--model", "v0", "--precision", "fp32",
                           "--no-channels-last", "--steps", "10", "--rounds", "3", "--warmup", "2", "--profile-steps",
                           "3", "--nproc", "1,2", "--json", "--results", str(results)], cwd=tmp_path,
                          env=env_for(mnist_root), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.strip().splitlines()) == 1  # one JSON object: the ranks printed nothing
    rows = {(r["nproc"], r["threads_per_rank"]): r for r in json.loads(done.stdout)["rows"]}
    two = max(1, cores() // 2)
    assert (2, two) in rows and (1, two) in rows and (1, cores()) in rows
    pair, base = rows[2, two], rows[1, two]
    assert (pair["global_batch"], base["global_batch"]) == (128, 64) and pair["backend"] == "gloo"
    assert pair["efficiency"] == pytest.approx(pair["img_per_s"] / (2 * base["img_per_s"]))
    assert pair["vs_all_threads"] == pytest.approx(pair["img_per_s"] / rows[1, cores()]["img_per_s"])
    assert pair["rank_img_per_s"] == pytest.approx(pair["img_per_s"] / 2)
    for row in rows.values():
        assert len(row["round_s"]) == 3 and row["img_per_s_min"] <= row["img_per_s"] <= row["img_per_s_max"]
        assert row["global_steps"] == 2 + 3 * 10
        assert math.isfinite(row["test_acc_pct"]) and row["test_acc_pct"] > 50
        if row["nproc"] == 1:  # one process trains without DDP: nothing to all-reduce
            assert row["allreduce_pct"] == 0 and row["allreduce_ms_per_step"] == 0
        else:
            assert 0 < row["allreduce_pct"] < 100
    assert pair["allreduce_ms_per_step"] > 0
    for name in ("scaling.csv", "scaling.md", "scaling.png"):
        assert (results / name).stat().st_size > 0
    heading = "Data-parallel scaling (v0, cpu, fp32, NCHW, gloo, batch 64 per process)"
    assert heading in (results / "scaling.md").read_text()
