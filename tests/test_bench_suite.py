"""The benchmark suite's code paths, run for real on tiny slices (``--bench-profile smoke``).

Two sessions, each shared by the tests of this module that read its run folder (`--benchmark-disable`
runs each case once): ``variants_run``, every variant of v0 on the devices here, checked file by file
(every case passes, what does not apply here is left out and said once, not skipped case by case, the
tables hold accuracy and loss on every trained row); ``models_run``, the variants of v2 that change
its path without compiling (compiling v2's training step takes tens of seconds on 2 cores) and
fastnet's time to accuracy, in a process of their own (eager cases timed after compiled ones in the
same process ran several times slower on a loaded 2-core box). A third keeps a tight budget with
``-k``; ``ddp_run`` adds data-parallel scaling (``--bench-ddp 1,2``) to v0's eager training case. Which devices
and variants a session collects is checked in-process (``SuiteSession``) for both kinds of machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from mnist_models.experiments import suite_session
from mnist_models.experiments.ddp_scaling import layouts
from mnist_models.experiments.suite_session import (
    NO_CUDA,
    SuiteSession,
    SuiteUsageError,
    choose_models,
    not_applicable,
    present_devices,
)
from mnist_models.models import list_models
from mnist_models.variants import VARIANTS

from conftest import run_bench

ROOT = Path(__file__).resolve().parents[1]
CPU_VARIANTS = {"eager", "channels_last", "bf16", "bf16+channels_last", "compile", "compile-max-autotune",
                "notebook-loader", "augment", "auto"}


@pytest.mark.slow
def test_the_run_folder_holds_every_table(variants_run):
    run, _ = variants_run
    assert {p.name for p in run.iterdir()} == {"train.csv", "inference.csv", "summary.md", "machine.json",
                                               "rounds.csv", "confusion.csv", "predictions.csv", "cases.jsonl",
                                               "report.md", "report.html", "plots"}  # the report, drawn after
    train, inference = pd.read_csv(run / "train.csv"), pd.read_csv(run / "inference.csv")
    assert not {"round_times_s", "round_train_loss"} & set(train.columns)  # the raw samples live apart
    rounds = pd.read_csv(run / "rounds.csv")  # one line per timed round (n = 1 here) of every case
    assert len(rounds) == len(train) + len(inference) and rounds["seconds"].gt(0).all()
    assert rounds.loc[rounds["phase"] == "train", "train_loss"].notna().all()
    confusion = pd.read_csv(run / "confusion.csv")  # the inference weights' 10×10 on the whole test set
    assert len(confusion) == 100 * len(set(inference["device"]))
    assert confusion.groupby("device")["count"].sum().eq(10_000).all()
    sample = pd.read_csv(run / "predictions.csv")
    assert len(sample) == 9 * len(set(inference["device"])) and sample["probability"].between(0, 1).all()
    assert sample["label"].between(0, 9).all()
    cases = [json.loads(line) for line in (run / "cases.jsonl").read_text().splitlines()]
    assert len(cases) == len(train) + len(inference)


@pytest.mark.slow
def test_every_trained_row_has_accuracy_loss_and_what_it_ran_in(variants_run, models_run):
    v2 = pd.read_csv(models_run[0] / "train.csv")
    assert set(v2["variant"]) == {"eager", "bf16+channels_last", "notebook-loader"} and set(v2["model"]) == {"v2"}
    train = pd.concat([pd.read_csv(variants_run[0] / "train.csv"), v2])
    v0 = train[(train["model"] == "v0") & (train["device"] == "cpu")]
    assert set(v0["variant"]) == CPU_VARIANTS  # freezing: inference only
    assert train["test_acc_pct"].between(0, 100).all() and train["test_loss"].notna().all()
    assert train["n"].eq(1).all() and train["median_s"].gt(0).all()
    assert (train.loc[train["variant"] == "eager", "speedup_vs_eager"] == 1.0).all()
    # every row says what it ran in and on what machine; auto resolved to a concrete precision
    assert train.loc[train["device"] == "cpu", "precision"].isin(["fp32", "bf16"]).all() and train["cut"].isna().all()
    eager = train[train["variant"] == "eager"]  # eager's band over 4 seeds: range, mean ± std, t interval
    assert eager["band_n"].eq(4).all() and eager["band_std_acc_pct"].ge(0).all()
    assert (eager["band_min_acc_pct"] <= eager["band_mean_acc_pct"]).all()
    assert (eager["band_mean_acc_pct"] <= eager["band_max_acc_pct"]).all()
    assert (eager["band_ci_low_acc_pct"] <= eager["band_mean_acc_pct"]).all()
    assert (eager["band_mean_acc_pct"] <= eager["band_ci_high_acc_pct"]).all()
    auto = v0[v0["variant"] == "auto"].iloc[0]
    assert auto["auto_reason"].startswith("precision auto → ") and auto["machine_kind"].startswith("cpu-")
    assert {"cpu_capability", "cpu_isa", "bf16_native"} <= set(train.columns)
    eager = v0[v0["variant"] == "eager"].iloc[0]  # the band: eager's own seed and 3 more
    assert eager["band_n"] == 4 and eager["band_min_acc_pct"] <= eager["test_acc_pct"] <= eager["band_max_acc_pct"]
    assert eager["band_min_acc_pct"] < eager["band_max_acc_pct"]  # different seeds, different models
    assert set(train["acc_band"].dropna()) <= {"below eager band", "above eager band"}  # empty cells: in band


@pytest.mark.slow
def test_every_inference_row_compares_with_eager(variants_run, models_run):
    inference = pd.concat([pd.read_csv(run / "inference.csv") for run, _ in (variants_run, models_run)])
    assert sorted(inference.loc[inference["device"] == "cpu", "batch_size"].unique()) == [1, 64, 256, 1024]
    assert set(inference.loc[inference["model"] == "v2", "variant"]) == {"eager", "bf16+channels_last"}
    v0 = inference[(inference["model"] == "v0") & (inference["device"] == "cpu")]
    assert set(v0["variant"]) == CPU_VARIANTS - {"notebook-loader", "augment"} | {"compile-freeze-bf16"}
    assert inference["agree_with_eager_pct"].between(99.0, 100.0).all()
    assert inference[["p50_ms", "p90_ms", "p99_ms", "img_per_s"]].gt(0).all().all()


@pytest.mark.slow
def test_what_does_not_apply_here_is_left_out_once_not_skipped(variants_run):
    run, stdout = variants_run
    machine = json.loads((run / "machine.json").read_text())
    left_out = {entry["what"]: entry["reason"] for entry in machine["left_out"]}
    assert ("device cuda" in left_out) == (not torch.cuda.is_available()) and machine["skips"] == []
    assert machine["devices"] == (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    assert left_out["fp16 on cpu"].startswith("fp16 runs on CUDA only")
    assert left_out["notebook-loader inference on cpu"].endswith("inference has no loader")
    assert left_out["compile-freeze-bf16 training on cpu"].endswith("inference only")
    summary = (run / "summary.md").read_text()
    assert "## Left out" in summary and "| fp16 on cpu | fp16 runs on CUDA only" in summary
    assert "## Skipped" not in summary
    last = stdout.strip().splitlines()[-1]  # time to accuracy without fastnet: no case, deselected
    assert " passed" in last and "skipped" not in last and "1 deselected" in last, last


@pytest.mark.slow
def test_the_machine_record_and_time_to_accuracy(variants_run, models_run):
    machine = json.loads((variants_run[0] / "machine.json").read_text())
    assert machine["format"] >= 1 and machine["profile"] == "smoke" and machine["torch_threads"] >= 1
    assert set(machine["matmul_peak_gflop_per_s"]) >= {"cpu/fp32", "cpu/bf16"} and machine["budget_s"] is None
    assert machine["capabilities"]["machine_kind"] == machine["machine_kind"] and variants_run[0].name.endswith(
        f"-{machine['machine_kind']}-{machine['cpu_count']}c")
    run = models_run[0]
    tta = pd.read_csv(run / "tta.csv")  # --benchmark-disable calls the case once: one seed, one process
    assert len(tta) == 1 and tta["model"].tolist() == ["fastnet2"] and tta["target_pct"].tolist() == [90.0]
    assert tta["reached"].all() and (tta["test_acc_pct"] >= 90.0).all()
    assert (tta["from_start_s"] > tta["from_first_step_s"]).all() and (tta["setup_s"] > 0).all()
    summary = (run / "summary.md").read_text()
    precision = tta["precision"].iloc[0]  # auto, resolved by measuring before the seeds
    assert precision in ("fp32", "bf16") and tta["precision_requested"].eq("auto").all()
    assert f"Time to 90% test accuracy (fastnet2, cpu, {precision}, auto)" in summary
    assert "Start-up, median over the seeds: interpreter + CLI" in summary and tta["startup_torch_import_s"].gt(0).all()


@pytest.mark.slow
def test_a_tight_budget_is_shared_by_the_selected_cases_only_and_says_what_it_cut(tmp_path, mnist_root):
    """With ``-k`` choosing the inference cases, the training case it deselects is not weighed (a GPU run
    with ``-k train`` once planned for 77 cases while 14 ran); the budget cuts the inference weights."""
    results = tmp_path / "results"
    done = run_bench(results, mnist_root, "--bench-models", "v2", "--bench-variants", "eager", "--bench-device",
                     "cpu", "--bench-budget", "1", "-k", "inference")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "mnist-bench: 4 cases share the 1 s budget" in done.stdout and "4 passed" in done.stdout
    run = results / "latest"
    inference = pd.read_csv(run / "inference.csv")
    assert inference["weight_steps"].eq(200).all()  # one epoch (1,875 steps) cut to the smallest level
    machine = json.loads((run / "machine.json").read_text())
    assert machine["budget_s"] == 1.0 and machine["session_s"] > 1.0
    assert machine["cuts"] and machine["cuts"][0][0] == "inference weights v2 cpu"
    summary = (run / "summary.md").read_text()
    assert "Time budget: 1 s for the session" in summary and "## Cut to keep the time budget" in summary
    assert "| inference weights v2 cpu | steps 1875→200: " in summary


def test_each_profile_runs_its_default_models_and_names_the_rest():
    """The quick (and smoke) profile runs the quick suite's models and leaves the other built-ins out, said
    once with the way to run them; full and ``all`` run every built-in."""
    quick, left_out = choose_models("default", "quick")
    assert quick == list_models(quick=True) == ["v0", "v1", "v2", "fastnet2"]
    assert left_out == [("models fastnet, lenet5, examples-cnn, mlp, bncnn", left_out[0][1])]
    assert "--bench-models all" in left_out[0][1] and "--bench-profile full" in left_out[0][1]
    assert choose_models("default", "full") == choose_models("all", "quick") == (list_models(), [])
    assert choose_models("mlp,v0", "quick") == (["mlp", "v0"], [])


@pytest.mark.parametrize("cuda", [False, True], ids=["cpu-only", "with-gpu"])
def test_all_devices_are_the_devices_here_and_what_does_not_apply_is_left_out(cuda, monkeypatch):
    monkeypatch.setattr(suite_session.torch.cuda, "is_available", lambda: cuda)
    devices, left_out = present_devices("all")
    assert (devices, left_out) == ((["cpu", "cuda"], []) if cuda else (["cpu"], [("device cuda", NO_CUDA)]))
    variants = [VARIANTS[name] for name in ("eager", "cudagraph", "notebook-loader", "compile-freeze-bf16")]
    phase_only = {f"notebook-loader inference on {d}" for d in devices} | {f"compile-freeze-bf16 training on {d}"
                                                                         for d in devices}
    assert set(dict(not_applicable(devices, variants))) == {"cudagraph on cpu"} | phase_only
    session = SuiteSession(devices, ["v0"], variants, suite_session.PROFILES["smoke"], "results", None)
    train = {(device, variant.name) for _, device, variant, _ in session.cases("train")}
    assert train == {("cpu", "eager"), ("cpu", "notebook-loader")} | (
        {("cuda", "eager"), ("cuda", "cudagraph"), ("cuda", "notebook-loader")} if cuda else set())
    inference = {(device, variant.name) for _, device, variant, _ in session.cases("inference")}
    assert ("cpu", "compile-freeze-bf16") in inference and ("cpu", "notebook-loader") not in inference


@pytest.mark.slow
def test_bench_ddp_measures_every_layout_after_the_other_cases(ddp_run):
    """``--bench-ddp 1,2``: one row per layout (on 2 cores: 1 × 2 threads, 2 × 1 thread, then 1 × 1 thread, the
    two-process layout's baseline) in scaling.csv and in cases.jsonl as table "scaling", after the training case;
    efficiency and accuracy on every row, each timed round's seconds kept as a JSON list."""
    run, _ = ddp_run
    scaling = pd.read_csv(run / "scaling.csv")
    plan, _ = layouts((1, 2), torch.device("cpu"))
    assert list(scaling["layout"]) == [layout.label for layout in plan]
    assert list(zip(scaling["nproc"], scaling["threads_per_rank"], strict=True)) == [(p.nproc, p.threads) for p in plan]
    assert scaling["model"].eq("v0").all() and scaling["profile"].eq("smoke").all()
    assert scaling["efficiency"].between(0, 10).all() and scaling.loc[scaling["nproc"] == 1, "efficiency"].eq(1).all()
    assert scaling["test_acc_pct"].between(0, 100).all() and scaling["img_per_s"].gt(0).all()
    assert scaling["allreduce_pct"].between(0, 100).all() and scaling["global_batch"].eq(32 * scaling["nproc"]).all()
    assert [len(json.loads(cell)) for cell in scaling["round_s"]] == list(scaling["rounds"])
    cases = [json.loads(line) for line in (run / "cases.jsonl").read_text().splitlines()]
    assert [row["table"] for row in cases] == ["train"] + ["scaling"] * len(plan)
    assert {row["case"] for row in cases if row["table"] == "scaling"} == {"ddp scaling v0-cpu"}
    assert "## Data-parallel scaling" in (run / "summary.md").read_text()


def test_bench_ddp_is_one_case_per_device_of_the_first_model_and_absent_without_the_option():
    options = {"profile": "smoke", "device": "cpu", "models": "v2,v0", "variants": "eager", "budget": "300",
               "results": "results", "data_root": None, "readme": None}
    assert SuiteSession.from_options(**options).params("scaling") == []  # (and bench/test_ddp.py is not collected)
    session = SuiteSession.from_options(**options, ddp="1,2")
    assert session.ddp == (1, 2) and session.params("scaling") == [("cpu", "v2-cpu")]
    spec = session.ddp_spec("cpu")
    cfg = spec.cfg  # the suite's baseline, eager: fp32, NCHW, the notebook's batch 32 per process
    assert (cfg.model, cfg.precision, cfg.channels_last, cfg.batch_size, spec.steps) == ("v2", "fp32", False, 32, 3)
    session.weigh("ddp", "scaling", "cpu")  # set aside whole: nothing of it can be cut
    weight, fixed, kind = session.budget.weights["ddp"]
    assert kind == "scaling" and weight < 1e-3 < fixed
    for text in ("0", "x", "1,1", "", "2,-1"):
        with pytest.raises(SuiteUsageError, match="--bench-ddp takes a comma list of distinct process counts ≥ 1"):
            SuiteSession.from_options(**options, ddp=text)

