"""The host (glibc malloc) settings a training process runs under, applied once per process by
``Runtime.from_config`` and recorded in every row's environment (``host_allocator``). Why these
settings: docs/decisions.md (2026-11-25, "host allocator")."""

from __future__ import annotations

import ctypes

# Serve blocks up to 32 MiB from the heap and never trim it, so the same large tensors freed and
# allocated every step keep their pages mapped (mallopt parameter numbers from <malloc.h>).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HOST_ALLOCATOR = {"mmap_threshold": 32 << 20, "trim_threshold": 1 << 30}
_allocator_state: str | None = None


def tune_host_allocator() -> str:
    """Apply the glibc malloc settings above once per process; say what this process uses.

    Called by ``Runtime.from_config`` for every run, so all paths compared in one process (the
    notebook's way included) run under the same allocator. Returns a short description, e.g.
    ``"glibc mmap_threshold=32MiB trim_threshold=1024MiB"``, or ``"default"`` where glibc's
    ``mallopt`` is unavailable (musl, macOS).
    """
    global _allocator_state
    if _allocator_state is None:
        _allocator_state = "default"
        try:
            libc = ctypes.CDLL("libc.so.6")
            if (libc.mallopt(_M_MMAP_THRESHOLD, _HOST_ALLOCATOR["mmap_threshold"]) == 1 and
                    libc.mallopt(_M_TRIM_THRESHOLD, _HOST_ALLOCATOR["trim_threshold"]) == 1):
                _allocator_state = ("glibc " + " ".join(f"{k}={v >> 20}MiB" for k, v in _HOST_ALLOCATOR.items()))
        except (OSError, AttributeError):
            pass
    return _allocator_state


def host_allocator() -> str:
    """What ``tune_host_allocator`` set in this process, or ``"default"`` when it has not run."""
    return _allocator_state or "default"

