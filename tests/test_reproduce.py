"""The seed-notebook reproduction: case order, per-case rows, the summary and the report."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mnist_models.config import RunConfig, notebook_protocol
from mnist_models.experiments.reproduction import Case, case_row, make_cases
from mnist_models.report.notebook_table import render, summarize

MODELS = ("v0", "v1", "v2")
# The seed notebook's published test accuracies after 3 epochs (its results table).
NOTEBOOK_ACC = {"v0": 91.94, "v1": 73.27, "v2": 98.57}
ENV = {"gpu": None, "cpu": "Test CPU Model", "cpu_count": 2, "torch": "9.9.9", "torch_threads": 2}


def test_cases_are_seed_major_with_the_v1_high_lr_case() -> None:
    cases = make_cases(MODELS, [42, 0])
    assert [c.label for c in cases] == ["v0", "v1", "v1 (lr 0.1)", "v2"] * 2
    assert [c.config.seed for c in cases] == [42] * 4 + [0] * 4
    assert [c.config.model for c in cases] == ["v0", "v1", "v1", "v2"] * 2
    assert [c.config.lr for c in cases] == [0.1, 0.01, 0.1, 0.1] * 2


def test_cases_use_the_seed_protocol() -> None:
    for case in make_cases(MODELS, [1]):
        cfg = case.config
        assert cfg.protocol == "notebook"
        assert (cfg.batch_size, cfg.optimizer, cfg.epochs, cfg.loader) == (32, "sgd", 3, "notebook")
        if case.label == case.config.model:
            assert cfg == RunConfig.from_protocol("notebook", model=cfg.model, seed=1)
    base_v1, high_v1 = (c.config for c in make_cases(["v1"], [1]))
    assert base_v1.lr == notebook_protocol("v1")["lr"] == 0.01
    assert high_v1 == base_v1.with_(lr=0.1)  # only the learning rate differs


def test_cases_pass_overrides_through() -> None:
    cases = make_cases(["v0", "v1"], [5], device="cpu", data_root="/data/mnist")
    assert len(cases) == 3
    for case in cases:
        assert (case.config.device, case.config.data_root) == ("cpu", "/data/mnist")
    assert cases[-1].config.lr == 0.1


def test_cases_without_v1_have_no_extra_case() -> None:
    assert [c.label for c in make_cases(["v2", "v0"], [1, 2])] == ["v2", "v0", "v2", "v0"]


def fake_epochs(acc: float, loss: float, train_s: list[float]) -> list[dict[str, float]]:
    """Per-epoch rows as fit() returns them; only the last epoch's metrics should be kept."""
    rows = []
    for i, seconds in enumerate(train_s, start=1):
        last = i == len(train_s)
        rows.append({
            "epoch": i, "train_s": seconds, "train_img_per_s": 60_000 / seconds, "eval_s": 0.1 * i,
            "test_acc_pct": acc if last else acc - 5.0, "test_loss": loss if last else loss + 1.0,
            "train_acc_pct": acc - 1.0 if last else 50.0, "train_loss": loss + 0.01 if last else 9.0,
        })
    return rows


# Final test accuracy, final test loss and per-epoch training seconds for each case, by seed.
FAKE = {
    42: {"v0": (91.00, 0.30, [2.0, 3.0, 4.0]), "v1": (70.00, 1.00, [2.5, 2.5, 2.5]),
         "v1 (lr 0.1)": (88.00, 0.40, [2.0, 2.0, 2.0]), "v2": (98.00, 0.05, [10.0, 12.0, 11.0])},
    0: {"v0": (92.00, 0.28, [1.0, 3.0, 5.0]), "v1": (75.00, 0.90, [2.0, 3.0, 2.5]),
        "v1 (lr 0.1)": (89.50, 0.38, [2.0, 2.0, 2.0]), "v2": (98.50, 0.04, [9.0, 13.0, 11.0])},
}


@pytest.fixture
def case_frame() -> pd.DataFrame:
    rows = [case_row(case, fake_epochs(*FAKE[case.config.seed][case.label])) for case in make_cases(MODELS, [42, 0])]
    return pd.DataFrame(rows)


