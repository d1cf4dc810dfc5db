"""What the training commands share: failing fast before any work, making each run's automatic
choices once (``train.runtime.resolve``), training with progress on stderr, and publishing what they
wrote."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from rich.console import Console

from ..config import RunConfig
from ..data import prepare
from ..experiments.reproduction import Case, case_row
from ..report.publish import Report, publish
from ..results.provenance import environment, epoch_records, new_run_id
from ..results.store import append_rows, check_writable
from ..train.dist import Dist
from ..train.engine import FitResult, NonFiniteLoss, fit
from ..train.oom import oom_guard
from ..train.runtime import Resolved, Runtime, resolve_all
from .progress import EpochProgress


def prepare_run(cfg: RunConfig, results_dir: str) -> Path:
    """Validate everything that can fail fast before training: device, data, results folder (before
    any automatic choice is measured)."""
    Runtime.check(cfg)
    prepare(cfg.data_root, dataset=cfg.dataset)
    return check_writable(results_dir)


def run_fit(run: Resolved, label: str, err: Console, results_dir: Path, run_id: str, kind: str,
            dist: Dist | None = None) -> FitResult:
    """``fit(run)`` with a progress bar (terminal) or a line per epoch (logs) on ``err``; each epoch's
    row (with what the run's automatic choices were, and why) is appended to ``results_dir/runs.jsonl``
    as soon as the epoch ends, so a run stopped in epoch 10 keeps its nine finished epochs. ``dist``: one
    rank of a data-parallel run, which shows progress and appends rows on rank 0 only."""
    cfg, runtime = run.cfg, run.describe()
    writes = dist is None or dist.is_main

    def on_epoch(row: dict[str, float]) -> None:
        if writes:
            progress.on_epoch(row)
            append_rows(results_dir, epoch_records(run_id, kind, cfg, [row], runtime))

    with EpochProgress(err if writes else Console(quiet=True), label, cfg.epochs) as progress, \
            oom_guard(cfg.batch_size):
        try:
            return fit(run, on_batch=progress.on_batch_callback, on_epoch=on_epoch, dist=dist)
        except NonFiniteLoss as exc:  # the failed epoch's row (status "failed") after the finished ones
            if writes:
                append_rows(results_dir, epoch_records(run_id, kind, cfg, [exc.row()], runtime))
            raise


def resolve_cases(cases: list[Case], err: Console) -> list[Resolved]:
    """Each case's automatic choices, made once for the run before any case trains (cases that differ
    only in seed or learning rate share one decision: ``resolve_all``); each distinct choice is said
    once on ``err``."""
    runs = resolve_all([case.config for case in cases])
    said = set()
    for case, run in zip(cases, runs, strict=True):
        if run.reason and run.reason not in said:
            said.add(run.reason)
            err.print(f"{case.label}: {run.reason}", highlight=False, soft_wrap=True)
    return runs


def run_cases(cases: list[Case], runs: list[Resolved], kind: str, results_dir: Path,
              err: Console) -> tuple[str, pd.DataFrame]:
    """Train the cases (``runs``: their resolved configs) in order, each epoch appended to runs.jsonl with
    ``kind``; their run id and one row per case (``reproduce.case_row`` + wall time and what the run's
    automatic choices were)."""
    run_id = new_run_id()
    rows = []
    for i, (case, run) in enumerate(zip(cases, runs, strict=True), start=1):
        err.print(f"[{i}/{len(cases)}] {case.label}, seed {case.config.seed}, lr {case.config.lr:g}", highlight=False)
        start = time.perf_counter()
        result = run_fit(run, case.label, err, results_dir, run_id, kind)
        wall = time.perf_counter() - start
        rows.append({**case_row(case, result.rows), "wall_s": wall, "precision": run.cfg.precision,
                     "channels_last": run.cfg.channels_last, "auto_reason": run.reason})
    return run_id, pd.DataFrame(rows)


def compare_cases(cases: list[Case], kind: str, stem: str, marker: str, render: Callable[..., str],
                  args: argparse.Namespace, out: Console, err: Console) -> int:
    """The comparison commands (reproduce, speedup; their command modules checked ``--readme``): fail fast,
    make the cases' automatic choices, train the cases, then publish the rendered report (``stem``.csv/.md,
    the README's ``marker`` block) and print it."""
    for case in cases[1:]:  # every case can run here (fp16 on the CPU fails now, not after the others)
        Runtime.check(case.config)
    results_dir = prepare_run(cases[0].config, args.results)
    run_id, rows = run_cases(cases, resolve_cases(cases, err), kind, results_dir, err)
    report = Report(stem, rows, render(rows, environment(), run_id), marker)
    publish(report, results_dir, args.readme)
    out.print(report.markdown, highlight=False, soft_wrap=True)
    err.print(f"wrote {results_dir / stem}.md and .csv", highlight=False)
    return 0
