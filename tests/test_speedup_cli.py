"""``mnist-bench speedup`` end to end through the CLI: both paths train, each epoch lands in
``runs.jsonl``, and ``speedup.csv`` / ``speedup.md`` hold the per-seed ratio of the measured training
times. A tiny case: v0, one seed, fp32, the cases cut to one epoch at batch 1000 (the notebook's
DataLoader still reads all 60,000 images through PIL: ~10 s on 2 cores).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pytest

from mnist_models.cli import main as cli
from mnist_models.cli.commands import speedup as speedup_command
from mnist_models.experiments import fast_path
from mnist_models.results.store import read_rows


@pytest.mark.slow
def test_speedup_writes_the_table_with_a_measured_ratio(tmp_path: Path, mnist_root: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(speedup_command, "make_cases",
                        functools.partial(fast_path.make_cases, epochs=1, batch_size=1000))
    assert cli.main(["speedup", "--model", "v0", "--seeds", "1", "--precision", "fp32", "--device", "cpu",
                     "--data-root", str(mnist_root), "--results", str(tmp_path)]) == 0
    rows = pd.read_csv(tmp_path / "speedup.csv").set_index("label")
    assert list(rows.index) == ["notebook", "fast fp32"] and (rows["seed"] == 0).all()
    assert list(rows["model"]) == ["v0", "v0"] and (rows["train_s_total"] > 0).all()
    ratio = rows.loc["notebook", "train_s_total"] / rows.loc["fast fp32", "train_s_total"]
    assert ratio > 1  # the notebook's DataLoader (PIL → tensor per image) against batches sliced from memory
    markdown = (tmp_path / "speedup.md").read_text()
    fast_row = next(line for line in markdown.splitlines() if line.startswith("| fast fp32 |"))
    assert f"| {ratio:.2f}× |" in fast_row and markdown in capsys.readouterr().out
    assert [(r["config"]["loader"], r["epoch"]) for r in read_rows(tmp_path)] == [("notebook", 1), ("fast", 1)]
