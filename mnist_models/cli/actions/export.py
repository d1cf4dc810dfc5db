"""What ``mnist-bench export`` does (``cli/commands/export.py``): every run in the folders given logged to
MLflow once (``history/mlflow_export.py``); a line of what was created and what was already there."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ...history.mlflow_export import export
from ...results.store import to_json


def run(folders: list[Path], args: argparse.Namespace, out: Console, err: Console) -> int:
    done = export(args.mlflow, args.experiment, folders)
    for line in done.skipped:
        err.print(f"skipped: {line}", highlight=False, soft_wrap=True)
    err.print(f"exported {done.created} runs to MLflow at {args.mlflow}, experiment {args.experiment!r} "
              f"({done.already} already there, {len(done.skipped)} skipped)", highlight=False, soft_wrap=True)
    if args.json:
        out.file.write(to_json({"mlflow": args.mlflow, "experiment": args.experiment, **vars(done)}) + "\n")
        out.file.flush()
    return 0
