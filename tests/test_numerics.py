"""Numerical guards (issue 11, item 5): a non-finite loss stops the run naming the epoch (or round)
and step and marks its row failed; fp16 without a GradScaler cannot be configured; ``--deterministic``
gives bit-identical metrics and weights across two runs in separate processes."""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from mnist_models.cli import main as cli
from mnist_models.cli.commands import train as train_command
from mnist_models.config import COMPILE_MODES, LOADERS, PRECISIONS, ConfigError, RunConfig
from mnist_models.experiments.suite import TrainCase, base_config
from mnist_models.host import device
from mnist_models.report import suite_summary
from mnist_models.results.provenance import environment
from mnist_models.results.store import read_rows
from mnist_models.runs.frames import bench_frames
from mnist_models.train import auto
from mnist_models.train.checkpoint import read_checkpoint
from mnist_models.train.engine import NonFiniteLoss, first_non_finite
from mnist_models.train.runtime import Runtime, resolve, unmeasured_choices
from mnist_models.train.step import make_train_step
from mnist_models.variants import VARIANTS

from conftest import requires_cuda

PACKAGE = Path(__file__).resolve().parents[1] / "mnist_models"

# --------------------------------------------------------------------------------------------
# A non-finite loss


def test_first_non_finite_finds_the_first_bad_step() -> None:
    steps = [torch.tensor(v) for v in (2.0, 1.5, math.nan, 3.0, math.inf)]
    step, loss = first_non_finite(steps)
    assert step == 3 and math.isnan(loss)
    assert first_non_finite([torch.tensor(1.0), torch.tensor(math.inf)]) == (2, math.inf)
    # Finite losses whose float32 running sum overflows: the step where the sum did, reported as inf.
    assert first_non_finite([torch.tensor(3e38), torch.tensor(3e38), torch.tensor(1.0)]) == (2, math.inf)


# v0 on real MNIST, fp32 NCHW, batch 2,000 (30 steps an epoch), plain SGD at lr 1.0 from seed 42: the
# first epoch ends with finite (huge) losses and the second overflows a few steps in (epoch 2, step 7
# on an AVX-512 EPYC; lr 0.9 to 1.1 all diverge in epoch 2, so the epoch does not hang on rounding).
DIVERGING = ["train", "--model", "v0", "--device", "cpu", "--loader", "fast", "--batch-size", "2000", "--lr", "1",
             "--epochs", "3", "--precision", "fp32", "--no-channels-last", "--seed", "42"]


