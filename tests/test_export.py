"""``mnist-bench export --mlflow``: committed benchmark runs, command runs and sweep trials logged to a real
MLflow tracking store (SQLite), read back with MLflow's own client, and not logged twice."""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from mnist_models.cli import main as cli

mlflow = pytest.importorskip("mlflow", reason="MLflow is an optional extra: pip install 'mnist-bench[mlflow]'")

ROOT = Path(__file__).resolve().parents[1]
RUN = sorted(p for p in (ROOT / "results").iterdir() if p.is_dir() and not p.is_symlink()
             and (p / "report.html").is_file())[-1]


def export(*argv: str) -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["export", *argv, "--json"])
    return code, json.loads(out.getvalue().splitlines()[-1]) if code == 0 else None, err.getvalue()


def test_runs_and_trials_appear_in_mlflow_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory (MLflow's ./mlruns default)
    results = tmp_path / "results"
    shutil.copytree(RUN, results / RUN.name)
    rows = [line for line in (ROOT / "results" / "runs.jsonl").read_bytes().splitlines(keepends=True)
            if json.loads(line)["kind"] in ("train", "reproduce", "speedup")]
    trial = json.loads(rows[-1]) | {"kind": "sweep", "study": "lr", "trial": 3, "run_id": "20270101T000000Z-abcdef"}
    (results / "runs.jsonl").write_bytes(b"".join(rows[-12:]) + json.dumps(trial).encode() + b"\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, report, err = export(str(results), "--mlflow", uri, "--experiment", "bench")
    assert code == 0, err
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("bench").experiment_id])
    assert report["created"] == len(runs) and report["already"] == 0
    by_kind = {}
    for run in runs:
        by_kind.setdefault(run.data.tags["mnist_bench.kind"], []).append(run)
    suite = by_kind["suite"][0]
    machine = json.loads((RUN / "machine.json").read_text())
    assert suite.info.run_name == RUN.name and suite.info.status == "FINISHED"
    assert suite.data.tags["machine.machine_kind"] == machine["machine_kind"]
    assert suite.data.params["profile"] == machine["profile"]
    assert suite.data.metrics["train/v2/cpu/eager/b32/img_per_s"] > 0
    assert {a.path for a in client.list_artifacts(suite.info.run_id)} == {"report.html", "summary.md"}
    (sweep_run,) = by_kind["sweep"]
    assert sweep_run.data.tags["sweep.study"] == "lr" and sweep_run.data.tags["sweep.trial"] == "3"
    assert sweep_run.data.params["model"] == trial["config"]["model"]
    history = client.get_metric_history(sweep_run.info.run_id, "test_acc_pct")
    assert [(m.step, m.value) for m in history] == [(trial["epoch"], trial["test_acc_pct"])]
    assert not (tmp_path / "mlruns").exists()
    # run again: nothing is logged twice
    code, report, err = export(str(results), "--mlflow", uri, "--experiment", "bench")
    assert code == 0 and report["created"] == 0 and report["already"] == len(runs)
