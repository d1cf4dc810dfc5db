"""What ``mnist-bench scaling`` does (``cli/commands/scaling.py``): run every layout (``experiments.ddp_scaling``),
then publish the table, its CSV and its figure, all or none, and print the table (or ``--json``)."""

from __future__ import annotations

import argparse

import pandas as pd
from rich.console import Console

from ...config import RunConfig
from ...experiments.ddp_scaling import ScalingSpec, default_counts, measure_scaling
from ...report import scaling_table
from ...report.publish import Report, publish
from ...results.provenance import environment, new_run_id
from ...results.store import to_json
from ...train.dist import pick_backend
from ...train.runtime import Runtime
from ..common import prepare_run


def run(cfg: RunConfig, counts: tuple[int, ...] | None, marker: str, args: argparse.Namespace, out: Console,
        err: Console) -> int:
    results_dir = prepare_run(cfg, args.results)
    device = Runtime.check(cfg)
    pick_backend(args.backend, device)  # NCCL without CUDA refused before any job starts
    spec = ScalingSpec(cfg, counts or default_counts(device), args.steps, args.rounds, args.warmup,
                       args.profile_steps, args.backend, repeats=args.repeats)
    rows = pd.DataFrame(measure_scaling(spec, say=lambda line: err.print(line, highlight=False, soft_wrap=True)))
    env, run_id = environment(), new_run_id()
    rows.insert(0, "run_id", run_id)
    report = Report("scaling", rows, scaling_table.render(rows, env, run_id), marker)
    chart = scaling_table.figure(rows)
    paths = publish(report, results_dir, args.readme, env, extra={"scaling.png": chart})
    if args.json:
        out.file.write(to_json({"run_id": run_id, "rows": rows.to_dict("records"), "environment": env}) + "\n")
        out.file.flush()
        return 0
    out.print(report.markdown, highlight=False, soft_wrap=True)
    err.print(f"wrote {', '.join(str(p) for p in paths)} and {results_dir / 'scaling.png'}", highlight=False)
    return 0
