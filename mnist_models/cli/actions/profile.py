"""What ``mnist-bench profile`` does (``cli/commands/profile.py``): profile the steps and write the folder, or
diff two profile folders; print the summary or ``--json``. ``--nproc N`` launches the same command as N ranks
(``train/launch.py``), after the checks that need no rank; ``--ddp`` profiles as one rank (``run_rank``):
rank 0 alone prints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ...config import ConfigError, RunConfig, check_distributed_config
from ...errors import MachineLimit, UserError
from ...experiments.profiling import Schedule, check_profile, profile_config
from ...report.profile.make_profile import make_profile, profile_ranks
from ...report.profile.profile_diff import diff_profiles
from ...report.profile.profile_page import printed_lines
from ...results.store import to_json
from ...runs.profiles import ProfileData
from ...train.dist import DEFAULT_TIMEOUT_S, Dist, pick_backend, rank_failed
from ...train.launch import launch
from ...train.runtime import Runtime
from ...variants import Variant


def run(settings: dict[str, Any] | None, args: argparse.Namespace, out: Console, err: Console) -> int:
    """Profile with ``settings`` (the command line's), or with ``--diff`` (``settings`` None) compare two folders."""
    sched = Schedule(args.wait, args.warmup, args.active)
    if args.diff:
        diff = diff_profiles(*args.diff, args.by, args.min_change, args.min_us)
        return show(diff.as_json, [diff.markdown, f"Wrote {diff.path}"], args, out)
    if args.nproc is not None:
        cfg, var = profile_config(args.variant, settings or {})
        check_ranks(cfg, var, settings or {})
        pick_backend(args.backend or "auto", Runtime.check(cfg))  # NCCL without CUDA refused before launching
        check_profile(cfg, sched, args.results)
        launch(args.argv, args.nproc, kept="the unfinished profile was removed")  # rank 0 prints what follows
        return 0
    if args.ddp:
        return run_rank(settings or {}, sched, args, out, err)
    data, folder = make_profile(args.variant, settings or {}, sched, args.results, say=lambda line: err.print(
        line, highlight=False))
    return show(data.meta, printed_lines(data, folder), args, out)


def check_ranks(cfg: RunConfig, var: Variant, settings: dict[str, Any]) -> None:
    """What a data-parallel profile cannot run (``config.check_distributed_config``), said of the variant where
    the variant chose it."""
    if cfg.loader == "notebook" and settings.get("loader") is None:
        raise ConfigError(f"--variant {var.name} trains from the notebook's DataLoader, which data-parallel runs do "
                          "not shard; fix: another --variant, or drop --nproc/--ddp")
    check_distributed_config(cfg)


def run_rank(settings: dict[str, Any], sched: Schedule, args: argparse.Namespace, out: Console,
             err: Console) -> int:
    """One rank of a data-parallel profile: join the job, refuse a rank launched differently, profile the
    same DDP steps as every rank into the one folder (``make_profile.profile_ranks``); rank 0 alone prints.
    A failure ends the rank as ``train.dist.rank_failed`` says (one line naming the rank)."""
    dist = None
    try:
        cfg, var = profile_config(args.variant, settings)
        check_ranks(cfg, var, settings)
        dist = Dist.start(cfg, args.backend or "auto", args.dist_timeout or DEFAULT_TIMEOUT_S)
        dist.check_same_world(cfg)
        data, folder = profile_ranks(cfg, var, sched, args.results, dist,
                                     say=lambda line: err.print(line, highlight=False))
        dist.finish(show_main(data, folder, args, out))
    except (UserError, MachineLimit, RuntimeError) as exc:
        return rank_failed(exc, dist)


def show_main(data: ProfileData | None, folder: Path, args: argparse.Namespace, out: Console) -> int:
    """Rank 0's output (``data``: its profile); the other ranks print nothing."""
    return 0 if data is None else show(data.meta, printed_lines(data, folder), args, out)


def show(result: dict[str, Any], lines: list[str], args: argparse.Namespace, out: Console) -> int:
    """``--json``: ``result`` as one line, written as it is (rich would read markup or emoji codes in the JSON);
    else ``lines``."""
    if args.json:
        out.file.write(to_json(result) + "\n")
        out.file.flush()
        return 0
    for line in lines:
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0
