"""``mnist-bench tta [--model fastnet] [--target 99.0] [--seeds 5]``: time to a target test accuracy,
one fresh process per seed, MLPerf-style report → ``tta.{csv,md}``, results-page block ``tta-table``."""

from __future__ import annotations

import argparse
from dataclasses import asdict

import pandas as pd
from rich.console import Console

from ...config import MEASURED_DEFAULTS, RunConfig
from ...experiments import time_to_accuracy as tta
from ...report import tta_table as tta_report
from ...report.publish import Report, publish
from ...results.provenance import environment, epoch_records, new_run_id
from ...results.store import append_rows, to_json
from ..common import check_readme, prepare_run
from ..flags import add_config_flags, add_json, add_readme, add_results, config_values, parse_seeds

MARKER = "tta-table"
SETTINGS = ("model", "model_args", "target_pct", "device", "precision", "channels_last", "epochs", "eval_every",
            "eval_from", "dataset", "data_root")
DEFAULTS = {"model": tta.TTA_MODEL, "target_pct": tta.TTA_TARGET_PCT, **MEASURED_DEFAULTS, "epochs": tta.TTA_MAX_EPOCHS,
            "eval_every": tta.TTA_EVAL_EVERY, "eval_from": tta.TTA_EVAL_FROM}

ORDER = 70  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tta", help="time to a target test accuracy, one process per seed, MLPerf-style report")
    p.add_argument("--seeds", default="5", help="count (5 → seeds 0–4, the default) or comma list")
    add_config_flags(p, SETTINGS, defaults=DEFAULTS, flags={"epochs": "--max-epochs"},
                     notes={"precision": "measured once before the seeds", "epochs": "the training budget"})
    add_json(p)
    add_readme(p, MARKER)
    add_results(p)


def config(args: argparse.Namespace) -> RunConfig:
    """The recipe's RunConfig with the flags given (``time_to_accuracy.recipe``'s defaults elsewhere)."""
    given = {k: v for k, v in config_values(args, SETTINGS).items() if v is not None}
    if "epochs" in given:
        given["max_epochs"] = given.pop("epochs")
    return tta.recipe(**given)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    base = config(args)
    seeds = parse_seeds(args.seeds)
    check_readme(args.readme, MARKER)
    results_dir = prepare_run(base, args.results)
    base, auto = tta.resolve(base)
    if auto["auto_reason"]:
        err.print(f"{auto['auto_reason']} (probe {auto['auto_probe_s']:.2f} s, before the seeds)", highlight=False)
    run_id = new_run_id()
    rows = []
    for seed in seeds:
        cfg = base.with_(seed=seed)
        err.print(f"seed {seed}: training {cfg.model} ({cfg.precision}) to {cfg.target_pct:g}% in a fresh process",
                  highlight=False)
        row = {**tta.run_in_process(cfg), **auto}
        err.print(f"seed {seed}: " + (f"reached {row['test_acc_pct']:.2f}% after {row['from_start_s']:.2f} s from "
                  f"process start ({row['from_first_step_s']:.2f} s from the first step, {row['steps']} steps)"
                  if row["reached"] else f"did not reach the target ({row['test_acc_pct']:.2f}% at the end)"),
                  highlight=False)
        append_rows(results_dir, epoch_records(run_id, "tta", cfg, [row]))
        rows.append(row)
    frame = pd.DataFrame(rows)
    report = Report("tta", frame, tta_report.render(frame, environment(), run_id), MARKER)
    publish(report, results_dir, args.readme)
    if args.json:
        out.file.write(to_json({"run_id": run_id, "settings": asdict(base), **auto, **tta_report.figures(frame),
                                "seeds": rows, "environment": environment()}) + "\n")
        out.file.flush()
    else:
        out.print(report.markdown, highlight=False, soft_wrap=True)
    err.print(f"wrote {results_dir / 'tta.md'} and .csv", highlight=False)
    return 0
