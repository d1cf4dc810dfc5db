"""``mnist-bench train``: train one model and report per-epoch accuracy, loss and time; every epoch's
row is appended to ``results/runs.jsonl``. Its flags are RunConfig's fields (``cli/flags.py``), plus
``--save PATH``: write the trained model's checkpoint (``train/checkpoint.py``) for ``mnist-bench predict``,
``--seeds``: train once per seed and report each figure's mean ± std and 95% confidence interval, and
data-parallel training on torch.distributed: ``--nproc N`` launches N ranks here through
``torch.distributed.run``; ``--ddp`` is one rank of a job ``torchrun`` started (``train/dist.py``,
``docs/distributed.md``).
What no flag and no protocol pins is measured (``config.MEASURED_DEFAULTS``), once, before training: the
choice and its reason are printed and go into every row (``cli/actions/train.py``)."""

from __future__ import annotations

import argparse

from rich.console import Console

from ...config import MEASURED_DEFAULTS, RunConfig, check_distributed_config
from ...train.checkpoint_path import check_save_path
from ..actions import action
from ..flags import (
    UsageError,
    add_config_flags,
    add_dist_flags,
    add_json,
    add_results,
    check_dist,
    config_values,
    distributed,
    parse_seeds,
)

SETTINGS = ("model", "model_args", "protocol", "device", "precision", "compile", "channels_last", "cuda_graph",
            "loader", "batch_size", "lr", "optimizer", "lr_schedule", "label_smoothing", "augment", "eval_batch_size",
            "epochs", "seed", "deterministic", "dataset", "data_root")

ORDER = 40  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one model and report per-epoch accuracy, loss and time")
    add_config_flags(p, SETTINGS, defaults=MEASURED_DEFAULTS)
    p.add_argument("--save", metavar="PATH", help="after training, write the model's checkpoint (weights, config, "
                   "metrics, versions, SHA-256) to PATH, for `mnist-bench predict --checkpoint PATH`")
    p.add_argument("--seeds", help="train once per seed, a count (3 → 0,1,2) or a comma list (42,0,1), and report "
                   "accuracy and time as mean ± std with a 95%% confidence interval (Student's t)")
    add_dist_flags(p, "train")
    add_json(p)
    add_results(p)


def config(args: argparse.Namespace) -> RunConfig:
    """The run's RunConfig as asked: the protocol's defaults (or, without one, ``MEASURED_DEFAULTS``),
    then the flags given."""
    given = {name: value for name, value in config_values(args, SETTINGS).items() if value is not None}
    protocol = given.pop("protocol", None)
    unpinned = MEASURED_DEFAULTS if protocol is None else {}  # a protocol fixes its own
    if distributed(args) and protocol is None:  # the loader data-parallel ranks shard
        unpinned = {**unpinned, "loader": "fast"}
    return RunConfig.from_protocol(protocol, **{**unpinned, **given})


def seed_list(args: argparse.Namespace) -> list[int] | None:
    """``--seeds`` parsed (None without it); with ``--seed`` or ``--save`` it is a usage error."""
    if not args.seeds:
        return None
    if args.seed is not None:
        raise UsageError("--seed and --seeds both given; fix: pass one (--seeds 42,0,1 includes 42)")
    if args.save:
        raise UsageError("--save keeps one model but --seeds trains several; fix: drop --save, or pass --seed N")
    return parse_seeds(args.seeds)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    check_dist(args)
    if distributed(args) and args.seeds:
        raise UsageError("--seeds trains one run after another and --nproc/--ddp one run on several processes; "
                         "fix: drop one")
    seeds, cfg = seed_list(args), config(args)  # bad input refused before the action imports torch
    if distributed(args):
        check_distributed_config(cfg, args.nproc or 1)
    if args.save:
        check_save_path(args.save)
    return action(__name__).run(seeds, cfg, args, out, err)
