"""``mnist-bench profile``: a short real-MNIST training run under torch.profiler and what it writes
(Chrome trace, TensorBoard file, operator table, stacks, step-time breakdown, profiler overhead),
``--diff`` of two profiles, v2 under another variant, Ctrl-C mid-profile, the run report's profile
section, and the two bad inputs the inventory (tests/test_bad_inputs.py) does not hold.

Three profiles are made once for the module (v0, v1, and v2 channels_last, a few CPU steps each:
seconds); v1 adds a ReLU to v0's layers, so their diff must list the ReLU's operators as added.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import statistics
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from mnist_models.cli import main as cli
from mnist_models.host.kinds import machine_tag
from mnist_models.measure.trace import CATEGORIES, PYTHON_FRAME, Span, diff_ops, is_python, step_totals
from mnist_models.models import get_model
from mnist_models.report.run.other_sections import profile_section
from mnist_models.results import store
from mnist_models.results.provenance import environment
from mnist_models.train.engine import Training

ACTIVE = 3
SCHEDULE = ["--wait", "1", "--warmup", "1", "--active", str(ACTIVE)]


def profile_argv(root: Path, results: Path, model: str | None, *extra: str) -> list[str]:
    """``profile`` on the CPU with a short schedule; model None: the default, v2."""
    return ["profile", *(["--model", model] if model else []), "--device", "cpu", "--data-root", str(root),
            "--results", str(results), *SCHEDULE, *extra]


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> dict[str, Path]:
    """Profile folders of v0 and v1 (in their own results folders: ids are per second)."""
    folders = {}
    for model in ("v0", "v1"):
        results = tmp_path_factory.mktemp(f"results-{model}")
        assert cli.main(profile_argv(mnist_root, results, model)) == 0
        (folder,) = (results / "profiles").iterdir()
        folders[model] = folder
    return folders


@pytest.fixture(scope="module")
def v0(profiles: dict[str, Path]) -> Path:
    return profiles["v0"]


@pytest.fixture(scope="module")
def meta(v0: Path) -> dict:
    return json.loads((v0 / "profile.json").read_text())


def test_the_folder_is_named_by_time_model_and_variant(v0: Path) -> None:
    stamp, model, variant = v0.name.split("-")
    assert len(stamp) == len("20261126T060000Z") and stamp.endswith("Z")
    assert (model, variant) == ("v0", "eager")
    expected = {"trace.json.gz", "tensorboard", "ops.csv", "ops.md", "stacks.txt", "breakdown.csv", "breakdown.png",
                "summary.md", "profile.json"}
    assert expected <= {p.name for p in v0.iterdir()}


def test_the_chrome_trace_is_gzipped_json_with_aten_operators(v0: Path) -> None:
    trace = json.loads(gzip.decompress((v0 / "trace.json.gz").read_bytes()))
    events = trace["traceEvents"]
    ops = [e for e in events if str(e.get("name", "")).startswith("aten::") and e.get("ph") == "X"]
    assert ops, "no complete aten:: operator events in the Chrome trace"
    assert {"aten::addmm", "aten::mm"} & {e["name"] for e in ops}  # v0 is two Linear layers
    assert all("ts" in e and "dur" in e for e in ops)
    steps = [e for e in events if str(e.get("name", "")).startswith("ProfilerStep#")]
    assert len(steps) == ACTIVE


def test_the_tensorboard_file_is_the_same_trace(v0: Path) -> None:
    (file,) = (v0 / "tensorboard").iterdir()
    assert file.name.endswith(".pt.trace.json")
    assert file.read_bytes() == gzip.decompress((v0 / "trace.json.gz").read_bytes())


def test_the_operator_table_lists_self_times_by_shape(v0: Path) -> None:
    ops = pd.read_csv(v0 / "ops.csv")
    assert (ops["self_cpu_us"] >= 0).all() and ops["self_cpu_us"].iloc[0] > 0
    assert ops["self_cpu_us"].is_monotonic_decreasing
    assert ops["operator"].str.startswith("aten::").sum() >= 5
    mm = ops[ops["operator"] == "aten::addmm"]
    assert set(mm["input_shapes"]) >= {"[[10], [32, 784], [784, 10], [], []]", "[[10], [32, 10], [10, 10], [], []]"}
    assert (mm["calls"] == ACTIVE).all() and (mm["calls_per_step"] == 1).all()
    assert not ops["operator"].str.startswith("ProfilerStep").any()
    assert math.isclose(ops["self_cpu_pct"].sum(), 100, rel_tol=1e-6)
    markdown = (v0 / "ops.md").read_text()
    assert "| operator | input shapes |" in markdown and "self CPU µs/step" in markdown
    assert "aten::addmm" in markdown


def test_the_breakdown_adds_up_to_the_step(v0: Path, meta: dict) -> None:
    rows = pd.read_csv(v0 / "breakdown.csv")
    assert tuple(rows["category"]) == CATEGORIES
    assert (rows["ms_per_step"] >= 0).all()
    by = dict(zip(rows["category"], rows["ms_per_step"], strict=True))
    assert by["matmul"] > 0 and by["loss"] > 0 and by["optimizer"] > 0 and by["data"] > 0
    assert by["convolution"] == 0 and by["pooling"] == 0  # v0 has neither
    # The breakdown partitions each ProfilerStep window into slices, so the categories add up to the
    # mean step exactly; the tolerance only absorbs float rounding (0.1%).
    step = meta["breakdown"]["step_ms_mean"]
    assert math.isclose(rows["ms_per_step"].sum(), step, rel_tol=1e-3)
    assert math.isclose(rows["share_pct"].sum(), 100, rel_tol=1e-3)
    assert len(meta["breakdown"]["step_ms"]) == ACTIVE
    # The profiler's windows and our Timer time nearly the same span (the tail of prof.step() is in the
    # window, not in the Timer's): medians (a preempted step skews a mean) within 2×, which catches a
    # unit slip (µs vs ms), not a benchmark.
    window = statistics.median(meta["breakdown"]["step_ms"])
    assert 0.5 < window / meta["overhead"]["median_ms_with"] < 2
    assert (v0 / "breakdown.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_profiler_overhead_is_measured(v0: Path, meta: dict) -> None:
    oh = meta["overhead"]
    assert oh["n_with"] == ACTIVE and oh["n_without"] == 2 * ACTIVE
    assert len(oh["steps_ms_with"]) == ACTIVE and len(oh["steps_ms_without"]) == 2 * ACTIVE
    assert oh["median_ms_without"] > 0 and oh["median_ms_with"] > 0
    assert math.isfinite(oh["ratio"]) and oh["ratio"] > 0
    assert math.isclose(oh["ratio"], oh["median_ms_with"] / oh["median_ms_without"])
    assert oh["trace_save_s"] > 0
    summary = (v0 / "summary.md").read_text()
    assert "## Profiler overhead" in summary and f"{oh['ratio']:.2f}×" in summary


def test_the_summary_says_what_ran_and_how_to_open_it(v0: Path, meta: dict) -> None:
    summary = (v0 / "summary.md").read_text()
    assert machine_tag(environment()) in summary and meta["machine"] == machine_tag(environment())
    assert "wait=1, warmup=1, active=3" in summary
    for category in CATEGORIES:
        assert f"| {category} |" in summary
    assert "ui.perfetto.dev" in summary and "tensorboard --logdir" in summary and "pip install .[profile]" in summary
    assert meta["config"]["model"] == "v0" and meta["variant"] == "eager" and meta["config"]["loader"] == "fast"
    assert meta["schedule"] == {"wait": 1, "warmup": 1, "active": ACTIVE}


def test_the_stacks_are_folded_or_said_to_be_empty(v0: Path, meta: dict) -> None:
    stacks = (v0 / "stacks.txt").read_text()
    summary = (v0 / "summary.md").read_text()
    if not stacks:
        assert "empty: torch recorded no Python stacks" in summary
        return
    lines = stacks.splitlines()
    assert len(lines) == meta["stacks_lines"] == len(set(line.rpartition(" ")[0] for line in lines))
    assert all(line.rpartition(" ")[2].isdigit() for line in lines)
    assert any(";aten::" in line for line in lines)


def test_diff_lists_the_operators_v1_adds(profiles: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = profiles["v0"], profiles["v1"]
    assert cli.main(["profile", "--diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    diff = (b / "diff.md").read_text()
    assert "# Operator diff" in diff and str(a) in diff and str(b) in diff
    assert "| added | aten::relu |" in diff and "| added | aten::threshold_backward |" in diff
    assert "aten::relu" in out
    assert cli.main(["profile", "--diff", str(a), str(b), "--by", "op", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["counts"]["added"] >= 2 and {"aten::relu", "aten::clamp_min"} <= {r["operator"] for r in
                                                                                      result["rows"]}


def test_diff_thresholds() -> None:
    def ops(times: dict[str, float]) -> pd.DataFrame:
        return pd.DataFrame({"operator": list(times), "input_shapes": "[]", "self_device_us": 0.0,
                             "self_cpu_us_per_step": list(times.values())})

    a = ops({"same": 100, "slower": 100, "faster": 100, "tiny": 1, "gone": 5})
    b = ops({"same": 105, "slower": 150, "faster": 50, "tiny": 3, "new": 5})
    status = dict(zip(*diff_ops(a, b, "shape", 10, 10)[["operator", "status"]].T.values, strict=True))
    assert status == {"same": "same", "slower": "slower", "faster": "faster", "tiny": "same", "gone": "removed",
                      "new": "added"}


@pytest.fixture(scope="module")
def v2_channels_last(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    results = tmp_path_factory.mktemp("results-v2")
    assert cli.main(profile_argv(mnist_root, results, None, "--variant", "channels_last")) == 0  # v2 by default
    (folder,) = (results / "profiles").iterdir()
    return folder


def test_v2_spends_time_in_convolution_and_pooling(v2_channels_last: Path) -> None:
    by = dict(pd.read_csv(v2_channels_last / "breakdown.csv")[["category", "ms_per_step"]].values)
    assert by["convolution"] > 0 and by["pooling"] > 0 and by["matmul"] > 0  # TinyVGG: 4 convs, 2 pools, 1 Linear
    operators = set(pd.read_csv(v2_channels_last / "ops.csv")["operator"])
    assert {"aten::convolution_backward", "aten::max_pool2d_with_indices"} <= operators


def test_a_variant_is_applied_and_named(v2_channels_last: Path) -> None:
    meta = json.loads((v2_channels_last / "profile.json").read_text())
    assert v2_channels_last.name.endswith("-v2-channels_last") and meta["variant"] == "channels_last"
    assert meta["runtime"]["channels_last"] is True and meta["config"]["model"] == "v2"
    assert "variant `channels_last`" in meta["ran"] and "NHWC" in meta["ran"]


@pytest.mark.parametrize("when", ["profiling", "writing"])
def test_ctrl_c_leaves_no_half_profile(when: str, mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C in the last unprofiled pass (the trace is already in the folder) or between two renames of
    the profile's files: exit 130, one line, and the new folder is gone with everything in it."""
    real_epoch, real_replace, passes = Training.train_epoch, os.replace, []

    def epoch(self, *args, **kwargs):
        passes.append(1)
        if len(passes) == 3:
            raise KeyboardInterrupt
        return real_epoch(self, *args, **kwargs)

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == "ops.csv":  # profile.json was renamed into place just before
            raise KeyboardInterrupt
        return real_replace(src, dst, *args, **kwargs)

    if when == "profiling":
        monkeypatch.setattr(Training, "train_epoch", epoch)
    else:
        monkeypatch.setattr(store.os, "replace", replace)
    assert cli.main(profile_argv(mnist_root, tmp_path, "v0")) == 130
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mnist-bench:")]
    assert len(lines) == 1 and lines[0].startswith("mnist-bench: interrupted"), lines
    assert list((tmp_path / "profiles").iterdir()) == []


