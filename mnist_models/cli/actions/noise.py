"""What ``mnist-bench noise`` does (``cli/commands/noise.py``): read the runs, study every A/A pair, write
``noise.md`` and ``noise.csv``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ...report.compare.gate_study import study
from ...report.compare.noise_page import render
from ...results.store import ResultsError, check_writable, write_files
from ...runs.folder import machine_kinds, read_run
from ...runs.noise_table import noise_frame
from ..flags import UsageError

MIN_RUNS = 4  # each pair is judged with the noise of the others: at least two others


def writable(folder: str) -> Path:
    """``folder`` created and writable, else ``ResultsError`` naming this command's flag (``--out``)."""
    try:
        return check_writable(folder)
    except ResultsError as exc:
        if "--results DIR" not in str(exc):  # a full disk: its own line and exit code
            raise
        raise ResultsError(str(exc).replace("--results DIR", "--out DIR")) from None


def run(paths: list[Path], args: argparse.Namespace, out: Console, err: Console) -> int:
    """Study the runs in ``paths`` (the run folders the command line found in ``RUNS``)."""
    target = writable(args.out) if args.out else None  # before any work
    runs = []
    for run in (read_run(p) for p in paths):
        if run.incomplete:  # still running, or stopped before its end: not every case is in it
            err.print(f"mnist-bench: warning: {run.path}: an incomplete run (no machine.json); left out",
                      highlight=False, markup=False, soft_wrap=True)
        else:
            runs.append(run)
    paths = [run.path for run in runs]
    if len(paths) < MIN_RUNS:
        raise UsageError(f"noise needs at least {MIN_RUNS} runs of unchanged code, found {len(paths)} in "
                         f"{', '.join(args.runs)}; fix: add {MIN_RUNS - len(paths)} more (`pytest bench "
                         "--benchmark-only --bench-results DIR` into the same folder)")
    kinds = machine_kinds(runs)
    if len(kinds) > 1:
        raise UsageError(f"the runs come from {len(kinds)} machine kinds ({', '.join(kinds)}); fix: pass the runs "
                         "of one machine kind")
    target = target or writable(str(Path(paths[-1]).parent))
    found = study(runs, detect_pct=args.detect)
    markdown = render(runs, found.pairs, found.alarms, found.planted, found.sigma, args.detect, found.recipe)
    table = noise_frame(found.sigma, kinds[0], str(runs[-1].env.get("torch") or ""))
    write_files(target, {"noise.md": markdown + "\n", "noise.csv": table})
    out.print(markdown, highlight=False, soft_wrap=True, markup=False)
    err.print(f"wrote {target / 'noise.md'} and noise.csv", highlight=False, markup=False)
    return 0
