"""``mnist-bench models [SPEC ...] [--model-arg key=value] [--json]``: the built-ins and the models installed
packages declare (entry-point group ``mnist_bench.models``), or the models you name (``path/to/file.py:Name``,
``package.module:Name``), each with its source, parameters and FLOPs per image."""

from __future__ import annotations

import argparse

from rich.console import Console

from ...models import check_name
from ..actions import action
from ..flags import add_config_flags, add_json

ORDER = 30  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models (built-in, installed, or your own) with parameters and FLOPs")
    p.add_argument("specs", metavar="SPEC", nargs="*",
                   help="models to describe instead of the list: a registered name, path/to/file.py:Name or "
                        "package.module:Name (each built and given one batch, as train does)")
    add_config_flags(p, ["model_args"])
    add_json(p)


def check(args: argparse.Namespace) -> None:
    """An unknown name is refused before torch is imported (a file or module is checked when it is built)."""
    for spec in args.specs:
        check_name(spec)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    check(args)  # before torch or pandas is imported
    return action(__name__).run(args, out, err)
