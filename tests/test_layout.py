"""The package's shape holds as it grows (docs/decisions.md, 2026-11-26): small modules and
functions, imports at the top (except the stated lazy ones), one place per decision."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mnist_models"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 360
MAX_FUNCTION_LINES = 60
# The only imports allowed inside functions, each for the start-up clock of time to accuracy (the
# worker times the torch import itself; torchvision costs ~1 s the fast loader never needs).
LAZY_IMPORTS = {
    ("config.py", "__post_init__"),  # the model registry imports torch; the worker builds its config first
    ("data/loaders.py", "notebook_loader"),  # torchvision
    ("data/verify.py", "_download_with_torchvision"),  # torchvision
    ("experiments/time_to_accuracy.py", "resolve"),  # the parent's runtime (torch), never a worker's
    ("experiments/time_to_accuracy.py", "run_one"),  # the timed start-up phases
    ("experiments/time_to_accuracy.py", "_train_to_target"),
    ("experiments/time_to_accuracy.py", "run_in_process"),
}


def functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: split it by responsibility"
    long = [(f.name, f.end_lineno - f.lineno + 1) for f in functions(ast.parse(text))
            if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines: {long}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_are_at_the_top_except_the_stated_lazy_ones(path: Path) -> None:
    where = str(path.relative_to(PACKAGE))
    inner = {(where, f.name) for f in functions(ast.parse(path.read_text(encoding="utf-8")))
             if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(f))}
    assert inner <= LAZY_IMPORTS, f"imports inside functions: {sorted(inner - LAZY_IMPORTS)}"


def test_every_module_says_what_it_does() -> None:
    missing = [str(p.relative_to(PACKAGE)) for p in MODULES if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def calls_named(name: str) -> set[str]:
    """Modules with a call to ``<anything>.name(...)``."""
    found = set()
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
                found.add(str(path.relative_to(PACKAGE)))
    return found


def test_one_place_per_decision() -> None:
    # The one training step; flops.py counts a backward pass's FLOPs under FlopCounterMode, it does not train.
    assert calls_named("backward") == {"train/step.py", "models/flops.py"}
    assert calls_named("autocast") <= {"host/device.py", "train/runtime.py", "train/auto.py",
                                       "train/engine.py", "train/step.py", "experiments/suite.py"}
    assert calls_named("to_csv") == {"report/publish.py"}  # the one publish path writes every table
    assert calls_named("splice_machine_block") <= {"report/publish.py"}
    writers = calls_named("write_text") - {"results/store.py", "report/publish.py", "report/readme.py"}
    assert writers == set(), f"files written outside results/store and report/publish: {writers}"


def test_the_precision_table_covers_the_configs_precisions() -> None:
    from mnist_models.config import PRECISIONS
    from mnist_models.host.device import PRECISIONS as TABLE

    assert set(TABLE) == set(PRECISIONS) - {"auto"}
