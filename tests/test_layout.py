"""The package's shape holds as it grows (docs/decisions.md, 2026-11-26): small modules and
functions (the package and the benchmark suite's front end, ``bench/``), imports at the top (except
the stated lazy ones), one place per decision, one writer of a run folder."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mnist_models"
MODULES = sorted(PACKAGE.rglob("*.py"))
BENCH = sorted((ROOT / "bench").glob("*.py"))  # the suite's front end: options, parametrisation, hooks
MAX_MODULE_LINES = 360
MAX_FUNCTION_LINES = 60
MAX_BENCH_CONFTEST_LINES = 200  # everything else the suite does lives in the package
# The only imports allowed inside functions, each for start-up: the clock of time to accuracy (the
# worker times the torch import itself; torchvision costs ~1 s the fast loader never needs), and every
# command's (torch._dynamo costs over a second that only compiled cases need).
LAZY_IMPORTS = {
    ("experiments/suite.py", "_reset_compiler"),  # torch._dynamo
    ("config.py", "__post_init__"),  # the model registry imports torch; the worker builds its config first
    ("data/loaders.py", "notebook_loader"),  # torchvision
    ("data/augment.py", "notebook_transforms"),  # torchvision, only for the notebook loader
    ("data/verify.py", "_download_with_torchvision"),  # torchvision
    ("data/custom.py", "_from_folder"),  # PIL, only when a folder of images is converted
    ("experiments/time_to_accuracy.py", "resolve"),  # the parent's runtime (torch), never a worker's
    ("experiments/time_to_accuracy.py", "run_one"),  # the timed start-up phases
    ("experiments/time_to_accuracy.py", "_train_to_target"),
    ("experiments/time_to_accuracy.py", "run_in_process"),
}


def functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


@pytest.mark.parametrize("path", MODULES + BENCH, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    limit = MAX_BENCH_CONFTEST_LINES if path == ROOT / "bench" / "conftest.py" else MAX_MODULE_LINES
    assert len(text.splitlines()) <= limit, f"{path.name}: split it by responsibility"
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
    missing = [str(p.relative_to(ROOT)) for p in MODULES + BENCH if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def calls_named(name: str, plain: bool = False) -> set[str]:
    """Modules with a call to ``<anything>.name(...)`` (and, with ``plain``, to ``name(...)``)."""
    found = set()
    for path in MODULES + BENCH:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            func = node.func if isinstance(node, ast.Call) else None
            if (isinstance(func, ast.Attribute) and func.attr == name) or (
                    plain and isinstance(func, ast.Name) and func.id == name):
                found.add(str(path.relative_to(PACKAGE if path.is_relative_to(PACKAGE) else ROOT)))
    return found


def test_one_place_per_decision() -> None:
    # The one training step; flops.py counts a backward pass's FLOPs under FlopCounterMode, it does not train.
    assert calls_named("backward") == {"train/step.py", "models/flops.py"}
    assert calls_named("autocast") <= {"host/device.py", "train/runtime.py", "train/auto.py",
                                       "train/engine.py", "train/step.py", "experiments/suite.py"}
    assert calls_named("to_csv") == {"results/store.py"}  # write_files, the one way a table is written
    assert calls_named("splice_machine_block") <= {"report/publish.py"}
    writers = calls_named("write_text") - {"results/store.py", "report/publish.py", "report/readme.py"}
    assert writers == set(), f"files written outside results/store and report/publish: {writers}"


def test_a_run_folder_has_one_writer() -> None:
    # cases.jsonl as each case ends, the tables and machine.json at the end, latest last: runs/writer.py
    # alone; the suite's end (report/suite_publish.py) hands it what to write.
    assert calls_named("publish_run", plain=True) == {"runs/writer.py"}
    assert calls_named("finish_run", plain=True) == {"report/suite_publish.py"}
    assert calls_named("CaseLog", plain=True) <= {"runs/writer.py", "experiments/suite_session.py"}
    assert calls_named("point_latest", plain=True) == {"runs/writer.py"}


def test_the_precision_table_covers_the_configs_precisions() -> None:
    from mnist_models.config import PRECISIONS
    from mnist_models.host.device import PRECISIONS as TABLE

    assert set(TABLE) == set(PRECISIONS) - {"auto"}


def test_every_name_says_one_thing() -> None:
    """A module name, a class name and a private name each mean one thing: no two modules of the package
    share a file name (``__init__``/``__main__`` aside, and a command's two halves: ``cli/commands/X.py`` checks
    its input without torch, ``cli/actions/X.py`` runs it), no class is defined twice, and no module reaches
    into another's private (``_name``) names."""
    seen: dict[str, list[str]] = {}
    classes: dict[str, list[str]] = {}
    private = []
    for path in MODULES:
        where = str(path.relative_to(PACKAGE))
        if path.name not in ("__init__.py", "__main__.py"):
            seen.setdefault(path.name, []).append(where)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, []).append(where)
            elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("mnist_models")):
                private += [f"{where}: {a.name}" for a in node.names if a.name.startswith("_")]
    halves = lambda name: sorted(seen[name]) == [f"cli/actions/{name}", f"cli/commands/{name}"]  # noqa: E731
    assert {name: at for name, at in seen.items() if len(at) > 1 and not halves(name)} == {}
    assert {name: at for name, at in classes.items() if len(at) > 1} == {}
    assert private == []
