"""Real images → MNIST-shaped tensors: ``preprocess(source)`` reads a picture of one digit and
normalises it the way MNIST itself was made, so that a model trained on MNIST sees what it knows.

A photo or scan resized straight to 28×28 loses a lot of accuracy (docs: GUIDE, "Real images are not
MNIST-shaped"). MNIST's digits were white on black, size-normalised to fit a 20×20 box keeping their
aspect ratio (antialiased), then placed in 28×28 with their centre of mass at the centre. Here:

1. read (PNG, JPEG, BMP, GIF's first frame, any size; EXIF rotation applied) and refuse images over
   ``MAX_PIXELS`` before decoding them (decompression bombs);
2. grayscale in [0, 1]: alpha is composited over white; 16/32-bit integer images are scaled by
   their bit depth; palette and 1-bit images are expanded;
3. invert a light background (``invert="auto"``: the median of the border pixels is above
   ``LIGHT_BACKGROUND``), or always (``"yes"``) or never (``"no"``);
4. split ink from paper (Otsu's threshold), map the paper's median to 0 and the ink's 99th percentile
   to 1, and keep only the ink and its antialiased edge (within ``FRINGE`` pixels of it, down to
   ``NOISE``): paper grain, JPEG ringing and a mild lighting gradient do not count as the digit;
5. crop to the digit's bounding box, scale it to fit 20×20 keeping its aspect ratio (bilinear,
   antialiased), and paste it in 28×28 with its centre of mass at pixel (14, 14), kept whole.

MNIST's own test digits come back nearly unchanged (mean absolute difference ~0.002 per pixel). A
blank image (a uniform one, or ink less than ``BLANK`` above the paper) gives an all-zero sample.
Anything unreadable raises ``ImageError``: one line naming the file, the problem and the fix.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config import INVERT_CHOICES
from .inputs import ImageError, check_image

MNIST_SIZE = 28  # the frame
DIGIT_BOX = 20  # the digit is scaled to fit this square, as MNIST's were
MAX_PIXELS = 64 * 1024 * 1024  # refuse larger images before decoding them (a 64-megapixel photo is allowed)
LIGHT_BACKGROUND = 0.5  # border median above this (127/255) → dark digit on light paper: invert
NOISE = 0.1  # after stretching (paper 0, ink 1), an edge pixel under this is zeroed
FRINGE = 2  # pixels: how far from the ink (Otsu's class) its antialiased edge is kept
BLANK = 0.15  # the ink must stand this far above the paper, else the image is blank
MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF", b"BM": "BMP"}


def _describe(source: str | os.PathLike[str] | Image.Image) -> str:
    return "<PIL image>" if isinstance(source, Image.Image) else str(source)


def open_image(source: str | os.PathLike[str] | Image.Image) -> Image.Image:
    """The decoded image (first frame, EXIF rotation applied), refusing missing, unreadable,
    truncated and oversized files with one line naming the file."""
    name = _describe(source)
    if isinstance(source, Image.Image):
        return _decoded(source, name)
    path = check_image(source)
    try:  # reads the header only; PIL's own bomb guard is made an error here rather than a warning
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageError(f"image {name}: too many pixels for PIL's decompression-bomb guard ({_first_line(exc)}); "
                         "fix: downscale or crop it to the digit first") from None
    except OSError as exc:
        if isinstance(exc, UnidentifiedImageError) or not exc.strerror:
            raise _unreadable(path) from None
        raise ImageError(f"image {name}: cannot be read ({exc.strerror})") from None
    except Exception:  # noqa: BLE001 - a malformed header can fail in any of PIL's plugins: same user error
        raise _unreadable(path) from None
    with img:
        return _decoded(img, name)


def _unreadable(path: Path) -> ImageError:
    """A file PIL could not identify: an image cut short in its header when it starts like one (a PNG,
    JPEG, GIF or BMP signature), else not an image at all."""
    with open(path, "rb") as f:
        head = f.read(8)
    kind = next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)
    if kind:
        return ImageError(f"image {path}: a {kind} file truncated or corrupted in its header; "
                          "fix: export the image again")
    return ImageError(f"image {path}: not an image PIL can read; fix: pass a PNG, JPEG, BMP or GIF file")


def _decoded(img: Image.Image, name: str) -> Image.Image:
    """``img``'s first frame decoded into memory (a copy, EXIF rotation applied), after the pixel limit
    (checked before any pixel is decoded)."""
    if img.width * img.height > MAX_PIXELS:
        raise ImageError(f"image {name}: {img.width}×{img.height} pixels is over the limit of {MAX_PIXELS:,} "
                         "(a decompression-bomb guard); fix: downscale or crop it to the digit first")
    try:
        img.seek(0)  # GIF and other multi-frame files: the first frame
        img.load()
        return ImageOps.exif_transpose(img)  # a copy, transposed when the EXIF says so
    except Exception as exc:  # noqa: BLE001 - truncated or corrupted data fails in plugin-specific ways
        raise ImageError(f"image {name}: truncated or corrupted ({_first_line(exc)}); "
                         "fix: export the image again") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def to_grayscale(img: Image.Image) -> np.ndarray:
    """Luminance as float32 (H, W) in [0, 1], 1 = white; transparency is composited over white and
    integer images of more than 8 bits are scaled by their depth."""
    mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img, mode = Image.alpha_composite(white, rgba).convert("L"), "L"
    if mode.startswith("I;16"):
        return (np.asarray(img, dtype=np.float32) / 65535.0).astype(np.float32)
    if mode in ("I", "F"):  # 32-bit: the depth is what the values need (8, 16 bits, else their peak)
        values = np.asarray(img, dtype=np.float64)
        peak = float(values.max()) if values.size else 0.0
        depth = 1.0 if mode == "F" and peak <= 1.0 else 255.0 if peak <= 255 else 65535.0 if peak <= 65535 else peak
        return np.clip(values / depth, 0.0, 1.0).astype(np.float32)
    if mode != "L":
        img = img.convert("RGB").convert("L") if mode not in ("1", "P") else img.convert("L")
    return np.asarray(img, dtype=np.float32) / 255.0


def border_median(gray: np.ndarray) -> float:
    """The median of the outermost rows and columns: the background's level."""
    border = np.concatenate([gray[0, :], gray[-1, :], gray[:, 0], gray[:, -1]])
    return float(np.median(border))


