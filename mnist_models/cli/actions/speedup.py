"""What ``mnist-bench speedup`` does (``cli/commands/speedup.py``): train the fast path's cases and the notebook's
way interleaved, write the comparison (``cli/common.compare_cases``)."""

from __future__ import annotations

import argparse

from rich.console import Console

from ...experiments.reproduction import Case
from ...report import speedup_table as speedup
from ..common import compare_cases


def run(cases: list[Case], marker: str, args: argparse.Namespace, out: Console, err: Console) -> int:
    """Train ``cases`` as the command line made them; ``marker``: the results-page block."""
    return compare_cases(cases, "speedup", "speedup", marker, speedup.render, args, out, err)
