"""Runs exported to MLflow (``mnist-bench export --mlflow URI``), so they appear in the tracking UI a team
already has. MLflow is an optional extra (``pip install 'mnist-bench[mlflow]'``, the ``mlflow-skinny``
client; an ``sqlite:///`` tracking store needs SQLAlchemy and Alembic, which Optuna brings).

Each becomes one MLflow run in the experiment ``--experiment`` (default ``mnist-bench``):

- a benchmark run folder: its settings as params (profile, models, variants, data set, budget), every case's
  throughput (``<phase>/<model>/<device>/<variant>/b<batch>/img_per_s``) and a training case's test accuracy
  as metrics, the machine as tags, and its ``report.html`` and ``summary.md`` as artifacts;
- each command run in ``runs.jsonl`` (train, reproduce, speedup; every sweep trial apart): its RunConfig as
  params, every epoch's test accuracy, losses and throughput as metrics at that epoch's step, the machine as
  tags (a trial's study and number too);
- each ``tta`` run: its recipe as params, every seed's seconds to the target at the seed's step.

A run carries the tag ``mnist_bench.key`` naming what it came from; a run already exported under that key
is not exported again, so the command can be run after every benchmark.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from ..errors import UserError
from ..results.store import RUNS_FILE
from ..runs.folder import RunFolderError, read_tables
from ..runs.paths import has_rows, is_results
from .index import suite_case

KEY_TAG = "mnist_bench.key"
MACHINE_TAGS = ("machine_kind", "cpu", "gpu", "torch", "git_commit", "hostname", "cpu_capability")
SUITE_PARAMS = ("profile", "models", "variants", "devices", "dataset", "budget_s")
EPOCH_METRICS = ("test_acc_pct", "test_loss", "train_loss", "train_acc_pct", "train_img_per_s", "train_s")
ARTIFACTS = ("report.html", "summary.md")
HTTP_PATIENCE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}

logging.getLogger("mlflow").setLevel(logging.WARNING)  # its table-creation notes are not the user's


class ExportError(UserError, RuntimeError):
    """The MLflow tracking store cannot be used: one line naming it and the fix."""


@dataclass
class Exported:
    """What one call did: MLflow runs created, runs already there (skipped), folders that could not be read."""

    created: int = 0
    already: int = 0
    skipped: list[str] = field(default_factory=list)


@dataclass
class Item:
    """One MLflow run to be: its key, name, params, metrics (key, value, step), tags and artifact files."""

    key: str
    name: str
    params: dict[str, Any]
    metrics: list[tuple[str, float, int]]
    tags: dict[str, Any]
    artifacts: list[Path] = field(default_factory=list)


def metric_name(text: str) -> str:
    """``text`` as an MLflow metric name (alphanumerics, ``_ - . : /`` and spaces; ``bf16+channels_last`` →
    ``bf16_channels_last``)."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", text)


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def machine_tags(env: dict[str, Any]) -> dict[str, Any]:
    return {f"machine.{k}": env[k] for k in MACHINE_TAGS if env.get(k) not in (None, "")}


def folder_item(folder: Path) -> Item:
    """A benchmark run folder as one MLflow run."""
    run = read_tables(folder)
    metrics = []
    for table in (run.train, run.inference):
        for row in table.to_dict("records"):
            name = metric_name(suite_case(row).replace(" ", "/"))
            if isinstance(row.get("img_per_s"), (int, float)):
                metrics.append((f"{name}/img_per_s", float(row["img_per_s"]), 0))
            if row.get("phase") == "train" and isinstance(row.get("test_acc_pct"), (int, float)):
                metrics.append((f"{name}/test_acc_pct", float(row["test_acc_pct"]), 0))
    params = {k: run.machine[k] for k in SUITE_PARAMS if k in run.machine}
    return Item(f"folder:{folder.name}", folder.name, params, metrics,
                {**machine_tags(run.env), "mnist_bench.kind": "suite"},
                [folder / name for name in ARTIFACTS if (folder / name).is_file()])


