"""A checkpoint's path, checked before torch is imported: ``predict --checkpoint`` names an existing
file, ``train --save`` a file in a folder that can be written. The command modules call these so a wrong
path is refused at once, not after the import; ``checkpoint.py`` (reading and writing) calls them too.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError
from ..results.store import DiskFullError, ResultsError, check_writable

SAVE_HINT = "fix: pass a file written by `mnist-bench train --save PATH` (or train again with --save)"


class CheckpointError(UserError, ValueError):
    """A checkpoint cannot be written or used. The message is one line: the file, the problem, the fix."""


def check_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The path of an existing checkpoint file; a missing path or a folder raises ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: {'is a folder' if path.is_dir() else 'no such file'}; {SAVE_HINT}")
    return path


def check_save_path(path: str | os.PathLike[str]) -> Path:
    """Before training: ``path`` can be written (its folder is created if needed), else one line."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"--save {path}: is a folder; fix: give a file name, e.g. --save {path / 'model.pt'}")
    try:
        check_writable(path.parent)
    except DiskFullError:
        raise
    except ResultsError:
        raise CheckpointError(f"--save {path}: its folder {path.parent} cannot be created or written; "
                              "fix: pass --save a path in a writable folder") from None
    return path