def test_the_run_report_says_what_ran_from_profile_json(v0: Path, meta: dict, tmp_path: Path) -> None:
    """The section's "Ran:" comes from profile.json, never from summary.md; a folder without it says so."""
    run = SimpleNamespace(path=tmp_path / "run")
    older = tmp_path / "profiles" / "20261126T010000Z-v2-eager"
    older.mkdir(parents=True)
    (older / "summary.md").write_text("# Profile\n\nRan: from the rendered page.\n")
    section = "\n".join(profile_section(run, {}))
    assert f"[`{older.name}`](../profiles/{older.name}/summary.md)" in section
    assert "Ran: not recorded (no profile.json)." in section and "from the rendered page" not in section
    newer = tmp_path / "profiles" / v0.name
    newer.mkdir()
    for name in ("profile.json", "breakdown.csv", "summary.md"):
        (newer / name).write_bytes((v0 / name).read_bytes())
    (newer / "summary.md").write_text("Ran: from the rendered page.\n")
    section = "\n".join(profile_section(run, {}))
    assert meta["ran"] in section and "from the rendered page" not in section
    assert "| category | ms/step | % of step |" in section


def test_each_slice_of_a_step_goes_to_one_category() -> None:
    """Synthetic spans (µs): the step's thread runs Python with an operator inside; another thread's
    operator overrides the step's thread (it is waiting: CUDA's autograd thread), another thread's
    idle Python frame does not; a gap with nothing recorded is untraced."""
    main, other = 1, 2
    spans = [Span(0, 80, main, "Python", False), Span(10, 30, main, "convolution", True),
             Span(40, 60, other, "pooling", True), Span(-100, 500, other, "Python", False)]
    totals = step_totals((0, 100), spans, main)
    assert {k: v for k, v in totals.items() if v} == {"Python": 40, "convolution": 20, "pooling": 20, "untraced": 20}
    assert sum(totals.values()) == 100


def test_python_frames_are_told_apart_without_the_newer_flag() -> None:
    """torch 2.11 (the H200 image's) has no ``FunctionEvent.is_python_function``: the name-based test
    used there must agree with the flag wherever the flag exists."""
    model = get_model("v0")
    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        model(torch.rand(8, 1, 28, 28)).sum().backward()
    events = list(prof.events())
    if not hasattr(events[0], "is_python_function"):
        pytest.skip("this torch has no is_python_function to compare with")
    frames = [e for e in events if e.is_python_function]
    assert frames and len(frames) < len(events)
    assert [e.name for e in events if bool(PYTHON_FRAME.search(e.name)) != e.is_python_function] == []
    assert all(is_python(e) == e.is_python_function for e in events)
