"""``--precision auto`` and ``channels_last`` auto: resolved by measuring the model's own step here.

``resolve_auto`` picks the faster of fp32 and bf16 (bf16 only when at least ``BF16_MIN_GAIN``
times faster, as it costs accuracy) and of NCHW and NHWC, from ``probe_steps``: a few real steps
of the model on random inputs, the candidates timed together, interleaved (``host.clock``). It is
called once per run, by ``runtime.resolve`` at the run's entry, and measures afresh each time: no
cache keeps two stages of a run consistent, as no second stage decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import ConfigError
from ..host import device as D
from ..host.capabilities import bf16_note
from ..host.clock import interleaved_medians
from ..models import IMAGE_SHAPE, get_model, parse_model_args
from .optim import SGD
from .step import make_train_step

# bf16 is chosen only when its step is at least this much faster than fp32's: bf16 autocast costs
# accuracy on these models (docs/decisions.md, 2026-11-26, "bf16 threshold"), so a gain within
# probe noise does not pay for it.
BF16_MIN_GAIN = 1.10
WORKLOADS = ("train", "inference")
ProbeKey = tuple[str, str, str, bool, int, str, tuple[str, ...]]  # model, device, precision, channels_last, batch,
# workload, the model's --model-arg pairs
# probe_step_seconds' measurements, reused for the rest of the process (see there); resolve_auto never reads it.
_UNIT_SECONDS: dict[ProbeKey, float] = {}


def _stepper(key: ProbeKey) -> tuple[Callable[[], Any], Callable[[], None]]:
    """One step of the probe for ``key`` (random inputs), and its device's synchronize."""
    model_name, device_name, precision, channels_last, batch_size, workload, model_args = key
    device = torch.device(device_name)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = get_model(model_name, **parse_model_args(model_args)).to(device, memory_format=fmt)
    x = torch.rand(batch_size, *IMAGE_SHAPE).to(device, memory_format=fmt)
    y = torch.randint(0, 10, (batch_size,), device=device)

    amp = D.Amp(device, precision)
    if workload == "inference":
        model.eval()

        def forward() -> None:
            with torch.inference_mode(), amp.autocast():
                model(x)

        return forward, D.synchronizer(device)
    optimizer = SGD(model.parameters(), lr=1e-3)
    step = make_train_step(model, optimizer, amp, nn.CrossEntropyLoss())
    return (lambda: step(x, y)), D.synchronizer(device)


def probe_steps(keys: list[ProbeKey]) -> dict[ProbeKey, float]:
    """Median seconds of one step for each probe key, measured now, the keys interleaved.

    ``workload`` "train": the engine's training step (forward under autocast, cross-entropy,
    backward, an SGD update); "inference": one forward pass under ``torch.inference_mode``. Random
    inputs of ``batch`` images in the given memory format. The global RNG state is left as it was.
    """
    todo = list(dict.fromkeys(keys))
    devices = sorted({k[1] for k in todo if k[1].startswith("cuda")})
    with torch.random.fork_rng(devices=devices):
        measured = interleaved_medians({k: _stepper(k) for k in todo})
    return {k: measured[k] for k in keys}


def probe_step_seconds(model_name: str, device: torch.device, precision: str, channels_last: bool,
                       batch_size: int, workload: str = "train", model_args: tuple[str, ...] = ()) -> float:
    """Median seconds of one step of ``model_name`` here (``probe_steps`` for one candidate), measured
    once per process and reused after: the unit the benchmark suite's time budget counts every case
    in (``experiments/plans.py``), so all of a session's plans share one figure. The reuse is of a
    measurement only: no run's precision or memory format is chosen from it (``resolve_auto``
    measures its candidates itself, together)."""
    key = (model_name, str(device), precision, channels_last, batch_size, workload, tuple(model_args))
    if key not in _UNIT_SECONDS:
        _UNIT_SECONDS[key] = probe_steps([key])[key]
    return _UNIT_SECONDS[key]


@dataclass(frozen=True)
class AutoChoice:
    """What ``resolve_auto`` picked, and why (empty ``reason`` when nothing was automatic)."""

    precision: str
    channels_last: bool
    reason: str = ""
    step_ms: tuple[tuple[str, float], ...] = ()  # ("bf16/NHWC", median probe step in ms), ...


def _format_name(channels_last: bool) -> str:
    return "NHWC" if channels_last else "NCHW"


def resolve_auto(model_name: str, device: torch.device, precision: str, channels_last: bool | None,
                 loader: str, batch_size: int, workload: str = "train", model_args: tuple[str, ...] = ()
                 ) -> AutoChoice:
    """Resolve ``precision="auto"`` and ``channels_last=None`` for this model on this device by measuring.

    Precision auto: the faster of fp32 and bf16 by ``probe_steps`` (each in its faster memory
    format when the format is auto too); bf16 must be ``BF16_MIN_GAIN`` times faster to be picked.
    Memory format auto: NCHW with the notebook loader, else the faster of NCHW and NHWC in the
    chosen precision. Explicit values are kept and not measured; all candidates are measured in
    one interleaved probe. Called by ``runtime.resolve`` (once per run) and nothing else.
    """
    if workload not in WORKLOADS:
        raise ConfigError(f"unknown workload {workload!r}; choose one of: {', '.join(WORKLOADS)}")
    precisions = ["fp32", "bf16"] if precision == "auto" else [precision]
    formats = [channels_last] if channels_last is not None else ([False] if loader == "notebook" else [False, True])
    if len(precisions) == 1 and len(formats) == 1:
        return AutoChoice(precisions[0], bool(formats[0]))
    keys = {(p, f): (model_name, str(device), p, f, batch_size, workload, tuple(model_args))
            for p in precisions for f in formats}
    measured = probe_steps(list(keys.values()))
    times = {combo: measured[key] for combo, key in keys.items()}
    best = {p: min(formats, key=lambda f, p=p: times[p, f]) for p in precisions}
    what = "training step" if workload == "train" else "forward pass"
    reasons = []
    chosen = precisions[0]
    if precision == "auto":
        fp32, bf16 = times["fp32", best["fp32"]], times["bf16", best["bf16"]]
        gain = fp32 / bf16
        chosen = "bf16" if gain >= BF16_MIN_GAIN else "fp32"
        text = (f"precision auto → {chosen}: bf16 {what} {gain:.2f}× the speed of fp32 "
                f"({1e3 * bf16:.2f} vs {1e3 * fp32:.2f} ms, median probe step, batch {batch_size})")
        if chosen == "fp32":
            note = bf16_note(device.type)
            if gain > 1:
                text += f"; bf16 needs ≥ {BF16_MIN_GAIN:.2f}× to be picked, as it costs accuracy"
            elif note:
                text += f"; {note}"
        reasons.append(text)
    fmt = best[chosen]
    if len(formats) > 1:
        reasons.append(f"memory format auto → {_format_name(fmt)} ({1e3 * times[chosen, True]:.2f} ms NHWC vs "
                       f"{1e3 * times[chosen, False]:.2f} ms NCHW)")
    step_ms = tuple((f"{p}/{_format_name(f)}", round(1e3 * t, 4)) for (p, f), t in times.items())
    return AutoChoice(chosen, fmt, "; ".join(reasons), step_ms)
