"""``mnist-bench scaling [--nproc 1,2] [--model v2] [--batch-size 64]``: the same model trained for the same
global steps as 1, 2, … data-parallel processes (torchrun jobs, DistributedDataParallel), with threads per
process chosen so the cores are not oversubscribed and one process with all threads beside them →
``scaling.{csv,md,png}``, results-page block ``scaling-table`` (``experiments/ddp_scaling.py``)."""

from __future__ import annotations

import argparse

from rich.console import Console

from ...config import BACKENDS, RunConfig, check_distributed_config
from ..actions import action
from ..flags import (
    UsageError,
    add_config_flags,
    add_json,
    add_readme,
    add_results,
    check_readme,
    config_values,
    int_arg,
)

MARKER = "scaling-table"
SETTINGS = ("model", "model_args", "device", "precision", "channels_last", "compile", "batch_size", "lr", "optimizer",
            "seed", "dataset", "data_root")
DEFAULTS = {"model": "v2", "batch_size": 64, "precision": "auto", "loader": "fast"}
COUNTS = {"steps": 30, "rounds": 5, "warmup": 10, "profile_steps": 10, "repeats": 1}  # ddp_scaling's defaults

ORDER = 65  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scaling", help="data-parallel scaling: images/s, efficiency, all-reduce share and accuracy "
                                       "at 1, 2, … processes (torchrun, DDP)")
    p.add_argument("--nproc", metavar="N,N", help="comma list of process counts (default: 1 and each power of 2 up "
                   "to the cores here; on CUDA, up to the GPUs)")
    add_config_flags(p, SETTINGS, defaults={"model": "v2", "batch_size": 64, "precision": "auto"},
                     notes={"batch_size": "per process: the global batch grows with the processes"})
    help_of = {"steps": "global steps in each timed round", "rounds": "timed rounds (their median is reported)",
               "warmup": "global steps before the timed rounds, not timed",
               "profile_steps": "steps under the profiler after the rounds, for the all-reduce share",
               "repeats": "passes over every layout, interleaved (A B C A B C): each row pools its passes' rounds"}
    for name, default in COUNTS.items():
        p.add_argument("--" + name.replace("_", "-"), type=int_arg, default=default, metavar="N",
                       help=f"{help_of[name]}; default {default}")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="torch.distributed backend; default auto: "
                   "nccl on CUDA, gloo on the CPU")
    add_json(p)
    add_readme(p, MARKER)
    add_results(p)


def process_counts(text: str | None) -> tuple[int, ...] | None:
    """``--nproc`` parsed (None: the default for the device, chosen by the action)."""
    if text is None:
        return None
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        counts = ()
    if not counts or len(set(counts)) != len(counts) or min(counts) < 1:
        raise UsageError(f"--nproc takes a comma list of distinct process counts ≥ 1, got {text!r}; fix: --nproc 1,2")
    return counts


def config(args: argparse.Namespace, counts: tuple[int, ...] | None) -> RunConfig:
    given = {name: value for name, value in config_values(args, SETTINGS).items() if value is not None}
    cfg = RunConfig(**{**DEFAULTS, **given})
    check_distributed_config(cfg, max(counts or (1,)))  # the default counts are checked when chosen
    return cfg


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    counts = process_counts(args.nproc)
    for name in COUNTS:
        if getattr(args, name) < (0 if name == "warmup" else 1):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} {getattr(args, name)}: a number ≥ {0 if name == 'warmup' else 1}; "
                             f"fix: {flag} {COUNTS[name]}")
    cfg = config(args, counts)
    check_readme(args.readme, MARKER)
    return action(__name__).run(cfg, counts, MARKER, args, out, err)
