"""The ``mnist-bench`` command line: the listings, ``--help``, one real training run end to end and
``reproduce``.

Every check calls ``mnist_models.cli.main`` in process but one, ``python -m mnist_models --help``, which
proves the module entry point and its program name in a real process. Bad input (exit 2, one line,
nothing written) is the inventory's, tests/test_bad_inputs.py, which also runs the console script and
``python -m`` on a bad input through ``run_cli`` here.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mnist_models import data
from mnist_models.cli import main as cli
from mnist_models.host.kinds import machine_tag
from mnist_models.models import list_models
from mnist_models.results.provenance import environment

from conftest import CLI_TRAIN

# The seed notebook's architectures (hidden_units=10): parameters and forward FLOPs
# (2 per multiply-add), worked out by hand:
#   v0/v1: 784*10+10 + 10*10+10 = 7,960 params; 2*(784*10 + 10*10) = 15,880 FLOPs
#   v2:    (1*9*10+10) + 3*(10*9*10+10) + (490*10+10) = 7,740 params;
#          2*(28*28*10*9 + 28*28*10*90 + 2*14*14*10*90 + 490*10) = 2,267,720 FLOPs
EXPECTED_MODELS = {"v0": ("7,960", "15,880"), "v1": ("7,960", "15,880"), "v2": ("7,740", "2,267,720")}

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


def fast_train_argv(root: Path, results: Path) -> list[str]:
    """The session's CLI smoke run (``CLI_TRAIN``: v0, fast loader, one epoch, --json) into ``results``."""
    return [*CLI_TRAIN, "--data-root", str(root), "--results", str(results)]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in-process commands from a scratch directory (default ``results`` lands there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


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


@pytest.mark.slow
class TestTrainEndToEnd:
    """One real training run through the CLI (``cli_train`` in conftest.py), then what it printed and wrote."""

    def test_train_json_summary(self, cli_train: dict, mnist_root: Path) -> None:
        assert cli_train["code"] == 0, cli_train["err"]
        assert "Traceback" not in cli_train["err"]
        assert "epoch 1/1" in cli_train["err"]  # progress goes to stderr, one line per epoch off a terminal
        summary = json.loads(cli_train["out"].rstrip("\n").splitlines()[-1])

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

    def test_train_appends_one_row_per_epoch(self, cli_train: dict) -> None:
        summary = json.loads(cli_train["out"].rstrip("\n").splitlines()[-1])
        lines = (cli_train["results"] / "runs.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1
        row = json.loads(lines[0])
        assert row["run_id"] == summary["run_id"]
        assert row["kind"] == "train" and row["epoch"] == 1
        assert row["config"] == summary["config"]
        assert row["environment"] == summary["environment"]
        assert row["test_acc_pct"] == summary["test_acc_pct"]
        assert not (cli_train["work"] / "results").exists(), "--results was ignored"

    def test_second_train_run_appends(self, cli_train: dict, mnist_root: Path, in_tmp: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
        results_dir = in_tmp / "again"
        results_dir.mkdir()
        first = (cli_train["results"] / "runs.jsonl").read_bytes()
        (results_dir / "runs.jsonl").write_bytes(first)
        # The first run's automatic choices, made explicit: a loaded machine's probe may choose otherwise.
        chose = json.loads(first)["config"]
        layout = "--channels-last" if chose["channels_last"] else "--no-channels-last"
        explicit = ["--precision", chose["precision"], layout]

        assert cli.main([*fast_train_argv(mnist_root, results_dir), *explicit]) == 0
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
    assert "91.94" in markdown  # the seed notebook's published v0 figure, beside ours
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
    assert block.startswith(f"**{machine_tag(environment())}** · kind `{kind}` · measured ")  # which machine, when
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
