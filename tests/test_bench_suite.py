"""The benchmark suite's code paths, run for real on tiny slices (``--bench-profile smoke``).

`pytest bench --benchmark-disable` runs each case once; these tests check that every CPU case
passes, CUDA-only cases are skipped with their reasons, and the run folder holds the tables
with accuracy and loss on every trained row. Compiled variants run for v0 only (compiling
v2's training step takes tens of seconds on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_bench(tmp_path: Path, mnist_root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-q", "--benchmark-disable",
         "--bench-profile", "smoke", "--bench-results", str(tmp_path / "results"),
         "--bench-data-root", str(mnist_root), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_bench_suite_smoke_writes_run_folder(tmp_path, mnist_root):
    variants = "eager,channels_last,bf16,bf16+channels_last,fp16,compile,compile-max-autotune," \
               "compile-reduce-overhead,cudagraph,notebook-loader,compile-freeze-bf16,auto"
    done = run_bench(tmp_path, mnist_root, "--bench-models", "v0", "--bench-variants", variants)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    done = run_bench(tmp_path, mnist_root, "--bench-models", "v2", "--bench-variants",
                     "eager,bf16+channels_last,notebook-loader", "--bench-device", "cpu")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = tmp_path / "results"
    runs = sorted(p for p in results.iterdir() if p.is_dir() and not p.is_symlink())
    assert len(runs) == 2 and (results / "latest").resolve() == runs[-1].resolve()

    first = runs[0]
    assert {p.name for p in first.iterdir()} == {"train.csv", "inference.csv", "summary.md", "machine.json",
                                                 "rounds.csv", "confusion.csv", "predictions.csv", "cases.jsonl",
                                                 "report.md", "report.html", "plots"}  # the report, drawn after
    train = pd.read_csv(first / "train.csv")
    assert not {"round_times_s", "round_train_loss"} & set(train.columns)  # the raw samples live apart
    rounds = pd.read_csv(first / "rounds.csv")  # one line per timed round (n = 1 here) of every case
    assert len(rounds) == len(train) + len(pd.read_csv(first / "inference.csv")) and rounds["seconds"].gt(0).all()
    assert rounds.loc[rounds["phase"] == "train", "train_loss"].notna().all()
    confusion = pd.read_csv(first / "confusion.csv")  # the inference weights' 10×10 on the whole test set
    assert len(confusion) == 100 and confusion["count"].sum() == 10_000
    sample = pd.read_csv(first / "predictions.csv")
    assert len(sample) == 9 and sample["probability"].between(0, 1).all() and sample["label"].between(0, 9).all()
    cpu_variants = {"eager", "channels_last", "bf16", "bf16+channels_last", "compile", "compile-max-autotune",
                    "notebook-loader", "auto"}
    assert set(train["variant"]) == cpu_variants and set(train["device"]) == {"cpu"}  # freezing: inference only
    assert train["test_acc_pct"].between(0, 100).all() and train["test_loss"].notna().all()
    assert train["n"].eq(1).all() and train["median_s"].gt(0).all()
    assert (train.loc[train["variant"] == "eager", "speedup_vs_eager"] == 1.0).all()
    # every row says what it ran in and on what machine; auto resolved to a concrete precision
    assert train["precision"].isin(["fp32", "bf16"]).all() and train["cut"].isna().all()
    auto = train[train["variant"] == "auto"].iloc[0]
    assert auto["auto_reason"].startswith("precision auto → ") and auto["machine_kind"].startswith("cpu-")
    assert {"cpu_capability", "cpu_isa", "bf16_native"} <= set(train.columns)
    eager = train[train["variant"] == "eager"].iloc[0]  # the band: eager's own seed and 3 more
    assert eager["band_n"] == 4 and eager["band_min_acc_pct"] <= eager["test_acc_pct"] <= eager["band_max_acc_pct"]
    assert eager["band_min_acc_pct"] < eager["band_max_acc_pct"]  # different seeds, different models
    assert set(train["acc_band"].dropna()) <= {"below eager band", "above eager band"}  # empty cells: in band
    inference = pd.read_csv(first / "inference.csv")
    assert sorted(inference["batch_size"].unique()) == [1, 64, 256, 1024]
    assert set(inference["variant"]) == cpu_variants - {"notebook-loader"} | {"compile-freeze-bf16"}
    assert inference["agree_with_eager_pct"].between(99.0, 100.0).all()
    assert inference[["p50_ms", "p90_ms", "p99_ms", "img_per_s"]].gt(0).all().all()
    summary = (first / "summary.md").read_text()
    for reason in ("runs on CUDA only", "no CUDA device on this machine", "inference has no loader",
                   "inference only"):
        assert reason in summary
    machine = json.loads((first / "machine.json").read_text())
    assert machine["profile"] == "smoke" and machine["torch_threads"] >= 1
    assert set(machine["matmul_peak_gflop_per_s"]) >= {"cpu/fp32", "cpu/bf16"} and machine["budget_s"] is None
    assert machine["capabilities"]["machine_kind"] == machine["machine_kind"] and first.name.endswith(
        f"-{machine['machine_kind']}-{machine['cpu_count']}c")


@pytest.mark.slow
def test_bench_suite_times_time_to_accuracy_when_fastnet_is_selected(tmp_path, mnist_root):
    done = run_bench(tmp_path, mnist_root, "--bench-models", "fastnet", "--bench-variants", "eager",
                     "--bench-device", "cpu")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "results" / "latest"
    tta = pd.read_csv(run / "tta.csv")  # --benchmark-disable calls the case once: one seed, one process
    assert len(tta) == 1 and tta["model"].tolist() == ["fastnet"] and tta["target_pct"].tolist() == [90.0]
    assert tta["reached"].all() and (tta["test_acc_pct"] >= 90.0).all()
    assert (tta["from_start_s"] > tta["from_first_step_s"]).all() and (tta["setup_s"] > 0).all()
    summary = (run / "summary.md").read_text()
    precision = tta["precision"].iloc[0]  # auto, resolved by measuring before the seeds
    assert precision in ("fp32", "bf16") and tta["precision_requested"].eq("auto").all()
    assert f"Time to 90% test accuracy (fastnet, cpu, {precision}, auto)" in summary
    assert "Start-up, median over the seeds: interpreter + CLI" in summary and tta["startup_torch_import_s"].gt(0).all()


@pytest.mark.slow
def test_bench_suite_keeps_a_tight_budget_by_cutting_and_says_what_it_cut(tmp_path, mnist_root):
    done = run_bench(tmp_path, mnist_root, "--bench-models", "v2", "--bench-variants", "eager", "--bench-device",
                     "cpu", "--bench-budget", "1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "results" / "latest"
    inference = pd.read_csv(run / "inference.csv")
    assert inference["weight_steps"].eq(200).all()  # one epoch (1,875 steps) cut to the smallest level
    machine = json.loads((run / "machine.json").read_text())
    assert machine["budget_s"] == 1.0 and machine["session_s"] > 1.0
    assert machine["cuts"] and machine["cuts"][0][0] == "inference weights v2 cpu"
    summary = (run / "summary.md").read_text()
    assert "Time budget: 1 s for the session" in summary and "## Cut to keep the time budget" in summary
    assert "| inference weights v2 cpu | steps 1875→200: " in summary


def test_bench_rejects_unknown_names_with_exit_2(tmp_path, mnist_root):
    for args in (["--bench-models", "v9"], ["--bench-variants", "turbo"], ["--bench-profile", "huge"],
                 ["--bench-device", "tpu"], ["--bench-budget", "soon"], ["--bench-budget", "-5"]):
        done = run_bench(tmp_path, mnist_root, *args)
        assert done.returncode == 2, args
        assert "mnist-bench: error:" in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists()
