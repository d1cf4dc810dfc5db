"""Runtime: the automatic choices made once (resolve), device resolution, precision (autocast, GradScaler),
memory format, Timer."""

from __future__ import annotations

import contextlib
import platform
import sys
import time

import pytest
import torch

from mnist_models.config import ConfigError, RunConfig
from mnist_models.host.allocator import host_allocator, tune_host_allocator
from mnist_models.host.clock import PROBE_MAX_STEPS, PROBE_MIN_STEPS, RULE_OUT, Timer, interleaved_medians
from mnist_models.host.device import resolve_device
from mnist_models.measure import probes
from mnist_models.measure.probes import (
    bandwidth_roofline,
    matmul_peak_gflops,
    measured_bandwidths,
    measured_peaks,
    memory_bandwidth_gbs,
)
from mnist_models.models import get_model
from mnist_models.train import auto
from mnist_models.train.auto import probe_step_seconds
from mnist_models.train.runtime import Runtime, resolve, resolve_all, seed_everything

from conftest import requires_cuda

CPU = RunConfig(device="cpu", channels_last=False)


def test_resolve_cpu() -> None:
    assert resolve_device("cpu") == torch.device("cpu")


def test_resolve_auto_picks_cuda_only_when_available() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA; the no-CUDA error cannot occur")
def test_resolve_cuda_without_cuda_raises() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_device("cuda")
    message = str(info.value)
    assert "\n" not in message and "cuda" in message and "cpu" in message  # names the fix


@requires_cuda
@pytest.mark.cuda
def test_resolve_cuda_with_cuda() -> None:
    assert resolve_device("cuda").type == "cuda"


def test_runtime_from_config_cpu() -> None:
    rt = Runtime.from_config(RunConfig(device="cpu", precision="bf16", compile="none", channels_last=True))
    assert rt.device == torch.device("cpu")
    assert (rt.precision, rt.compile_mode, rt.channels_last) == ("bf16", "none", True)
    assert rt.memory_format == torch.channels_last
    assert Runtime.from_config(CPU).memory_format == torch.contiguous_format


def test_fp16_on_cpu_raises() -> None:
    with pytest.raises(ConfigError) as info:
        resolve(RunConfig(device="cpu", precision="fp16"))
    message = str(info.value)
    assert "\n" not in message and "fp16" in message and "bf16" in message


def test_cpu_synchronize_is_not_cuda_synchronize() -> None:
    sync = Runtime.from_config(CPU).synchronize
    assert sync is not torch.cuda.synchronize
    assert sync() is None


def test_fp32_autocast_is_a_null_context() -> None:
    rt = Runtime.from_config(CPU)
    ctx = rt.autocast()
    assert isinstance(ctx, contextlib.nullcontext)
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with ctx:
        assert (a @ b).dtype == torch.float32


def test_bf16_autocast_on_cpu_gives_bfloat16_matmul() -> None:
    rt = Runtime.from_config(CPU.with_(precision="bf16"))
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with rt.autocast():
        out = a @ b
    assert out.dtype == torch.bfloat16
    assert (a @ b).dtype == torch.float32  # only inside the context
    torch.testing.assert_close(out.float(), a @ b, atol=0.1, rtol=0.05)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_grad_scaler_disabled_on_cpu_precisions(precision: str) -> None:
    scaler = Runtime.from_config(CPU.with_(precision=precision)).grad_scaler()
    assert not scaler.is_enabled()
    loss = torch.tensor(2.0, requires_grad=True)
    assert scaler.scale(loss) is loss  # a disabled scaler passes the loss through


@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize(("precision", "enabled"), [("fp32", False), ("bf16", False), ("fp16", True)])
def test_grad_scaler_enabled_only_for_fp16_on_cuda(precision: str, enabled: bool) -> None:
    scaler = Runtime.from_config(resolve(RunConfig(device="cuda", precision=precision))).grad_scaler()
    assert scaler.is_enabled() is enabled


@requires_cuda
@pytest.mark.cuda
def test_fp16_autocast_on_cuda() -> None:
    rt = Runtime.from_config(resolve(RunConfig(device="cuda", precision="fp16")))
    a, b = torch.randn(4, 8, device="cuda"), torch.randn(8, 3, device="cuda")
    with rt.autocast():
        assert (a @ b).dtype == torch.float16
    assert rt.synchronize is torch.cuda.synchronize


@requires_cuda
@pytest.mark.cuda
def test_to_device_moves_batch_to_cuda() -> None:
    rt = Runtime.from_config(RunConfig(device="cuda", channels_last=True))
    x, y = rt.to_device(torch.rand(2, 3, 4, 4), torch.tensor([1, 2]))
    assert x.device.type == "cuda" and y.device.type == "cuda"
    assert x.is_contiguous(memory_format=torch.channels_last)


