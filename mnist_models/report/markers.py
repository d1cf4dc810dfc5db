"""The ``<!-- name:start -->`` / ``<!-- name:end -->`` markers that results-page blocks are spliced between
(``readme.py``), and the check that a file holds them; no torch, so a command refuses a ``--readme`` without
them before any work."""

from __future__ import annotations

import os
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of the block ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def has_markers(path: str | os.PathLike[str], name: str) -> bool:
    """Whether ``path`` is a UTF-8 text file holding both ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
    except (OSError, UnicodeDecodeError):  # unreadable, or not text (an image passed as --readme)
        return False
    return all(marker in text for marker in markers(name))
