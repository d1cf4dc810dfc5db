"""Device and precision primitives: the ONE precision table, the device resolution, the autocast
context and the synchronize function. Together with ``runtime.py`` this is the only code that
branches on the device; loops receive what these return.

Precision table (autocast dtype, dtype of the matmul peak it is compared with; GradScaler on?):

    fp32 → (none, float32; off)   bf16 → (bfloat16, bfloat16; off)   fp16 → (float16, float16; on; CUDA only)

The GradScaler column is not a setting: it is derived from the autocast dtype (float16 ⇒ on), and
``Amp`` is the only way a training step gets its autocast context and its GradScaler, both from
this table, so fp16 without loss scaling cannot be configured (no field, flag or argument turns it
off). ``auto`` (config.PRECISIONS) is not a precision but a request to measure: ``auto.resolve_auto``.

``make_deterministic`` switches the process to deterministic kernels (``--deterministic``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from ..config import DEVICES, ConfigError


@dataclass(frozen=True)
class Precision:
    """What a precision name means for a run."""

    autocast: torch.dtype | None  # None: no autocast (plain fp32)
    peak: torch.dtype  # the dtype of the matmul peak its throughput is compared with (roofline)

    @property
    def scaler(self) -> bool:
        """Whether a GradScaler is on: exactly when autocast runs in float16, whose narrow exponent
        range flushes small gradients to zero without loss scaling. Derived, never set."""
        return self.autocast == torch.float16


PRECISIONS: dict[str, Precision] = {
    "fp32": Precision(None, torch.float32),
    "bf16": Precision(torch.bfloat16, torch.bfloat16),
    "fp16": Precision(torch.float16, torch.float16),
}


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; ``cuda`` without a GPU, or a name that is not one of
    ``config.DEVICES``, raises ConfigError."""
    if name not in DEVICES:
        raise ConfigError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
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


@dataclass(frozen=True)
class Amp:
    """Mixed precision for one training step: its autocast context and its GradScaler, both read from
    ``PRECISIONS[precision]``. The training step (``step.make_train_step``) takes an ``Amp``, not a
    scaler, so the scaler always matches the precision."""

    device: torch.device
    precision: str
    cache_enabled: bool = True  # the autocast weight-cast cache; off inside CUDA-graph capture

    def autocast(self) -> AbstractContextManager:
        """The autocast context (a null context for fp32)."""
        return autocast(self.device, self.precision, self.cache_enabled)

    @property
    def scaler_enabled(self) -> bool:
        """Whether this step scales its loss (fp16)."""
        return PRECISIONS[self.precision].scaler

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A new GradScaler, enabled exactly where the precision needs one: the one place one is made."""
        return torch.amp.GradScaler(self.device.type, enabled=self.scaler_enabled)


# cuBLAS's deterministic workspace settings (the CUDA docs' "Results reproducibility"): ":4096:8" (8
# buffers of 4 MiB) or ":16:8" (less memory, can be slower).
CUBLAS_WORKSPACES = (":4096:8", ":16:8")


def make_deterministic(device: torch.device) -> None:
    """Switch this process to deterministic kernels (``--deterministic``); idempotent, never undone.

    ``torch.use_deterministic_algorithms(True)`` (an op without a deterministic implementation
    then raises instead of running), cuDNN without benchmarking (which times candidate
    algorithms and can pick another one next run) and in deterministic mode. On CUDA, cuBLAS also
    needs ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, read once, at the process's first cuBLAS call: it is
    set here (unless already set to a deterministic value), and ``Runtime.from_config`` calls this
    before any model, probe or matmul runs, so a fresh process (the CLI, each test's subprocess)
    gets it in time. A value that cannot be deterministic is refused with one line.
    """
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACES[0])
        if os.environ["CUBLAS_WORKSPACE_CONFIG"] not in CUBLAS_WORKSPACES:
            raise ConfigError(f"--deterministic needs CUBLAS_WORKSPACE_CONFIG unset or one of "
                              f"{', '.join(CUBLAS_WORKSPACES)}, got {os.environ['CUBLAS_WORKSPACE_CONFIG']!r}; "
                              "fix: unset it")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def peak_precisions(device: torch.device) -> tuple[str, ...]:
    """The precisions whose matmul peak describes ``device``: fp32 and bf16, and fp16 on CUDA."""
    return ("fp32", "bf16", "fp16") if device.type == "cuda" else ("fp32", "bf16")
