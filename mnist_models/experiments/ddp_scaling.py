"""The scaling benchmark (``mnist-bench scaling``, the suite's ``--bench-ddp``): the same model trained for the
same global steps as 1, 2, … data-parallel processes, each layout a real torchrun job on this machine.

    rows = measure_scaling(ScalingSpec(cfg, nprocs=(1, 2)))

Layouts (``layouts``): on the CPU, each process count ``n`` runs with ``cores // n`` threads per process, so
the cores are not oversubscribed; one process with the same threads per process is its baseline for the
efficiency, and one process with every core's thread (what a user would run without DDP) is measured beside
them. On CUDA, ``n`` is the number of GPUs (at most those present: one GPU gives world size 1, and a note).
The per-rank batch is fixed (``cfg.batch_size``): the global batch grows with ``n``, and each row carries the
accuracy reached at its global batch after the same global steps.

Each row (``ddp_scaling_worker.measure``; with ``repeats`` > 1 the layouts run A B C A B C … and each row
pools its jobs' rounds: ``pooled``): images per second over all ranks (median of the timed rounds, their min
and max), per rank, step time, the all-reduce share of a step (profiler), test accuracy and loss; then, added
here, ``efficiency`` = img/s ÷ (n × the one-process baseline's img/s, same threads per process) and
``vs_all_threads`` = img/s ÷ one process with all threads. A one-process job trains without DDP (what runs
without it). The run's automatic choices (precision, memory format) are made once, here, before any layout,
so every layout runs the same concrete config.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig, check_distributed_config
from ..results.store import atomic_write_bytes, to_json
from ..train.dist import DEFAULT_TIMEOUT_S, cores, pick_backend
from ..train.launch import launch
from ..train.runtime import Resolved, resolve

WORKER = "mnist_models.experiments.ddp_scaling_worker"
STEPS, ROUNDS, WARMUP, PROFILE_STEPS = 30, 5, 10, 10  # global steps per timed round, rounds, untimed, profiled


@dataclass(frozen=True)
class ScalingSpec:
    """What to measure: the config (``batch_size`` per process), the process counts, and the steps."""

    cfg: RunConfig
    nprocs: tuple[int, ...] = (1, 2)
    steps: int = STEPS
    rounds: int = ROUNDS
    warmup: int = WARMUP
    profile_steps: int = PROFILE_STEPS
    backend: str = "auto"
    timeout_s: float = DEFAULT_TIMEOUT_S
    repeats: int = 1  # passes over every layout, interleaved (A B C A B C): machine drift spreads over all


@dataclass(frozen=True)
class Layout:
    """One job: ``nproc`` processes of ``threads`` intra-op threads each; ``role`` says why it runs."""

    nproc: int
    threads: int
    role: str  # "scaling", "baseline" (one process, the others' threads) or "all threads"

    @property
    def label(self) -> str:
        return f"{self.nproc} × {self.threads} thread{'s' if self.threads > 1 else ''}"


def default_counts(device: torch.device) -> tuple[int, ...]:
    """1 and each power of 2 up to the cores (CPU) or the GPUs (CUDA) here."""
    top = torch.cuda.device_count() if device.type == "cuda" else cores()
    counts, n = [1], 2
    while n <= top:
        counts.append(n)
        n *= 2
    return tuple(counts)


def layouts(nprocs: Sequence[int], device: torch.device, available: int | None = None) -> tuple[list[Layout], str]:
    """The jobs to run for ``nprocs`` on ``device`` (the module's docstring), and a note ("" when none)."""
    available = available or cores()
    if device.type == "cuda":
        gpus = torch.cuda.device_count()
        kept = sorted({n for n in nprocs if n <= gpus}) or [1]
        note = "" if len(kept) == len(set(nprocs)) else (f"{gpus} GPU{'s' if gpus > 1 else ''} here: process counts "
                                                         f"over {gpus} left out (one process per GPU)")
        return [Layout(n, max(1, available // n), "scaling") for n in kept], note
    runs = [Layout(n, max(1, available // n), "scaling") for n in sorted(set(nprocs))]
    have = {(r.nproc, r.threads) for r in runs}
    for threads in sorted({r.threads for r in runs if r.nproc > 1}):
        if (1, threads) not in have:
            runs.append(Layout(1, threads, "baseline"))
            have.add((1, threads))
    if (1, available) not in have:
        runs.append(Layout(1, available, "all threads"))
    over = [n for n in nprocs if n > available]
    note = (f"{', '.join(map(str, over))} processes on {available} cores: one thread each, oversubscribed"
            if over else "")
    return runs, note


def measure_layout(spec: ScalingSpec, run: Resolved, layout: Layout, workdir: Path) -> dict[str, Any]:
    """One layout as a torchrun job of ``ddp_scaling_worker`` ranks; rank 0's row."""
    spec_file, out_file = workdir / f"spec-{layout.nproc}x{layout.threads}.json", workdir / "row.json"
    body = {"config": asdict(run.cfg), "backend": spec.backend, "timeout_s": spec.timeout_s, "steps": spec.steps,
            "rounds": spec.rounds, "warmup": spec.warmup, "profile_steps": spec.profile_steps}
    atomic_write_bytes(spec_file, to_json(body).encode())
    launch([str(spec_file), str(out_file)], layout.nproc, threads=layout.threads, module=WORKER)
    row = json.loads(out_file.read_text(encoding="utf-8"))
    out_file.unlink()
    return {"layout": layout.label, "role": layout.role, **row}


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One layout's row over its ``repeats`` jobs: every timed round pooled (img/s: their median, min and max;
    the step time: the median round's), the profiled figures' medians; the accuracy is the first job's (the
    same seed trains the same steps)."""
    row = dict(runs[0])
    row["round_s"] = [t for run in runs for t in run["round_s"]]
    rates = [row["images_per_round"] / t for t in row["round_s"]]
    row |= {"repeats": len(runs), "img_per_s": statistics.median(rates), "img_per_s_min": min(rates),
            "img_per_s_max": max(rates), "rank_img_per_s": statistics.median(rates) / row["nproc"],
            "step_ms": 1e3 * statistics.median(row["round_s"]) / row["steps"]}
    for name in ("profiled_step_ms", "allreduce_ms_per_step", "allreduce_pct"):
        row[name] = statistics.median(run[name] for run in runs)
    return row


def ratios(rows: list[dict[str, Any]], available: int) -> None:
    """Each row's efficiency (vs one process with the same threads per process) and its ratio to one process
    with every core's thread, in place (NaN where that baseline did not run)."""
    one = {r["threads_per_rank"]: r["img_per_s"] for r in rows if r["nproc"] == 1}
    for r in rows:
        base = one.get(r["threads_per_rank"])
        r["efficiency"] = r["img_per_s"] / (r["nproc"] * base) if base else float("nan")
        r["vs_all_threads"] = r["img_per_s"] / one[available] if available in one else float("nan")


def measure_scaling(spec: ScalingSpec, say: Callable[[str], None] = lambda line: None) -> list[dict[str, Any]]:
    """Every layout of ``spec`` (``layouts``), one torchrun job each, in order; their rows with the ratios.
    The automatic choices are made once, first (``say`` tells them, and each layout as it starts)."""
    check_distributed_config(spec.cfg, max(spec.nprocs))
    run = resolve(spec.cfg)
    if run.reason:
        say(run.reason)
    device = torch.device(run.cfg.device)
    backend = pick_backend(spec.backend, device)
    plan, note = layouts(spec.nprocs, device)
    available = cores()
    jobs: dict[Layout, list[dict[str, Any]]] = {layout: [] for layout in plan}
    with tempfile.TemporaryDirectory(prefix="mnist-bench-scaling-") as tmp:
        for repeat in range(1, spec.repeats + 1):
            for i, layout in enumerate(plan, start=1):
                say(f"[{i}/{len(plan)}{f', pass {repeat}/{spec.repeats}' if spec.repeats > 1 else ''}] "
                    f"{run.cfg.model}: {layout.label} ({layout.role}), batch {run.cfg.batch_size} per process, "
                    f"{spec.warmup} + {spec.rounds} × {spec.steps} global steps")
                jobs[layout].append(measure_layout(spec, run, layout, Path(tmp)))
    rows = [pooled(runs) for runs in jobs.values()]
    ratios(rows, available if device.type == "cpu" else 0)
    config = {"model": run.cfg.model, "device": run.cfg.device, "precision": run.cfg.precision,
              "channels_last": run.cfg.channels_last, "batch_size": run.cfg.batch_size, "lr": run.cfg.lr,
              "optimizer": run.cfg.optimizer, "cores": available, "auto_reason": run.reason, "note": note}
    return [{**config, **row, "backend": backend} for row in rows]
