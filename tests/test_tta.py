"""Time to accuracy: MLPerf-style statistics, the per-seed run, and the command."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import asdict

import pandas as pd
import pytest

from mnist_models.experiments.time_to_accuracy import olympic_mean, recipe, run_one
from mnist_models.host.clock import process_age_s
from mnist_models.report.tta_table import figures, render
from mnist_models.results.provenance import environment


def settings(**choices) -> dict:
    """One seed's RunConfig fields, as the parent hands them to the worker process."""
    return asdict(recipe(**choices))


def test_olympic_mean_drops_fastest_and_slowest():
    assert olympic_mean([10.0, 1.0, 2.0, 3.0, 100.0]) == pytest.approx(5.0)
    assert olympic_mean([2.0, 4.0]) == pytest.approx(3.0)  # too few to drop
    assert math.isnan(olympic_mean([]))


def test_process_age_counts_time_before_the_call():
    age = process_age_s()
    time.sleep(0.05)
    assert age > 0 and process_age_s() >= age + 0.04


def rows(*entries):
    return pd.DataFrame([{"model": "fastnet", "seed": seed, "target_pct": 99.0, "reached": ok,
                          "from_start_s": start if ok else float("nan"),
                          "from_first_step_s": start - 2 if ok else float("nan"), "steps": 100, "epochs": 0.2,
                          "evaluations": 1, "test_acc_pct": 99.1 if ok else 98.0, "max_epochs": 3, "eval_every": 100,
                          "eval_from": 0.5, "label_smoothing": 0.1, "batch_size": 256, "max_lr": 0.03,
                          "device": "cpu", "precision": "fp32", "channels_last": True}
                         for seed, ok, start in entries])


def test_summary_counts_failures_apart():
    frame = rows((0, True, 10.0), (1, False, 0.0), (2, True, 12.0), (3, True, 30.0), (4, True, 11.0))
    summary = figures(frame)
    assert summary["n_seeds"] == 5 and summary["n_reached"] == 4 and summary["failed_seeds"] == [1]
    assert summary["from_start_s"]["olympic_mean"] == pytest.approx(11.5)  # 10 and 30 dropped
    assert summary["from_start_s"]["median"] == pytest.approx(11.5)
    assert (summary["from_start_s"]["min"], summary["from_start_s"]["max"]) == (10.0, 30.0)
    assert summary["from_first_step_s"]["min"] == pytest.approx(8.0)
    text = render(frame, environment(), "RUN")
    assert "4 of 5 seeds reached the target; failed seeds: 1" in text
    assert "| from process start | 11.50 | 11.50 | 10.00 | 30.00 |" in text
    assert summary["startup"] == {} and "Start-up" not in text  # rows from before the split say nothing


def test_report_gives_start_up_phases_and_the_auto_choice():
    frame = rows((0, True, 10.0), (1, True, 12.0)).assign(
        startup_python_s=[0.1, 0.3], startup_torch_import_s=[1.0, 2.0], startup_dynamo_import_s=0.8,
        startup_data_s=0.1, startup_model_s=0.05, precision_requested="auto", auto_probe_s=0.6,
        cli_help_s=0.16, cli_help_min_s=0.15, cli_help_max_s=0.19, cli_help_n=5,
        auto_reason="precision auto → fp32: bf16 training step 0.13× the speed of fp32")
    summary = figures(frame)
    assert summary["startup"]["startup_torch_import_s"] == pytest.approx(1.5)
    text = render(frame, environment(), "RUN")
    assert "(fastnet, cpu, fp32, auto)" in text
    assert "import torch 1.50 s, import torch._dynamo 0.80 s" in text and "(total 2.65 s to the first step)" in text
    assert "in 0.60 s, outside the seeds' clocks): precision auto → fp32: bf16 training step 0.13×" in text
    assert "`mnist-bench --help` in a fresh process: 0.16 s (median of 5, min 0.15, max 0.19; no torch" in text
    assert "Recipe: batch 256, Adam (fused) with a one-cycle schedule (peak lr 0.03)" in text  # the rows' own


@pytest.mark.slow
def test_run_one_reaches_an_easy_target(mnist_root):
    row = run_one(settings(target_pct=90.0, seed=0, device="cpu", max_epochs=1, eval_every=50, eval_from=0.0,
                              data_root=str(mnist_root)))
    assert row["reached"] and row["test_acc_pct"] >= 90.0
    assert row["steps"] % 50 == 0 and row["evaluations"] == row["steps"] // 50
    assert row["from_start_s"] > row["from_first_step_s"] > 0
    phases = [row[k] for k in ("startup_python_s", "startup_torch_import_s", "startup_data_s", "startup_model_s")]
    assert all(p >= 0 for p in phases) and sum(phases) == pytest.approx(row["setup_s"], abs=0.05)
    assert row["precision"] in ("fp32", "bf16")  # auto resolved in the process (no parent here)


@pytest.mark.slow
def test_evaluations_wait_for_eval_from(mnist_root):
    # 235 steps per epoch at batch 256: with eval_from 0.5 the first evaluation is at step 125, not 25.
    row = run_one(settings(target_pct=90.0, seed=0, device="cpu", max_epochs=1, eval_every=25, eval_from=0.5,
                              data_root=str(mnist_root)))
    assert row["reached"] and row["steps"] == 125 and row["evaluations"] == 1


def test_run_one_reports_a_miss_as_a_failure(mnist_root, monkeypatch):
    """An unreachable target within a tiny budget is a failure, with NaN times."""
    from mnist_models import data
    from mnist_models.data import loaders, verify

    images, labels = data.load_split("train", mnist_root)
    data.load_split("test", mnist_root)  # cached: the patched loader below serves it from the cache
    monkeypatch.setattr(loaders, "load_split", lambda split, root=None, dataset="mnist": (images[:512], labels[:512])
                        if split == "train" else verify._SPLIT_CACHE[(data.raw_dir(mnist_root).resolve(), "test")])
    row = run_one(settings(target_pct=100.0, device="cpu", max_epochs=1, eval_every=2, data_root=str(mnist_root)))
    assert not row["reached"] and math.isnan(row["from_start_s"]) and row["steps"] == 2  # 512 images, batch 256


@pytest.mark.slow
def test_tta_command_end_to_end(tmp_path, mnist_root):
    done = subprocess.run([sys.executable, "-m", "mnist_models", "tta", "--seeds", "2", "--target", "95",
                           "--max-epochs", "1", "--eval-every", "100", "--json", "--data-root", str(mnist_root),
                           "--results", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["n_seeds"] == 2 and summary["n_reached"] == 2 and summary["failed_seeds"] == []
    assert summary["from_start_s"]["min"] <= summary["from_start_s"]["median"] <= summary["from_start_s"]["max"]
    table = pd.read_csv(tmp_path / "tta.csv")
    assert table["seed"].tolist() == [0, 1] and table["reached"].all()
    # auto: resolved once in the parent (the probe's figures in every row), concrete in each seed
    assert table["precision_requested"].eq("auto").all() and table["precision"].isin(["fp32", "bf16"]).all()
    assert table["auto_reason"].str.startswith("precision auto → ").all() and table["auto_probe_s"].gt(0).all()
    assert table["startup_torch_import_s"].gt(0).all()  # torch is imported after the clock's first reading
    assert table["cli_help_n"].eq(5).all() and (table["cli_help_min_s"] <= table["cli_help_s"]).all()
    assert "Time to 95% test accuracy" in (tmp_path / "tta.md").read_text()
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 2


