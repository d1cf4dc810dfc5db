"""What ``mnist-bench tta`` does (``cli/commands/tta.py``): resolve the recipe's automatic choices once,
train each seed to the target in a fresh process, append each seed's row, publish ``tta.{csv,md}``."""

from __future__ import annotations

import argparse
from dataclasses import asdict

import pandas as pd
from rich.console import Console

from ...config import RunConfig
from ...experiments import time_to_accuracy as tta
from ...report import tta_table as tta_report
from ...report.publish import Report, publish
from ...results.provenance import environment, epoch_records, new_run_id
from ...results.store import append_rows, to_json
from ..common import prepare_run


def run(base: RunConfig, seeds: list[int], marker: str, args: argparse.Namespace, out: Console, err: Console) -> int:
    """Time each seed of ``base`` to its target, as the command line checked them (``marker``: the results-page
    block)."""
    results_dir = prepare_run(base, args.results)
    base, auto = tta.resolve(base)
    if auto["auto_reason"]:
        err.print(f"{auto['auto_reason']} (probe {auto['auto_probe_s']:.2f} s, before the seeds)", highlight=False)
    cli = tta.cli_startup()  # the command line's own start-up, before the seeds and outside their clocks
    run_id = new_run_id()
    rows = []
    for seed in seeds:
        cfg = base.with_(seed=seed)
        err.print(f"seed {seed}: training {cfg.model} ({cfg.precision}) to {cfg.target_pct:g}% in a fresh process",
                  highlight=False)
        row = {**tta.run_in_process(cfg), **auto, **cli}
        err.print(f"seed {seed}: " + (f"reached {row['test_acc_pct']:.2f}% after {row['from_start_s']:.2f} s from "
                  f"process start ({row['from_first_step_s']:.2f} s from the first step, {row['steps']} steps)"
                  if row["reached"] else f"did not reach the target ({row['test_acc_pct']:.2f}% at the end)"),
                  highlight=False)
        append_rows(results_dir, epoch_records(run_id, "tta", cfg, [row]))
        rows.append(row)
    frame = pd.DataFrame(rows)
    report = Report("tta", frame, tta_report.render(frame, environment(), run_id), marker)
    publish(report, results_dir, args.readme)
    if args.json:
        out.file.write(to_json({"run_id": run_id, "settings": asdict(base), **auto, **tta_report.figures(frame),
                                "seeds": rows, "environment": environment()}) + "\n")
        out.file.flush()
    else:
        out.print(report.markdown, highlight=False, soft_wrap=True)
    err.print(f"wrote {results_dir / 'tta.md'} and .csv", highlight=False)
    return 0