@pytest.mark.slow
def test_train_that_diverges_stops_with_epoch_and_step_and_a_failed_row(
        mnist_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main([*DIVERGING, "--json", "--data-root", str(mnist_root), "--results", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""  # no summary for a run that failed
    assert "Traceback" not in err
    said = [line for line in err.splitlines() if line.startswith("mnist-bench:")]
    assert len(said) == 1 and said[0] == err.strip().splitlines()[-1], err
    where = re.fullmatch(r"mnist-bench: error: training loss became (nan|inf) at epoch (\d+), step (\d+) "
                         r"\(step (\d+) of the run; v0, lr 1, fp32\); fix: lower --lr "
                         r"\(the notebook protocol's is 0\.1\)",
                         said[0])
    assert where, said[0]
    epoch, step, run_step = (int(g) for g in where.groups()[1:])
    assert epoch == 2 and 1 <= step <= 30 and run_step == 30 + step

    rows = read_rows(tmp_path)
    assert [r["epoch"] for r in rows] == list(range(1, epoch + 1))
    assert len({r["run_id"] for r in rows}) == 1
    finished, failed = rows[:-1], rows[-1]
    for row in finished:  # the epochs that ended stay, as they were written
        assert "status" not in row and math.isfinite(row["train_loss"]) and 0 <= row["test_acc_pct"] <= 100
    assert failed["status"] == "failed"
    assert (failed["step"], failed["run_step"], failed["loss"]) == (step, run_step, where.group(1))
    assert failed["error"] == said[0].removeprefix("mnist-bench: error: ")
    assert not {"train_loss", "test_acc_pct", "train_s"} & set(failed)  # nothing a reader could count
    assert failed["config"]["lr"] == 1.0 and failed["runtime"]["precision"] == "fp32"


def test_a_suite_case_that_diverges_fails_with_a_failed_row(mnist_root: Path) -> None:
    """The benchmark suite's training case (notebook protocol, v0) at lr 1e6: its round raises NonFiniteLoss
    naming the round and step, and the row bench/test_train.py records from it shows as failed."""
    variant = VARIANTS["eager"]
    case = TrainCase(variant.apply(base_config("v0", "cpu", str(mnist_root))).with_(lr=1e6), steps=10)
    with pytest.raises(NonFiniteLoss) as info:
        for _ in range(3):
            case.run()
    exc = info.value
    assert re.match(r"training loss became (nan|inf) at round \d+, step \d+ \(step \d+ of the run; v0, lr 1e\+06, "
                    r"fp32\); fix: lower --lr", str(exc)), str(exc)
    row = {"phase": "train", "model": "v0", "device": "cpu", "variant": variant.name, "profile": "smoke",
           "seed": case.cfg.seed, **exc.row()}
    assert row["status"] == "failed" and row["round"] == exc.number and row["step"] == exc.step
    train, inference = bench_frames([row], [])  # a run whose only case failed still renders
    summary = suite_summary.render(suite_summary.BenchRun(train, inference, "smoke"), environment(), "run")
    assert "| v0 | cpu | eager |" in summary and "| failed |" in summary


# --------------------------------------------------------------------------------------------
# fp16 always with a GradScaler


def test_the_scaler_is_derived_from_the_autocast_dtype_not_set() -> None:
    assert {f.name for f in fields(device.Precision)} == {"autocast", "peak"}  # no scaler field to get wrong
    for name, precision in device.PRECISIONS.items():
        assert precision.scaler is (precision.autocast == torch.float16), name
    assert device.PRECISIONS["fp16"].scaler


def test_no_setting_flag_or_argument_turns_the_scaler_off() -> None:
    assert not [f.name for f in fields(RunConfig) if "scal" in f.name]
    train_flags = [flag for action in cli.build_parser()._subparsers._group_actions[0].choices["train"]._actions
                   for flag in action.option_strings]
    assert "--deterministic" in train_flags and not [f for f in train_flags if "scal" in f]
    assert "scaler" not in inspect.signature(make_train_step).parameters  # the step takes an Amp


def test_only_device_py_makes_a_grad_scaler() -> None:
    makers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name == "GradScaler":
                    makers.add(str(path.relative_to(PACKAGE)))
    assert makers == {"host/device.py"}


def _runnable_cuda_configs() -> list[RunConfig]:
    """Every RunConfig combination of the settings that touch precision, on CUDA, that is valid."""
    combos = itertools.product(PRECISIONS, COMPILE_MODES, (False, True), (None, False, True), (False, True), LOADERS)
    configs = []
    for precision, compile_mode, cuda_graph, channels_last, deterministic, loader in combos:
        try:
            configs.append(RunConfig(device="cuda", precision=precision, compile=compile_mode, cuda_graph=cuda_graph,
                                     channels_last=channels_last, deterministic=deterministic, loader=loader))
        except ConfigError:
            continue
    return configs


@pytest.mark.filterwarnings("ignore:CUDA is not available")  # the autocast object is made, not run
def test_no_config_runs_fp16_autocast_on_cuda_without_an_enabled_scaler(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a CUDA config asks for (auto resolving to fp32 or bf16; deterministic fixing auto to fp32),
    the step's Amp gives float16 autocast only together with an enabled GradScaler, on this CPU too:
    the GradScaler is recorded, not made (a real one disables itself where CUDA is absent)."""
    made: list[tuple[str, bool]] = []
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device_type, enabled: made.append((device_type, enabled)))
    configs = _runnable_cuda_configs()
    assert any(c.precision == "fp16" for c in configs)
    seen_fp16 = 0
    for cfg in configs:
        candidates = ["fp32", "bf16"] if cfg.precision == "auto" else [cfg.precision]
        if cfg.deterministic:
            candidates = [unmeasured_choices(cfg)[0]]
        for precision in candidates:
            rt = Runtime(torch.device("cuda"), precision, cfg.compile, bool(cfg.channels_last), cfg.cuda_graph)
            with rt.autocast() as ctx:
                dtype = getattr(ctx, "fast_dtype", None)
            rt.amp.grad_scaler()
            assert made[-1] == ("cuda", dtype == torch.float16), (cfg, precision)
            seen_fp16 += dtype == torch.float16
    assert seen_fp16 > 0


# --------------------------------------------------------------------------------------------
# --deterministic


@pytest.fixture
def restore_determinism(monkeypatch: pytest.MonkeyPatch):
    """Put torch's process-wide determinism switches back after a test that turns them on."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[2], before[3]


def test_deterministic_is_a_train_flag() -> None:
    args = cli.build_parser().parse_args(["train", "--deterministic"])
    assert train_command.config(args).deterministic is True
    assert train_command.config(cli.build_parser().parse_args(["train"])).deterministic is False


@pytest.mark.parametrize("mode", [m for m in COMPILE_MODES if m != "none"])
def test_deterministic_refuses_torch_compile(mode: str) -> None:
    with pytest.raises(ConfigError) as info:
        RunConfig(deterministic=True, compile=mode)
    message = str(info.value)
    assert "\n" not in message and f"--compile {mode}" in message and "fix: drop --compile" in message


def test_deterministic_runtime_switches_torch_and_fixes_auto_without_measuring(
        monkeypatch: pytest.MonkeyPatch, restore_determinism: None) -> None:
    def no_probe(keys: object) -> None:
        raise AssertionError("a deterministic run must not measure")

    monkeypatch.setattr(auto, "probe_steps", no_probe)
    cfg = RunConfig(model="v2", device="cpu", precision="auto", channels_last=None, loader="fast", deterministic=True)
    rt = Runtime.from_config(resolve(cfg))  # the run's entry makes its choices, without measuring
    assert (rt.precision, rt.channels_last, rt.deterministic) == ("fp32", False, True)
    assert rt.auto_reason.startswith("precision auto → fp32; memory format auto → NCHW (deterministic: not measured")
    assert rt.describe()["deterministic"] is True
    assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ  # a CPU run leaves cuBLAS alone
    explicit = Runtime.from_config(cfg.with_(precision="bf16", channels_last=True))
    assert (explicit.precision, explicit.channels_last, explicit.auto_reason) == ("bf16", True, "")


def test_make_deterministic_sets_the_cublas_workspace_on_cuda(
        monkeypatch: pytest.MonkeyPatch, restore_determinism: None) -> None:
    device.make_deterministic(torch.device("cuda"))  # sets switches and the environment only: no GPU needed
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the other deterministic value is kept
    device.make_deterministic(torch.device("cuda"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":0:0")
    with pytest.raises(ConfigError, match=r"CUBLAS_WORKSPACE_CONFIG .*':0:0'; fix: unset it"):
        device.make_deterministic(torch.device("cuda"))


# fastnet (two convolutions with BatchNorm) for one epoch of real MNIST on the fast loader, batch 512.
DETERMINISTIC = ["train", "--model", "fastnet", "--loader", "fast", "--batch-size", "512", "--eval-batch-size", "1000",
                 "--epochs", "1", "--deterministic", "--json"]


def train_in_a_process(argv: list[str], root: Path, folder: Path) -> tuple[dict, str]:
    """One `mnist-bench train` in a fresh process: its --json summary and its checkpoint's weights digest."""
    folder.mkdir()
    command = [sys.executable, "-m", "mnist_models", *argv, "--data-root", str(root), "--results", str(folder),
               "--save", str(folder / "model.pt")]
    env = {key: value for key, value in os.environ.items() if key != "CUBLAS_WORKSPACE_CONFIG"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return summary, read_checkpoint(folder / "model.pt")["weights_sha256"]  # verified against the weights


def metrics(summary: dict) -> list[tuple[float, ...]]:
    return [(r["train_loss"], r["train_acc_pct"], r["test_loss"], r["test_acc_pct"]) for r in summary["epochs"]]


def assert_bit_identical(device_name: str, root: Path, tmp_path: Path) -> None:
    argv = [*DETERMINISTIC, "--device", device_name]
    start = time.perf_counter()
    (first, first_digest), (second, second_digest) = (train_in_a_process(argv, root, tmp_path / name)
                                                      for name in ("a", "b"))
    seconds = time.perf_counter() - start
    assert first["runtime"]["deterministic"] and first["runtime"]["device"].startswith(device_name)
    assert (first["runtime"]["precision"], first["runtime"]["channels_last"]) == ("fp32", False)
    assert metrics(first) == metrics(second)  # ==, not approx: bit-identical
    assert (first["test_acc_pct"], first["test_loss"]) == (second["test_acc_pct"], second["test_loss"])
    assert first_digest == second_digest
    assert first["test_acc_pct"] > 90  # a real run, not two identical failures
    print(f"{device_name}: two runs in {seconds:.0f} s, test acc {first['test_acc_pct']} %, "
          f"loss {first['test_loss']!r}, weights sha256 {first_digest}")


@pytest.mark.slow
def test_two_deterministic_runs_are_bit_identical_on_cpu(mnist_root: Path, tmp_path: Path) -> None:
    assert_bit_identical("cpu", mnist_root, tmp_path)


@requires_cuda
@pytest.mark.cuda
@pytest.mark.slow
def test_two_deterministic_runs_are_bit_identical_on_cuda(mnist_root: Path, tmp_path: Path) -> None:
    assert_bit_identical("cuda", mnist_root, tmp_path)
