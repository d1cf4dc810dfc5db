"""The benchmark suite's pytest front end: options, parametrisation and hooks.

    pytest bench --benchmark-only [--bench-profile quick|full|smoke] [--bench-device all|cpu|cuda]
                 [--bench-models v0,v2] [--bench-variants eager,bf16] [--bench-results DIR]
                 [--bench-budget SECONDS] [--bench-readme FILE] [--bench-ddp 1,2]

Cases are models × devices × variants (training), × batch sizes (inference); ``--bench-ddp``: scaling last
(``experiments/suite_scaling.py``). ``--bench-device all`` is the devices this machine has; what is left out
(a device it lacks, a variant that does not apply) is said once, in the header and machine.json. The
session's state is one ``SuiteSession`` in pytest's ``config.stash`` (``experiments/suite_session.py``).
Each case's rows go to ``DIR/<run-id>/cases.jsonl`` as it ends (``runs/writer.py``); the end of the
session is ``report/suite_publish.py`` (tables, summary, machine.json last, ``latest``, the report).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from mnist_models.experiments.suite_session import (
    DEFAULT_BUDGET_S,
    SuiteSession,
    SuiteUsageError,
    case_batch,
    fresh_compile_cache,
    remove_compile_cache,
)
from mnist_models.report.suite_publish import check_readme, publish_session
from mnist_models.results.provenance import environment
from mnist_models.results.store import DiskFullError, ResultsError
from mnist_models.train.oom import OutOfMemory, oom_guard
from mnist_models.variants import VARIANTS

SUITE = pytest.StashKey[SuiteSession]()
OPTIONS = ("profile", "device", "models", "variants", "budget", "results", "data_root", "dataset", "readme", "ddp")
# Training and time to accuracy first: their cases carry most of what a cut cannot shorten (compilation, evaluations,
# eager's band, three seeds' processes); inference's rounds cut finely; scaling (--bench-ddp) is set aside whole.
PHASES = {"train_spec": "train", "tta_device": "tta", "inference_spec": "inference", "ddp_device": "scaling"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mnist-bench")
    group.addoption("--bench-device", default="all", help="all (default: the devices this machine has) | cpu | cuda")
    group.addoption("--bench-models", default="default", help="comma list: registered or your file.py:Name | all "
                    "| default (the profile's: quick runs v0-v2 and fastnet, full every built-in)")
    group.addoption("--bench-variants", default="all",
                    help=f"comma list of variants (default all): {', '.join(VARIANTS)}")
    group.addoption("--bench-profile", default="quick",
                    help="quick (default: slices of an epoch) | full (epochs) | smoke (every code path, seconds)")
    group.addoption("--bench-results", default="results", help="folder for results/<run-id>/ (default results)")
    group.addoption("--bench-data-root", default=None, help="MNIST root (default $MNIST_BENCH_DATA or the cache)")
    group.addoption("--bench-dataset", default="mnist", help="mnist (default) | fashion-mnist")
    group.addoption("--bench-readme", default=None, metavar="FILE", help="also put the compact summary, as this "
                    "machine kind's block, between <!-- bench-summary:start/end --> in FILE")
    group.addoption("--bench-budget", default=None, metavar="SECONDS",
                    help="time budget of the whole session; cases that would overrun run less work and say so "
                         f"(default: {', '.join(f'{k} {v:g} s' for k, v in DEFAULT_BUDGET_S.items() if v)}; "
                         "others none; 0 = none)")
    group.addoption("--bench-ddp", default=None, metavar="N,N", help="also data-parallel scaling of the first model "
                    "at these process counts (torchrun, DDP), after the other cases (default: none)")


def pytest_configure(config: pytest.Config) -> None:
    fresh_compile_cache()
    try:
        session = SuiteSession.from_options(**{name: config.getoption(f"--bench-{name.replace('_', '-')}")
                                               for name in OPTIONS})
        check_readme(session.readme)
        session.prepare()
    except SuiteUsageError as exc:
        pytest.exit(f"mnist-bench: error: {exc}", returncode=2)
    config.stash[SUITE] = session


def pytest_report_header(config: pytest.Config) -> list[str]:
    return config.stash[SUITE].header() if SUITE in config.stash else []


def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    # Without --bench-ddp the scaling case is not collected at all: the default suite stays as it was.
    return True if collection_path.name == "test_ddp.py" and config.getoption("--bench-ddp") is None else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    session = metafunc.config.stash[SUITE]
    for name, phase in PHASES.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, [pytest.param(value, id=case) for value, case in session.params(phase)])


def _case(item: pytest.Item) -> tuple[str, Any] | None:
    """(phase, its parameter) of a case; None for an item that is not one."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    return next(((PHASES[name], value) for name, value in params.items() if name in PHASES), None)


