"""Start-up stays light where time to accuracy's clock can see it (docs/decisions.md, 2026-11-26)."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_the_command_line_does_not_import_the_compiler() -> None:
    """torch._dynamo costs over a second of every command's start-up: only a compiled case imports it."""
    loaded = modules_after("import mnist_models.cli.main", top_level=False)
    assert "torch" in loaded and "torch._dynamo" not in loaded


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
