"""Time to accuracy: how long until the full test accuracy first reaches a target.

Each seed runs in a process of its own (as MLPerf does; ``tta_worker.py``), so "from process
start" includes the interpreter, importing torch, loading and verifying the data, building (and
compiling) the model. The run trains with Adam, label smoothing and a one-cycle schedule over a
budget of ``epochs`` epochs, evaluates all 10,000 test images every ``eval_every`` steps once
``eval_from`` of the budget has run (and at its end), and stops at the first evaluation at or
above the target. Evaluation time counts in both clocks. A seed that never reaches the target
within the budget is a failure, listed, not a slow run. The report (``report/tta_table.py``) gives the
MLPerf-style figures over the seeds.

    mnist-bench tta --model fastnet --target 99.0 --seeds 5

Imports here stay light (no torch, pandas or matplotlib at the top): the worker imports this
module before the torch import its start-up clock measures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ..config import MEASURED_DEFAULTS, RunConfig
from ..host.clock import process_age_s

# The recipe (the registry model decides the architecture); how it was chosen: docs/decisions.md
# (2026-11-25, "time-to-accuracy recipe"; 2026-12-06, "fastnet2").
TTA_MODEL = "fastnet2"
TTA_BATCH = 256
TTA_MAX_LR = 0.03  # one-cycle peak learning rate for Adam
TTA_LABEL_SMOOTHING = 0.1
TTA_MAX_EPOCHS = 1
TTA_EVAL_EVERY = 25  # steps between evaluations on the full test set
TTA_EVAL_FROM = 0.6  # evaluations start once this fraction of the budget has run (MLPerf's offsets)
TTA_EVAL_BATCH = 1000  # images per evaluation batch (evaluation time counts)
TTA_TARGET_PCT = 99.0


def recipe(model: str = TTA_MODEL, target_pct: float = TTA_TARGET_PCT, seed: int = 0, device: str = "auto",
           precision: str = MEASURED_DEFAULTS["precision"],
           channels_last: bool | None = MEASURED_DEFAULTS["channels_last"], max_epochs: int = TTA_MAX_EPOCHS,
           eval_every: int = TTA_EVAL_EVERY, eval_from: float = TTA_EVAL_FROM,
           data_root: str | None = None, model_args: tuple[str, ...] = (), dataset: str = "mnist") -> RunConfig:
    """The RunConfig of one time-to-accuracy seed: the recipe above with the given choices (validated)."""
    return RunConfig(model=model, model_args=tuple(model_args), device=device, precision=precision, loader="fast",
                     channels_last=channels_last,
                     batch_size=TTA_BATCH, eval_batch_size=TTA_EVAL_BATCH, lr=TTA_MAX_LR, optimizer="adam",
                     lr_schedule="onecycle", label_smoothing=TTA_LABEL_SMOOTHING, epochs=max_epochs, seed=seed,
                     data_root=data_root, dataset=dataset, target_pct=target_pct, eval_every=eval_every,
                     eval_from=eval_from)


def resolve(cfg: RunConfig) -> tuple[RunConfig, dict[str, Any]]:
    """The automatic choices made once, in this process, for every seed to come (``train.runtime.resolve``).

    Returns the config with a concrete device, precision and memory format, and what to add to
    each seed's row (``Resolved.columns``): ``precision_requested``, ``auto_reason`` (the probe's
    figures) and ``auto_probe_s`` (the probe's time, spent before the seeds and outside their clocks).
    """
    from ..train.runtime import resolve as resolve_run

    run = resolve_run(cfg)
    return run.cfg, run.columns()


# startup_dynamo_import_s: rows before 2026-12-06, when torch.optim's constructor pulled torch._dynamo in
# (1.0 s); train/optim.py no longer imports it.
STARTUP_PHASES = {"startup_python_s": "interpreter + CLI", "startup_torch_import_s": "import torch",
                  "startup_dynamo_import_s": "import torch._dynamo", "startup_data_s": "data load + SHA-256",
                  "startup_model_s": "model + optimiser build"}


def run_one(settings: dict[str, Any]) -> dict[str, Any]:
    """Train one seed (``settings``: a RunConfig's fields) until the target or the budget; the row of
    times, accuracies and start-up phases.

    Start-up is split by clock readings from process start: ``startup_python_s`` (interpreter and
    this module), then the torch import, data loading and verification, and the model and optimiser
    build (which imports no ``torch._dynamo``: ``train/optim.py``).
    """
    phases = {"startup_python_s": process_age_s()}  # /proc clock ticks: 10 ms resolution
    last = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        phases[name], last = now - last, now

    import torch  # noqa: F401 - timed: the start-up phases are the point

    mark("startup_torch_import_s")
    from ..data import load_split
    from ..train.engine import build_training, every

    cfg = RunConfig(**settings)
    load_split("train", cfg.data_root, cfg.dataset)
    load_split("test", cfg.data_root, cfg.dataset)
    mark("startup_data_s")
    training = build_training(cfg)
    training.capture()
    mark("startup_model_s")
    return _train_to_target(cfg, training, phases, every)


def _train_to_target(cfg: RunConfig, training: Any, phases: dict[str, float], every: Any) -> dict[str, Any]:
    """The timed part of ``run_one``: train through the engine's loop, evaluating by a step hook."""
    import torch

    steps_per_epoch = len(training.train_loader)
    total_steps = steps_per_epoch * cfg.epochs
    state = {"evaluations": 0, "accuracy": float("nan"), "reached": None}

    def check(steps: int) -> bool:
        state["accuracy"] = training.evaluate()["test_acc_pct"]
        state["evaluations"] += 1
        if state["accuracy"] >= cfg.target_pct:
            training.rt.synchronize()
            state["reached"] = time.perf_counter() - first_step
            return True
        return False

    on_step = every(cfg.eval_every or steps_per_epoch, check, start=cfg.eval_from * total_steps, also_at=total_steps)

    torch.manual_seed(cfg.seed)
    first_step = time.perf_counter()
    from_start_at_first_step = process_age_s()
    while training.steps < total_steps and not training.stopped:
        training.train_epoch(max_steps=total_steps - training.steps, on_step=on_step)
    reached = state["reached"]
    return {
        "model": cfg.model, "seed": cfg.seed, "target_pct": cfg.target_pct, "reached": reached is not None,
        "from_start_s": from_start_at_first_step + reached if reached is not None else float("nan"),
        "from_first_step_s": reached if reached is not None else float("nan"),
        "setup_s": from_start_at_first_step, **phases, "steps": training.steps,
        "epochs": training.steps / steps_per_epoch, "evaluations": state["evaluations"],
        "test_acc_pct": state["accuracy"], "batch_size": cfg.batch_size, "max_lr": cfg.lr,
        "label_smoothing": cfg.label_smoothing, "eval_every": cfg.eval_every, "eval_from": cfg.eval_from,
        "max_epochs": cfg.epochs, "precision": training.rt.precision, "device": str(training.rt.device),
        "channels_last": training.rt.channels_last,
    }


def run_in_process(cfg: RunConfig) -> dict[str, Any]:
    """``run_one`` for ``cfg`` in a fresh Python process (``python -m mnist_models.experiments.tta_worker``),
    so the clock from process start sees a cold start; its row. Raises ``TrainingError`` when the
    process fails."""
    done = subprocess.run([sys.executable, "-m", "mnist_models.experiments.tta_worker", json.dumps(asdict(cfg))],
                          capture_output=True, text=True)
    if done.returncode != 0:
        from ..train.engine import TrainingError

        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise TrainingError(f"the process for seed {cfg.seed} failed: {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


CLI_RUNS = 5  # fresh processes timed for the command line's start-up


def cli_startup(runs: int = CLI_RUNS) -> dict[str, float]:
    """The command line's own start-up: ``python -m mnist_models --help`` in ``runs`` fresh processes, each
    timed from before its launch to its exit (interpreter, the CLI's imports, the parser; torch is not
    imported: tests/test_imports.py). Median, min and max seconds, and n, for each seed's row."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mnist_models", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"cli_help_s": times[len(times) // 2], "cli_help_min_s": times[0], "cli_help_max_s": times[-1],
            "cli_help_n": runs}


def olympic_mean(values: Sequence[float]) -> float:
    """Mean with the single fastest and slowest dropped (n ≥ 3), else the plain mean."""
    data = sorted(values)
    if len(data) >= 3:
        data = data[1:-1]
    return sum(data) / len(data) if data else float("nan")
