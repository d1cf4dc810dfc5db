"""What ``mnist-bench reproduce`` does (``cli/commands/reproduce.py``): train the cases, write the notebook's table
beside this run's (``cli/common.compare_cases``)."""

from __future__ import annotations

import argparse

from rich.console import Console

from ...experiments.reproduction import Case
from ...report import notebook_table
from ..common import compare_cases


def run(cases: list[Case], marker: str, args: argparse.Namespace, out: Console, err: Console) -> int:
    """Train ``cases`` as the command line made them; ``marker``: the results-page block."""
    return compare_cases(cases, "reproduce", "seed_reproduction", marker, notebook_table.render, args, out, err)