def row_items(path: Path) -> list[Item]:
    """``runs.jsonl``'s runs: one per run id and config (a sweep trial, a reproduce case), one per tta run."""
    items: dict[str, Item] = {}
    for line in path.read_bytes().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        kind, run_id, cfg = row.get("kind"), str(row.get("run_id")), row.get("config") or {}
        if kind == "tta":
            key, step = f"rows:{run_id}", int(row.get("seed", 0))
            found = {"from_start_s": row.get("from_start_s")} if row.get("reached") else {}
        else:
            trial = f":trial{row['trial']}" if "trial" in row else ""
            key = f"rows:{run_id}{trial}:{cfg.get('model')}:{cfg.get('seed')}:{cfg.get('lr')}"
            step, found = int(row.get("epoch") or 0), {m: row.get(m) for m in EPOCH_METRICS}
        if key not in items:
            name = f"{kind} {cfg.get('model', row.get('model'))} {run_id}" + (f" trial {row['trial']}" if "trial" in row
                                                                              else "")
            tags = {**machine_tags(row.get("environment") or {}), "mnist_bench.kind": kind}
            tags |= {f"sweep.{k}": row[k] for k in ("study", "trial") if k in row}
            items[key] = Item(key, name, dict(cfg), [], tags)
        items[key].metrics += [(m, float(v), step) for m, v in found.items() if isinstance(v, (int, float))]
    return list(items.values())


def items_in(paths: Iterable[Path], exported: Exported) -> list[Item]:
    """Every run the paths hold (a results folder: its run folders and runs.jsonl; a run folder: itself)."""
    found: list[Item] = []
    for path in paths:
        folders = [p for p in sorted(path.iterdir()) if p.is_dir() and not p.is_symlink() and has_rows(p)] \
            if is_results(path) else [path]
        for folder in folders:
            try:
                found.append(folder_item(folder))
            except (RunFolderError, OSError, ValueError, KeyError) as exc:
                exported.skipped.append(f"{folder}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        if is_results(path) and (path / RUNS_FILE).is_file():
            found += row_items(path / RUNS_FILE)
    return found


def experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    """The experiment's id, created if new (an ``sqlite:///`` store keeps its artifacts beside the file, not
    in the working directory)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)


def export(uri: str, experiment: str, paths: list[Path]) -> Exported:
    """Export every run in ``paths`` to the MLflow tracking store at ``uri``. A tracking server that does not
    answer is given up after one retry (``HTTP_PATIENCE``; MLflow's own default retries for minutes), unless
    the user's environment sets those variables."""
    for name, value in HTTP_PATIENCE.items():
        os.environ.setdefault(name, value)
    done = Exported()
    items = items_in(paths, done)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # MLflow's own use of SQLAlchemy: not the user's
            client = MlflowClient(tracking_uri=uri)
            exp = experiment_id(client, experiment, uri)
            there = {run.data.tags.get(KEY_TAG) for run in client.search_runs([exp], max_results=50000)}
            for item in items:
                if item.key in there:
                    done.already += 1
                    continue
                log(client, exp, item)
                done.created += 1
    except MlflowException as exc:
        raise ExportError(f"MLflow at {uri} refused the export: {str(exc).splitlines()[0]}; fix: check --mlflow "
                          "(an http(s):// tracking server, or sqlite:///path/file.db)") from None
    return done


def log(client: MlflowClient, exp: str, item: Item) -> None:
    """One MLflow run: created, its params, metrics and tags in batches, its artifacts, then finished."""
    run = client.create_run(exp, run_name=item.name, tags={KEY_TAG: item.key})
    run_id, now = run.info.run_id, int(time.time() * 1000)
    params = [Param(k, _text(v)[:6000]) for k, v in item.params.items() if v is not None]
    metrics = [Metric(k, v, now, step) for k, v, step in item.metrics]
    tags = [RunTag(k, _text(v)[:5000]) for k, v in item.tags.items()]
    for start in range(0, max(len(params), len(tags)), 100):  # MLflow takes 100 params and 100 tags a batch
        client.log_batch(run_id, params=params[start:start + 100], tags=tags[start:start + 100])
    for start in range(0, len(metrics), 1000):  # and 1,000 metrics
        client.log_batch(run_id, metrics=metrics[start:start + 1000])
    for artifact in item.artifacts:
        client.log_artifact(run_id, str(artifact))
    client.set_terminated(run_id)
