"""The ``mnist-bench`` command line: smoke runs, bad input (exit 2, one line) and ``reproduce``.

Most checks call ``mnist_models.cli.main`` in-process; a few run real subprocesses
(``python -m mnist_models`` and the ``mnist-bench`` console script) to prove what reaches a
terminal. Every bad-input case uses a fast config (v0, fast loader, 1 epoch) so that a
validation that wrongly passed would cost seconds, not minutes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from mnist_models import data
from mnist_models.cli import main as cli
from mnist_models.config import COMPILE_MODES, DEVICES, PRECISIONS
from mnist_models.experiments.reproduction import NOTEBOOK_TABLE
from mnist_models.models import list_models
from mnist_models.results.provenance import environment, machine_tag

# The seed notebook's architectures (hidden_units=10): parameters and forward FLOPs
# (2 per multiply-add), worked out by hand:
#   v0/v1: 784*10+10 + 10*10+10 = 7,960 params; 2*(784*10 + 10*10) = 15,880 FLOPs
#   v2:    (1*9*10+10) + 3*(10*9*10+10) + (490*10+10) = 7,740 params;
#          2*(28*28*10*9 + 28*28*10*90 + 2*14*14*10*90 + 490*10) = 2,267,720 FLOPs
EXPECTED_MODELS = {"v0": ("7,960", "15,880"), "v1": ("7,960", "15,880"), "v2": ("7,740", "2,267,720")}

SEEDED_LINE = b'{"run_id": "seeded-before-test", "kind": "train", "epoch": 1, "test_acc_pct": 12.5}\n'
SUBPROCESS_TIMEOUT = 300


# --------------------------------------------------------------------------------------------
# Helpers


def console_script() -> Path:
    """The installed ``mnist-bench`` script: next to the interpreter, else on PATH."""
    candidate = Path(sys.executable).parent / "mnist-bench"
    if candidate.is_file():
        return candidate
    found = shutil.which("mnist-bench")
    if found is None:
        pytest.skip("the mnist-bench console script is not installed next to this interpreter or on PATH")
    return Path(found)


def run_cli(argv: list[str], cwd: Path, root: Path, *, module: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process (the console script, or ``python -m mnist_models``)."""
    command = [sys.executable, "-m", "mnist_models"] if module else [str(console_script())]
    env = {**os.environ, "MNIST_BENCH_DATA": str(root), "COLUMNS": "200"}
    return subprocess.run(command + argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)


def assert_one_line_usage_error(code: int, stderr: str) -> str:
    """Exit 2 and exactly one non-empty stderr line ``mnist-bench: error: …``; returns that line."""
    assert code == 2, f"exit code {code}, stderr:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got:\n{stderr}"
    assert lines[0].startswith("mnist-bench: error: "), lines[0]
    assert len(lines[0]) > len("mnist-bench: error: ")
    return lines[0]


def fast_train_argv(root: Path, results: Path) -> list[str]:
    return ["train", "--model", "v0", "--loader", "fast", "--epochs", "1", "--json",
            "--data-root", str(root), "--results", str(results)]


def copy_mnist(root: Path, dest: Path) -> Path:
    """A private copy of the four verified files under ``dest`` (torchvision layout)."""
    target = data.raw_dir(dest)
    target.mkdir(parents=True)
    for name in data.FILES:
        shutil.copyfile(data.raw_dir(root) / name, target / name)
    return dest


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in-process commands from a scratch directory (default ``results`` lands there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def seeded_results(tmp_path: Path) -> Path:
    """A results folder whose runs.jsonl already holds one known line."""
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "runs.jsonl").write_bytes(SEEDED_LINE)
    return folder


def assert_results_untouched(folder: Path) -> None:
    assert (folder / "runs.jsonl").read_bytes() == SEEDED_LINE
    assert sorted(p.name for p in folder.iterdir()) == ["runs.jsonl"]


# --------------------------------------------------------------------------------------------
# Smoke: models, data, --help


def test_models_lists_the_registry(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "--json"]) == 0
    out, err = capsys.readouterr()
    listing = json.loads(out.strip().splitlines()[-1])["models"]
    rows = {m["name"]: (f"{m['parameters']:,}", f"{m['flops_per_image']:,}") for m in listing}
    assert [m["name"] for m in listing] == list_models() and all(m["description"] for m in listing)
    assert {name: rows[name] for name in EXPECTED_MODELS} == EXPECTED_MODELS  # the seed's, pinned
    assert err == ""
    assert cli.main(["models"]) == 0  # the table for people names every model too
    table = capsys.readouterr().out
    assert all(name in table for name in EXPECTED_MODELS)


