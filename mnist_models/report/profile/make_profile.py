"""``mnist-bench profile``'s one call: profile a short training run and publish its folder.

``make_profile`` checks everything that can fail first (variant, device, schedule, data, results folder,
batches per pass), makes ``<results>/profiles/<id>/``, runs the profiled steps
(``experiments.profiling``), renders the pages (``profile_page``) and writes the data files and the
pages in one go, all or none (``runs.profiles.write_profile``). A profile that fails or is
interrupted removes its folder (``runs.profiles.removed_on_failure``): nothing half-written is left.

``profile_ranks`` is the same on one rank of a data-parallel job (``profile --nproc N`` / ``--ddp``): rank 0
makes the folder and sends its id to the others; every rank profiles the same DDP steps and writes its own
trace (``rank-R/trace.json.gz``, ``tensorboard/<id>-rankR.…``); once every rank's trace is written (a
gather of their names), rank 0 analyses its own trace and writes the folder's files, which list every
rank's trace.

    make_profile("eager", {"model": "v2", "device": "cpu"}, Schedule(), "results")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...config import RunConfig
from ...experiments.profiling import (
    Schedule,
    analyse,
    plural,
    prepare_profile,
    profile_config,
    profile_training,
    run_profile,
    worker_name,
)
from ...runs.profiles import (
    ProfileData,
    new_profile_folder,
    profile_folder,
    removed_on_failure,
    write_profile,
    write_rank_trace,
)
from ...train.dist import Dist
from ...variants import Variant
from .profile_page import pages

Say = Callable[[str], None]  # progress lines


def make_profile(variant: str, settings: dict[str, Any], sched: Schedule, results: str | os.PathLike[str],
                 say: Say = lambda line: None) -> tuple[ProfileData, Path]:
    """Profile ``settings``' config (the suite's baseline with ``variant`` applied, then the settings given)
    under ``sched`` into a new folder in ``results/profiles/``; its data and folder. ``say``: progress lines."""
    cfg, var = profile_config(variant, settings)
    training = prepare_profile(cfg, sched, results)
    run_id, folder = new_profile_folder(results, cfg.model, var.name)
    _announce(say, cfg, var, sched)
    with removed_on_failure(folder):
        data = run_profile(training, var, sched, folder, run_id)
        write_profile(folder, data, pages(data, folder))  # all or none (a full disk: one line)
    return data, folder


def _announce(say: Say, cfg: RunConfig, var: Variant, sched: Schedule, ranks: str = "") -> None:
    say(f"profiling {cfg.model} {var.name}{ranks}: {sched.steps} steps under the profiler, {sched.active} recorded; "
        f"{sched.active} before and after without it")


def profile_ranks(cfg: RunConfig, var: Variant, sched: Schedule, results: str | os.PathLike[str], dist: Dist,
                  say: Say = lambda line: None) -> tuple[ProfileData | None, Path]:
    """One rank's part of a data-parallel profile of ``cfg`` (checked by ``profile_config``, the same on every
    rank: ``Dist.check_same_world``): rank 0's data and the folder, or None and the folder on the others."""
    training = prepare_profile(dist.resolve(cfg), sched, results, dist)
    run_id, folder = shared_folder(results, cfg, var, dist)
    if dist.is_main:
        _announce(say, cfg, var, sched, f" on {dist.world} ranks")
    with removed_on_failure(folder):
        run = profile_training(training, sched, folder / "tensorboard", worker_name(run_id, dist))
        written = {"trace": write_rank_trace(folder, run.trace_file, dist.rank), "tensorboard": run.trace_file.name}
        every = dist.gather(written)  # returns once every rank's trace is in the folder
        if not dist.is_main:
            return None, folder
        data = analyse(run, var, folder, run_id)
        data.meta.update(distributed_meta(data.meta, run.cfg, dist, every))
        write_profile(folder, data, pages(data, folder))
    return data, folder


def shared_folder(results: str | os.PathLike[str], cfg: RunConfig, var: Variant, dist: Dist) -> tuple[str, Path]:
    """The profile's id and folder on every rank: rank 0 makes the folder and sends its id (the folder is
    removed again when that fails: a rank gone)."""
    if not dist.is_main:
        run_id = dist.share(None)
        return run_id, profile_folder(results, run_id)
    run_id, folder = new_profile_folder(results, cfg.model, var.name)
    with removed_on_failure(folder):
        dist.share(run_id)
    return run_id, folder


def distributed_meta(meta: dict[str, Any], cfg: RunConfig, dist: Dist, every: list[dict[str, str]]
                     ) -> dict[str, Any]:
    """What profile.json (``meta``: rank 0's) adds for a data-parallel profile: ``distributed`` (the job and every
    rank's trace, by rank), and the job in ``ran``."""
    info = {"world_size": dist.world, "backend": dist.backend, "threads_per_rank": dist.threads,
            "global_batch": cfg.batch_size * dist.world, "analysed_rank": dist.rank,
            "traces": [rank["trace"] for rank in every], "tensorboard_files": [rank["tensorboard"] for rank in every]}
    ran = (f"{meta['ran']} Data-parallel: {dist.world} ranks over {dist.backend}, {plural(dist.threads, 'thread')} "
           f"each, global batch {info['global_batch']} ({cfg.batch_size} per rank); the breakdown and operators are "
           f"rank {dist.rank}'s.")
    return {"distributed": info, "ran": ran}
