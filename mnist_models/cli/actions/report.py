"""What ``mnist-bench report`` does (``cli/commands/report.py``): build the run's report and write it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from ...report.run.run_page import build_report, write_report


def run(folder: Path, args: argparse.Namespace, out: Console, err: Console) -> int:
    """Build and write the report of ``folder`` (the run folder the command line checked)."""
    start = time.perf_counter()
    report = build_report(folder, args.data_root)
    for line in report.warnings:  # what was skipped or left out, file and line; an incomplete run
        err.print(f"mnist-bench: warning: {line}", highlight=False, markup=False, emoji=False, soft_wrap=True)
    write_report(folder, report=report)
    seconds = time.perf_counter() - start
    out.print(f"wrote {folder / 'report.html'}, {folder / 'report.md'} and {len(report.plots)} plots in "
              f"{folder / 'plots'} ({seconds:.1f} s)", highlight=False, soft_wrap=True)
    return 0
