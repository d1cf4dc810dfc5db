"""Real MNIST, verified by SHA-256, available offline, and the loaders that feed it.

- ``datasets.py``: what a dataset is (``DatasetSpec``: files + SHA-256, shape, classes) and where
  it lives (``resolve_root``);
- ``verify.py``: ``prepare`` (present → offline rebuild → download; ``--repair``), the restricted
  unpickler, ``load_split`` (verified uint8 tensors);
- ``loaders.py``: ``seed`` (torchvision DataLoader, the notebook's way) and ``fast`` (whole split on
  the device);
- ``images.py``: ``preprocess`` (a real image of a digit → an MNIST-shaped sample, normalised the way
  MNIST was made), ``ImageError``; imported from ``data.images`` (not re-exported here: PIL stays out of
  the time-to-accuracy worker's data phase).

Run ``mnist-bench data`` to prepare and verify the files from the command line.
"""

from __future__ import annotations

from .custom import dataset_record, is_custom
from .datasets import (
    DATASETS,
    FASHION_MNIST,
    FILES,
    MNIST,
    SPLITS,
    DatasetSpec,
    FileSpec,
    UnknownDatasetError,
    data_command,
    dataset_spec,
    raw_dir,
    resolve_root,
    title,
)
from .loaders import FastLoader, draw_like_dataloader, make_loader, notebook_loader
from .verify import (
    INSTALL_HINT,
    DataError,
    FileStatus,
    RestrictedUnpickler,
    load_split,
    prepare,
    rebuild_from_pickle,
    restricted_loads,
    sha256_bytes,
    sha256_file,
)

__all__ = ["DATASETS", "FASHION_MNIST", "FILES", "INSTALL_HINT", "MNIST", "SPLITS", "DataError", "DatasetSpec",
           "FastLoader", "FileSpec", "FileStatus", "RestrictedUnpickler", "UnknownDatasetError", "data_command",
           "dataset_record",
           "dataset_spec", "draw_like_dataloader", "is_custom", "load_split", "make_loader", "notebook_loader",
           "prepare", "raw_dir", "rebuild_from_pickle", "resolve_root", "restricted_loads", "sha256_bytes",
           "sha256_file", "title"]
