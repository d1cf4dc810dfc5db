"""``Runtime``: a ``RunConfig``'s device-side choices resolved into concrete objects.

``Runtime.from_config(cfg)`` gives a ``torch.device``, an autocast context factory, a GradScaler,
a synchronize function, the memory format and the model preparation (move, compile, freeze,
CUDA-graph capture); the engine's loops use them without asking which device they run on.
``auto`` settings (precision ``auto``, ``channels_last=None``) are resolved by measuring
(``auto.resolve_auto``), never assumed: bf16 is fast on a CPU with AMX or AVX-512 BF16 and
emulated, tens of times slower, on an AVX2-only one.

``deterministic`` runs are decided here and nowhere else: ``from_config`` switches the process to
deterministic kernels (``device.make_deterministic``), seeds every RNG, and resolves ``auto``
without measuring (fp32, NCHW), since a timing can choose differently from one run to the next.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import ConfigError, RunConfig
from ..host import device as D
from ..host.allocator import tune_host_allocator
from .auto import resolve_auto


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's RNGs (all devices)."""
    random.seed(seed)
    torch.manual_seed(seed)


def unmeasured_choices(cfg: RunConfig) -> tuple[str, bool, str]:
    """A deterministic run's precision and memory format: ``auto`` ones fixed to fp32 and NCHW
    without measuring (a probe's timings can pick differently from one run to the next), with
    the reason ("" when nothing would have been measured)."""
    fixed = []
    if cfg.precision == "auto":
        fixed.append("precision auto → fp32")
    if cfg.channels_last is None and cfg.loader != "notebook":  # the notebook loader's auto is NCHW, unmeasured
        fixed.append("memory format auto → NCHW")
    precision = "fp32" if cfg.precision == "auto" else cfg.precision
    channels_last = False if cfg.channels_last is None else cfg.channels_last
    reason = f"{'; '.join(fixed)} (deterministic: not measured, as timings can choose differently between runs)"
    return precision, channels_last, reason if fixed else ""


@dataclass(frozen=True)
class Runtime:
    """Concrete device-side choices for one run (``auto`` settings already resolved)."""

    device: torch.device
    precision: str
    compile_mode: str
    channels_last: bool
    cuda_graph: bool = False
    auto_reason: str = ""  # what the automatic choices resolved to and why ("" when none were automatic)
    deterministic: bool = False  # deterministic kernels, every RNG seeded (make_deterministic)

    @classmethod
    def from_config(cls, cfg: RunConfig, workload: str = "train") -> Runtime:
        """Resolve ``cfg`` on this machine. ``precision="auto"`` and ``channels_last=None`` are
        measured with ``resolve_auto`` (for ``workload`` "train" or "inference", at
        ``cfg.batch_size``); impossible combinations raise ConfigError before anything runs."""
        device = cls.check(cfg)
        tune_host_allocator()
        precision, channels_last, fixed = cfg.precision, cfg.channels_last, ""
        if cfg.deterministic:
            D.make_deterministic(device)
            seed_everything(cfg.seed)
            precision, channels_last, fixed = unmeasured_choices(cfg)
        choice = resolve_auto(cfg.model, device, precision, channels_last, cfg.loader, cfg.batch_size, workload)
        return cls(device, choice.precision, cfg.compile, choice.channels_last, cfg.cuda_graph,
                   fixed or choice.reason, cfg.deterministic)

    @staticmethod
    def check(cfg: RunConfig) -> torch.device:
        """The config's device, once it is known to be able to run the config (no measuring):
        ConfigError for a missing GPU, fp16 or a CUDA graph on the CPU."""
        device = D.resolve_device(cfg.device)
        if cfg.precision == "fp16" and device.type != "cuda":
            raise ConfigError("fp16 (autocast + GradScaler) runs on CUDA only; "
                              "fix: use --precision bf16, fp32 or auto on the CPU")
        if cfg.cuda_graph and device.type != "cuda":
            raise ConfigError("--cuda-graph needs a CUDA device; fix: drop it on the CPU")
        return device

    def describe(self) -> dict[str, Any]:
        """What the run used, for result rows: device, precision, memory format, and why (auto)."""
        return {"device": str(self.device), "precision": self.precision, "channels_last": self.channels_last,
                "auto_reason": self.auto_reason, "deterministic": self.deterministic}

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def synchronize(self) -> Callable[[], None]:
        """Wait for queued device work; a no-op on the CPU, where work is synchronous."""
        return D.synchronizer(self.device)

    @property
    def amp(self) -> D.Amp:
        """This run's autocast and GradScaler, both from the precision table (what the training step takes)."""
        return D.Amp(self.device, self.precision, cache_enabled=not self.cuda_graph)

    def autocast(self) -> AbstractContextManager:
        """The autocast context for this precision (a null context for fp32)."""
        return self.amp.autocast()

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only where the precision needs one (fp16): ``Amp.grad_scaler``."""
        return self.amp.grad_scaler()

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Move the model to the device and memory format; compile it if asked."""
        model = model.to(self.device, memory_format=self.memory_format)
        if self.compile_mode != "none":
            model = torch.compile(model, mode=self.compile_mode)
        return model

    def prepare_inference(self, model: nn.Module, weights_bf16: bool = False, freeze: bool = False) -> nn.Module:
        """An eval-mode model for inference: device, memory format, optionally bf16 weights, compiled
        if asked, with inductor freezing (weights folded into constants) when ``freeze``."""
        model = model.eval().to(self.device, memory_format=self.memory_format)
        if weights_bf16:
            model = model.to(torch.bfloat16)
        if self.compile_mode == "none":
            return model
        if freeze:  # torch.compile takes a mode or inductor options, not both
            if self.compile_mode != "default":
                raise ConfigError("inductor freezing is applied with compile mode 'default' only")
            return torch.compile(model, options={"freezing": True})
        return torch.compile(model, mode=self.compile_mode)

    def images_to_device(self, x: torch.Tensor) -> torch.Tensor:
        """Move images to the device (non-blocking) in the run's memory format."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Move a batch (images, labels) to the device, images in the run's memory format."""
        return self.images_to_device(x), y.to(self.device, non_blocking=True)

    def capture(self, fn: Callable[..., Any], *example: torch.Tensor, warmup: int = 3) -> Callable[..., Any]:
        """Capture ``fn(*inputs)`` in one CUDA graph; return a replay function with the same call.

        ``fn`` runs ``warmup`` times on ``example`` on a side stream first (CUDA needs this
        before capture; for a training step these are real optimiser steps on the first batch).
        The replay copies its inputs into the static buffers and returns the static outputs,
        which the next replay overwrites: consume them before calling again. Inputs must have
        the example's shapes.
        """
        if self.device.type != "cuda":
            raise ConfigError("CUDA-graph capture needs a CUDA device")
        static = [t.clone() for t in example]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = fn(*static)

        def replay(*inputs: torch.Tensor) -> Any:
            for buffer, value in zip(static, inputs, strict=True):
                buffer.copy_(value, non_blocking=True)
            graph.replay()
            return outputs

        return replay


