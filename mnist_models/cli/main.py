"""``mnist-bench`` command line: the parser and the dispatch (each command lives in ``commands/``).

    mnist-bench data [--data-root DIR] [--repair]     prepare and verify MNIST
    mnist-bench machine [--model v2] [--json]          capabilities, matmul peaks, what auto picks
    mnist-bench models [--json]                        registry: parameters, FLOPs per image
    mnist-bench train --model v2 --protocol notebook [--json] [--results DIR] [...]
    mnist-bench reproduce [--seeds 42,0,1] [--results DIR] [--readme docs/results/KIND.md]
    mnist-bench speedup [--model v2] [--seeds 3] [--precision auto] [--results DIR] [--readme docs/results/KIND.md]
    mnist-bench tta [--model fastnet] [--target 99.0] [--seeds 5] [--precision auto] [--json] [--results DIR]

Also ``python -m mnist_models``. Bad input prints one line ``mnist-bench: error: …`` and exits 2. This module
and the command modules import no torch (``errors.py`` holds the base classes caught here): ``--help`` and
bad flags answer at once, and a command's action (``actions/``) imports what it needs when it runs.
Progress goes to stderr (a rich bar on a terminal, one line per epoch otherwise); tables and
``--json`` go to stdout, so the last line of stdout is the JSON object.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from types import ModuleType

from rich.console import Console

from ..errors import LAUNCHED, JobFailed, MachineLimit, Terminated, UserError, leave
from ..results.store import DISK_FULL_ERRNOS, write_error
from ..train.oom import oom_guard
from . import commands
from .flags import Parser, check_given_files

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = Terminated.EXIT_CODE


def _commands() -> dict[str, ModuleType]:
    """Every module in ``commands/`` is a command (named as its module, ``_`` → ``-``), listed by its
    ``ORDER``: a new command is one new file."""
    found = [importlib.import_module(f"{commands.__name__}.{info.name}")
             for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_")]
    found.sort(key=lambda module: (module.ORDER, module.__name__))
    return {module.__name__.rsplit(".", 1)[1].replace("_", "-"): module for module in found}


COMMANDS = _commands()


def build_parser() -> Parser:
    parser = Parser(prog="mnist-bench", description="Benchmark harness for MNIST classifiers in PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _warning_line(message: Warning | str, category: type[Warning], *rest: object, **kw: object) -> None:
    """A warning (an old spelling, say) as one line on stderr, not Python's two with a source line."""
    print(f"mnist-bench: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 out of memory or disk, 2 bad input, 130 interrupted, 143
    terminated)."""
    with warnings.catch_warnings():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    out = Console(soft_wrap=True)
    err = Console(stderr=True)
    args = None
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        warnings.showwarning = _warning_line  # restored by catch_warnings below
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed (`train --nproc` relaunches it)
        check_given_files(args)
        with oom_guard(getattr(args, "batch_size", None)):  # commands that know their real batch guard inside
            return COMMANDS[args.command].run(args, out, err)
    except JobFailed as exc:  # a rank of a data-parallel job failed: its one line, its exit code
        print(f"mnist-bench: error: {exc}", file=sys.stderr)
        return exc.code
    except MachineLimit as exc:  # out of memory, a full disk: the machine's limit, not a usage error; exit 1
        print(f"mnist-bench: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except UserError as exc:  # the user's to fix: one line naming the problem and the fix, exit 2
        print(f"mnist-bench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a full disk met outside the atomic writer (a new folder): the same one line
        if exc.errno not in DISK_FULL_ERRNOS:
            raise
        print(f"mnist-bench: error: {write_error(None, exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except (KeyboardInterrupt, Terminated) as exc:
        code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
        if os.environ.get(LAUNCHED):  # a rank of `train --nproc`: its launcher says it once; gloo's threads
            leave(code)  # would abort an interpreter shutdown
        stopped = "terminated" if isinstance(exc, Terminated) else "interrupted"
        results = getattr(args, "results", None)
        kept = f"; every finished epoch is in {results}/runs.jsonl" if results else ""
        if getattr(args, "command", None) == "profile":  # a profile writes no rows: its unfinished folder goes
            kept = "; the unfinished profile was removed"
        print(f"mnist-bench: {stopped}{kept}", file=sys.stderr)
        return code