def _order(item: pytest.Item) -> int:
    case = _case(item)
    return list(PHASES.values()).index(case[0]) if case else len(PHASES)


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected: only the cases that will run are weighed
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the phases, and give every case that will run its budget weight. A phase with nothing to
    collect (time to accuracy without fastnet) leaves an item that is no case: deselected, not skipped."""
    session = config.stash.get(SUITE, None)
    if session is None:
        return
    empty = [item for item in items if (case := _case(item)) and not isinstance(case[1], (tuple, str))]
    config.hook.pytest_deselected(items=empty)
    items[:] = sorted((item for item in items if item not in empty), key=_order)  # stable: in a phase, as collected
    for item in items:
        if (case := _case(item)) is not None:
            session.weigh(item.nodeid, *case)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and session.budget.seconds is not None:
        reporter.write_line(session.budget_line())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A case that runs out of memory (a large batch on a small GPU) is skipped with the reason, listed
    in the run's skips, and the session goes on with the memory released."""
    try:
        with oom_guard(case_batch(*(_case(item) or ("", None))), flag="batch"):
            return (yield)
    except OutOfMemory as exc:
        session = item.config.stash.get(SUITE, None)
        if session is not None:
            session.skips.append((item.name.removeprefix("test_"), str(exc)))
        pytest.skip(str(exc))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """When a case ends (after its teardown, before the next case starts), its rows are appended to the
    run folder's cases.jsonl; a write that fails stops the session with one line."""
    result = yield
    session = item.config.stash.get(SUITE, None)
    if session is not None:
        try:
            session.record(item.nodeid)
        except ResultsError as exc:
            session.stopped = True
            pytest.exit(f"mnist-bench: error: {exc}", returncode=1 if isinstance(exc, DiskFullError) else 2)
    return result


@pytest.fixture(autouse=True)
def _budget_clock(request: pytest.FixtureRequest) -> Any:
    """Tell the budget how long each case took (set-up, timed rounds, evaluation, memory pass)."""
    budget = request.config.stash[SUITE].budget
    start = time.perf_counter()
    budget.start(request.node.nodeid)
    yield
    budget.finish(request.node.nodeid, time.perf_counter() - start)


@pytest.fixture(scope="session")
def bench_state(request: pytest.FixtureRequest) -> SuiteSession:
    """The session's choices, what its cases share, and its row collector (peaks measured, inductor started)."""
    session = request.config.stash[SUITE]
    session.warm_up()
    return session


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    machine_info["mnist_bench"] = environment()


def _benchmark_json(config: pytest.Config) -> dict[str, Any] | None:
    """pytest-benchmark's own JSON for this session (None when nothing was timed)."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled or not session.benchmarks:
        return None
    commit = config.hook.pytest_benchmark_generate_commit_info(config=config)
    return config.hook.pytest_benchmark_generate_json(
        config=config, benchmarks=session.benchmarks, include_data=True,
        machine_info=session.get_machine_info(), commit_info=commit)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    suite = session.config.stash.get(SUITE, None)
    if suite is None:
        return
    ending = publish_session(suite, _benchmark_json(session.config), exitstatus == pytest.ExitCode.INTERRUPTED)
    if ending.error:
        sys.stderr.write(ending.error + "\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for line in ending.lines if reporter is not None else []:
        reporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    remove_compile_cache()
