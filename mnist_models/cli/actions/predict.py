"""What ``mnist-bench predict`` does (``cli/commands/predict.py``): each image normalised the MNIST way, the
checkpoint loaded, one batch classified, a table or ``--json``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from ...data.images import preprocess
from ...host.device import resolve_device
from ...results.store import to_json
from ...train.checkpoint import load_checkpoint
from ...train.engine import make_predictions
from ...train.oom import oom_guard


def oom_fix(images: int, device: torch.device) -> str:
    """What predict can change when memory runs out: its images form one batch, so fewer per call; on
    a GPU, the CPU instead (predict has no --batch-size)."""
    fixes = [f"pass at most {images // 2} images per call (they are predicted as one batch)"] if images > 1 else []
    if device.type == "cuda":
        fixes.append("use --device cpu")
    return ", or ".join(fixes) or "free host memory (close what else holds it)"


def predict(checkpoint: str, images: list[str], invert: str = "auto", device: str = "auto",
            allow_changed_source: bool = False) -> dict[str, Any]:
    """The ``--json`` object: the checkpoint, its model and one prediction per image (digit, its
    probability, all ten class probabilities, and whether the image was blank)."""
    target = resolve_device(device)
    samples = [preprocess(image, invert) for image in images]  # every image is checked before the model runs
    with oom_guard(len(samples), fix=oom_fix(len(samples), target)):
        model, config, _ = load_checkpoint(checkpoint, target, allow_changed_source)
        probabilities = make_predictions(model, samples, target)
    predictions = []
    for image, sample, row in zip(images, samples, probabilities.tolist(), strict=True):
        digit = max(range(len(row)), key=row.__getitem__)
        predictions.append({"file": image, "digit": digit, "probability": row[digit], "probabilities": row,
                            "blank": not bool(sample.any())})  # no ink found: the digit means nothing
    return {"checkpoint": str(checkpoint), "model": config["model"], "predictions": predictions}


def table(result: dict[str, Any]) -> Table:
    """One row per image: file, predicted digit, its probability, and the runner-up ("blank" for an image
    with no digit in it)."""
    title = f"{result['model']} from {Path(result['checkpoint']).name}"
    view = Table(title=title, title_justify="left")
    view.add_column("file", overflow="fold")  # a path is shown whole, folded if the terminal is narrow
    for column in ("digit", "probability", "runner-up"):
        view.add_column(column, justify="right", no_wrap=True)
    for p in result["predictions"]:
        second = sorted(range(10), key=p["probabilities"].__getitem__)[-2]
        if p.get("blank"):
            view.add_row(p["file"], "blank", "-", "no digit found in the image")
            continue
        view.add_row(p["file"], str(p["digit"]), f"{p['probability']:.3f}",
                     f"{second} ({p['probabilities'][second]:.3f})")
    return view


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    result = predict(args.checkpoint, args.images, args.invert, args.device or "auto", args.allow_changed_source)
    if args.json:
        out.file.write(to_json(result) + "\n")
        out.file.flush()
        return 0
    out.print(table(result))
    return 0
