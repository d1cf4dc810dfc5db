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

from rich.console import Console

from ...config import INVERT_CHOICES
from ...data.inputs import check_image
from ...train.checkpoint_path import check_checkpoint
from ..actions import action
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


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    for image in args.images:  # a missing file is refused before torch is imported; its content later
        check_image(image)
    check_checkpoint(args.checkpoint)
    return action(__name__).run(args, out, err)