def test_case_row_keeps_the_final_epoch_and_time_spread() -> None:
    case = Case("v0", RunConfig.from_protocol("notebook", model="v0", seed=7))
    row = case_row(case, fake_epochs(90.0, 0.3, [3.0, 1.0, 2.0]))
    assert (row["label"], row["model"], row["seed"], row["lr"], row["epochs"]) == ("v0", "v0", 7, 0.1, 3)
    assert (row["test_acc_pct"], row["test_loss"]) == (90.0, 0.3)
    assert (row["train_acc_pct"], row["train_loss"]) == (89.0, pytest.approx(0.31))
    per_epoch = (row["train_s_per_epoch_median"], row["train_s_per_epoch_min"], row["train_s_per_epoch_max"])
    assert per_epoch == (2.0, 1.0, 3.0)
    assert row["train_img_per_s_median"] == pytest.approx(30_000.0)
    assert row["eval_s_median"] == pytest.approx(0.2)


def test_summarize_gives_per_label_mean_and_range(case_frame: pd.DataFrame) -> None:
    summary = summarize(case_frame).set_index("model")
    assert list(summary.index) == ["v0", "v1", "v1 (lr 0.1)", "v2"]
    assert (summary["n seeds"] == 2).all()
    for label in summary.index:
        (acc_a, loss_a, s_a), (acc_b, loss_b, s_b) = FAKE[42][label], FAKE[0][label]
        got = summary.loc[label]
        assert got["acc % mean"] == pytest.approx((acc_a + acc_b) / 2)
        assert got["acc % range"] == f"{min(acc_a, acc_b):.2f}–{max(acc_a, acc_b):.2f}"
        assert got["loss mean"] == pytest.approx((loss_a + loss_b) / 2)
        medians = sorted(s_a)[1], sorted(s_b)[1]
        assert got["s/epoch median"] == pytest.approx(sum(medians) / 2)
        assert got["s/epoch range"] == f"{min(s_a + s_b):.2f}–{max(s_a + s_b):.2f}"
    assert summary.loc["v0", "acc % range"] == "91.00–92.00"


def test_summarize_puts_the_notebook_figures_beside(case_frame: pd.DataFrame) -> None:
    summary = summarize(case_frame).set_index("model")
    for model, acc in NOTEBOOK_ACC.items():
        assert summary.loc[model, "seed acc %"] == acc
        assert 0 < summary.loc[model, "seed loss"] < 1
    # The notebook had no lr-0.1 V1: no figures to compare with.
    assert math.isnan(summary.loc["v1 (lr 0.1)", "seed acc %"])
    assert math.isnan(summary.loc["v1 (lr 0.1)", "seed loss"])


def test_render(case_frame: pd.DataFrame) -> None:
    summary = summarize(case_frame)
    text = render(case_frame, ENV, "run-xyz")
    lines = text.splitlines()
    header = "| " + " | ".join(summary.columns) + " |"
    assert header in lines
    assert lines[lines.index(header) + 1] == "|" + "|".join(["---"] * len(summary.columns)) + "|"
    assert "| model | seed acc % | seed loss | n seeds | acc % mean |" in header
    # One table row per label, with this run's mean and the notebook's figure side by side.
    v0_line = next(line for line in lines if line.startswith("| v0 |"))
    assert "| 91.94 |" in v0_line and "| 91.50 |" in v0_line
    high_lr = next(line for line in lines if line.startswith("| v1 (lr 0.1) |"))
    assert high_lr.startswith("| v1 (lr 0.1) |  |  | 2 |")  # no notebook figures for it
    assert "Seeds: 42, 0 (n = 2 per model)" in text
    assert "Machine: Test CPU Model (2 cores)" in text
    assert "torch 9.9.9, 2 threads" in text and "run-xyz" in text
    protocol = notebook_protocol("v0")
    assert (f"Protocol: batch {protocol['batch_size']}, plain SGD (lr {notebook_protocol('v0')['lr']:g} for v0/v2, "
            f"{notebook_protocol('v1')['lr']:g} for v1), {protocol['epochs']} epochs") in text


def test_report_names_the_gpu_when_there_is_one(case_frame: pd.DataFrame) -> None:
    env = {**ENV, "gpu": "NVIDIA Test GPU"}
    text = render(case_frame, env, "run-1")
    assert "Machine: NVIDIA Test GPU," in text
    assert "Test CPU Model" not in text
