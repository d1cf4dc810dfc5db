"""A run's automatic choices made once (``resolve``), and its ``Runtime``: the concrete device-side objects.

``resolve(cfg, workload)`` is called once, at the entry of a run (``mnist-bench train``, each case of
``reproduce`` and ``speedup``, ``tta`` before its seeds, ``machine``, the suite's cases, ``profile``): it
turns ``auto`` settings (precision ``auto``, ``channels_last=None``, device ``auto``) into a concrete
``RunConfig`` by measuring (``auto.resolve_auto``), never by assuming (bf16 is fast on a CPU with AMX
or AVX-512 BF16 and emulated, tens of times slower, on an AVX2-only one), and returns it as a
``Resolved``: that config, what was asked, and why (``reason``: what auto chose, the probe's figures),
which lands in every row of the run (``auto_reason``). Every later stage reads the ``Resolved``;
``Runtime.from_config`` refuses a config that still asks for ``auto``, so nothing decides twice.

``Runtime.from_config(run)`` gives a ``torch.device``, an autocast context factory, a GradScaler, a
synchronize function, the memory format and the model preparation (move, compile, freeze, CUDA-graph
capture); the engine's loops use them without asking which device they run on.

``deterministic`` runs are decided here and nowhere else: ``resolve`` fixes their ``auto`` settings
without measuring (fp32, NCHW: ``unmeasured_choices``), since a timing can choose differently from one
run to the next; ``from_config`` switches the process to deterministic kernels
(``device.make_deterministic``) and seeds every RNG.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import ConfigError, RunConfig
from ..data import dataset_record
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


def is_concrete(cfg: RunConfig) -> bool:
    """Whether ``cfg`` leaves nothing to decide: its own device, precision and memory format."""
    return cfg.device != "auto" and cfg.precision != "auto" and cfg.channels_last is not None


def decision_key(cfg: RunConfig) -> tuple[Any, ...]:
    """What ``resolve`` reads from a config: configs equal here get the same decision."""
    return (cfg.model, cfg.model_args, cfg.device, cfg.precision, cfg.channels_last, cfg.loader, cfg.batch_size,
            cfg.deterministic)


@dataclass(frozen=True)
class Resolved:
    """A run's config with every automatic choice made (``resolve``), what was asked, and why.

    ``cfg`` is concrete (device cpu or cuda, precision fp32/bf16/fp16, ``channels_last`` True or
    False): every stage after the run's entry reads it. ``reason`` says what auto chose and why, with
    the probe's figures ("" when nothing was automatic); every row of the run carries it.
    """

    cfg: RunConfig
    requested: RunConfig  # the config as asked (precision "auto", channels_last None …)
    reason: str = ""
    probe_s: float = 0.0  # seconds the probe took (0 when nothing was measured)
    step_ms: tuple[tuple[str, float], ...] = ()  # ("bf16/NHWC", median probe step in ms) for each candidate

    @classmethod
    def of(cls, run: RunConfig | Resolved) -> Resolved:
        """``run`` itself, or a concrete RunConfig as a run with nothing automatic. A config that still
        asks for ``auto`` raises ConfigError: it goes through ``resolve`` once, at the run's entry."""
        if isinstance(run, Resolved):
            return run
        if not is_concrete(run):
            raise ConfigError(f"device {run.device!r}, precision {run.precision!r}, channels_last "
                              f"{run.channels_last!r}: automatic choices are made once per run, at its entry; "
                              "fix: pass train.runtime.resolve(cfg), or a config with all three set")
        return cls(run, run)

    def describe(self) -> dict[str, Any]:
        """What the run used, for result rows (``runtime``): device, precision, memory format, why (auto), and
        for a data set of your own the content hash it was loaded with (``data.dataset_record``)."""
        return {**Runtime.from_resolved(self).describe(), **dataset_record(self.cfg.dataset)}

    def columns(self) -> dict[str, Any]:
        """The automatic choice as flat columns (time to accuracy's rows): the precision asked for,
        the reason and the probe's seconds (spent before the run, outside its clocks)."""
        return {"precision_requested": self.requested.precision, "auto_reason": self.reason,
                "auto_probe_s": self.probe_s}

    def applied_to(self, cfg: RunConfig) -> Resolved:
        """This decision for ``cfg``, a config equal to the decided one in all that the decision reads
        (``decision_key``; the seed and the learning rate may differ); nothing is measured."""
        if decision_key(cfg) != decision_key(self.requested):
            raise ConfigError("a decision applies only to configs with the same model, device, precision, "
                              "memory format, loader, batch size and determinism")
        concrete = cfg.with_(device=self.cfg.device, precision=self.cfg.precision,
                             channels_last=self.cfg.channels_last)
        return Resolved(concrete, cfg, self.reason, self.probe_s, self.step_ms)