def _second_conv_weight(model: torch.nn.Module) -> torch.Tensor:
    # The first conv has one input channel, where both memory formats coincide; the second
    # (10 → 10 channels) tells them apart.
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    return convs[1].weight


def test_prepare_model_channels_last() -> None:
    rt = Runtime.from_config(RunConfig(device="cpu", channels_last=True))
    model = rt.prepare_model(get_model("v2"))
    weight = _second_conv_weight(model)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not weight.is_contiguous()


def test_prepare_model_default_format() -> None:
    model = Runtime.from_config(CPU).prepare_model(get_model("v2"))
    weight = _second_conv_weight(model)
    assert weight.is_contiguous()
    assert not weight.is_contiguous(memory_format=torch.channels_last)
    assert next(model.parameters()).device.type == "cpu"


def test_prepare_model_channels_last_keeps_outputs() -> None:
    seed_everything(0)
    model = get_model("v2")
    x = torch.rand(4, 1, 28, 28)
    expected = model(x)
    rt = Runtime.from_config(RunConfig(device="cpu", channels_last=True))
    prepared = rt.prepare_model(model)
    got = prepared(rt.to_device(x, torch.zeros(4, dtype=torch.long))[0])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_to_device_channels_last_for_4d_inputs_only() -> None:
    rt = Runtime.from_config(RunConfig(device="cpu", channels_last=True))
    x4 = torch.rand(2, 3, 5, 5)  # three channels, so the two formats differ
    y = torch.tensor([3, 7])
    out4, out_y = rt.to_device(x4, y)
    assert out4.is_contiguous(memory_format=torch.channels_last)
    assert not out4.is_contiguous()
    torch.testing.assert_close(out4, x4)
    assert torch.equal(out_y, y)

    x2 = torch.rand(2, 784)
    out2, _ = rt.to_device(x2, y)
    assert out2.is_contiguous() and out2.stride() == x2.stride()
    torch.testing.assert_close(out2, x2)


def test_host_allocator_is_tuned_once_and_recorded() -> None:
    from mnist_models.results.provenance import environment

    Runtime.from_config(CPU)
    state = host_allocator()
    assert tune_host_allocator() == state  # idempotent
    assert environment()["host_allocator"] == state
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert state == "glibc mmap_threshold=32MiB trim_threshold=1024MiB"


def test_to_device_without_channels_last_keeps_layout() -> None:
    rt = Runtime.from_config(CPU)
    x4 = torch.rand(2, 3, 5, 5)
    out4, _ = rt.to_device(x4, torch.tensor([0, 1]))
    assert out4.is_contiguous() and not out4.is_contiguous(memory_format=torch.channels_last)


def test_seed_everything_is_reproducible() -> None:
    seed_everything(123)
    first = torch.rand(5)
    seed_everything(123)
    assert torch.equal(torch.rand(5), first)


class CountingSync:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def test_timer_synchronizes_at_enter_and_exit() -> None:
    sync = CountingSync()
    timer = Timer(sync)
    assert sync.calls == 0
    with timer as t:
        assert t is timer
        assert sync.calls == 1  # before the clock starts
    assert sync.calls == 2  # and again before it stops


def test_timer_measures_a_sleep() -> None:
    # A correctness check of the clock, not a speed target: the bound is loose on purpose.
    with Timer() as t:
        time.sleep(0.05)
    assert 0.045 <= t.seconds < 1.0


def test_timer_is_nan_until_used_and_times_on_exception() -> None:
    timer = Timer()
    assert timer.seconds != timer.seconds  # NaN before use
    with pytest.raises(RuntimeError), timer:
        raise RuntimeError("boom")
    assert timer.seconds >= 0.0


def test_matmul_peak_is_measured_once_and_reported():
    cpu = torch.device("cpu")
    first = matmul_peak_gflops(cpu, "fp32")
    assert first > 1.0  # any CPU that runs torch multiplies faster than 1 GFLOP/s
    assert matmul_peak_gflops(cpu, "fp32") == first  # cached: probed once per process
    assert measured_peaks()["cpu/fp32"] == first


def fake_probe(monkeypatch, step_ms: dict[tuple[str, bool], float]) -> list[tuple]:
    """Replace the step-time probe by fixed (precision, channels_last) → ms figures; returns the calls."""
    calls = []

    def probe(keys):
        calls.extend(keys)
        return {key: step_ms[key[2], key[3]] / 1000 for key in keys}

    monkeypatch.setattr(auto, "probe_steps", probe)
    return calls


