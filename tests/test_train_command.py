"""``mnist-bench train`` through the command line: what a run decides, once, and what its rows record.

Each run is tiny (v0, one epoch at batch 1,000: 60 steps) and in-process. ``--precision auto`` is
measured once per run, before training, said once on stderr and carried by every row; a protocol or
explicit flags pin the choices, and nothing is measured; ``--compile default`` trains through
``torch.compile``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mnist_models.cli import main as cli
from mnist_models.train import auto

TINY = ["--model", "v0", "--epochs", "1", "--batch-size", "1000"]


def train(argv: list[str], root: Path, results: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, list[dict],
                                                                                                 str]:
    """Run ``train`` in-process with ``--json``; its summary, its rows in runs.jsonl and its stderr."""
    code = cli.main(["train", *TINY, *argv, "--json", "--data-root", str(root), "--results", str(results)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = [json.loads(line) for line in (results / "runs.jsonl").read_text(encoding="utf-8").splitlines()]
    return json.loads(captured.out.strip().splitlines()[-1]), rows, captured.err


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """Every call of the auto probe (really measured), with its candidates."""
    calls: list[list[Any]] = []
    measure = auto.probe_steps

    def counted(keys: list[Any]) -> dict[Any, float]:
        calls.append(list(keys))
        return measure(keys)

    monkeypatch.setattr(auto, "probe_steps", counted)
    return calls


@pytest.mark.slow
def test_auto_is_measured_once_said_once_and_carried_by_every_row(mnist_root: Path, tmp_path: Path, probes: list,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    summary, rows, err = train(["--loader", "fast", "--precision", "auto"], mnist_root, tmp_path, capsys)
    assert len(probes) == 1 and len(probes[0]) == 4  # fp32/bf16 × NCHW/NHWC, measured together, once
    reason = summary["runtime"]["auto_reason"]
    assert reason.startswith("precision auto → ") and "memory format auto → " in reason
    assert err.count("precision auto → ") == 1 and reason in " ".join(err.split())
    (row,) = rows
    assert row["runtime"] == summary["runtime"] and row["config"] == summary["config"]
    ran = row["config"]  # the concrete config that every stage read
    assert (ran["precision"], ran["channels_last"], ran["device"]) == (row["runtime"]["precision"],
                                                                       row["runtime"]["channels_last"], "cpu")
    assert ran["precision"] in ("fp32", "bf16") and isinstance(ran["channels_last"], bool)


@pytest.mark.slow
def test_protocol_notebook_pins_the_choices_and_measures_nothing(mnist_root: Path, tmp_path: Path, probes: list,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    summary, (row,), err = train(["--protocol", "notebook"], mnist_root, tmp_path, capsys)
    assert probes == [] and "auto →" not in err
    ran = row["config"]
    assert (ran["protocol"], ran["loader"], ran["optimizer"], ran["lr"], ran["seed"]) == ("notebook", "notebook",
                                                                                          "sgd", 0.1, 42)
    assert (ran["precision"], ran["channels_last"], ran["batch_size"]) == ("fp32", False, 1000)
    assert row["runtime"]["auto_reason"] == "" and row["epoch"] == 1 and row["train_images"] == 60_000
    assert summary["test_acc_pct"] == row["test_acc_pct"] > 50.0


@pytest.mark.slow
def test_compile_default_trains_through_torch_compile(mnist_root: Path, tmp_path: Path, probes: list,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _, (row,), _ = train(["--loader", "fast", "--compile", "default", "--precision", "fp32", "--no-channels-last"],
                         mnist_root, tmp_path, capsys)
    assert probes == []
    assert (row["config"]["compile"], row["config"]["precision"], row["config"]["channels_last"]) == ("default",
                                                                                                      "fp32", False)
    assert row["train_images"] == 60_000 and row["test_acc_pct"] > 50.0


@pytest.mark.slow
def test_seeds_train_once_each_and_report_mean_std_and_a_t_interval(mnist_root: Path, tmp_path: Path, probes: list,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``--seeds 3``: three runs with the automatic choices made once, one run id, each seed in its rows;
    the summary's mean, sample std and Student-t interval are those of the three seeds' figures."""
    summary, rows, _ = train(["--loader", "fast", "--seeds", "3"], mnist_root, tmp_path, capsys)
    assert len(probes) == 1  # measured once for all seeds
    assert [s["seed"] for s in summary["seeds"]] == [0, 1, 2]
    assert [r["config"]["seed"] for r in rows] == [0, 1, 2] and len({r["run_id"] for r in rows}) == 1
    accuracies = [s["test_acc_pct"] for s in summary["seeds"]]
    assert accuracies == [r["test_acc_pct"] for r in rows] and len(set(accuracies)) == 3  # other seeds, other runs
    acc = summary["stats"]["test_acc_pct"]
    mean = sum(accuracies) / 3
    std = (sum((a - mean) ** 2 for a in accuracies) / 2) ** 0.5
    half = 4.302653 * std / 3 ** 0.5  # Student's t, 2 degrees of freedom, 97.5th percentile
    assert acc["n"] == 3 and acc["mean"] == pytest.approx(mean) and acc["std"] == pytest.approx(std)
    assert (acc["ci_low"], acc["ci_high"]) == (pytest.approx(mean - half), pytest.approx(mean + half))
