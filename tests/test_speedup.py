"""The fast-path speed-up comparison: interleaved cases and per-seed ratios."""

from __future__ import annotations

import pandas as pd
import pytest

from mnist_models.experiments.fast_path import BASELINE, make_cases
from mnist_models.experiments.reproduction import case_row
from mnist_models.report.speedup_table import render, summarize
from mnist_models.results.provenance import environment


def test_default_paths_are_the_notebook_and_the_fast_path_in_auto_precision():
    cases = make_cases("v2", [0, 1], device="cpu")
    assert [(c.label, c.config.seed) for c in cases] == [("notebook", 0), ("fast auto", 0), ("notebook", 1),
                                                          ("fast auto", 1)]
    assert (cases[0].config.precision, cases[1].config.precision) == ("fp32", "auto")


def test_cases_interleave_the_paths_per_seed():
    cases = make_cases("v2", [0, 1], ["fp32", "bf16"], device="cpu")
    assert [(c.label, c.config.seed) for c in cases] == [
        ("notebook", 0), ("fast fp32", 0), ("fast bf16", 0), ("notebook", 1), ("fast fp32", 1), ("fast bf16", 1)]
    notebook, fast, bf16 = cases[:3]
    assert (notebook.config.loader, notebook.config.precision) == ("notebook", "fp32")
    assert (fast.config.loader, fast.config.precision) == ("fast", "fp32")
    assert (bf16.config.loader, bf16.config.precision) == ("fast", "bf16")
    for case in cases:  # same protocol otherwise: comparable accuracy
        cfg = case.config
        assert (cfg.batch_size, cfg.lr, cfg.optimizer, cfg.epochs, cfg.channels_last) == (32, 0.1, "sgd", 3, None)


def fake_rows(label, seed, epoch_s, acc):
    case = next(c for c in make_cases("v2", [seed], ["fp32", "bf16"]) if c.label == label)
    epochs = [{"train_s": epoch_s, "train_img_per_s": 60000 / epoch_s, "test_acc_pct": acc, "test_loss": 0.05,
               "train_acc_pct": acc, "train_loss": 0.05, "eval_s": 0.5} for _ in range(3)]
    reason = "precision auto → bf16: measured" if label == "fast bf16" else ""
    return {**case_row(case, epochs), "wall_s": 3 * epoch_s + 2, "channels_last": label != BASELINE,
            "precision": "bf16" if label == "fast bf16" else "fp32", "auto_reason": reason}


def test_speedup_is_the_per_seed_ratio_to_the_notebook():
    frame = pd.DataFrame([fake_rows("notebook", 0, 10.0, 98.2), fake_rows("fast fp32", 0, 4.0, 98.3),
                          fake_rows("fast bf16", 0, 2.0, 98.1), fake_rows("notebook", 1, 12.0, 98.4),
                          fake_rows("fast fp32", 1, 3.0, 98.5), fake_rows("fast bf16", 1, 3.0, 98.0)])
    summary = summarize(frame).set_index("path")
    assert summary.loc["notebook", "speed-up mean"] == pytest.approx(1.0)
    assert summary.loc["fast fp32", "speed-up mean"] == pytest.approx((10 / 4 + 12 / 3) / 2)
    assert summary.loc["fast fp32", "speed-up range"] == "2.50–4.00"
    # ratios 2.5 and 4.0: std 1.06; t(0.975, 1 dof) = 12.706 → mean 3.25 ± 9.53
    assert summary.loc["fast fp32", "speed-up ± std (95% CI)"] == "± 1.06× (-6.28–12.78×)"
    assert summary.loc["fast bf16", "speed-up mean"] == pytest.approx((10 / 2 + 12 / 3) / 2)
    assert summary.loc["fast bf16", "train s (3 epochs) mean"] == pytest.approx(7.5)
    assert summary.loc["fast bf16", "test acc % mean"] == pytest.approx(98.05)
    text = render(frame, environment(), "RUN")
    assert "| fast fp32 | 2 |" in text and "interleaved" in text and "n = 2 per path" in text
    assert "Auto choice: precision auto → bf16: measured." in text  # the reason an auto choice was made
