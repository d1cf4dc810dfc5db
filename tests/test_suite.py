"""Benchmark-suite building blocks on real data: cases, pedantic timing, rows, memory pass."""

from __future__ import annotations

import math
import mmap

import pytest
import torch

from mnist_models import data
from mnist_models.config import RunConfig
from mnist_models.experiments import budget as budget_module
from mnist_models.experiments import plans
from mnist_models.experiments.plans import inference_weight, needs_reference, plan_inference, plan_train, train_weight
from mnist_models.experiments.suite import PROFILES, InferenceCase, Shared, TrainCase, base_config
from mnist_models.experiments.suite_rows import finish_row, inference_row, train_row
from mnist_models.measure.probes import peak_memory
from mnist_models.measure.timing import run_pedantic
from mnist_models.train.engine import build_training
from mnist_models.variants import VARIANTS

from conftest import requires_cuda


class FakeBenchmark:
    """Calls the target like pytest-benchmark's pedantic: warm-up rounds, then timed rounds."""

    def __init__(self, disabled=False):
        self.disabled, self.calls = disabled, []

    def pedantic(self, target, rounds, warmup_rounds, iterations):
        assert iterations == 1
        for _ in range(1 if self.disabled else warmup_rounds + rounds):
            target()
            self.calls.append(1)


@pytest.mark.parametrize("disabled", [False, True])
def test_run_pedantic_drops_warmup_rounds(disabled):
    bench = FakeBenchmark(disabled)
    times, contention = run_pedantic(bench, lambda: sum(range(10_000)), rounds=4, warmup_rounds=2)
    assert len(times) == (1 if disabled else 4)
    assert len(bench.calls) == (1 if disabled else 6)
    assert all(t > 0 for t in times) and contention.process_cpu_util >= 0


def test_train_case_rounds_and_row(mnist_root):
    cfg = VARIANTS["channels_last"].apply(base_config("v2", "cpu", str(mnist_root)))
    case = TrainCase(cfg, steps=5)
    times, contention = run_pedantic(FakeBenchmark(), case.run, rounds=2, warmup_rounds=1)
    assert [r["train_images"] for r in case.rows] == [160, 160, 160]
    row = train_row(VARIANTS["channels_last"], case, PROFILES["quick"], times, case.evaluate())
    row = finish_row(row, contention, {"peak_rss_growth_mib": 1.0})
    assert row["variant"] == "channels_last" and row["steps_per_round"] == 5 and row["n"] == 2
    assert 0 < row["test_acc_pct"] <= 100 and math.isfinite(row["test_loss"])
    assert row["img_per_s"] == pytest.approx(160 / row["median_s"])
    assert row["compile_s"] >= 0 and row["graph_breaks"] == 0 and isinstance(row["noisy"], bool)
    assert row["torch"] == torch.__version__ and row["torch_threads"] == torch.get_num_threads()
    assert row["flops_per_image"] > 3 * 2_267_720 * 0.9  # forward + backward of v2
    assert row["gflop_per_s"] == pytest.approx(row["flops_per_image"] * row["img_per_s"] / 1e9)
    assert row["pct_of_peak"] == pytest.approx(100 * row["gflop_per_s"] / row["peak_gflop_per_s"])


