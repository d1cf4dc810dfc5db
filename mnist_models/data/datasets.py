"""Datasets the harness knows: their files, SHA-256 checksums, shapes and classes, and where they live.

A new dataset: add a ``DatasetSpec`` to ``DATASETS`` (its files with official checksums); the
verification in ``verify.py`` works from the spec, so no byte of it is used unverified.

Files live in torchvision's layout, ``<root>/MNIST/raw/<name>``. The root is ``--data-root DIR``,
else ``$MNIST_BENCH_DATA``, else a per-user cache directory (``$XDG_CACHE_HOME/mnist-bench`` or
``~/.cache/mnist-bench``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileSpec:
    """One official file of a dataset: its name, SHA-256 and the count of images or labels it holds."""

    name: str
    sha256: str
    split: str  # "train" or "test"
    kind: str  # "images" or "labels"
    count: int


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its files (with checksums), image shape and classes, and its folder under the root."""

    name: str
    folder: str  # torchvision's raw-file folder under the data root
    files: tuple[FileSpec, ...]
    image_shape: tuple[int, int, int]  # (channels, height, width)
    classes: int

    def file(self, split: str, kind: str) -> FileSpec:
        """The file holding ``split``'s ``kind`` ("images" or "labels")."""
        return next(f for f in self.files if f.split == split and f.kind == kind)


MNIST = DatasetSpec(
    "mnist", "MNIST/raw",
    (
        FileSpec("train-images-idx3-ubyte",
                 "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", "train", "images", 60_000),
        FileSpec("train-labels-idx1-ubyte",
                 "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", "train", "labels", 60_000),
        FileSpec("t10k-images-idx3-ubyte",
                 "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", "test", "images", 10_000),
        FileSpec("t10k-labels-idx1-ubyte",
                 "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", "test", "labels", 10_000),
    ),
    image_shape=(1, 28, 28), classes=10,
)
DATASETS = {MNIST.name: MNIST}
FILES: dict[str, FileSpec] = {spec.name: spec for spec in MNIST.files}
SPLITS = ("train", "test")


def resolve_root(data_root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: the argument, else ``$MNIST_BENCH_DATA``, else the per-user cache dir."""
    if data_root:
        return Path(data_root).expanduser()
    env = os.environ.get("MNIST_BENCH_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mnist-bench"


def raw_dir(root: Path) -> Path:
    """torchvision's folder for the raw IDX files under ``root``."""
    return Path(root) / MNIST.folder