def resolve(cfg: RunConfig, workload: str = "train") -> Resolved:
    """Make ``cfg``'s automatic choices, once per run, at its entry: the device (``auto`` → cuda when
    available), and precision ``auto`` and ``channels_last=None`` measured for ``workload`` ("train" or
    "inference") at ``cfg.batch_size`` (``auto.resolve_auto``), or fixed without measuring for a
    deterministic run (``unmeasured_choices``). A config that cannot run here (fp16 or a CUDA graph on
    the CPU, a missing GPU) raises ConfigError before anything is measured."""
    device = Runtime.check(cfg)
    if cfg.deterministic:
        precision, channels_last, reason = unmeasured_choices(cfg)
        return Resolved(cfg.with_(device=device.type, precision=precision, channels_last=channels_last), cfg, reason)
    start = time.perf_counter()
    choice = resolve_auto(cfg.model, device, cfg.precision, cfg.channels_last, cfg.loader, cfg.batch_size, workload,
                          cfg.model_args)
    probe_s = time.perf_counter() - start if choice.step_ms else 0.0
    concrete = cfg.with_(device=device.type, precision=choice.precision, channels_last=choice.channels_last)
    return Resolved(concrete, cfg, choice.reason, probe_s, choice.step_ms)


def ensure_resolved(run: RunConfig | Resolved, workload: str = "train") -> Resolved:
    """``run`` itself when it is resolved, else ``resolve(run, workload)``: for the functions a run may
    start from with a plain RunConfig (``engine.fit``, ``engine.build_training``), whose call is then
    the run's entry, where its choices are made once."""
    return run if isinstance(run, Resolved) else resolve(run, workload)


def resolve_all(cfgs: Sequence[RunConfig], workload: str = "train") -> list[Resolved]:
    """``resolve`` for the configs of one run (reproduce's or speedup's cases): configs that differ only
    in what the decision does not read (the seed, the learning rate …) share one decision, measured
    once, so every seed of a path runs in the same precision and memory format."""
    decided: dict[tuple[Any, ...], Resolved] = {}
    runs = []
    for cfg in cfgs:
        key = decision_key(cfg)
        if key not in decided:
            decided[key] = resolve(cfg, workload)
        runs.append(decided[key].applied_to(cfg))
    return runs


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
    def from_resolved(cls, run: Resolved) -> Runtime:
        """The runtime's choices for ``run``, without touching the process (nothing is measured or set)."""
        cfg = run.cfg
        return cls(torch.device(cfg.device), cfg.precision, cfg.compile, cfg.channels_last, cfg.cuda_graph,
                   run.reason, cfg.deterministic)

    @classmethod
    def from_config(cls, run: RunConfig | Resolved) -> Runtime:
        """The runtime of a resolved run (``resolve``), or of a concrete RunConfig (nothing automatic; one
        that still asks for ``auto`` raises ConfigError, ``Resolved.of``). Nothing is measured; the
        process's host allocator is tuned and, for a deterministic run, its kernels and RNGs set."""
        run = Resolved.of(run)
        device = cls.check(run.cfg)
        tune_host_allocator()
        if run.cfg.deterministic:
            D.make_deterministic(device)
            seed_everything(run.cfg.seed)
        return cls.from_resolved(run)

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

    def prepare_model(self, model: nn.Module, wrap: Callable[[nn.Module], nn.Module] | None = None) -> nn.Module:
        """Move the model to the device and memory format, ``wrap`` it (DistributedDataParallel for a rank of
        a data-parallel run: before compiling, so that the compiled graph is split at its all-reduces);
        compile it if asked."""
        model = model.to(self.device, memory_format=self.memory_format)
        if wrap is not None:
            model = wrap(model)
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


