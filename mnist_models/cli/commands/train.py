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
import os

from rich.console import Console

from ...config import BACKENDS, MEASURED_DEFAULTS, RunConfig, check_distributed_config
from ...train.checkpoint_path import check_save_path
from ..actions import action
from ..flags import UsageError, add_config_flags, add_json, add_results, config_values, float_arg, int_arg, parse_seeds

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
    dist = p.add_argument_group("data-parallel (torch.distributed, DistributedDataParallel; docs/distributed.md)")
    dist.add_argument("--nproc", type=int_arg, metavar="N", help="train on N processes of this machine, launched "
                      "by torch.distributed.run (torchrun) standalone; --batch-size is per process, the global "
                      "batch N times it; each process gets cores/N threads and a shard of the fast loader")
    dist.add_argument("--ddp", action="store_true", help="run as one rank of a job torchrun started: `torchrun "
                      "--nproc-per-node N [--nnodes …] -m mnist_models train --ddp …`; rank 0 alone writes")
    dist.add_argument("--backend", choices=BACKENDS, default=None,
                      help="torch.distributed backend; default auto: nccl on CUDA, gloo on the CPU")
    dist.add_argument("--dist-timeout", type=float_arg, metavar="S", help="seconds a collective waits for "
                      "the other ranks before the job ends (a hung rank); default 120")
    add_json(p)
    add_results(p)


MAX_NPROC = 256  # processes on one machine
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # a rank's


def check_dist(args: argparse.Namespace) -> None:
    """The data-parallel flags, refused before anything runs when they cannot go together."""
    if args.nproc is not None and not 1 <= args.nproc <= MAX_NPROC:
        raise UsageError(f"--nproc {args.nproc}: a number of processes from 1 to {MAX_NPROC}; fix: --nproc 2")
    if args.nproc is not None and args.ddp:
        raise UsageError("--nproc launches the ranks and --ddp is one of them; fix: pass --nproc N alone (or run "
                         "--ddp under torchrun)")
    distributed = args.nproc is not None or args.ddp
    if not distributed and (args.backend is not None or args.dist_timeout is not None):
        raise UsageError("--backend and --dist-timeout apply to data-parallel runs; fix: add --nproc N, or drop them")
    if distributed and args.seeds:
        raise UsageError("--seeds trains one run after another and --nproc/--ddp one run on several processes; "
                         "fix: drop one")
    missing = [name for name in TORCHRUN_ENV if name not in os.environ]
    if args.ddp and missing:
        verb = "is" if len(missing) == 1 else "are"
        raise UsageError(f"--ddp runs as one rank of a torchrun job, but {', '.join(missing)} {verb} not set; fix: "
                         "`mnist-bench train --nproc N …`, or `torchrun --nproc-per-node N -m mnist_models train "
                         "--ddp …`")
    if args.dist_timeout is not None and not 0 < args.dist_timeout < float("inf"):
        raise UsageError(f"--dist-timeout {args.dist_timeout:g}: seconds > 0; fix: --dist-timeout 120")


def config(args: argparse.Namespace) -> RunConfig:
    """The run's RunConfig as asked: the protocol's defaults (or, without one, ``MEASURED_DEFAULTS``),
    then the flags given."""
    given = {name: value for name, value in config_values(args, SETTINGS).items() if value is not None}
    protocol = given.pop("protocol", None)
    unpinned = MEASURED_DEFAULTS if protocol is None else {}  # a protocol fixes its own
    if (args.nproc is not None or args.ddp) and protocol is None:  # the loader data-parallel ranks shard
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
    seeds, cfg = seed_list(args), config(args)  # bad input refused before the action imports torch
    if args.nproc is not None or args.ddp:
        check_distributed_config(cfg)
    if args.save:
        check_save_path(args.save)
    return action(__name__).run(seeds, cfg, args, out, err)
