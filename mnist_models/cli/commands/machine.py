"""``mnist-bench machine [--model M] [--batch-size N] [--device D] [--json]``: this machine's
capabilities, its measured matmul peaks, and (with ``--model``) what precision auto picks here."""

from __future__ import annotations

import argparse

from rich.console import Console

from ...config import RunConfig
from ..actions import action
from ..flags import add_config_flags, add_json, int_arg

ORDER = 20  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("machine", help="this machine's capabilities (ISA, native bf16, caches) and measured "
                                       "matmul peaks; with --model, what precision auto picks for it")
    p.add_argument("--model", help="also probe this registry model's training step: what auto resolves to")
    p.add_argument("--batch-size", type=int_arg, default=None, help="batch size of that probe (default 32)")
    add_config_flags(p, ["device"])
    add_json(p)


def probe(args: argparse.Namespace) -> RunConfig:
    """What was given (model, device, batch size), checked by RunConfig as for every command."""
    given = {"model": args.model, "device": args.device, "batch_size": args.batch_size}
    return RunConfig(**{name: value for name, value in given.items() if value is not None})


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    cfg = probe(args)
    return action(__name__).run(cfg, args, out, err)
