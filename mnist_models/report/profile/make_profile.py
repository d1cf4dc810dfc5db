"""``mnist-bench profile``'s one call: profile a short training run and publish its folder.

``make_profile`` checks everything that can fail first (variant, device, schedule, data, results folder,
batches per pass), makes ``<results>/profiles/<id>/``, runs the profiled steps
(``experiments.profiling``), renders the pages (``profile_page``) and writes the data files and the
pages in one go, all or none (``runs.profiles.write_profile``). A profile that fails or is
interrupted removes its folder (``runs.profiles.removed_on_failure``): nothing half-written is left.

    make_profile("eager", {"model": "v2", "device": "cpu"}, Schedule(), "results")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...experiments.profiling import Schedule, prepare_profile, profile_config, run_profile
from ...runs.profiles import ProfileData, new_profile_folder, removed_on_failure, write_profile
from .profile_page import pages


def make_profile(variant: str, settings: dict[str, Any], sched: Schedule, results: str | os.PathLike[str],
                 say: Callable[[str], None] = lambda line: None) -> tuple[ProfileData, Path]:
    """Profile ``settings``' config (the suite's baseline with ``variant`` applied, then the settings given)
    under ``sched`` into a new folder in ``results/profiles/``; its data and folder. ``say``: progress lines."""
    cfg, var = profile_config(variant, settings)
    training = prepare_profile(cfg, sched, results)
    run_id, folder = new_profile_folder(results, cfg.model, var.name)
    say(f"profiling {cfg.model} {var.name}: {sched.steps} steps under the profiler, {sched.active} recorded; "
        f"{sched.active} before and after without it")
    with removed_on_failure(folder):
        data = run_profile(training, var, sched, folder, run_id)
        write_profile(folder, data, pages(data, folder))  # all or none (a full disk: one line)
    return data, folder
