"""What each ``mnist-bench`` command does once its input is checked: ``actions/<name>.py`` holds
``run(args, out, err) -> exit code`` for ``commands/<name>.py``. They import torch, pandas and the rest; the
command modules do not, so ``--help`` and bad flags answer at once and only the command that runs pays for
what it needs (``action`` imports its module when the command runs)."""

from __future__ import annotations

import importlib
from types import ModuleType


def action(command: str) -> ModuleType:
    """The action of the command module named ``command`` (``…commands.train`` → ``…actions.train``),
    imported now."""
    return importlib.import_module(f"{__name__}.{command.rsplit('.', 1)[-1]}")
