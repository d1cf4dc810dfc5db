"""The two kinds of failure the command line reports as one line, as base classes the modules that raise
them derive from, so ``cli/main.py`` catches them without importing those modules (and torch with them).

- ``UserError``: bad input the user fixes (a flag, a file, a model, a data set): one line naming the problem
  and the fix, exit 2.
- ``MachineLimit``: the machine ran out (memory, disk): one line with what to try, exit 1.
- ``JobFailed``: a rank of a data-parallel job failed (``train/launch.py``): one line naming it, its exit code.
- ``Terminated``: SIGTERM arrived; stop like Ctrl-C, keeping what was written.

``leave`` ends a rank of a data-parallel job without an interpreter shutdown (torch-free, so ``cli/main.py``
can use it too).

``LAUNCHED`` is the environment variable ``mnist-bench train --nproc`` sets for its ranks: a rank's own
failure then goes to torchelastic's error file for the launcher to print once, not to the terminal.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

LAUNCHED = "MNIST_BENCH_LAUNCHED"


class UserError(Exception):
    """Bad input: the message is one line naming the problem and the fix; the CLI exits 2."""


class MachineLimit(Exception):
    """The machine's limit (out of memory, a full disk), not a usage error: one line; the CLI exits 1."""


class JobFailed(Exception):
    """A data-parallel job ended because a rank failed: one line naming the rank; the CLI exits ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Terminated(Exception):
    """SIGTERM arrived: stop like Ctrl-C, keeping what was written; the process exits ``EXIT_CODE``."""

    EXIT_CODE = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended


def leave(code: int) -> NoReturn:
    """End a rank now with ``code``: its output flushed, no interpreter shutdown. Gloo's threads, still
    holding work (or bound to a peer that is gone), abort the process in their C++ destructors during a
    shutdown (``terminate called without an active exception``), which torchrun would report as SIGABRT
    instead of ``code``. Used by ``train.dist.Dist.finish`` on success, ``train.dist.rank_failed`` on a
    failure, and ``cli.main`` on an interrupt."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
