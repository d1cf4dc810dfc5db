"""Data sets of your own (``--dataset PATH``), prepared once into a cached tensor file.

PATH is either

- a **folder** holding ``train/<label>/`` and ``test/<label>/`` with images in them (PNG, JPEG, BMP, GIF; any
  size or mode), the label folders named ``0`` to ``9``. Each image is normalised as ``predict``'s are
  (``images.preprocess``: white on black, size-normalised into 20 × 20 and centred by mass in 28 × 28, as
  MNIST's were), so that it looks like MNIST to a model; or
- an **.npz** holding ``x_train``, ``y_train``, ``x_test``, ``y_test``: images ``(N, 28, 28)`` uint8 and
  integer labels 0–9, used as they are.

``prepare_custom`` hashes the content (every file's relative path and bytes, with ``PREP_VERSION``) and,
the first time, converts it into ``<data root>/custom/<sha256[:16]>.pt`` (uint8 images and int64 labels per
split, written atomically): the next run reads that file instead of decoding images again, and a changed
folder is a new file. Every problem is a ``DataError``, one line naming the file and the fix: no such path,
no train or test split, a label outside 0–9, a class with no images, an unreadable image, an .npz array
missing or of the wrong shape or type, lengths that differ.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import torch

from ..results.store import DiskFullError, atomic_write_bytes
from .datasets import SPLITS, DataError, resolve_root
from .inputs import NPZ_FIX, check_dataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
PREP_VERSION = 1  # bump when the conversion changes, so that caches made the old way are not reused
LABELS = tuple(str(n) for n in range(10))
FOLDER_FIX = "fix: lay it out as train/<0-9>/*.png and test/<0-9>/*.png (see docs/data.md)"


def _folder_files(path: Path) -> dict[str, dict[int, list[Path]]]:
    """split → label → image files, checked: both splits, labels 0–9, no empty class."""
    found: dict[str, dict[int, list[Path]]] = {}
    for split in SPLITS:
        folder = path / split
        if not folder.is_dir():
            raise DataError(f"data set {path}: no {split}/ folder; {FOLDER_FIX}")
        classes = sorted(p for p in folder.iterdir() if p.is_dir())
        wrong = [p.name for p in classes if p.name not in LABELS]
        if wrong:
            raise DataError(f"data set {folder}: label folder {wrong[0]!r} is not a digit 0-9; {FOLDER_FIX}")
        if not classes:
            raise DataError(f"data set {folder}: no label folders; {FOLDER_FIX}")
        found[split] = {}
        for label_dir in classes:
            images = sorted(p for p in label_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise DataError(f"data set {label_dir}: class {label_dir.name} has no images ("
                                f"{', '.join(IMAGE_SUFFIXES)}); fix: add its images or remove the empty folder")
            found[split][int(label_dir.name)] = images
    return found


_HASHED: dict[str, str] = {}  # a data set of your own → the content SHA-256 ``prepare_custom`` last found


def content_sha256(path: Path) -> str:
    """SHA-256 over ``PREP_VERSION`` and every file of the data set (relative path, then bytes)."""
    digest = hashlib.sha256(f"mnist-bench custom data v{PREP_VERSION}\0".encode())
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(f"{file.relative_to(path) if file != path else file.name}\0".encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _from_folder(path: Path, files: dict[str, dict[int, list[Path]]]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every image of ``files`` (``_folder_files``' checked layout) preprocessed as uint8, with its label."""
    from .images import ImageError, preprocess  # PIL: only when a folder is converted

    out = {}
    for split, classes in files.items():
        images, labels = [], []
        for label, paths in classes.items():
            for file in paths:
                try:
                    sample = preprocess(file)
                except ImageError as exc:  # its problem, and the fix that fits a data set
                    problem = str(exc).split("; fix:")[0]
                    raise DataError(f"data set {path}: {problem}; fix: replace or remove that file") from None
                images.append(sample.mul(255).round().to(torch.uint8).squeeze(0))
                labels.append(label)
        out[split] = (torch.stack(images), torch.tensor(labels, dtype=torch.int64))
    return out


