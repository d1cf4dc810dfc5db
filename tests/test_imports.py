"""Start-up stays light: where time to accuracy's clock can see it, and wherever the command line only parses
its flags or refuses one (docs/decisions.md, 2026-11-26 and 2026-12-06)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_models.cli.main import COMMANDS

HEAVY = ("torch", "pandas", "matplotlib", "rich", "torchvision", "torchmetrics")


def modules_after(code: str, top_level: bool = True) -> set[str]:
    """The modules (top-level packages only, unless not ``top_level``) a fresh interpreter has imported
    after running ``code``."""
    names = "m.split('.')[0] for m in sys.modules" if top_level else "m for m in sys.modules"
    probe = f"import sys\n{code}\nimport json; print(json.dumps(sorted({{{names}}})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_time_to_accuracy_worker_imports_nothing_heavy_before_its_clock() -> None:
    loaded = modules_after("import mnist_models.experiments.tta_worker")
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_package_and_its_config_import_no_torch() -> None:
    loaded = modules_after("import mnist_models; from mnist_models.config import RunConfig")
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


# torch alone takes 1.2–4 s to import here: --help and a refused flag or model name answer without it.
CLI_HEAVY = ("torch", "pandas", "matplotlib", "torchvision", "PIL", "optuna", "sqlalchemy")
REFUSED = (["train", "--model", "nope"], ["train", "--model", "missing.py:Net"], ["train", "--batch-size", "0"],
           ["train", "--seed", "1", "--seeds", "3"], ["tta", "--seeds", "x"], ["speedup", "--precision", "fp32,fp32"],
           ["reproduce", "--models", "v9"], ["models", "nope"], ["machine", "--model", "nope"],
           ["compare", "a", "b", "--metric", "zzz"], ["noise", "x", "--detect", "0"], ["train", "--lr", "-1"],
           ["profile", "--diff", "a", "b", "--min-change", "-1"], ["tta", "--readme", "nope.md"], ["train", "--bogus"],
           ["compare", "missing-base", "missing-new"], ["report", "missing-run"], ["noise", "missing-runs"],
           ["predict", "--checkpoint", "model.pt", "missing.png"],
           ["predict", "--checkpoint", "missing.pt", "seven.png"],
           ["data", "--dataset", "nope"], ["train", "--dataset", "missing/"], ["tta", "--dataset", "seven.png"],
           ["train", "--save", "."], ["sweep", "--lr", "0.1:0.01"], ["sweep", "--optimizer", "sgd,rmsprop"],
           ["sweep", "--storage", "mysql://x"], ["sweep", "--model", "v2,nope"], ["sweep", "--trials", "0"],
           ["train", "--nproc", "2", "--ddp"], ["train", "--ddp"], ["train", "--nproc", "2", "--loader", "notebook"],
           ["scaling", "--nproc", "0"], ["scaling", "--steps", "0"])


def test_the_command_line_starts_without_torch(tmp_path: Path) -> None:
    """In a fresh interpreter, ``mnist-bench --help``, every command's ``--help`` and the refusal of bad flags,
    model names, run folders, images, checkpoints and data sets (exit 2) import none of ``CLI_HEAVY``: the
    command modules check the input, their actions import torch."""
    (tmp_path / "seven.png").write_bytes(b"")  # present: the refusal is about the other file
    (tmp_path / "model.pt").write_bytes(b"")
    script = f"""
import contextlib, io, json, sys
from mnist_models.cli import main as cli
codes = []
for argv in [["--help"]] + [[name, "--help"] for name in cli.COMMANDS] + {list(REFUSED)!r}:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            codes.append(cli.main(argv))
        except SystemExit as exc:
            codes.append(exc.code)
print(json.dumps({{"codes": codes, "heavy": [m for m in {CLI_HEAVY!r} if m in sys.modules]}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.splitlines()[-1])
    assert found["heavy"] == []
    helps = 1 + len(COMMANDS)
    assert found["codes"] == [0] * helps + [2] * len(REFUSED)


@pytest.mark.slow
def test_training_leaves_torch_dynamo_unimported(mnist_root) -> None:
    """A fresh interpreter builds the engine's training (Adam, one-cycle) and takes real steps on MNIST."""
    script = f"""
import json, sys
from mnist_models.config import RunConfig
from mnist_models.train.engine import build_training
cfg = RunConfig(model="fastnet", loader="fast", optimizer="adam", lr_schedule="onecycle", batch_size=128, epochs=1,
                device="cpu", precision="fp32", channels_last=False, data_root={str(mnist_root)!r})
training = build_training(cfg)
row = training.train_epoch(max_steps=20)
training.optimizer.state_dict()
print(json.dumps({{"dynamo": "torch._dynamo" in sys.modules, "loss": row["train_loss"]}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.splitlines()[-1])
    assert found["dynamo"] is False
    assert 0 < found["loss"] < 2.3  # it trained: below chance (ln 10)


def test_a_worker_row_never_needs_pandas_or_matplotlib(mnist_root) -> None:
    """A whole seed in the worker process: it trains and reports without the report stack."""
    from dataclasses import asdict

    from mnist_models.experiments.time_to_accuracy import recipe

    cfg = recipe(target_pct=10.0, device="cpu", precision="fp32", channels_last=False, eval_every=20, eval_from=0.0,
                 data_root=str(mnist_root))
    code = ("import runpy, sys; sys.argv = ['w', " + repr(json.dumps(asdict(cfg))) + "]\n"
            "try:\n    runpy.run_module('mnist_models.experiments.tta_worker', run_name='__main__')\n"
            "except SystemExit:\n    pass")
    loaded = modules_after(code)
    assert "torch" in loaded and loaded.isdisjoint({"pandas", "matplotlib", "rich", "torchmetrics"})
