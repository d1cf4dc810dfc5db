"""Out of memory, said in one line: which batch size failed, on which device, how much memory it
had, and what to try. Used by the CLI (``cli/main.py``: one line, exit 1) and the benchmark suite
(``bench/conftest.py``: the case is skipped with this reason, the session goes on).

    >>> import torch
    >>> error = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    >>> oom_reason(error, batch_size=8192).split(" on ")[0].split(";")[0]
    'CUDA out of memory at batch size 8192'
    >>> oom_reason(MemoryError(), batch_size=64)
    'host out of memory at batch size 64; fix: use --batch-size 32 or less'
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from ..errors import MachineLimit


def _torch() -> ModuleType | None:
    """torch if the process imported it, else None. This module never imports it: the command line wraps
    every command in ``oom_guard`` and must start without torch; a CUDA out-of-memory means torch is loaded."""
    return sys.modules.get("torch")


def _is_cuda_oom(exc: BaseException) -> bool:
    # torch.cuda.OutOfMemoryError is the caching allocator's failure (torch.OutOfMemoryError in newer releases is
    # the same class); MemoryError is the host's.
    torch = _torch()
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)


def release_memory() -> None:
    """Give back what a failed attempt held (its frames are gone once the exception is dropped), so the
    next case starts from a clean allocator."""
    gc.collect()
    torch = _torch()
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _device_memory() -> str:
    """`` on NVIDIA H200 (1.2 of 139.8 GiB free)`` for the current CUDA device; empty when unknown."""
    try:
        torch = _torch()
        free, total = torch.cuda.mem_get_info()  # type: ignore[union-attr] - asked only after a CUDA failure
        return f" on {torch.cuda.get_device_name()} ({free / 2**30:.1f} of {total / 2**30:.1f} GiB free)"
    except RuntimeError:  # the context itself may be what ran out
        return ""


def oom_reason(exc: BaseException, batch_size: int | None, flag: str = "--batch-size", fix: str | None = None) -> str:
    """One line naming the failed batch size and device, with a fix (halve the batch; other work on
    the GPU); ``flag`` names the option to change, or ``fix`` says what to change instead, for a
    command without a batch-size flag (predict: fewer images per call)."""
    where = "CUDA" if _is_cuda_oom(exc) else "host"
    batch = f" at batch size {batch_size}" if batch_size else ""
    if fix is None:
        fix = f"use {flag} {max(batch_size // 2, 1)} or less" if batch_size and batch_size > 1 else f"lower {flag}"
    other = ", or free the GPU (nvidia-smi lists what else holds memory)" if where == "CUDA" else ""
    memory = _device_memory() if where == "CUDA" else ""
    return f"{where} out of memory{batch}{memory}; fix: {fix}{other}"


class OutOfMemory(MachineLimit):
    """A run stopped for lack of memory; the message is ``oom_reason``'s one line."""


@contextmanager
def oom_guard(batch_size: int | None, flag: str = "--batch-size", fix: str | None = None) -> Iterator[None]:
    """Turn an out-of-memory inside the block into ``OutOfMemory`` naming ``batch_size`` (the one the
    work really used) and the fix (``oom_reason``), after releasing what the failed attempt held."""
    try:
        yield
    except (MemoryError, RuntimeError) as exc:  # CUDA's out-of-memory is a RuntimeError
        if not (isinstance(exc, MemoryError) or _is_cuda_oom(exc)):
            raise
        reason = oom_reason(exc, batch_size, flag, fix)
        del exc
        release_memory()
        raise OutOfMemory(reason) from None
