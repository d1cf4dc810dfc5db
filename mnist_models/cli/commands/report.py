"""``mnist-bench report [RUN_DIR] [--data-root DIR]``: the report of one benchmark-suite run folder
(default ``results/latest``) → ``RUN_DIR/report.md``, ``RUN_DIR/report.html`` (one self-contained page
that opens from disk offline) and ``RUN_DIR/plots/*.png``. Works on run folders of every version;
the suite writes it at the end of every session. A folder that is not a run: one line, exit 2.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from ...runs.paths import check_folder
from ..actions import action

DEFAULT_RUN = "results/latest"

ORDER = 80  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="a run folder's report: Markdown, one self-contained HTML page, plots")
    p.add_argument("run_dir", nargs="?", default=DEFAULT_RUN, metavar="RUN_DIR",
                   help=f"a benchmark-suite run folder (default: {DEFAULT_RUN})")
    p.add_argument("--data-root", metavar="DIR", default=None,
                   help="MNIST root for the image grids (default $MNIST_BENCH_DATA or the cache; without the "
                        "data the report says so and draws no digits)")


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    folder = check_folder(args.run_dir)  # a missing or wrong folder refused before the action imports pandas
    return action(__name__).run(folder, args, out, err)
