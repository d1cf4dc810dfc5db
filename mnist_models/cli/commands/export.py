"""``mnist-bench export --mlflow URI RUN... [--experiment NAME]``: log benchmark runs, command runs and sweep
trials as MLflow runs (params, metrics, the machine as tags, the report as an artifact), so they appear in
the MLflow tracking UI a team already has (``cli/actions/export.py``; what becomes what:
``history/mlflow_export.py``). MLflow is an optional extra: ``pip install 'mnist-bench[mlflow]'``."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

from rich.console import Console

from ...runs.paths import check_folder, is_results
from ..actions import action
from ..flags import UsageError, add_json

ORDER = 97  # position in `mnist-bench --help`
TRACKING_URI = re.compile(r"^(https?://.+|sqlite:///.+|postgresql(\+[a-z0-9]+)?://.+|databricks(://.*)?)$")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="log runs and sweep trials to MLflow (optional extra [mlflow])")
    p.add_argument("run_dirs", nargs="+", metavar="RUN",
                   help="a benchmark run folder, or a results folder (its run folders, and runs.jsonl's runs and "
                        "sweep trials)")
    p.add_argument("--mlflow", metavar="URI", required=True,
                   help="the MLflow tracking URI: http(s)://host:port of a tracking server, or sqlite:///path/file.db")
    p.add_argument("--experiment", default="mnist-bench", metavar="NAME",
                   help="the MLflow experiment to log into (created if new; default mnist-bench)")
    add_json(p)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    if not TRACKING_URI.match(args.mlflow):
        raise UsageError(f"--mlflow {args.mlflow!r}: not an MLflow tracking URI; fix: http://host:5000 (a tracking "
                         "server) or sqlite:///path/to/mlflow.db")
    if not args.experiment.strip():
        raise UsageError("--experiment is empty; fix: name an experiment, e.g. --experiment mnist-bench")
    folders = [Path(folder) for folder in args.run_dirs]
    for folder in folders:  # a results folder or a run folder; anything else refused before MLflow loads
        if not is_results(folder):
            check_folder(folder)
    if importlib.util.find_spec("mlflow") is None:
        raise UsageError("MLflow is not installed; fix: pip install 'mnist-bench[mlflow]' (the mlflow-skinny client)")
    return action(__name__).run(folders, args, out, err)
