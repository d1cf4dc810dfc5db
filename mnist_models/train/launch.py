"""``mnist-bench train --nproc N`` (and ``profile --nproc N``): the same command as N ranks on this machine,
launched by PyTorch's own launcher, ``torch.distributed.run`` (what ``torchrun`` runs), standalone:

    torchrun --standalone --nproc-per-node N --max-restarts 0 -m mnist_models train --ddp …

run in this process, so that its result comes back as Python objects rather than text: a rank that exits
non-zero or is killed makes torchrun stop the others (within its monitor interval, 0.1 s: SIGTERM, then
SIGKILL 5 s later) and raise ``ChildFailedError``, whose failures name each rank, its exit code or signal, and
the one line it wrote to torchelastic's error file (``dist.record_failure``). ``launch`` turns that into
one ``JobFailed`` line naming the rank that failed first, its cause, and the exit code (2 when that rank
refused its input, else 1). Ctrl-C or SIGTERM reaches torchrun's handler, which stops every rank; it is
re-raised here as KeyboardInterrupt or ``Terminated``.

Each rank gets ``cores // N`` threads (``OMP_NUM_THREADS`` and ``THREADS``), so that the ranks do not
oversubscribe the CPU; ``LAUNCHED`` tells the ranks to leave their failure line to this launcher.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run

from ..errors import LAUNCHED, JobFailed, Terminated
from .dist import LOST, THREADS, cores

MONITOR_S = 0.1  # how often torchrun checks its ranks
SHUTDOWN_S = 5  # how long torchrun waits for a rank to take SIGTERM before it sends SIGKILL (its default: 30)
HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)  # what torchrun's handler takes over
QUIET_LOGGERS = ("torch.distributed.elastic", "torch.distributed.run", "torch.distributed.launcher")


def rank_argv(argv: Sequence[str], option: str = "--nproc") -> list[str]:
    """The command line as typed, without ``option`` and its value (also as ``--opt=N`` or an abbreviation
    argparse accepted), with ``--ddp`` added: what every rank runs."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        name = token.split("=", 1)[0]
        if len(name) > 2 and option.startswith(name):
            skip = "=" not in token
            continue
        out.append(token)
    return [*out, "--ddp"]


KEPT = "rows of the epochs finished before it are kept"  # what a killed rank leaves (train's rows)


def describe(failures: dict[int, Any], kept: str = KEPT) -> tuple[str, int]:
    """One line for the failure that ended the job, and the job's exit code (2 when a rank refused its input,
    else 1). The cause is the earliest failure that is not a rank losing its peers nor one torchrun
    stopped with SIGTERM (killed by it, or exiting ``Terminated.EXIT_CODE`` after handling it, as our ranks
    do): a rank killed, or one that failed on its own (its error-file line). Timestamps are whole seconds,
    so a killed rank and the rank torchrun then stopped often tie; only the exclusion tells them apart.
    ``kept``: what the job's command keeps of a run a killed rank ended."""
    ordered = sorted(failures.items(), key=lambda item: (item[1].timestamp, item[0]))
    lost = [failure for _, failure in ordered if LOST in str(failure.message)]
    own = [(rank, f) for rank, f in ordered if LOST not in str(f.message) and f.signal_name() != "SIGTERM"
           and f.exitcode != Terminated.EXIT_CODE]
    rank, failure = (own or ordered)[0]
    if failure.exitcode < 0:
        if lost and lost[0].timestamp < failure.timestamp:  # it hung: the others timed out, then torchrun killed it
            return (f"rank {rank} (pid {failure.pid}) stopped answering ({lost[0].message}); torchrun then ended it "
                    f"with {failure.signal_name()}", 1)
        return (f"rank {rank} (pid {failure.pid}) was killed by {failure.signal_name()}; torchrun stopped the other "
                f"ranks; {kept}", 1)
    if isinstance(failure.message, str) and failure.message.startswith("rank "):  # its own line (record_failure)
        return failure.message, 2 if failure.exitcode == 2 else 1
    return (f"rank {rank} (pid {failure.pid}) exited with code {failure.exitcode}; its traceback is above; "
            "torchrun stopped the other ranks", 1)


def launch(argv: Sequence[str], nproc: int, threads: int | None = None, module: str | None = None,
           kept: str = KEPT) -> None:
    """Run ``argv`` (a command line as typed, with ``--nproc N``) as ``nproc`` ranks on this machine through
    ``torch.distributed.run``, each ``mnist_models`` with ``--nproc N`` replaced by ``--ddp`` (``module``:
    ``python -m module *argv`` instead, unchanged); each rank gets ``threads`` intra-op threads (default
    ``cores // nproc``). Returns when every rank finished, else raises ``JobFailed`` (one line; ``kept``: what
    is kept of a run a killed rank ended) or KeyboardInterrupt / ``Terminated``."""
    for name in logging.Logger.manager.loggerDict:  # its report is the one line below; rank 0's is the output
        if name.startswith(QUIET_LOGGERS):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    threads = threads or max(1, cores() // nproc)
    env = {"OMP_NUM_THREADS": str(threads), THREADS: str(threads), LAUNCHED: "1",  # the ranks inherit these
           "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": os.environ.get("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_S))}
    with borrowed(env):
        try:
            run(parse_args(["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0",
                            f"--monitor-interval={MONITOR_S}", "--module",
                            *([module, *argv] if module else ["mnist_models", *rank_argv(argv)])]))
        except ChildFailedError as exc:
            message, code = describe(exc.failures, kept)
            raise JobFailed(message, code) from None
        except SignalException as exc:
            if exc.sigval == signal.SIGINT:
                raise KeyboardInterrupt from None
            raise Terminated from None


@contextmanager
def borrowed(env: dict[str, str]) -> Iterator[None]:
    """``env`` set for the ranks while the job runs; afterwards this process's environment and signal handlers
    as they were (torchrun installs its own for SIGTERM, SIGINT, SIGHUP and SIGQUIT; later work in this
    process, or the next job's subprocesses, must not inherit either)."""
    saved_env = dict(os.environ)  # torchrun sets some of its own too (TORCHELASTIC_SIGNALS_TO_HANDLE)
    saved_handlers = {sig: signal.getsignal(sig) for sig in HANDLED}
    os.environ.update(env)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved_env):
            del os.environ[name]
        os.environ.update(saved_env)
        for sig, handler in saved_handlers.items():
            if handler is not None:
                signal.signal(sig, handler)
