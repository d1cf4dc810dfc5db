"""What ``mnist-bench compare`` does (``cli/commands/compare.py``): read both sides' runs, judge each case
against the run-to-run noise, write ``compare.md`` and ``compare.html`` into NEW, exit 1 when the gate fails."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ...report.compare.compare_page import as_json, render_html, render_markdown, warning_lines
from ...report.compare.verdicts import Thresholds, compare
from ...report.publish import write_files
from ...results.store import to_json
from ...runs.folder import RunFolder, machine_kinds, read_run
from ...runs.noise_table import find_noise
from ..flags import UsageError

EXIT_REGRESSED = 1


def side(paths: list[Path], folder: str, role: str) -> list[RunFolder]:
    """A side's runs, oldest first (``paths``: the run folders ``folder`` stands for, as the command line
    found them): one run folder, or every run in a results folder (several runs of one code version on one
    machine kind, judged together against the run-to-run noise)."""
    runs = [read_run(path, role) for path in paths]
    kinds = machine_kinds(runs)
    if len(kinds) > 1:
        raise UsageError(f"{role} {folder} holds runs of {len(kinds)} machine kinds ({', '.join(kinds)}); fix: "
                         "pass runs of one machine kind a side")
    return runs


def run(th: Thresholds, base_paths: list[Path], new_paths: list[Path], args: argparse.Namespace, out: Console,
        err: Console) -> int:
    """Compare the runs of ``args.base`` with those of ``args.new`` (the folders and thresholds the command line
    checked)."""
    base, new = side(base_paths, args.base, "BASE"), side(new_paths, args.new, "NEW")  # RunFolderError: exit 2
    datasets = {role: sorted({run.dataset for run in runs}) for role, runs in (("BASE", base), ("NEW", new))}
    if len(set(datasets["BASE"] + datasets["NEW"])) > 1:
        raise UsageError(f"BASE ran on {', '.join(datasets['BASE'])} and NEW on {', '.join(datasets['NEW'])}: times "
                         "and accuracies on different data sets do not compare; fix: compare runs of one data set "
                         "(--bench-dataset)")
    noise = find_noise(args.noise, [run.resolved for run in base], base[-1].machine_kind)
    comparison = compare(base, new, th, noise)
    for line in warning_lines(comparison):  # what was skipped or left out, file and line; an incomplete run
        err.print(f"mnist-bench: warning: {line}", highlight=False, markup=False, emoji=False, soft_wrap=True)
    markdown = render_markdown(comparison)
    # Both files or neither; a failure is one line naming the file (results.store.write_error): exit 2, or 1
    # for a full disk.
    write_files(comparison.new.resolved, {"compare.md": markdown + "\n", "compare.html": render_html(comparison)})
    out.print(markdown, highlight=False, soft_wrap=True, markup=False)
    counts = ", ".join(f"{k} {v}" for k, v in comparison.counts.items())
    out.print(f"verdicts: {counts}; gate {'FAILED' if comparison.failed_gate else 'passed'}", highlight=False,
              markup=False)
    if args.json:
        out.file.write(to_json(as_json(comparison)) + "\n")
        out.file.flush()
    err.print(f"wrote {comparison.new.resolved / 'compare.md'} and compare.html", highlight=False, markup=False)
    return EXIT_REGRESSED if comparison.failed_gate else 0