def test_auto_memory_format_is_nchw_for_the_notebook_loader_and_measured_for_the_fast_one(monkeypatch) -> None:
    calls = fake_probe(monkeypatch, {("fp32", False): 4.0, ("fp32", True): 3.0})
    run = resolve(RunConfig(device="cpu", loader="notebook"))
    assert run.cfg.channels_last is False and run.reason == "" and calls == []
    run = resolve(RunConfig(model="v2", device="cpu", loader="fast", batch_size=64))
    assert run.cfg.channels_last is True and run.cfg.precision == "fp32"
    assert calls == [("v2", "cpu", "fp32", False, 64, "train", ()), ("v2", "cpu", "fp32", True, 64, "train", ())]
    assert "memory format auto → NHWC (3.00 ms NHWC vs 4.00 ms NCHW)" in run.reason
    assert resolve(RunConfig(device="cpu", loader="fast", channels_last=False)).cfg.channels_last is False
    assert len(calls) == 2  # an explicit choice is not measured


@pytest.mark.parametrize("fp32_ms, bf16_ms, expected", [
    (10.0, 5.0, "bf16"),   # native bf16 (AMX): twice as fast
    (10.0, 9.5, "fp32"),   # 1.05×: within BF16_MIN_GAIN, not worth bf16's accuracy cost
    (10.0, 90.0, "fp32"),  # emulated bf16 (AVX2-only CPU): far slower
])
def test_auto_precision_takes_bf16_only_when_clearly_faster(monkeypatch, fp32_ms, bf16_ms, expected) -> None:
    calls = fake_probe(monkeypatch, {("fp32", True): fp32_ms, ("bf16", True): bf16_ms})
    run = resolve(RunConfig(model="fastnet", device="cpu", loader="fast", precision="auto", channels_last=True,
                            batch_size=128))
    assert run.cfg.precision == expected and run.cfg.channels_last is True
    assert {c[2] for c in calls} == {"fp32", "bf16"}
    assert run.reason.startswith(f"precision auto → {expected}: bf16 training step {fp32_ms / bf16_ms:.2f}×")
    if expected == "fp32" and bf16_ms < fp32_ms:
        assert "costs accuracy" in run.reason
    assert dict(run.step_ms) == {"fp32/NHWC": fp32_ms, "bf16/NHWC": bf16_ms}


def test_auto_precision_and_format_are_chosen_together(monkeypatch) -> None:
    # bf16 wins only in NHWC; the format is then the faster one for the chosen precision.
    fake_probe(monkeypatch, {("fp32", False): 10.0, ("fp32", True): 8.0, ("bf16", False): 12.0, ("bf16", True): 5.0})
    run = resolve(RunConfig(model="v2", device="cpu", loader="fast", precision="auto"))
    assert (run.cfg.precision, run.cfg.channels_last) == ("bf16", True)
    assert "1.60×" in run.reason and "NHWC" in run.reason


def test_auto_precision_for_inference_probes_forward_passes(monkeypatch) -> None:
    calls = fake_probe(monkeypatch, {("fp32", False): 1.0, ("bf16", False): 2.0})
    run = resolve(RunConfig(model="v0", device="cpu", loader="fast", precision="auto", channels_last=False,
                            batch_size=256), workload="inference")
    assert run.cfg.precision == "fp32" and {c[5] for c in calls} == {"inference"}
    assert "forward pass" in run.reason
    with pytest.raises(ConfigError):
        resolve(RunConfig(model="v0", device="cpu", precision="auto"), workload="sideways")


def test_resolve_makes_a_concrete_config_that_the_runtime_reads_and_the_rows_describe(monkeypatch) -> None:
    calls = fake_probe(monkeypatch, {("fp32", False): 10.0, ("fp32", True): 8.0, ("bf16", False): 12.0,
                                     ("bf16", True): 5.0})
    asked = RunConfig(model="v2", device="auto", loader="fast", precision="auto", seed=7)
    run = resolve(asked)
    assert run.requested is asked and len(calls) == 4 and run.probe_s > 0
    assert run.cfg == asked.with_(device=resolve_device("auto").type, precision="bf16", channels_last=True)
    rt = Runtime.from_config(run)  # reads the decision: nothing is measured again
    assert (rt.precision, rt.channels_last, rt.auto_reason) == ("bf16", True, run.reason) and len(calls) == 4
    assert run.describe() == rt.describe() == {"device": run.cfg.device, "precision": "bf16", "channels_last": True,
                                               "auto_reason": run.reason, "deterministic": False}
    assert run.columns() == {"precision_requested": "auto", "auto_reason": run.reason, "auto_probe_s": run.probe_s}
    assert resolve(asked).reason == run.reason and len(calls) == 8  # a new run measures afresh: no cache