def test_data_verifies_the_four_files(mnist_root: Path, in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["data", "--data-root", str(mnist_root), "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out.strip().splitlines()[-1])
    files = {f["name"]: f for f in report["files"]}
    assert set(files) == set(data.FILES) and report["root"] == str(mnist_root)
    for name, spec in data.FILES.items():
        assert files[name]["sha256"] == spec.sha256 and files[name]["verified"]
        assert files[name]["bytes"] == Path(files[name]["path"]).stat().st_size
    assert err == ""
    assert cli.main(["data", "--data-root", str(mnist_root)]) == 0
    assert "match the official SHA-256" in capsys.readouterr().out


def test_python_dash_m_help(mnist_root: Path, tmp_path: Path) -> None:
    proc = run_cli(["--help"], tmp_path, mnist_root, module=True)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for command in ("data", "models", "train", "reproduce"):
        assert command in proc.stdout
    assert proc.stdout.startswith("usage: mnist-bench")


def test_help_in_process_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--model", "--device", "--precision", "--compile", "--loader", "--batch-size", "--json",
                   "--results", "--data-root"):
        assert option in out


# --------------------------------------------------------------------------------------------
# Smoke: one real training run, end to end


@pytest.fixture(scope="module")
def trained(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One ``mnist-bench train ... --json`` through the installed console script."""
    work = tmp_path_factory.mktemp("train-smoke")
    results_dir = work / "out"
    proc = run_cli(fast_train_argv(mnist_root, results_dir), work, mnist_root)
    assert proc.returncode == 0, proc.stderr
    return {"proc": proc, "results": results_dir, "work": work}


@pytest.mark.slow
class TestTrainEndToEnd:
    """One real training run through the console script (the ``trained`` fixture), then what it wrote."""

    def test_train_json_summary(self, trained: dict, mnist_root: Path) -> None:
        proc = trained["proc"]
        assert "Traceback" not in proc.stderr
        assert "epoch 1/1" in proc.stderr  # progress goes to stderr, one line per epoch off a terminal
        last = proc.stdout.rstrip("\n").splitlines()[-1]
        summary = json.loads(last)

        cfg = summary["config"]
        assert cfg["model"] == "v0" and cfg["loader"] == "fast" and cfg["epochs"] == 1
        assert cfg["data_root"] == str(mnist_root)
        assert isinstance(summary["test_acc_pct"], float) and 80.0 < summary["test_acc_pct"] <= 100.0
        assert math.isfinite(summary["test_loss"]) and 0.0 < summary["test_loss"] < 1.0
        assert summary["seconds_per_epoch"] > 0
        # One epoch of 60,000 images: throughput is images over the epoch's time.
        assert summary["images_per_s"] == pytest.approx(60_000 / summary["seconds_per_epoch"], rel=1e-6)
        assert [e["epoch"] for e in summary["epochs"]] == [1]
        assert summary["epochs"][0]["test_acc_pct"] == summary["test_acc_pct"]
        env = summary["environment"]
        assert env["torch"] == torch.__version__
        assert {"cpu", "cpu_count", "torch_threads"} <= set(env)


    def test_train_appends_one_row_per_epoch(self, trained: dict) -> None:
        summary = json.loads(trained["proc"].stdout.rstrip("\n").splitlines()[-1])
        lines = (trained["results"] / "runs.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1
        row = json.loads(lines[0])
        assert row["run_id"] == summary["run_id"]
        assert row["kind"] == "train" and row["epoch"] == 1
        assert row["config"] == summary["config"]
        assert row["environment"] == summary["environment"]
        assert row["test_acc_pct"] == summary["test_acc_pct"]
        assert not (trained["work"] / "results").exists(), "--results was ignored"


    def test_second_train_run_appends(self, trained: dict, mnist_root: Path, in_tmp: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
        results_dir = in_tmp / "again"
        results_dir.mkdir()
        first = (trained["results"] / "runs.jsonl").read_bytes()
        (results_dir / "runs.jsonl").write_bytes(first)

        assert cli.main(fast_train_argv(mnist_root, results_dir)) == 0
        summary = json.loads(capsys.readouterr().out.rstrip("\n").splitlines()[-1])

        after = (results_dir / "runs.jsonl").read_bytes()
        assert after.startswith(first), "the first run's row was rewritten"
        lines = after.decode("utf-8").splitlines()
        assert len(lines) == 2
        second = json.loads(lines[1])
        assert second["run_id"] == summary["run_id"] != json.loads(lines[0])["run_id"]
        # Same seed, same config: the same accuracy as the first run (the loop is deterministic on CPU).
        if not torch.cuda.is_available():
            assert second["test_acc_pct"] == json.loads(lines[0])["test_acc_pct"]


# --------------------------------------------------------------------------------------------
# Bad input: exit 2, one line, nothing written


@dataclass(frozen=True)
class Bad:
    extra: tuple[str, ...]  # appended to the fast train argv (argparse: the last value wins)
    expect: tuple[str, ...] = ()  # substrings of the error line
    command: str = "train"
    skip_if_cuda: bool = False


BAD_INPUTS = {
    "unknown-model": Bad(("--model", "v9"), ("'v9'", "v0", "v1", "v2")),
    "unknown-device": Bad(("--device", "tpu"), ("'tpu'", *DEVICES)),
    "unknown-precision": Bad(("--precision", "fp8"), ("'fp8'", *PRECISIONS)),
    "unknown-compile": Bad(("--compile", "turbo"), ("'turbo'", *COMPILE_MODES)),
    "unknown-loader": Bad(("--loader", "slow"), ("'slow'", "notebook", "fast")),
    "unknown-optimizer": Bad(("--optimizer", "rmsprop"), ("'rmsprop'", "sgd", "adam")),
    "unknown-protocol": Bad(("--protocol", "paper"), ("'paper'", "notebook")),
    "cuda-without-cuda": Bad(("--device", "cuda"), ("cuda", "--device cpu"), skip_if_cuda=True),
    "fp16-on-cpu": Bad(("--precision", "fp16", "--device", "cpu"), ("fp16", "CUDA")),
    "cuda-graph-on-cpu": Bad(("--cuda-graph", "--device", "cpu"), ("--cuda-graph", "CUDA")),
    "cuda-graph-with-compile": Bad(("--cuda-graph", "--compile", "default"), ("cuda_graph", "compile")),
    "batch-size-zero": Bad(("--batch-size", "0"), ("batch size", "0")),
    "batch-size-negative": Bad(("--batch-size", "-3"), ("batch size", "-3")),
    "batch-size-text": Bad(("--batch-size", "abc"), ("--batch-size", "'abc'")),
    "label-smoothing-one": Bad(("--label-smoothing", "1"), ("label smoothing", "1.0")),
    "eval-batch-size-zero": Bad(("--eval-batch-size", "0"), ("evaluation batch size", "0")),
    "epochs-zero": Bad(("--epochs", "0"), ("epochs", "0")),
    "lr-zero": Bad(("--lr", "0"), ("learning rate",)),
    "lr-text": Bad(("--lr", "fast"), ("--lr", "'fast'")),
    "unknown-option": Bad(("--frobnicate",), ("--frobnicate",)),
    "unknown-subcommand": Bad((), ("'frobnicate'", "train", "reproduce"), command="frobnicate"),
    "no-subcommand": Bad((), ("COMMAND",), command=""),
    "reproduce-seeds-text": Bad(("--seeds", "abc"), ("--seeds", "'abc'"), command="reproduce"),
    "reproduce-seeds-zero": Bad(("--seeds", "0"), ("--seeds",), command="reproduce"),
    "reproduce-seeds-repeated": Bad(("--seeds", "1,1"), ("--seeds", "repeats"), command="reproduce"),
    "reproduce-unknown-model": Bad(("--models", "v0,v9"), ("'v9'", "v0, v1, v2"), command="reproduce"),
    "reproduce-unknown-device": Bad(("--device", "tpu"), ("'tpu'",), command="reproduce"),
    "reproduce-missing-readme": Bad(("--readme", "no-such-README.md"), ("--readme", "no-such-README.md"),
                                    command="reproduce"),
    "speedup-unknown-model": Bad(("--model", "v9"), ("'v9'", "v0, v1, v2"), command="speedup"),
    "speedup-seeds-text": Bad(("--seeds", "abc"), ("--seeds", "'abc'"), command="speedup"),
}


def bad_argv(case: Bad, root: Path, results: Path) -> list[str]:
    if case.command == "train":
        return fast_train_argv(root, results) + list(case.extra)
    if case.command == "reproduce":
        return ["reproduce", "--models", "v0", "--seeds", "42,", "--data-root", str(root),
                "--results", str(results), *case.extra]
    if case.command == "speedup":
        return ["speedup", "--model", "v0", "--seeds", "42,", "--data-root", str(root),
                "--results", str(results), *case.extra]
    return [case.command] if case.command else []


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line(name: str, mnist_root: Path, in_tmp: Path, seeded_results: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    case = BAD_INPUTS[name]
    if case.skip_if_cuda and torch.cuda.is_available():
        pytest.skip("this machine has CUDA, so --device cuda is valid here")
    code = cli.main(bad_argv(case, mnist_root, seeded_results))
    out, err = capsys.readouterr()
    line = assert_one_line_usage_error(code, err)
    for text in case.expect:
        assert text in line, f"{text!r} not in {line!r}"
    assert out == ""
    assert_results_untouched(seeded_results)
    assert sorted(p.name for p in in_tmp.iterdir()) == ["results"], "something else was written"


def test_results_under_a_regular_file(mnist_root: Path, in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Tests run as root, where a chmod-ed folder stays writable: a file as the parent fails for everyone.
    blocker = in_tmp / "blocker"
    blocker.write_bytes(b"not a folder\n")
    code = cli.main(fast_train_argv(mnist_root, blocker / "results"))
    line = assert_one_line_usage_error(code, capsys.readouterr().err)
    assert "--results" in line and str(blocker / "results") in line
    assert blocker.read_bytes() == b"not a folder\n"
    assert sorted(p.name for p in in_tmp.iterdir()) == ["blocker"]


@pytest.fixture
def corrupted_root(mnist_root: Path, tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A copy of MNIST with one byte of the test images flipped: (root, corrupted file, its bytes)."""
    root = copy_mnist(mnist_root, tmp_path / "mnist-copy")
    path = data.raw_dir(root) / "t10k-images-idx3-ubyte"
    raw = bytearray(path.read_bytes())
    raw[5_000] ^= 0xFF
    path.write_bytes(bytes(raw))
    return root, path, bytes(raw)


@pytest.mark.parametrize("command", ["train", "data"])
def test_corrupted_data_file(command: str, corrupted_root: tuple[Path, Path, bytes], in_tmp: Path,
                             seeded_results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, path, corrupted = corrupted_root
    argv = fast_train_argv(root, seeded_results) if command == "train" else ["data", "--data-root", str(root)]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    line = assert_one_line_usage_error(code, err)
    assert "t10k-images-idx3-ubyte" in line and str(path) in line
    assert "--repair" in line
    assert out == ""
    assert path.read_bytes() == corrupted, "the corrupted file was modified without --repair"
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(data.FILES)
    assert_results_untouched(seeded_results)


def test_reproduce_with_no_models_is_a_usage_error(mnist_root: Path, in_tmp: Path, seeded_results: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["reproduce", "--models", ",", "--data-root", str(mnist_root), "--results", str(seeded_results)])
    assert_one_line_usage_error(code, capsys.readouterr().err)
    assert_results_untouched(seeded_results)


# The same guarantees through a real process: nothing but the one line reaches the terminal.


def test_subprocess_unknown_model(mnist_root: Path, tmp_path: Path, seeded_results: Path) -> None:
    proc = run_cli(fast_train_argv(mnist_root, seeded_results) + ["--model", "v9"], tmp_path, mnist_root,
                   module=True)
    line = assert_one_line_usage_error(proc.returncode, proc.stderr)
    assert "v0, v1, v2" in line
    assert proc.stdout == ""
    assert_results_untouched(seeded_results)


def test_subprocess_batch_size_text(mnist_root: Path, tmp_path: Path, seeded_results: Path) -> None:
    proc = run_cli(fast_train_argv(mnist_root, seeded_results) + ["--batch-size", "abc"], tmp_path, mnist_root)
    line = assert_one_line_usage_error(proc.returncode, proc.stderr)
    assert "'abc'" in line
    assert proc.stdout == ""
    assert_results_untouched(seeded_results)


def test_subprocess_unknown_subcommand(mnist_root: Path, tmp_path: Path) -> None:
    proc = run_cli(["frobnicate"], tmp_path, mnist_root)
    line = assert_one_line_usage_error(proc.returncode, proc.stderr)
    assert "'frobnicate'" in line
    assert proc.stdout == ""


def test_subprocess_corrupted_data(corrupted_root: tuple[Path, Path, bytes], tmp_path: Path,
                                   seeded_results: Path) -> None:
    root, path, corrupted = corrupted_root
    proc = run_cli(fast_train_argv(root, seeded_results), tmp_path, root, module=True)
    line = assert_one_line_usage_error(proc.returncode, proc.stderr)
    assert "t10k-images-idx3-ubyte" in line and "--repair" in line
    assert path.read_bytes() == corrupted
    assert_results_untouched(seeded_results)


# --------------------------------------------------------------------------------------------
# reproduce: one small real run


@pytest.mark.slow
def test_reproduce_v0_one_seed(mnist_root: Path, in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results_dir = in_tmp / "out"
    readme = in_tmp / "README.md"
    head, tail = "# Project\n\nBefore the table.\n", "\nAfter the table.\n"
    readme.write_text(f"{head}<!-- seed-table:start -->old<!-- seed-table:end -->{tail}", encoding="utf-8")

    code = cli.main(["reproduce", "--models", "v0", "--seeds", "42,", "--results", str(results_dir),
                     "--data-root", str(mnist_root), "--readme", str(readme)])
    out, err = capsys.readouterr()
    assert code == 0, err

    with open(results_dir / "seed_reproduction.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    row = rows[0]
    assert row["label"] == "v0" and row["model"] == "v0"
    assert int(row["seed"]) == 42 and float(row["lr"]) == 0.1 and int(row["epochs"]) == 3
    acc = float(row["test_acc_pct"])
    assert 90.0 <= acc <= 100.0

    markdown = (results_dir / "seed_reproduction.md").read_text(encoding="utf-8")
    assert f"{NOTEBOOK_TABLE['v0'][0]:.2f}" == "91.94"  # the seed notebook's published v0 figure
    assert "91.94" in markdown
    assert f"{acc:.2f}" in markdown
    assert "Seeds: 42" in markdown

    records = [json.loads(line) for line in (results_dir / "runs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert {r["kind"] for r in records} == {"reproduce"}
    assert len({r["run_id"] for r in records}) == 1
    for r in records:
        assert r["config"]["protocol"] == "notebook" and r["config"]["loader"] == "notebook"
        assert r["config"]["model"] == "v0" and r["config"]["epochs"] == 3
    assert records[-1]["test_acc_pct"] == pytest.approx(acc)

    spliced = readme.read_text(encoding="utf-8")
    kind = environment()["machine_kind"]
    assert spliced.startswith(f"{head}<!-- seed-table:start -->old")  # other machines' text is kept
    assert spliced.endswith(f"<!-- seed-table@{kind}:end -->\n<!-- seed-table:end -->{tail}")
    block = spliced.split(f"<!-- seed-table@{kind}:start -->\n", 1)[1]
    assert block.startswith(f"**{machine_tag()}** · kind `{kind}` · measured ")  # which machine, when
    assert "#" + markdown.strip().splitlines()[0] in block and markdown.strip().splitlines()[2] in block
    assert markdown.strip() in out


def test_train_flags_are_generated_from_the_config_fields(capsys: pytest.CaptureFixture[str]) -> None:
    """Every RunConfig field a training run sets is a `train` flag, with the field's own help and its
    real defaults, including what a protocol changes (v1's lr under --protocol notebook)."""
    from dataclasses import fields

    from mnist_models.cli.commands.train import SETTINGS
    from mnist_models.config import NOTEBOOK_LR, RunConfig

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for field in fields(RunConfig):
        assert field.metadata["help"], field.name  # every setting says what it is
        if field.name in SETTINGS:
            flag = field.metadata["flag"] or "--" + field.name.replace("_", "-")
            assert flag in text and " ".join(field.metadata["help"].split()) in text, field.name
    assert f"default {RunConfig.lr:g}; {NOTEBOOK_LR['v1']:g} for v1 under --protocol notebook" in text
    for choice in ("auto|cpu|cuda", "fp32|bf16|fp16|auto", "sgd|adam"):
        assert choice in text