def test_train_case_same_seed_same_trajectory_across_loaders(mnist_root):
    """Eager (fast loader) and notebook-loader cases see the same batches: same loss after 4 steps."""
    losses = []
    for name in ("eager", "notebook-loader"):
        case = TrainCase(VARIANTS[name].apply(base_config("v0", "cpu", str(mnist_root))), steps=4)
        losses.append(case.run()["train_loss"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


@pytest.fixture(scope="module")
def shared() -> Shared:
    """What these cases share, as a session's cases do: v0's inference weights are trained once."""
    return Shared()


def test_inference_case_row(mnist_root, shared):
    case = InferenceCase(VARIANTS["bf16"].apply(base_config("v0", "cpu", str(mnist_root))), batch_size=8,
                         shared=shared)
    times, contention = run_pedantic(FakeBenchmark(), case.run, rounds=5, warmup_rounds=1)
    row = inference_row(VARIANTS["bf16"], case, PROFILES["quick"], times)
    assert row["batch_size"] == 8 and row["n"] == 5
    assert row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
    assert row["img_per_s"] == pytest.approx(8 / row["median_s"])
    assert 99.0 <= row["agree_with_eager_pct"] <= 100.0  # bf16 flips at most a few predictions
    # v0 moves 784 input + 2·(10 + 10) − 10 activation elements an image, 2 bytes each in bf16
    assert row["bytes_per_image"] == 2 * 814 and row["peak_gb_per_s"] > 0
    assert row["gb_per_s"] == pytest.approx(row["bytes_per_image"] * row["img_per_s"] / 1e9)
    assert row["pct_of_bandwidth"] == pytest.approx(100 * row["gb_per_s"] / row["peak_gb_per_s"])
    with torch.inference_mode():
        assert case.forward(case.x).shape == (8, 10)


def test_inference_cases_carry_trained_weights(mnist_root, shared):
    """Inference runs a trained classifier: eager predictions match the labels ≥ 90% (v0, 1 epoch)."""
    case = InferenceCase(base_config("v0", "cpu", str(mnist_root)), batch_size=500, shared=shared)
    _, labels = data.load_split("test", mnist_root)
    assert (case.predictions() == labels).double().mean() >= 0.90
    assert torch.equal(case.predictions(), shared.reference_predictions(case.cfg))


def test_bf16_weight_variant_casts_weights_and_inputs(mnist_root, shared):
    variant = VARIANTS["compile-freeze-bf16"]
    # no compilation (fast), so no freezing either
    cfg = variant.apply(base_config("v0", "cpu", str(mnist_root))).with_(compile="none", freeze=False)
    case = InferenceCase(cfg, batch_size=16, shared=shared)
    assert case.x.dtype == torch.bfloat16 and case.precision == "bf16"
    assert all(p.dtype == torch.bfloat16 for p in case.model.parameters())
    assert (case.predictions() == shared.reference_predictions(cfg)).double().mean() >= 0.99


def test_max_steps_and_drop_last(mnist_root):
    images, labels = data.load_split("test", mnist_root)
    loader = data.FastLoader(images[:100], labels[:100], 32, shuffle=False, device=torch.device("cpu"), drop_last=True)
    assert len(loader) == 3 and [len(y) for _, y in loader] == [32, 32, 32]
    training = build_training(RunConfig(model="v0", device="cpu", loader="fast", data_root=str(mnist_root)))
    training.train_loader = loader
    row = training.train_epoch(max_steps=2)
    assert row["train_images"] == 64 and training.steps == 2


def test_cpu_peak_memory_sees_an_allocation():
    """64 MiB of fresh anonymous pages, touched, show up as RSS growth (a fresh mapping, so the
    allocator cannot satisfy it from memory the process already holds)."""
    size = 64 * 1024 * 1024
    hold = []

    def allocate():
        block = mmap.mmap(-1, size)
        block.write(b"\x01" * size)
        hold.append(block)

    result = peak_memory(allocate, torch.device("cpu"))
    assert result["peak_allocated_mib"] is None
    if result["peak_rss_growth_mib"] is None:
        pytest.skip("this kernel does not expose /proc/self/clear_refs")
    assert result["peak_rss_growth_mib"] >= 50
    assert result["peak_rss_mib"] >= result["peak_rss_growth_mib"]
    hold[0].close()


@requires_cuda
@pytest.mark.cuda
def test_cuda_graph_training_matches_eager(mnist_root):
    """The captured step trains like the eager one (same seed, fp32): same loss after the rounds."""
    losses = {}
    for name in ("eager", "cudagraph"):
        case = TrainCase(VARIANTS[name].apply(base_config("v2", "cuda", str(mnist_root))), steps=20)
        losses[name] = case.run()["train_loss"]
    # The capture runs 3 warm-up steps on the first batch, so the trajectories differ slightly.
    assert losses["cudagraph"] == pytest.approx(losses["eager"], rel=0.2)


@requires_cuda
@pytest.mark.cuda
def test_cuda_peak_memory_and_graph_inference(mnist_root):
    case = InferenceCase(VARIANTS["cudagraph"].apply(base_config("v2", "cuda", str(mnist_root))), batch_size=256)
    eager = InferenceCase(base_config("v2", "cuda", str(mnist_root)), batch_size=256)
    assert torch.allclose(case.forward(case.x).float(), eager.forward(eager.x).float(), atol=1e-4)
    memory = peak_memory(case.run, torch.device("cuda"))
    assert memory["peak_allocated_mib"] > 0 and memory["peak_reserved_mib"] >= memory["peak_allocated_mib"]


# --------------------------------------------------------------------------------------------
# The time budget's plans, on real cases


def tight_budget(case_id: str, seconds_left: float, weight: float = 1.0):
    """A budget with one registered case of ``weight`` estimated seconds and ``seconds_left`` before
    the reserve."""
    import time

    from mnist_models.experiments.budget import RESERVE_S, Budget

    budget = Budget(seconds_left + RESERVE_S, started=time.perf_counter())
    budget.add(case_id, weight, kind="test")
    return budget


def test_a_case_over_its_allowance_is_cut_and_says_why(mnist_root, monkeypatch):
    monkeypatch.setattr(budget_module, "MIN_SAVING_S", 0.0)  # however fast this machine runs the case
    monkeypatch.setattr(plans, "eager_unit_s", lambda *args: 1e-6)  # eager's references at a cut: next to free
    variant = VARIANTS["bf16"]
    case = TrainCase(variant.apply(base_config("v2", "cpu", str(mnist_root))), steps=100)
    budget = tight_budget("c", 0.0)  # nothing left: the smallest level
    plan_train(budget, "c", case, variant, PROFILES["quick"])
    assert case.steps == 10 and case.cut.startswith("steps/round 100→10: ")
    assert case.eval_images == 2000 and case.cut.endswith("accuracy on the first 2,000 test images")
    assert case.evaluate()["test_acc_pct"] * 20 == pytest.approx(round(case.evaluate()["test_acc_pct"] * 20))
    assert budget.cuts == [("c", case.cut)] and needs_reference(case, variant)
    roomy = TrainCase(variant.apply(base_config("v2", "cpu", str(mnist_root))), steps=100)
    plan_train(tight_budget("d", 1e6, weight=1e5), "d", roomy, variant, PROFILES["quick"])
    assert roomy.steps == 100 and roomy.cut == "" and not needs_reference(roomy, variant)


def test_a_plan_reads_nothing_an_earlier_case_decided(mnist_root, monkeypatch):
    """Order-free (issue 16): a cut variant is compared with eager at its steps whether or not eager ran
    first or was cut alike, and its cost counts that retraining whether or not another case paid for it."""
    monkeypatch.setattr(budget_module, "MIN_SAVING_S", 0.0)
    planned = []
    for eager_first in (False, True):
        if eager_first:  # eager is planned (and cut) first, as in the whole suite
            eager = TrainCase(base_config("v0", "cpu", str(mnist_root)), steps=100)
            plan_train(tight_budget("e", 0.0), "e", eager, VARIANTS["eager"], PROFILES["quick"])
            assert eager.steps == 10 and not needs_reference(eager, VARIANTS["eager"])
        case = TrainCase(VARIANTS["channels_last"].apply(base_config("v0", "cpu", str(mnist_root))), steps=100)
        plan_train(tight_budget("c", 0.0), "c", case, VARIANTS["channels_last"], PROFILES["quick"])
        planned.append((case.steps, case.eval_images, needs_reference(case, VARIANTS["channels_last"])))
    assert planned[0] == planned[1] == (10, 2000, True)


def test_a_cut_inference_case_runs_fewer_rounds_and_compares_fewer_images(mnist_root, monkeypatch):
    monkeypatch.setattr(budget_module, "MIN_SAVING_S", 0.0)  # however fast this machine runs the case

    cfg = base_config("v2", "cpu", str(mnist_root))
    case = InferenceCase(cfg, 64, weight_steps=200)
    rounds = plan_inference(tight_budget("i", 0.0), "i", case, VARIANTS["eager"], PROFILES["quick"])
    assert rounds == 3 and case.agree_images == 1000 and "rounds 30→3" in case.cut
    times, contention = run_pedantic(FakeBenchmark(), case.run, rounds=rounds, warmup_rounds=1)
    row = inference_row(VARIANTS["eager"], case, PROFILES["quick"], times)
    assert row["n"] == 3 and row["agree_images"] == 1000 and row["agree_with_eager_pct"] == 100.0
    assert row["weight_steps"] == 200 and row["cut"] == case.cut and row["precision"] == "fp32"


def test_cutting_is_not_chosen_when_eager_references_would_cost_what_it_saves(mnist_root, monkeypatch):
    monkeypatch.setattr(budget_module, "MIN_SAVING_S", 0.0)  # however fast this machine runs the case
    case = TrainCase(VARIANTS["channels_last"].apply(base_config("v0", "cpu", str(mnist_root))), steps=100)
    # Eager 10× slower than this case: retraining it at a cut's steps (4 seeds) costs more than the cut saves.
    monkeypatch.setattr(plans, "eager_unit_s", lambda *args: 10 * case.step_s)
    plan_train(tight_budget("e", 0.0), "e", case, VARIANTS["channels_last"], PROFILES["quick"])
    assert case.steps == 100 and case.cut == ""


def test_weights_of_the_budget_follow_the_eager_probe():
    quick = PROFILES["quick"]
    small, big = (sum(train_weight(m, "cpu", VARIANTS["eager"], quick)) for m in ("v0", "v2"))
    assert 0 < small < big  # v2's step costs more than v0's
    compiled = train_weight("v2", "cpu", VARIANTS["compile"], quick)
    bf16 = train_weight("v2", "cpu", VARIANTS["bf16"], quick)
    assert compiled[0] == bf16[0] and compiled[1] > bf16[1]  # compilation: more that no cut can shorten
    assert sum(train_weight("v2", "cpu", VARIANTS["eager"], quick)) > sum(bf16)  # eager retrains the band
    work, fixed = inference_weight("v2", "cpu", VARIANTS["eager"], 1024, quick)
    assert work > 0 and fixed > 0
