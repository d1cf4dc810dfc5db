"""``mnist-bench profile``: a short real-MNIST training run under torch.profiler and what it writes
(Chrome trace, TensorBoard file, operator table, stacks, step-time breakdown, profiler overhead),
``--diff`` of two profiles, and bad input (exit 2, one line).

Two profiles are made once for the module (v0 and v1, a few CPU steps each: seconds); v1 adds a
ReLU to v0's layers, so their diff must list the ReLU's operators as added.
"""

from __future__ import annotations

import gzip
import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from mnist_models.cli import main as cli
from mnist_models.measure.profile_report import CATEGORIES, PYTHON_FRAME, Span, diff_ops, is_python, step_totals
from mnist_models.models import get_model
from mnist_models.results.provenance import environment, machine_tag

ACTIVE = 3
SCHEDULE = ["--wait", "1", "--warmup", "1", "--active", str(ACTIVE)]


def profile_argv(root: Path, results: Path, model: str, *extra: str) -> list[str]:
    return ["profile", "--model", model, "--device", "cpu", "--data-root", str(root), "--results", str(results),
            *SCHEDULE, *extra]


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


# --------------------------------------------------------------------------------------------
# Bad input: exit 2, one line, no traceback


def assert_one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mnist-bench: error: "), err
    return lines[0]


BAD = {
    "unknown-variant": (["--variant", "turbo"], ("'turbo'", "eager", "--variant")),
    "cuda-only-variant": (["--variant", "fp16"], ("fp16", "CUDA")),
    "inference-only-variant": (["--variant", "compile-freeze-bf16"], ("inference only",)),
    "active-zero": (["--active", "0"], ("active", "≥ 1")),
    "warmup-zero": (["--warmup", "0"], ("--warmup 0", "fix")),
    "unknown-model": (["--model", "v9"], ("'v9'",)),
    "too-few-batches": (["--batch-size", "30000"], ("batch size 30000", "fix")),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_profile_input(name: str, mnist_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra, expect = BAD[name]
    code = cli.main(profile_argv(mnist_root, tmp_path / "results", "v0") + extra)
    line = assert_one_line_error(code, capsys.readouterr().err)
    assert all(text in line for text in expect), line
    assert not (tmp_path / "results" / "profiles").exists()


def test_cuda_without_a_gpu(mnist_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA, so --device cuda is valid here")
    code = cli.main(profile_argv(mnist_root, tmp_path, "v0")[:-len(SCHEDULE)] + ["--device", "cuda"])
    assert "cuda" in assert_one_line_error(code, capsys.readouterr().err)


def test_bad_diff_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing, empty, broken = tmp_path / "missing", tmp_path / "empty", tmp_path / "broken"
    empty.mkdir()
    broken.mkdir()
    (broken / "ops.csv").write_text("name,value\nx,1\n")
    for a, b, expect in ((missing, empty, "is not a folder"), (empty, empty, "no ops.csv"),
                         (broken, broken, "lacks the columns")):
        line = assert_one_line_error(cli.main(["profile", "--diff", str(a), str(b)]), capsys.readouterr().err)
        assert expect in line and str(a) in line and "fix: " in line
    assert not (empty / "diff.md").exists() and not (broken / "diff.md").exists()


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
