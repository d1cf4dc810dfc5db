"""Device and precision primitives: the ONE precision table, the device resolution, the autocast
context and the synchronize function. Together with ``runtime.py`` this is the only code that
branches on the device; loops receive what these return.

Precision table (autocast dtype, GradScaler on?, dtype of the matmul peak it is compared with):

    fp32 → (none, off, float32)   bf16 → (bfloat16, off, bfloat16)   fp16 → (float16, on, float16; CUDA only)

``auto`` (config.PRECISIONS) is not a precision but a request to measure: ``auto.resolve_auto``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from ..config import ConfigError


@dataclass(frozen=True)
class Precision:
    """What a precision name means for a run."""

    autocast: torch.dtype | None  # None: no autocast (plain fp32)
    scaler: bool  # a GradScaler is needed (fp16's narrow range)
    peak: torch.dtype  # the dtype of the matmul peak its throughput is compared with (roofline)


PRECISIONS: dict[str, Precision] = {
    "fp32": Precision(None, False, torch.float32),
    "bf16": Precision(torch.bfloat16, False, torch.bfloat16),
    "fp16": Precision(torch.float16, True, torch.float16),
}


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; ``cuda`` without a GPU raises ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but this machine has no CUDA device; "
                          "fix: use --device cpu (or auto)")
    return torch.device(name)


def no_sync() -> None:
    """Synchronising the CPU: nothing to wait for, its work is synchronous."""
    return None


def synchronizer(device: torch.device) -> Callable[[], None]:
    """The function that waits for ``device``'s queued work (a no-op on the CPU)."""
    return torch.cuda.synchronize if device.type == "cuda" else no_sync


def autocast(device: torch.device, precision: str, cache_enabled: bool = True) -> AbstractContextManager:
    """The autocast context for ``precision`` on ``device`` (a null context for fp32). The weight-cast
    cache must be off inside CUDA-graph capture (``cache_enabled=False``)."""
    dtype = PRECISIONS[precision].autocast
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache_enabled)


def peak_precisions(device: torch.device) -> tuple[str, ...]:
    """The precisions whose matmul peak describes ``device``: fp32 and bf16, and fp16 on CUDA."""
    return ("fp32", "bf16", "fp16") if device.type == "cuda" else ("fp32", "bf16")
