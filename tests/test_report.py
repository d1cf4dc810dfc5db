"""Benchmark tables (speed-up and accuracy delta vs eager), summary.md and the run writer."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mnist_models.report import bench_frames, bench_summary
from mnist_models.results import bench_run_id, environment, write_bench_run


def train_row(variant, median, acc, model="v2", noisy=False):
    return {"phase": "train", "model": model, "device": "cpu", "variant": variant, "images_per_round": 3200,
            "n": 3, "median_s": median, "iqr_s": 0.01, "img_per_s": 3200 / median, "compile_s": 0.0,
            "graph_breaks": 0, "test_acc_pct": acc, "test_loss": 0.1, "peak_allocated_mib": None,
            "peak_rss_mib": 900.0, "peak_rss_growth_mib": 12.0, "noisy": noisy}


def inference_row(variant, batch, median):
    return {"phase": "inference", "model": "v2", "device": "cpu", "variant": variant, "batch_size": batch, "n": 30,
            "median_s": median, "img_per_s": batch / median, "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0,
            "compile_s": 0.0, "peak_allocated_mib": None, "peak_rss_mib": 800.0, "peak_rss_growth_mib": 1.0,
            "noisy": False}


def test_speedup_and_accuracy_delta_are_relative_to_eager_of_the_same_model():
    rows = [train_row("eager", 2.0, 95.0), train_row("bf16", 0.5, 94.5),
            train_row("eager", 1.0, 90.0, model="v0"), train_row("bf16", 2.0, 90.25, model="v0")]
    train, _ = bench_frames(rows, [])
    got = train.set_index(["model", "variant"])
    assert got.loc[("v2", "bf16"), "speedup_vs_eager"] == pytest.approx(4.0)
    assert got.loc[("v2", "bf16"), "acc_delta_vs_eager_pct"] == pytest.approx(-0.5)
    assert got.loc[("v0", "bf16"), "speedup_vs_eager"] == pytest.approx(0.5)
    assert got.loc[("v0", "eager"), "speedup_vs_eager"] == pytest.approx(1.0)


def test_variants_outside_eager_seed_band_are_flagged():
    eager = train_row("eager", 2.0, 95.0) | {"band_min_acc_pct": 94.6, "band_max_acc_pct": 95.3, "band_n": 4}
    rows = [eager, train_row("bf16", 0.5, 94.5), train_row("channels_last", 1.0, 94.6),
            train_row("compile", 1.5, 95.31, noisy=True),
            train_row("eager", 1.0, 90.0, model="v0"), train_row("bf16", 2.0, 80.0, model="v0")]  # no band
    train, _ = bench_frames(rows, [])
    flags = train.set_index(["model", "variant"])["acc_band"]
    assert flags[("v2", "bf16")] == "below eager band"
    assert flags[("v2", "channels_last")] == "" and flags[("v2", "eager")] == ""  # the edge is inside
    assert flags[("v2", "compile")] == "above eager band"
    assert flags[("v0", "bf16")] == ""  # no band measured: no verdict
    text = bench_summary(train, pd.DataFrame(), [], environment(), "quick", "RUN")
    assert "| noisy, above eager band |" in text and "| below eager band |" in text


def test_inference_speedup_matches_batch_size():
    rows = [inference_row("eager", 1, 0.001), inference_row("eager", 64, 0.004),
            inference_row("compile", 1, 0.002), inference_row("compile", 64, 0.001)]
    _, inference = bench_frames([], rows)
    got = inference.set_index(["variant", "batch_size"])["speedup_vs_eager"]
    assert got[("compile", 1)] == pytest.approx(0.5) and got[("compile", 64)] == pytest.approx(4.0)


def test_variant_without_eager_row_has_no_speedup():
    train, _ = bench_frames([train_row("bf16", 1.0, 95.0)], [])
    assert train["speedup_vs_eager"].isna().all()


def test_summary_lists_tables_and_skips():
    train, inference = bench_frames([train_row("eager", 2.0, 95.0), train_row("bf16", 0.5, 94.5, noisy=True)],
                                    [inference_row("eager", 64, 0.004)])
    text = bench_summary(train, inference, [("train v2 cpu fp16", "fp16 runs on CUDA only")], environment(),
                         "quick", "RUN")
    assert "## Training" in text and "## Inference" in text and "## Skipped" in text
    assert "| v2 | cpu | bf16 | 94.50 | 0.1000 | -0.50 |" in text
    assert "4.00×" in text and "noisy" in text and "fp16 runs on CUDA only" in text
    assert "warm-up rounds excluded" in text


def test_write_bench_run_makes_folder_and_moves_latest(tmp_path):
    train, inference = bench_frames([train_row("eager", 2.0, 95.0)], [inference_row("eager", 64, 0.004)])
    first = write_bench_run(tmp_path, "run-a", train, inference, "# a\n", {"cpu": "x"}, {"benchmarks": []})
    assert sorted(p.name for p in first.iterdir()) == ["benchmark.json", "inference.csv", "machine.json",
                                                       "summary.md", "train.csv"]
    assert pd.read_csv(first / "train.csv")["variant"].tolist() == ["eager"]
    assert json.loads((first / "machine.json").read_text()) == {"cpu": "x"}
    assert (tmp_path / "latest").resolve() == first.resolve()
    second = write_bench_run(tmp_path, "run-b", train, inference, "# b\n", {}, None)
    assert (tmp_path / "latest").resolve() == second.resolve()
    assert (first / "summary.md").read_text() == "# a\n"  # the earlier run is untouched
    assert not (second / "benchmark.json").exists()
    with pytest.raises(FileExistsError):
        write_bench_run(tmp_path, "run-a", train, inference, "# c\n", {}, None)
    assert (first / "summary.md").read_text() == "# a\n"


def test_bench_run_id_names_the_machine():
    run_id = bench_run_id({"gpu": "NVIDIA H100 80GB HBM3", "cpu": "x", "cpu_count": 16})
    assert run_id.endswith("-gpu-nvidia-h100-80gb-hbm3")
    assert bench_run_id({"gpu": None, "cpu": "Intel(R) Xeon(R)", "cpu_count": 2}).endswith("-cpu-intel-r-xeon-r-2c")