def otsu_level(values: np.ndarray) -> float | None:
    """Otsu's threshold between the two classes of ``values`` in [0, 1] (256 bins); None when they are all
    in one bin (a uniform image)."""
    counts, edges = np.histogram(values, bins=256, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(counts)[:-1].astype(np.float64)
    above = counts.sum() - below
    mass_below = np.cumsum(counts * centres)[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = below * above * (mass_below / below - ((counts * centres).sum() - mass_below) / above) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    if between.max() <= 0:
        return None
    return float(edges[int(between.argmax()) + 1])


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` pixels in every direction (a square, done as rows then columns)."""
    grown = mask.copy()
    for axis in (0, 1):
        padded = np.pad(grown, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)])
        size = grown.shape[axis]
        grown = np.logical_or.reduce([padded.take(range(k, k + size), axis=axis) for k in range(2 * radius + 1)])
    return grown


def white_on_black(gray: np.ndarray, invert: str = "auto") -> np.ndarray:
    """The digit bright on a black background, stretched to [0, 1] (all zeros when nothing stands out).

    Otsu's threshold splits ink from paper; the paper's median becomes 0 and the ink's 99th percentile
    1; what is kept is the ink and, within ``FRINGE`` pixels of it, its antialiased edge down to
    ``NOISE``, so that paper grain, JPEG ringing and a mild lighting gradient do not count as the digit."""
    if invert not in INVERT_CHOICES:
        raise ImageError(f"invert must be one of {', '.join(INVERT_CHOICES)}, got {invert!r}")
    if invert == "yes" or (invert == "auto" and border_median(gray) > LIGHT_BACKGROUND):
        gray = 1.0 - gray
    level = otsu_level(gray)
    if level is None:
        return np.zeros_like(gray)
    ink = gray >= level
    paper_level, ink_level = float(np.median(gray[~ink])), float(np.percentile(gray[ink], 99))
    if ink_level - paper_level < BLANK:
        return np.zeros_like(gray)
    stretched = np.clip((gray - paper_level) / (ink_level - paper_level), 0.0, 1.0)
    keep = dilate(ink, FRINGE) & (stretched >= NOISE)
    return np.where(keep, stretched, 0.0).astype(np.float32)


def normalise_digit(digit: np.ndarray) -> np.ndarray:
    """MNIST's normalisation of a white-on-black digit (any size): crop to its bounding box, fit it in
    20×20 keeping its aspect ratio (antialiased), centre its mass in 28×28. Float32 (28, 28) in [0, 1]."""
    frame = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    rows, cols = np.nonzero(digit > 0)
    if rows.size == 0:
        return frame
    crop = digit[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = DIGIT_BOX / max(crop.shape)
    width, height = (max(1, round(n * scale)) for n in (crop.shape[1], crop.shape[0]))
    resized = Image.fromarray(crop.astype(np.float32)).resize((width, height), Image.Resampling.BILINEAR)
    box = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    mass = float(box.sum())
    if mass <= 0.0:
        return frame
    centre_y = float((box.sum(axis=1) * np.arange(height)).sum()) / mass
    centre_x = float((box.sum(axis=0) * np.arange(width)).sum()) / mass
    # The centre of mass goes to pixel index 14, 14 (MNIST's own convention: re-normalised this way, its
    # test digits come back nearly unchanged; 13.5 shifts them half a pixel and costs ~1.4 points), the
    # digit kept whole inside the frame.
    top = min(max(round(MNIST_SIZE / 2 - centre_y), 0), MNIST_SIZE - height)
    left = min(max(round(MNIST_SIZE / 2 - centre_x), 0), MNIST_SIZE - width)
    frame[top:top + height, left:left + width] = box
    return frame


def preprocess(source: str | os.PathLike[str] | Image.Image, invert: str = "auto") -> torch.Tensor:
    """An image of one digit (a path or a PIL image) as an MNIST sample: float32 (1, 28, 28) in [0, 1],
    white digit on black, size-normalised and centred like MNIST's. ``invert``: ``"auto"`` inverts a
    light background, ``"yes"`` always, ``"no"`` never. Raises ``ImageError`` (one line) for a file
    that cannot be read."""
    if invert not in INVERT_CHOICES:
        raise ImageError(f"image {_describe(source)}: invert must be one of {', '.join(INVERT_CHOICES)}, "
                         f"got {invert!r}")
    img = open_image(source)
    try:
        gray = to_grayscale(img)
    except (ValueError, OSError) as exc:
        raise ImageError(f"image {_describe(source)}: mode {img.mode} cannot be read as grayscale "
                         f"({_first_line(exc)}); fix: save it as an 8-bit PNG") from None
    return torch.from_numpy(normalise_digit(white_on_black(gray, invert))).unsqueeze(0)
