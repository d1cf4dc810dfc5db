"""The two kinds of failure the command line reports as one line, as base classes the modules that raise
them derive from, so ``cli/main.py`` catches them without importing those modules (and torch with them).

- ``UserError``: bad input the user fixes (a flag, a file, a model, a data set): one line naming the problem
  and the fix, exit 2.
- ``MachineLimit``: the machine ran out (memory, disk): one line with what to try, exit 1.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message is one line naming the problem and the fix; the CLI exits 2."""


class MachineLimit(Exception):
    """The machine's limit (out of memory, a full disk), not a usage error: one line; the CLI exits 1."""
