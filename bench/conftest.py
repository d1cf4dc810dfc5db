"""Options, parametrisation, machine info and the results tables of the benchmark suite.

    pytest bench --benchmark-only [--bench-profile quick|full] [--bench-device cpu|cuda|all]
                 [--bench-models v0,v2] [--bench-variants eager,bf16] [--bench-results DIR]

Cases are models × devices × variants (training) and × batch sizes (inference). A case that
cannot run (a CUDA-only variant on the CPU, no CUDA device) is collected and skipped with its
reason, and listed in the run's summary. At the end of the session the collected rows are
written once, through ``mnist_models.results.write_bench_run``, to ``DIR/<run-id>/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
import torch

from mnist_models import data
from mnist_models.models import list_models
from mnist_models.report import bench_frames, bench_summary
from mnist_models.results import bench_run_id, environment, has_markers, splice_marked, write_bench_run
from mnist_models.runtime import measured_peaks
from mnist_models.suite import PROFILES, TTA_MODEL, Profile, inference_batch_sizes
from mnist_models.variants import VARIANTS, Variant

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
    train_rows: list[dict[str, Any]] = field(default_factory=list)
    inference_rows: list[dict[str, Any]] = field(default_factory=list)
    tta_rows: list[dict[str, Any]] = field(default_factory=list)
    skips: list[tuple[str, str]] = field(default_factory=list)


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
                    help="also put the compact summary between <!-- bench-summary:start/end --> in FILE")


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
        variants=[VARIANTS[v] for v in _choose(opt("--bench-variants"), list(VARIANTS), "--bench-variants variant")],
        profile=PROFILES[profile], results=opt("--bench-results"), data_root=opt("--bench-data-root"),
        readme=opt("--bench-readme"), run_id=bench_run_id())
    readme = config._mnist_bench.readme
    if readme is not None and not has_markers(readme, "bench-summary"):
        pytest.exit(f"mnist-bench: error: --bench-readme {readme}: no such file or no "
                    "<!-- bench-summary:start --> / <!-- bench-summary:end --> markers", returncode=2)


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


@pytest.fixture(scope="session")
def bench_state(request: pytest.FixtureRequest) -> BenchState:
    """The session's choices and row collector; prepares and verifies MNIST once."""
    state: BenchState = request.config._mnist_bench
    try:
        data.prepare(state.data_root)
    except data.DataError as exc:
        pytest.exit(f"mnist-bench: error: {exc}", returncode=2)
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state: BenchState | None = getattr(session.config, "_mnist_bench", None)
    if state is None or not (state.train_rows or state.inference_rows or state.tta_rows):
        return
    env = environment()
    run_id = state.run_id
    train, inference = bench_frames(state.train_rows, state.inference_rows)
    tta = pd.DataFrame(state.tta_rows)
    summary = bench_summary(train, inference, state.skips, env, state.profile.name, run_id, peaks=measured_peaks(),
                            tta=tta)
    machine = {**env, "profile": state.profile.name, "devices": state.devices,
               "models": state.models, "variants": [v.name for v in state.variants],
               "matmul_peak_gflop_per_s": measured_peaks()}
    folder = write_bench_run(state.results, run_id, train, inference, summary, machine,
                             _benchmark_json(session.config), tta=tta)
    if state.readme:
        compact = bench_summary(train, inference, state.skips, env, state.profile.name, run_id,
                                inference_batch=README_BATCH, heading="###", peaks=measured_peaks(), tta=tta)
        splice_marked(state.readme, "bench-summary", compact)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"mnist-bench: wrote {folder} (summary.md, train.csv, inference.csv, tta.csv, "
                            "machine.json)")