@pytest.mark.parametrize("changes", [{"precision": "auto"}, {"channels_last": None}, {"device": "auto"}])
def test_the_runtime_refuses_a_config_that_still_asks_for_auto(changes) -> None:
    with pytest.raises(ConfigError) as info:
        Runtime.from_config(CPU.with_(**changes))
    message = str(info.value)
    assert "\n" not in message and "once per run" in message and "resolve(cfg)" in message


def test_the_cases_of_one_run_share_a_decision_measured_once(monkeypatch) -> None:
    calls = fake_probe(monkeypatch, {("fp32", False): 10.0, ("fp32", True): 8.0, ("bf16", False): 12.0,
                                     ("bf16", True): 5.0})
    fast = RunConfig(model="v2", device="cpu", loader="fast", precision="auto")
    runs = resolve_all([fast.with_(seed=0), fast.with_(seed=1, lr=0.05), fast.with_(seed=2, batch_size=64)])
    assert len(calls) == 8  # one probe of four candidates per distinct decision: batch 32 once, batch 64 once
    assert [r.cfg.seed for r in runs] == [0, 1, 2] and runs[1].cfg.lr == 0.05
    assert runs[0].reason == runs[1].reason and {r.cfg.precision for r in runs} == {"bf16"}
    assert runs[1].requested == fast.with_(seed=1, lr=0.05)
    with pytest.raises(ConfigError):
        runs[0].applied_to(fast.with_(model="v0"))


def test_budget_unit_probe_is_measured_once_keeps_the_rng_and_is_bounded(monkeypatch) -> None:
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    start = time.perf_counter()
    first = probe_step_seconds("v2", torch.device("cpu"), "fp32", True, 8)
    assert torch.equal(torch.rand(3), expected)
    assert 0 < first < time.perf_counter() - start
    measured = []  # a second call must come from the cache: nothing is measured again
    monkeypatch.setattr(auto, "interleaved_medians", lambda candidates: measured.append(candidates) or {})
    assert probe_step_seconds("v2", torch.device("cpu"), "fp32", True, 8) == first and measured == []
    monkeypatch.undo()
    forward = probe_step_seconds("v2", torch.device("cpu"), "fp32", True, 8, "inference")
    assert 0 < forward and PROBE_MAX_STEPS >= 3


def test_a_far_slower_candidate_is_ruled_out_in_warm_up() -> None:
    """Interleaved probing: a candidate over RULE_OUT times slower than the fastest stops after two warm-up
    calls (an emulated bf16 costs seconds a call), and still gets its (slow) median; the others are timed."""
    calls = {"fast": 0, "near": 0, "slow": 0}
    pause = {"fast": 0.002, "near": 0.003, "slow": 0.002 * RULE_OUT * 3}

    def candidate(name):
        def call():
            calls[name] += 1
            time.sleep(pause[name])
        return call, lambda: None

    medians = interleaved_medians({name: candidate(name) for name in calls})
    assert calls["slow"] == 2 and calls["fast"] >= 3 + PROBE_MIN_STEPS and calls["near"] == calls["fast"]
    assert medians["slow"] > RULE_OUT * medians["fast"] and medians["fast"] < medians["near"] < medians["slow"]


def test_memory_bandwidth_is_measured_once_and_sets_the_bandwidth_share(monkeypatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(probes, "BANDWIDTH_MIB", {"cpu": 32})  # small: the arithmetic, not the figure
    monkeypatch.setattr(probes, "_BANDWIDTH_CACHE", {})
    first = memory_bandwidth_gbs(cpu)
    assert 0.1 < first < 10_000 and memory_bandwidth_gbs(cpu) == first and measured_bandwidths() == {"cpu": first}
    share = bandwidth_roofline("bf16", cpu, 1000, img_per_s=first * 1e9 / 2000 / 2)  # half the bandwidth
    assert share["bytes_per_image"] == 2000 and share["pct_of_bandwidth"] == pytest.approx(50.0)
    assert bandwidth_roofline("fp32", cpu, 1000, 1.0)["bytes_per_image"] == 4000


def test_matmul_peak_of_a_slow_dtype_shrinks_its_size(monkeypatch) -> None:
    """A dtype whose 256-wide matmul shows the full size would take long (emulated) is measured smaller."""
    cpu = torch.device("cpu")
    monkeypatch.setattr(probes, "_PEAK_CACHE", {})
    assert probes.matmul_peak_gflops(cpu, "fp32") > 1.0
    assert probes.measured_peak_sizes()["cpu/fp32"] in (256, 512, 1024)
    monkeypatch.setattr(probes, "PEAK_CALL_SECONDS", 1e-9)  # every size is "too slow": shrink to the floor
    assert probes.matmul_peak_gflops(cpu, "bf16") > 0
    assert probes.measured_peak_sizes()["cpu/bf16"] == 256
