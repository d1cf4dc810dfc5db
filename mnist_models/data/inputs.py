"""The files the command line is given, checked before torch is imported: a data set (a built-in name,
or an existing folder or .npz of your own) and an image. The command modules call these so a missing
or wrong path is refused at once; the loaders (``custom.py``, ``images.py``) call them too, so each
message is written in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError
from .datasets import DATASETS, DataError, dataset_spec

NPZ_FIX = "fix: save x_train, y_train, x_test, y_test with np.savez (images (N, 28, 28) uint8, labels 0-9)"
IMAGE_FIX = "fix: pass the path of a PNG, JPEG, BMP or GIF file"


class ImageError(UserError, ValueError):
    """An image cannot be used (missing, unreadable, truncated, too large). One line with the fix."""


def is_custom(dataset: str) -> bool:
    """Whether ``dataset`` names a data set of your own (a path) rather than a built-in one."""
    return dataset not in DATASETS and ("/" in dataset or os.sep in dataset or dataset.endswith(".npz")
                                        or Path(dataset).expanduser().exists())


def check_dataset(dataset: str) -> Path | None:
    """The path of a data set of your own (None for a built-in name); an unknown name, a missing path or a
    file that is not an .npz raises a one-line ``DataError``. Its content is checked when it is prepared."""
    if not is_custom(dataset):
        dataset_spec(dataset)  # an unknown name: UnknownDatasetError listing the known ones
        return None
    path = Path(dataset).expanduser()
    if not path.exists():
        raise DataError(f"data set {dataset}: no such folder or .npz file; fix: pass --dataset mnist, "
                        "fashion-mnist, or the path of a folder or .npz of your own")
    if path.is_file() and path.suffix != ".npz":
        raise DataError(f"data set {dataset}: a file but not an .npz; {NPZ_FIX}")
    return path


def check_image(source: str | os.PathLike[str]) -> Path:
    """The path of an image file; a missing path or a folder raises a one-line ``ImageError``."""
    path = Path(source)
    if not path.is_file():
        raise ImageError(f"image {source}: {'is a folder' if path.is_dir() else 'no such file'}; {IMAGE_FIX}")
    return path
