"""What ``mnist-bench profile`` does (``cli/commands/profile.py``): profile the steps and write the folder, or
diff two profile folders; print the summary or ``--json``."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from ...experiments.profiling import Schedule
from ...report.profile.make_profile import make_profile
from ...report.profile.profile_diff import diff_profiles
from ...report.profile.profile_page import printed_lines
from ...results.store import to_json


def run(settings: dict[str, Any] | None, args: argparse.Namespace, out: Console, err: Console) -> int:
    """Profile with ``settings`` (the command line's), or with ``--diff`` (``settings`` None) compare two folders."""
    if args.diff:
        diff = diff_profiles(*args.diff, args.by, args.min_change, args.min_us)
        result, lines = diff.as_json, [diff.markdown, f"Wrote {diff.path}"]
    else:
        data, folder = make_profile(args.variant, settings, Schedule(args.wait, args.warmup, args.active), args.results,
                                    say=lambda line: err.print(line, highlight=False))
        result, lines = data.meta, printed_lines(data, folder)
    if args.json:  # written as it is: rich would read markup or emoji codes in the JSON
        out.file.write(to_json(result) + "\n")
        out.file.flush()
        return 0
    for line in lines:
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0
