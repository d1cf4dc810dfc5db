"""``mnist-bench predict --checkpoint PATH IMAGE...``: the digit in each image, by a model saved with
``mnist-bench train --save PATH``.

Each image (PNG, JPEG, BMP or GIF, any size or mode) is normalised the way MNIST was made
(``data.images.preprocess``: grayscale, a light background inverted, the digit cropped, fitted in
20×20 and centred by its centre of mass in 28×28), then classified (``train.engine.make_predictions``).
Every image and the checkpoint are checked before anything is predicted: a bad one stops the
command with one line (exit 2). What each kind of image gets:

- a decompression bomb (a small file declaring, say, 50,000 × 50,000 pixels): refused from its header,
  before any pixel is decoded (``data.images.MAX_PIXELS`` and PIL's own guard), in bounded memory;
- a truncated or corrupted file, or one that is not an image whatever its name: refused, one line;
- an animated GIF (or any multi-frame file): its first frame is read;
- 16-bit, palette, 1-bit, transparent images: converted to grayscale by their depth;
- a 1 × 1, all-white or otherwise blank image: a prediction marked ``blank`` (``--json``) and "blank"
  in the table: no digit was found, so the digit shown means nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from ...data.images import INVERT_CHOICES, preprocess
from ...host.device import resolve_device
from ...results.store import to_json
from ...train.checkpoint import load_checkpoint
from ...train.engine import make_predictions
from ...train.oom import oom_guard
from ..flags import add_config_flags, add_json

ORDER = 45  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict the digit in image files with a checkpoint from `train --save`")
    p.add_argument("--checkpoint", metavar="PATH", required=True,
                   help="a checkpoint written by `mnist-bench train --save PATH`")
    p.add_argument("images", metavar="IMAGE", nargs="+",
                   help="image files of one digit each: PNG, JPEG, BMP or GIF (first frame), any size or mode")
    p.add_argument("--invert", choices=INVERT_CHOICES, default="auto", metavar="|".join(INVERT_CHOICES),
                   help="make the digit white on black: auto inverts images whose border is light (a dark digit "
                        "on paper), yes always, no never; default auto")
    p.add_argument("--allow-changed-source", action="store_true",
                   help="rebuild a model of your own from its file even if the file changed since the checkpoint")
    add_config_flags(p, ("device",))
    add_json(p)


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
