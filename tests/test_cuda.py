"""The CUDA paths, end to end on a GPU: every CUDA variant trains to a real accuracy, a checkpoint
trained on the GPU predicts real digits there, the profiler records GPU kernels, time to accuracy
reaches its target, and a real out-of-memory (under a memory cap) gives one line with the batch size.
Without a GPU every test here is skipped with the reason (``requires_cuda``)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_models import data
from mnist_models.cli import main as cli
from mnist_models.experiments.suite import TrainCase, base_config
from mnist_models.variants import VARIANTS

from conftest import requires_cuda

pytestmark = [pytest.mark.cuda, requires_cuda]
ROOT = Path(__file__).resolve().parents[1]
CUDA_VARIANTS = ("eager", "channels_last", "bf16", "bf16+channels_last", "fp16", "compile",
                 "compile-reduce-overhead", "cudagraph")


@pytest.mark.parametrize("variant", CUDA_VARIANTS)
def test_each_cuda_variant_trains_v2(variant: str, mnist_root: Path) -> None:
    """300 seed-protocol steps of v2 (batch 32, SGD lr 0.1): finite losses, and well above chance on
    the whole test set in every variant (eager fp32 reaches about 90% there)."""
    case = TrainCase(VARIANTS[variant].apply(base_config("v2", "cuda", str(mnist_root))), steps=100)
    rows = [case.run() for _ in range(3)]
    assert case.rt.device.type == "cuda"
    assert all(np.isfinite(r["train_loss"]) for r in rows)
    metrics = case.evaluate()
    assert metrics["test_acc_pct"] > 70.0, (variant, metrics)
    assert case.rt.grad_scaler().is_enabled() is (variant == "fp16")  # fp16 always with a live GradScaler


def write_digits(root: Path, folder: Path) -> list[tuple[int, Path]]:
    """The first test image of each class as a PNG: (label, path)."""
    pictures, labels = data.load_split("test", root)
    found: dict[int, int] = {}
    for i, label in enumerate(labels.tolist()):
        found.setdefault(label, i)
    paths = []
    for label, i in sorted(found.items()):
        path = folder / f"digit{label}.png"
        Image.fromarray(pictures[i].numpy()).save(path)
        paths.append((label, path))
    return paths


def test_train_on_cuda_then_predict_on_cuda(mnist_root: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint, results = tmp_path / "fastnet.pt", tmp_path / "results"
    assert cli.main(["train", "--model", "fastnet", "--device", "cuda", "--epochs", "1", "--data-root",
                     str(mnist_root), "--results", str(results), "--save", str(checkpoint), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert trained["test_acc_pct"] > 95.0
    row = json.loads((results / "runs.jsonl").read_text().splitlines()[-1])
    assert row["environment"]["gpu"] and "cuda" in str(row["config"]["device"])
    digits = write_digits(mnist_root, tmp_path)
    assert cli.main(["predict", "--checkpoint", str(checkpoint), "--device", "cuda", "--json",
                     *[str(p) for _, p in digits]]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    predicted = [p["digit"] for p in answer["predictions"]]
    assert sum(p == label for p, (label, _) in zip(predicted, digits, strict=True)) >= 9


def test_the_profiler_records_gpu_kernels(mnist_root: Path, tmp_path: Path) -> None:
    assert cli.main(["profile", "--model", "v2", "--device", "cuda", "--data-root", str(mnist_root),
                     "--results", str(tmp_path), "--wait", "1", "--warmup", "1", "--active", "3"]) == 0
    (folder,) = (tmp_path / "profiles").iterdir()
    with gzip.open(folder / "trace.json.gz", "rt") as f:
        events = json.load(f)["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel"]
    assert kernels and all(e["dur"] >= 0 for e in kernels)
    assert json.loads((folder / "profile.json").read_text())["config"]["device"] == "cuda"


def test_time_to_accuracy_on_cuda(mnist_root: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mnist_models", "tta", "--device", "cuda", "--seeds", "2",
                           "--data-root", str(mnist_root), "--results", str(tmp_path), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["n_seeds"] == 2 and summary["n_reached"] == 2, summary


CAPPED = """
import sys, torch
from mnist_models.cli.main import main
torch.cuda.set_per_process_memory_fraction(float(sys.argv[1]))
raise SystemExit(main(sys.argv[2:]))
"""


def test_a_real_cuda_out_of_memory_is_one_line(mnist_root: Path, tmp_path: Path) -> None:
    """v2 at batch 16384 keeps ~4 GiB of activations for the backward pass; capped at ~1.5 GiB (room for
    the resident data set) the first step runs out of memory."""
    fraction = 1.5 * 2**30 / torch.cuda.get_device_properties(0).total_memory
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-c", CAPPED, f"{fraction:.6f}", "train", "--model", "v2", "--device",
                           "cuda", "--precision", "fp32", "--no-channels-last", "--batch-size", "16384",
                           "--epochs", "1", "--data-root", str(mnist_root), "--results", str(results)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTORCH_CUDA_ALLOC_CONF": ""})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr[-3000:]
    assert lines[-1].startswith("mnist-bench: error: CUDA out of memory at batch size 16384 on ")
    assert "--batch-size 8192 or less" in lines[-1] and "Traceback" not in done.stderr