def _from_npz(path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    try:
        arrays = np.load(path, allow_pickle=False)
        names = set(arrays.files)
    except (OSError, ValueError) as exc:
        raise DataError(f"data set {path}: not a readable .npz ({exc}); {NPZ_FIX}") from None
    out = {}
    for split in SPLITS:
        x_name, y_name = f"x_{split}", f"y_{split}"
        missing = [n for n in (x_name, y_name) if n not in names]
        if missing:
            raise DataError(f"data set {path}: no {' or '.join(missing)} array (it holds: "
                            f"{', '.join(sorted(names)) or 'nothing'}); {NPZ_FIX}")
        x, y = arrays[x_name], arrays[y_name]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"data set {path}: {x_name} is {x.dtype} {x.shape}, not uint8 (N, 28, 28); {NPZ_FIX}")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"data set {path}: {y_name} is {y.dtype} {y.shape}, not integer labels (N,); {NPZ_FIX}")
        if len(x) != len(y):
            raise DataError(f"data set {path}: {x_name} holds {len(x):,} images but {y_name} {len(y):,} labels; "
                            "fix: give every image one label")
        if len(x) == 0:
            raise DataError(f"data set {path}: {x_name} is empty; {NPZ_FIX}")
        if y.min() < 0 or y.max() > 9:
            bad = int(y[(y < 0) | (y > 9)][0])
            raise DataError(f"data set {path}: {y_name} holds label {bad}, outside 0-9; fix: labels 0-9 only")
        out[split] = (torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64)))
    return out


def cache_file(data_root: str | os.PathLike[str] | None, sha: str) -> Path:
    """Where the converted data set with content ``sha`` is kept under the data root."""
    return resolve_root(data_root) / "custom" / f"{sha[:16]}.pt"


def prepare_custom(dataset: str, data_root: str | os.PathLike[str] | None = None) -> tuple[Path, str, str]:
    """(cache file, content SHA-256, where it came from: "present" or "converted from PATH"), converting the
    data set the first time its content is seen."""
    path = check_dataset(dataset) or Path(dataset)  # the callers pass paths only (``is_custom``)
    files = _folder_files(path) if path.is_dir() else {}  # the layout is checked before anything is hashed
    sha = content_sha256(path)
    _HASHED[dataset] = sha
    cache = cache_file(data_root, sha)
    if cache.is_file():
        return cache, sha, "present"
    splits = _from_npz(path) if path.is_file() else _from_folder(path, files)
    buffer = io.BytesIO()
    torch.save({"format": "mnist-bench-custom-data", "version": PREP_VERSION, "sha256": sha,
                **{f"{s}_{kind}": t for s, (x, y) in splits.items() for kind, t in (("images", x), ("labels", y))}},
               buffer)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache, buffer.getvalue())
    except DiskFullError:
        raise
    except OSError as exc:
        raise DataError(f"cannot write {cache} ({exc.strerror or exc}); fix: pass --data-root DIR (or set "
                        "MNIST_BENCH_DATA) to a writable folder") from None
    return cache, sha, f"converted from {dataset}"


def dataset_record(dataset: str) -> dict[str, str]:
    """What a row records of the data set beside its name: for one of your own, ``dataset_sha256``, the
    content hash this process last prepared it with (a path's content can change between runs); nothing
    for MNIST and Fashion-MNIST, whose files are pinned by SHA-256 in the code."""
    return {"dataset_sha256": _HASHED[dataset]} if dataset in _HASHED else {}


def load_custom(dataset: str, data_root: str | os.PathLike[str] | None = None
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """split → ``(images, labels)`` of a data set of your own: uint8 (N, 28, 28) and int64 (N,), both splits
    from one read of its cache (hashed once)."""
    cache, sha, _ = prepare_custom(dataset, data_root)
    payload = torch.load(cache, map_location="cpu", weights_only=True)
    if payload.get("sha256") != sha:
        raise DataError(f"{cache}: not the cache of {dataset}; fix: delete it (it is rebuilt)")
    return {split: (payload[f"{split}_images"], payload[f"{split}_labels"]) for split in SPLITS}
