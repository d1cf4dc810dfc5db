"""Options, parametrisation, machine info and the results tables of the benchmark suite.

    pytest bench --benchmark-only [--bench-profile quick|full] [--bench-device cpu|cuda|all]
                 [--bench-models v0,v2] [--bench-variants eager,bf16] [--bench-results DIR]
                 [--bench-budget SECONDS]

Cases are models × devices × variants (training) and × batch sizes (inference). A case that
cannot run (a CUDA-only variant on the CPU, no CUDA device) is collected and skipped with its
reason, and listed in the run's summary. The session keeps a time budget (``experiments/budget.py``;
300 s for the quick profile): each case's weight is set at collection from a short probe of its
model's eager step, and a case that would overrun its share runs less work, says so in its row,
and is listed in the summary. Each case's rows are on disk before the next case starts: appended, as
whole lines, to ``DIR/<run-id>/cases.jsonl`` when the case ends (``runs.writer.CaseLog``; the folder is
made then). At the end of the session the tables are published into that folder through the one
publish path (``report.publish.publish_run``), ``machine.json`` last, and ``DIR/latest`` moves to it. A
session killed or interrupted before its end publishes nothing more: its folder keeps ``cases.jsonl``,
which ``mnist-bench report`` and ``compare`` read as an incomplete run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
import torch

from mnist_models import data
from mnist_models.config import RunConfig
from mnist_models.experiments.budget import Budget
from mnist_models.experiments.plans import (
    TTA_MIN_SEEDS,
    inference_weight,
    train_weight,
    tta_seed_estimate_s,
    weights_task,
    weights_weight,
)
from mnist_models.experiments.suite import PROFILES, Profile, inference_batch_sizes
from mnist_models.experiments.time_to_accuracy import TTA_MODEL
from mnist_models.host.clock import process_age_s
from mnist_models.host.device import peak_precisions
from mnist_models.host.machine import capabilities
from mnist_models.measure.probes import matmul_peak_gflops, measured_peak_sizes, measured_peaks
from mnist_models.models import list_models
from mnist_models.report import suite_summary
from mnist_models.report.publish import publish_run
from mnist_models.report.readme import has_markers
from mnist_models.results.provenance import bench_run_id, environment
from mnist_models.results.store import DiskFullError, ResultsError, check_writable
from mnist_models.runs.frames import bench_frames, split_rounds
from mnist_models.runs.keys import case_name
from mnist_models.runs.schema import RUN_FORMAT
from mnist_models.runs.writer import CaseLog
from mnist_models.train.oom import OutOfMemory, oom_guard
from mnist_models.variants import VARIANTS, Variant, current_name

DEVICES = ("cpu", "cuda")
README_BATCH = 256  # the inference batch size the README's compact summary shows


@dataclass
class BenchState:
    """Choices from the command line, and the rows and skips collected during the session."""

    devices: list[str]
    models: list[str]
    variants: list[Variant]
    profile: Profile
    results: str
    data_root: str | None
    readme: str | None = None
    run_id: str = ""  # UTC start time + machine tag, fixed when the session starts
    budget: Budget = field(default_factory=lambda: Budget(None))
    startup_s: float = 0.0  # this process's age when the session was configured (Python, pytest, torch)
    inductor_warmup_s: float | None = None  # the session's first torch.compile, paid once outside the cases
    train_rows: list[dict[str, Any]] = field(default_factory=list)
    inference_rows: list[dict[str, Any]] = field(default_factory=list)
    tta_rows: list[dict[str, Any]] = field(default_factory=list)
    # (model, device) → (confusion rows, prediction-sample rows) of the inference weights, for the report
    quality: dict[tuple[str, str], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = field(default_factory=dict)
    skips: list[tuple[str, str]] = field(default_factory=list)
    log: CaseLog = field(init=False)  # the finished cases' rows, on disk as each case ends
    stopped: bool = False  # a case's rows could not be written: the session stopped, publishing nothing

    def __post_init__(self) -> None:
        self.log = CaseLog(self.results, self.run_id)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """The rows collected so far, by the table they go into (cases.jsonl's ``table``)."""
        return {"train": self.train_rows, "inference": self.inference_rows, "tta": self.tta_rows}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mnist-bench")
    group.addoption("--bench-device", default="all", help="cpu | cuda | all (default all; cuda skips without a GPU)")
    group.addoption("--bench-models", default="all", help="comma list of registry models (default all)")
    group.addoption("--bench-variants", default="all",
                    help=f"comma list of variants (default all): {', '.join(VARIANTS)}")
    group.addoption("--bench-profile", default="quick", help="quick (default: slices of an epoch) | full (epochs)")
    group.addoption("--bench-results", default="results", help="folder for results/<run-id>/ (default results)")
    group.addoption("--bench-data-root", default=None, help="MNIST root (default $MNIST_BENCH_DATA or the cache)")
    group.addoption("--bench-readme", default=None, metavar="FILE",
                    help="also put the compact summary, as this machine kind's block, between "
                         "<!-- bench-summary:start/end --> in FILE")
    group.addoption("--bench-budget", default=None, metavar="SECONDS",
                    help="time budget of the whole session; cases that would overrun run less work and say so "
                         f"(default: {', '.join(f'{k} {v:g} s' for k, v in DEFAULT_BUDGET_S.items() if v)}; "
                         "others none; 0 = none)")


# The quick profile must finish within 5 minutes on any 2-core machine, whatever its ISA.
DEFAULT_BUDGET_S = {"quick": 300.0, "full": 0.0, "smoke": 0.0}


def _budget_seconds(text: str | None, profile: str) -> float | None:
    if text is None:
        return DEFAULT_BUDGET_S.get(profile) or None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        pytest.exit(f"mnist-bench: error: --bench-budget takes seconds ≥ 0 (0: no budget), got {text!r}",
                    returncode=2)
    return seconds or None


def _choose(text: str, known: list[str], what: str) -> list[str]:
    chosen = known if text == "all" else [t for t in text.split(",") if t]
    unknown = [c for c in chosen if c not in known]
    if unknown or not chosen:
        pytest.exit(f"mnist-bench: error: unknown {what} {', '.join(unknown) or repr(text)}; "
                    f"choose from: {', '.join(known)} (or all)", returncode=2)
    return chosen


def pytest_configure(config: pytest.Config) -> None:
    # Compile times are cold: inductor compiles into an empty cache for this session instead of
    # reusing kernels an earlier run left on disk.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="mnist-bench-inductor-")
    opt = config.getoption
    profile = opt("--bench-profile")
    if profile not in PROFILES:
        pytest.exit(f"mnist-bench: error: unknown --bench-profile {profile!r}; choose from: "
                    f"{', '.join(PROFILES)}", returncode=2)
    device = opt("--bench-device")
    devices = list(DEVICES) if device == "all" else _choose(device, list(DEVICES), "--bench-device")
    config._mnist_bench = BenchState(
        devices=devices, models=_choose(opt("--bench-models"), list_models(), "--bench-models model"),
        variants=[VARIANTS[v] for v in _choose(",".join(map(current_name, opt("--bench-variants").split(","))),
                                               list(VARIANTS), "--bench-variants variant")],
        profile=PROFILES[profile], results=opt("--bench-results"), data_root=opt("--bench-data-root"),
        readme=opt("--bench-readme"), run_id=bench_run_id(), startup_s=process_age_s(),
        budget=Budget(_budget_seconds(opt("--bench-budget"), profile),
                      started=time.perf_counter() - process_age_s()))
    readme = config._mnist_bench.readme
    if readme is not None and not has_markers(readme, "bench-summary"):
        pytest.exit(f"mnist-bench: error: --bench-readme {readme}: no such file or no "
                    "<!-- bench-summary:start --> / <!-- bench-summary:end --> markers; fix: add both markers to "
                    "the file, or drop --bench-readme", returncode=2)
    try:  # before collection probes the models: a results folder or data root that cannot work fails now
        check_writable(config._mnist_bench.results)
        data.prepare(config._mnist_bench.data_root)
    except (ResultsError, data.DataError) as exc:
        line = str(exc).replace("--results DIR", "--bench-results DIR")  # the CLI's fix, in this suite's flags
        pytest.exit(f"mnist-bench: error: {line.replace('--data-root DIR', '--bench-data-root DIR')}", returncode=2)


def _device_skip_reason(device: str) -> str | None:
    return "no CUDA device on this machine" if device == "cuda" and not torch.cuda.is_available() else None


def _skip_reason(device: str, variant: Variant, phase: str) -> str | None:
    return _device_skip_reason(device) or variant.skip_reason(device, phase)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state: BenchState = metafunc.config._mnist_bench
    for name, phase in (("train_spec", "train"), ("inference_spec", "inference")):
        if name not in metafunc.fixturenames:
            continue
        params = []
        for model in state.models:
            for device in state.devices:
                for variant in state.variants:
                    sizes = inference_batch_sizes(device) if phase == "inference" else (None,)
                    for batch in sizes:
                        case_id = "-".join(str(p) for p in (model, device, variant.name, batch) if p is not None)
                        reason = _skip_reason(device, variant, phase)
                        marks = [pytest.mark.skip(reason=reason)] if reason else []
                        if reason and batch in (None, sizes[0]):  # list each skipped variant once
                            state.skips.append((f"{phase} {model} {device} {variant.name}", reason))
                        params.append(pytest.param((model, device, variant, batch), id=case_id, marks=marks))
        metafunc.parametrize(name, params)
    if "tta_device" in metafunc.fixturenames:  # time to accuracy: fastnet, when selected, per device
        params = []
        for device in state.devices if TTA_MODEL in state.models else []:
            reason = _device_skip_reason(device)
            if reason:
                state.skips.append((f"time-to-accuracy {TTA_MODEL} {device}", reason))
            params.append(pytest.param(device, id=f"{TTA_MODEL}-{device}",
                                       marks=[pytest.mark.skip(reason=reason)] if reason else []))
        metafunc.parametrize("tta_device", params)


# Training and time to accuracy first: their cases carry most of what a cut cannot shorten
# (compilation, evaluations, eager's band, three seeds' processes), so they run while the budget
# is fresh; inference, whose rounds cut finely, takes up what is left.
PHASE_ORDER = {"train_spec": 0, "tta_device": 1, "inference_spec": 2}


def _phase(item: pytest.Item) -> int:
    params = item.callspec.params if hasattr(item, "callspec") else {}
    return min((PHASE_ORDER[p] for p in params if p in PHASE_ORDER), default=len(PHASE_ORDER))


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected: only the cases that will run are weighed
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the phases, and give every case that will run its budget weight: its expected seconds
    at eager speed here."""
    state: BenchState | None = getattr(config, "_mnist_bench", None)
    if state is None:
        return
    items.sort(key=_phase)  # stable: the order within a phase stays as collected
    if state.budget.seconds is None:
        return
    profile = state.profile
    for item in items:
        if item.get_closest_marker("skip") or not hasattr(item, "callspec"):
            continue
        params = item.callspec.params
        if "train_spec" in params:
            model, device, variant, _ = params["train_spec"]
            state.budget.add(item.nodeid, *train_weight(model, device, variant, profile), kind="train")
        elif "inference_spec" in params:
            model, device, variant, batch = params["inference_spec"]
            state.budget.add(item.nodeid, *inference_weight(model, device, variant, batch, profile),
                             kind="inference")
            if weights_task(model, device) not in state.budget.weights:
                state.budget.add(weights_task(model, device), weights_weight(model, device), kind="weights")
        elif "tta_device" in params:  # at least TTA_MIN_SEEDS seeds run whatever the budget
            seed_s = tta_seed_estimate_s(params["tta_device"], state.startup_s)
            least = min(TTA_MIN_SEEDS, len(profile.tta_seeds))
            state.budget.add(item.nodeid, (len(profile.tta_seeds) - least) * seed_s, least * seed_s, kind="tta")


def _case_batch(item: pytest.Item) -> int | None:
    """The batch size a case runs at: the inference case's own, the notebook protocol's for training."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    if "inference_spec" in params:
        return params["inference_spec"][3]
    return RunConfig().batch_size if "train_spec" in params else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A case that runs out of memory (a large batch on a small GPU) is skipped with the reason, listed
    in the run's skips, and the session goes on with the memory released."""
    try:
        with oom_guard(_case_batch(item), flag="batch"):
            return (yield)
    except OutOfMemory as exc:
        state: BenchState | None = getattr(item.config, "_mnist_bench", None)
        if state is not None:
            state.skips.append((item.name.removeprefix("test_"), str(exc)))
        pytest.skip(str(exc))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """When a case ends (after its teardown, before the next case starts), its rows are appended to the
    run folder's cases.jsonl; a write that fails stops the session with one line."""
    result = yield
    state: BenchState | None = getattr(item.config, "_mnist_bench", None)
    if state is not None:
        try:
            state.log.record(case_name(item.nodeid), state.tables())
        except ResultsError as exc:
            state.stopped = True
            pytest.exit(f"mnist-bench: error: {exc}", returncode=1 if isinstance(exc, DiskFullError) else 2)
    return result


@pytest.fixture(autouse=True)
def _budget_clock(request: pytest.FixtureRequest) -> Any:
    """Tell the budget how long each case took (set-up, timed rounds, evaluation, memory pass)."""
    state: BenchState | None = getattr(request.config, "_mnist_bench", None)
    start = time.perf_counter()
    if state is not None:
        state.budget.start(request.node.nodeid)
    yield
    if state is not None:
        state.budget.finish(request.node.nodeid, time.perf_counter() - start)


@pytest.fixture(scope="session")
def bench_state(request: pytest.FixtureRequest) -> BenchState:
    """The session's choices and row collector (MNIST was prepared and verified at configure)."""
    state: BenchState = request.config._mnist_bench
    for device in state.devices:  # the roofline's ceilings, every precision, recorded in machine.json
        if _device_skip_reason(device) is None:
            for precision in peak_precisions(torch.device(device)):
                matmul_peak_gflops(torch.device(device), precision)
    if any(v.compiles for v in state.variants):
        # The session's first torch.compile starts inductor (imports, worker pool): seconds that
        # would otherwise land in whichever compiled case runs first. Paid here, reported apart.
        start = time.perf_counter()
        torch.compile(lambda x: x * 2 + 1)(torch.ones(4))
        state.inductor_warmup_s = time.perf_counter() - start
    return state


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


def pytest_unconfigure(config: pytest.Config) -> None:
    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR", "")
    if os.path.basename(cache).startswith("mnist-bench-inductor-"):
        shutil.rmtree(cache, ignore_errors=True)


def _table(rows: list[dict[str, Any]]) -> pd.DataFrame | None:
    """A frame of the rows, or None (no file) when there are none."""
    return pd.DataFrame(rows) if rows else None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state: BenchState | None = getattr(session.config, "_mnist_bench", None)
    if state is None or not (state.train_rows or state.inference_rows or state.tta_rows):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if exitstatus == pytest.ExitCode.INTERRUPTED or state.stopped or state.log.folder is None:  # before its end
        cases = f"{state.log.cases} finished case{'s' if state.log.cases != 1 else ''}"
        where = (f"the rows of its {cases} are in {state.log.folder}/cases.jsonl; `mnist-bench report "
                 f"{state.log.folder}` reads them" if state.log.folder else "no row was written")
        if reporter is not None:
            reporter.write_line(f"mnist-bench: the session stopped before its end: {where} (an incomplete run; "
                                "no tables, summary or README block, and results/latest is unchanged)")
        return
    env = environment()
    train_rows, train_rounds = split_rounds(state.train_rows)
    inference_rows, inference_rounds = split_rounds(state.inference_rows)
    train, inference = bench_frames(train_rows, inference_rows)
    tta = pd.DataFrame(state.tta_rows)
    budget = {"budget_s": state.budget.seconds, "session_s": state.budget.elapsed(), "cuts": state.budget.cuts,
              "inductor_warmup_s": state.inductor_warmup_s}
    run = suite_summary.BenchRun(train, inference, state.profile.name, tta=tta, skips=state.skips, budget=budget,
                         peaks=measured_peaks())
    machine = {"format": RUN_FORMAT, **env, "capabilities": capabilities(), "profile": state.profile.name,
               "devices": state.devices,
               "models": state.models, "variants": [v.name for v in state.variants],
               "matmul_peak_gflop_per_s": measured_peaks(), "matmul_peak_size": measured_peak_sizes(), **budget,
               "skips": [{"case": case, "reason": reason} for case, reason in state.skips]}
    run_id = state.log.run_id  # the folder cases.jsonl went into (-2… when another session took the name)
    files = {"train.csv": train if not train.empty else None,  # a phase with no rows writes no file
             "inference.csv": inference if not inference.empty else None, "tta.csv": tta if not tta.empty else None,
             "summary.md": suite_summary.render(run, env, run_id), "benchmark.json": _benchmark_json(session.config),
             "rounds.csv": _table([*train_rounds.to_dict("records"), *inference_rounds.to_dict("records")]),
             "confusion.csv": _table([r for confusion, _ in state.quality.values() for r in confusion]),
             "predictions.csv": _table([r for _, sample in state.quality.values() for r in sample]),
             "machine.json": machine}  # last: a folder with cases.jsonl and no machine.json is incomplete
    compact = suite_summary.render(run.compact(README_BATCH), env, run_id, heading="###")
    try:
        folder = publish_run(state.results, run_id, files, state.readme, ("bench-summary", compact), env,
                             existing=True)
    except ResultsError as exc:  # a full disk, say: nothing half-written; the rows stay in cases.jsonl
        sys.stderr.write(f"mnist-bench: error: {exc} (the rows of every finished case are in "
                         f"{state.log.folder}/cases.jsonl)\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    elapsed = state.budget.elapsed()
    # The run's report (report.md, report.html, plots/) is drawn by `mnist-bench report` in a process of its
    # own, after the session: matplotlib stays out of the timed session, and a report that fails (one line
    # below) cannot cost the run folder written above.
    command = [sys.executable, "-m", "mnist_models", "report", str(folder)]
    command += ["--data-root", str(state.data_root)] if state.data_root else []
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        said = (done.stdout if done.returncode == 0 else done.stderr).strip().splitlines()
        last = said[-1].removeprefix("mnist-bench: ") if said else f"exit {done.returncode}"
        report = last if done.returncode == 0 else f"report not written ({last})"
    except (OSError, subprocess.SubprocessError) as exc:
        report = f"report not written ({type(exc).__name__}: {exc})"
    if not report.startswith("wrote"):
        report += f"; the run's tables are in {folder}; retry: mnist-bench report {folder}"
    if reporter is not None:
        cut = f"; {len(state.budget.cuts)} cases cut to keep the budget" if state.budget.cuts else ""
        names = ", ".join(sorted(p.name for p in folder.iterdir()))
        reporter.write_line(f"mnist-bench: wrote {folder} ({names}) in {elapsed:.0f} s{cut}")
        reporter.write_line(f"mnist-bench: {report}")
