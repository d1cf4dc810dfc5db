"""Real MNIST, verified by SHA-256, available offline, and the loaders that feed it.

- ``datasets.py``: what a dataset is (``DatasetSpec``: files + SHA-256, shape, classes) and where
  it lives (``resolve_root``); no torch;
- ``inputs.py``: the files the command line is given (a data set, an image), checked before torch is
  imported;
- ``verify.py``: ``prepare`` (present → offline rebuild → download; ``--repair``), the restricted
  unpickler, ``load_split`` (verified uint8 tensors);
- ``custom.py``: a folder or .npz of your own, converted once into a cached tensor file;
- ``loaders.py``: ``seed`` (torchvision DataLoader, the notebook's way) and ``fast`` (whole split on
  the device);
- ``images.py``: ``preprocess`` (a real image of a digit → an MNIST-shaped sample, normalised the way
  MNIST was made); imported from ``data.images`` (not re-exported here: PIL stays out of the
  time-to-accuracy worker's data phase).

The names from ``datasets.py`` and ``inputs.py`` are imported with the package; the others on first
use (``_LAZY``), so importing this package costs no torch.

Run ``mnist-bench data`` to prepare and verify the files from the command line.
"""

from __future__ import annotations

import importlib
from typing import Any

from .datasets import (
    DATASETS,
    FASHION_MNIST,
    FILES,
    MNIST,
    SPLITS,
    DataError,
    DatasetSpec,
    FileSpec,
    UnknownDatasetError,
    data_command,
    dataset_spec,
    raw_dir,
    resolve_root,
    title,
)
from .inputs import ImageError, check_dataset, check_image, is_custom

# name → the module (under this package) that defines it, imported when the name is first read.
_LAZY = {
    "dataset_record": "custom",
    **dict.fromkeys(("FastLoader", "draw_like_dataloader", "make_loader", "notebook_loader"), "loaders"),
    **dict.fromkeys(("INSTALL_HINT", "FileStatus", "RestrictedUnpickler", "load_split", "prepare",
                     "rebuild_from_pickle", "restricted_loads", "sha256_bytes", "sha256_file"), "verify"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


__all__ = ["DATASETS", "FASHION_MNIST", "FILES", "MNIST", "SPLITS", "DataError", "DatasetSpec", "FileSpec",
           "ImageError", "UnknownDatasetError", "check_dataset", "check_image", "data_command", "dataset_spec",
           "is_custom", "raw_dir", "resolve_root", "title", *_LAZY]
