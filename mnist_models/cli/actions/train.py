"""What ``mnist-bench train`` does (``cli/commands/train.py``): resolve the run's automatic choices once,
train (once, or once per ``--seeds`` seed) with every epoch's row appended as it ends, save the checkpoint,
print or ``--json`` the figures. ``--nproc N`` launches the same command as N ranks (``train/launch.py``);
``--ddp`` runs one rank (``run_rank``): rank 0 alone prints, appends rows and saves."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from ...config import RunConfig
from ...errors import MachineLimit, UserError
from ...measure.stats import mean_ci
from ...results.provenance import environment, new_run_id
from ...results.store import to_json
from ...train.checkpoint import save_checkpoint
from ...train.dist import DEFAULT_TIMEOUT_S, Dist, pick_backend, rank_failed
from ...train.engine import FitResult
from ...train.launch import launch
from ...train.runtime import Resolved, Runtime, resolve
from ..common import prepare_run, run_fit

STATS = ("test_acc_pct", "test_loss", "seconds_per_epoch", "images_per_s")  # what --seeds summarises


def summary(run_id: str, run: Resolved, result: Any) -> dict[str, Any]:
    """The ``--json`` object: the config that ran, what auto resolved to and why, the last epoch's metrics,
    medians, all epochs."""
    last = result.rows[-1]
    return {"run_id": run_id, "config": asdict(run.cfg), "runtime": run.describe(),
            "test_acc_pct": last["test_acc_pct"], "test_loss": last["test_loss"],
            "seconds_per_epoch": statistics.median(r["train_s"] for r in result.rows),
            "images_per_s": statistics.median(r["train_img_per_s"] for r in result.rows),
            "epochs": result.rows, "environment": environment()}


def run(seeds: list[int] | None, cfg: RunConfig, args: argparse.Namespace, out: Console, err: Console) -> int:
    """Train ``cfg`` (once per seed with ``seeds``; on ``--nproc`` ranks; as one ``--ddp`` rank), as the command
    line checked it."""
    results_dir = prepare_run(cfg, args.results)
    if args.nproc is not None:
        pick_backend(args.backend or "auto", Runtime.check(cfg))  # NCCL without CUDA refused before launching
        launch(args.argv, args.nproc)  # every rank checks its input again; rank 0 prints what follows
        return 0
    if args.ddp:
        return run_rank(cfg, args, out, err)
    run = resolve(cfg)  # the run's automatic choices, made once, before the progress bar; every stage reads them
    if run.reason:
        err.print(run.reason, highlight=False, soft_wrap=True)
    run_id = new_run_id()
    if seeds is not None:
        return run_seeds(run, seeds, run_id, results_dir, args, out, err)
    result = run_fit(run, cfg.model, err, results_dir, run_id, "train")  # appends each epoch's row as it ends
    return report(run_id, run, result, results_dir, args, out)


def run_rank(cfg: RunConfig, args: argparse.Namespace, out: Console, err: Console) -> int:
    """One rank of a data-parallel run: join the job, take rank 0's automatic choices, refuse a rank launched
    differently, train this rank's shard in DistributedDataParallel; rank 0 alone reports, appends rows and
    saves. A failure ends the rank as ``dist.rank_failed`` says."""
    dist = None
    try:
        dist = Dist.start(cfg, args.backend or "auto", args.dist_timeout or DEFAULT_TIMEOUT_S)
        dist.check_same_world(cfg)
        run = dist.resolve(cfg)
        if run.reason and dist.is_main:
            err.print(run.reason, highlight=False, soft_wrap=True)
        run_id = new_run_id()
        label = f"{cfg.model} ×{dist.world} ranks"
        result = run_fit(run, label, err, Path(args.results), run_id, "train", dist=dist)
        dist.finish(report(run_id, run, result, Path(args.results), args, out) if dist.is_main else 0)
    except (UserError, MachineLimit, RuntimeError) as exc:
        return rank_failed(exc, dist)


def report(run_id: str, run: Resolved, result: FitResult, results_dir: Path, args: argparse.Namespace,
           out: Console) -> int:
    """Save the checkpoint (``--save``) and print the figures (or ``--json``)."""
    cfg = run.requested
    save = Path(args.save) if args.save else None  # checked by the command module, before training
    figures = summary(run_id, run, result)
    if save is not None:
        figures["checkpoint"] = str(save_checkpoint(save, result.model, run.cfg, result.rows[-1]))
    if args.json:
        out.file.write(to_json(figures) + "\n")
        out.file.flush()
        return 0
    ran = f"{run.cfg.precision}, {'NHWC' if run.cfg.channels_last else 'NCHW'}"
    last = result.rows[-1]
    if "world_size" in last:
        ran += (f", {last['world_size']} ranks over {last['backend']}, global batch {last['global_batch']}, "
                f"{last['threads_per_rank']} thread{'s' if last['threads_per_rank'] > 1 else ''} each")
    on = "" if cfg.dataset == "mnist" else f" on {cfg.dataset}"
    out.print(f"{cfg.model}{on} ({ran}): test accuracy {figures['test_acc_pct']:.2f}%, test loss "
              f"{figures['test_loss']:.4f}, {figures['seconds_per_epoch']:.2f} s/epoch (median of "
              f"{len(result.rows)}), {figures['images_per_s']:,.0f} img/s; rows appended to "
              f"{results_dir / 'runs.jsonl'}", highlight=False, soft_wrap=True)
    if save is not None:
        out.print(f"checkpoint saved to {figures['checkpoint']} (`mnist-bench predict --checkpoint "
                  f"{figures['checkpoint']} IMAGE...`)", highlight=False, soft_wrap=True)
    return 0


def run_seeds(run: Resolved, seeds: list[int], run_id: str, results_dir: Any, args: argparse.Namespace,
              out: Console, err: Console) -> int:
    """One training run per seed, with the automatic choices made once for all of them (``run``); each
    epoch's row appended as it ends (one run id, the seed in each row's config), then every figure's
    mean ± std and 95% confidence interval over the seeds."""
    per_seed = []
    for seed in seeds:
        seeded = replace(run, cfg=run.cfg.with_(seed=seed), requested=run.requested.with_(seed=seed))
        result = run_fit(seeded, f"{run.cfg.model} seed {seed}", err, results_dir, run_id, "train")
        per_seed.append({"seed": seed, **{k: v for k, v in summary(run_id, seeded, result).items() if k in STATS}})
    stats = {name: mean_ci([s[name] for s in per_seed]) for name in STATS}
    figures = {"run_id": run_id, "config": asdict(run.cfg), "runtime": run.describe(), "seeds": per_seed,
               "stats": stats, "environment": environment()}
    if args.json:
        out.file.write(to_json(figures) + "\n")
        out.file.flush()
        return 0
    for s in per_seed:
        out.print(f"seed {s['seed']}: test accuracy {s['test_acc_pct']:.2f}%, {s['seconds_per_epoch']:.2f} s/epoch",
                  highlight=False)
    ran = f"{run.cfg.precision}, {'NHWC' if run.cfg.channels_last else 'NCHW'}"
    acc, sec = stats["test_acc_pct"], stats["seconds_per_epoch"]
    spread = (f"test accuracy {acc['mean']:.2f}% ± {acc['std']:.2f} (95% CI {acc['ci_low']:.2f}–{acc['ci_high']:.2f}), "
              f"{sec['mean']:.2f} ± {sec['std']:.2f} s/epoch (95% CI {sec['ci_low']:.2f}–{sec['ci_high']:.2f})")
    out.print(f"{run.cfg.model} ({ran}), {len(seeds)} seeds: {spread}; mean ± sample std, Student's t at "
              f"{len(seeds) - 1} degrees of freedom; rows appended to {results_dir / 'runs.jsonl'}",
              highlight=False, soft_wrap=True)
    return 0
