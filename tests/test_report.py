"""Benchmark tables (speed-up and accuracy delta vs eager), summary.md and the run writer."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mnist_models.report.suite_summary import BenchRun, render
from mnist_models.results.provenance import bench_run_id, environment
from mnist_models.runs.frames import bench_frames
from mnist_models.runs.writer import publish_run


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
    text = render(BenchRun(train, pd.DataFrame(), "quick"), environment(), "RUN")
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
    text = render(BenchRun(train, inference, "quick", skips=[("train v2 cpu fp16", "fp16 runs on CUDA only")]),
                  environment(), "RUN")
    assert "## Training" in text and "## Inference" in text and "## Skipped" in text
    assert "| v2 | cpu | bf16 | 94.50 | 0.1000 | -0.50 |" in text
    assert "4.00×" in text and "noisy" in text and "fp16 runs on CUDA only" in text
    assert "warm-up rounds excluded" in text


def run_files(train, inference, summary, machine, benchmark):
    return {"train.csv": train, "inference.csv": inference, "summary.md": summary, "machine.json": machine,
            "benchmark.json": benchmark}


def test_publish_run_makes_folder_and_moves_latest(tmp_path):
    train, inference = bench_frames([train_row("eager", 2.0, 95.0)], [inference_row("eager", 64, 0.004)])
    first = publish_run(tmp_path, "run-a", run_files(train, inference, "# a\n", {"cpu": "x"}, {"benchmarks": []}))
    assert sorted(p.name for p in first.iterdir()) == ["benchmark.json", "inference.csv", "machine.json",
                                                       "summary.md", "train.csv"]
    assert pd.read_csv(first / "train.csv")["variant"].tolist() == ["eager"]
    assert json.loads((first / "machine.json").read_text()) == {"cpu": "x"}
    assert (tmp_path / "latest").resolve() == first.resolve()
    second = publish_run(tmp_path, "run-b", run_files(train, inference, "# b\n", {}, None))
    assert (tmp_path / "latest").resolve() == second.resolve()
    assert (first / "summary.md").read_text() == "# a\n"  # the earlier run is untouched
    assert not (second / "benchmark.json").exists()
    with pytest.raises(FileExistsError):
        publish_run(tmp_path, "run-a", run_files(train, inference, "# c\n", {}, None))
    assert (first / "summary.md").read_text() == "# a\n"


def test_bench_run_id_names_the_machine_kind():
    run_id = bench_run_id({"gpu": "NVIDIA H100 80GB HBM3", "cpu": "x", "cpu_count": 16})
    assert run_id.endswith("-gpu-nvidia-h100-80gb-hbm3")
    amx = {"gpu": None, "cpu": "Intel(R) Xeon(R) Processor", "cpu_count": 2, "cpu_vendor": "GenuineIntel",
           "cpu_isa": "avx2,avx512f,avx512_bf16,amx_bf16"}
    assert bench_run_id(amx).endswith("-cpu-intel-amx-2c")
    # Two EPYCs with the same model name but different ISAs get different ids.
    epyc = {"gpu": None, "cpu": "AMD EPYC", "cpu_count": 2, "cpu_vendor": "AuthenticAMD"}
    assert bench_run_id({**epyc, "cpu_isa": "avx2,fma"}).endswith("-cpu-amd-avx2-2c")
    assert bench_run_id({**epyc, "cpu_isa": "avx2,avx512f,avx512_bf16"}).endswith("-cpu-amd-avx512-bf16-2c")


def test_cut_cases_compare_with_eager_at_their_own_steps_and_are_flagged():

    base = {"phase": "train", "model": "v2", "device": "cpu", "median_s": 1.0, "img_per_s": 3200.0, "noisy": False,
            "cut": "",
            "precision": "fp32", "channels_last": False, "images_per_round": 3200, "n": 3}
    eager = {**base, "variant": "eager", "test_acc_pct": 95.0, "band_min_acc_pct": 94.5, "band_max_acc_pct": 95.5}
    cut = {**base, "variant": "bf16", "precision": "bf16", "median_s": 2.0, "img_per_s": 160.0, "test_acc_pct": 80.0,
           "cut": "steps/round 100→10: step 20.0× eager's (bf16 emulated on this CPU: no avx512_bf16/amx_bf16)",
           "ref_acc_pct": 80.5, "ref_band_min_acc_pct": 79.0, "ref_band_max_acc_pct": 81.0}
    full = {**base, "variant": "channels_last", "test_acc_pct": 94.0}
    train, _ = bench_frames([eager, cut, full], [])
    rows = train.set_index("variant")
    assert rows.loc["bf16", "acc_delta_vs_eager_pct"] == pytest.approx(-0.5)  # vs eager at 10 steps, not 95.0
    assert rows.loc["bf16", "acc_band"] == ""  # 80.0 is inside eager's band at the same steps
    assert rows.loc["channels_last", "acc_band"] == "below eager band"  # full case: eager's own band
    env = {**environment(), "bf16_native": False, "gpu": None}
    budget = {"budget_s": 300.0, "session_s": 297.0, "cuts": [("bench/test_train.py::test_train[v2-cpu-bf16]",
                                                                  cut["cut"])], "inductor_warmup_s": 9.5}
    text = render(BenchRun(train, pd.DataFrame(), "quick", budget=budget), env, "RUN")
    assert "Time budget: 300 s for the session; it took 297 s from process start; 1 cases were cut" in text
    assert "| train v2-cpu-bf16 | steps/round 100→10" in text and "## Cut to keep the time budget" in text
    assert "cut, bf16 emulated |" in text and "inductor start-up, 9.5 s" in text


def test_auto_variant_shows_what_it_resolved_to():

    base = {"phase": "inference", "model": "v2", "device": "cpu", "batch_size": 256, "median_s": 0.01,
            "noisy": False, "cut": "", "n": 30}
    rows = [{**base, "variant": "eager", "precision": "fp32", "channels_last": False},
            {**base, "variant": "auto", "precision": "bf16", "channels_last": True, "median_s": 0.005}]
    _, inference = bench_frames([], rows)
    text = render(BenchRun(pd.DataFrame(), inference, "quick"), environment(), "RUN")
    assert "| auto → bf16, NHWC | 256 |" in text


def test_speed_up_is_throughput_so_cut_cases_compare_fairly():
    base = {"phase": "train", "model": "v2", "device": "cpu", "noisy": False, "test_acc_pct": 90.0}
    eager = {**base, "variant": "eager", "median_s": 1.0, "img_per_s": 1600.0}  # 50 steps of 32 per round
    cut = {**base, "variant": "bf16", "median_s": 0.5, "img_per_s": 640.0}  # 10 steps per round, slower per image
    train, _ = bench_frames([eager, cut], [])
    assert train.set_index("variant").loc["bf16", "speedup_vs_eager"] == pytest.approx(0.4)
