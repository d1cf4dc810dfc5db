"""``mnist-bench train``: train one model and report per-epoch accuracy, loss and time; every epoch's
row is appended to ``results/runs.jsonl``. Its flags are RunConfig's fields (``cli/flags.py``), plus
``--save PATH``: write the trained model's checkpoint (``train/checkpoint.py``) for ``mnist-bench predict``."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict
from typing import Any

from rich.console import Console

from ...config import RunConfig
from ...results.provenance import environment, new_run_id
from ...results.store import to_json
from ...train.checkpoint import check_save_path, save_checkpoint
from ...train.runtime import Runtime
from ..common import prepare_run, run_fit
from ..flags import add_config_flags, add_json, add_results, config_values

SETTINGS = ("model", "protocol", "device", "precision", "compile", "channels_last", "cuda_graph", "loader",
            "batch_size", "lr", "optimizer", "label_smoothing", "eval_batch_size", "epochs", "seed", "deterministic",
            "data_root")

ORDER = 40  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one model and report per-epoch accuracy, loss and time")
    add_config_flags(p, SETTINGS, defaults={"precision": "auto"},
                     notes={"precision": "fp32 under --protocol notebook"})
    p.add_argument("--save", metavar="PATH", help="after training, write the model's checkpoint (weights, config, "
                   "metrics, versions, SHA-256) to PATH, for `mnist-bench predict --checkpoint PATH`")
    add_json(p)
    add_results(p)


def config(args: argparse.Namespace) -> RunConfig:
    """The run's RunConfig: the protocol's defaults (if any), then the flags given."""
    settings = config_values(args, SETTINGS)
    protocol = settings.pop("protocol")
    if protocol is None and settings["precision"] is None:
        settings["precision"] = "auto"  # the project chooses (a protocol fixes its own precision)
    return RunConfig.from_protocol(protocol, **settings)


def summary(run_id: str, cfg: RunConfig, result: Any) -> dict[str, Any]:
    """The ``--json`` object: config, what auto resolved to, the last epoch's metrics, medians, all epochs."""
    last = result.rows[-1]
    return {"run_id": run_id, "config": asdict(cfg), "runtime": result.runtime,
            "test_acc_pct": last["test_acc_pct"], "test_loss": last["test_loss"],
            "seconds_per_epoch": statistics.median(r["train_s"] for r in result.rows),
            "images_per_s": statistics.median(r["train_img_per_s"] for r in result.rows),
            "epochs": result.rows, "environment": environment()}


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    cfg = config(args)
    results_dir = prepare_run(cfg, args.results)
    save = check_save_path(args.save) if args.save else None  # fail before training, not after
    reason = Runtime.from_config(cfg).auto_reason  # measured here, before the progress bar; cached for fit
    if reason:
        err.print(reason, highlight=False, soft_wrap=True)
    run_id = new_run_id()
    result = run_fit(cfg, cfg.model, err, results_dir, run_id, "train")  # appends each epoch's row as it ends
    figures = summary(run_id, cfg, result)
    if save is not None:
        figures["checkpoint"] = str(save_checkpoint(save, result.model, cfg, result.rows[-1]))
    if args.json:
        out.file.write(to_json(figures) + "\n")
        out.file.flush()
        return 0
    ran = f"{result.runtime['precision']}, {'NHWC' if result.runtime['channels_last'] else 'NCHW'}"
    out.print(f"{cfg.model} ({ran}): test accuracy {figures['test_acc_pct']:.2f}%, test loss "
              f"{figures['test_loss']:.4f}, {figures['seconds_per_epoch']:.2f} s/epoch (median of "
              f"{len(result.rows)}), {figures['images_per_s']:,.0f} img/s; rows appended to "
              f"{results_dir / 'runs.jsonl'}", highlight=False, soft_wrap=True)
    if save is not None:
        out.print(f"checkpoint saved to {figures['checkpoint']} (`mnist-bench predict --checkpoint "
                  f"{figures['checkpoint']} IMAGE...`)", highlight=False, soft_wrap=True)
    return 0
