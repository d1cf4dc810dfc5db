"""What this machine can do: CPU capability, ISA flags, native bf16, caches, and a short kind name.

Two 2-core cloud VMs with the same ``model name`` ("AMD EPYC") can differ by an order of
magnitude in bf16 (native AVX-512 BF16 against emulation), so every figure the project writes
carries the capability it was measured on, and results-page blocks (docs/results/<kind>.md) are kept per machine kind.

- ``capabilities()``: the static facts, read once per process (``/proc/cpuinfo``, sysfs caches,
  torch's dispatch level and oneDNN's bf16 support). Nothing here is timed.
- ``machine_kind(caps)`` (``kinds.py``, no torch): a slug such as ``cpu-amd-avx512-bf16`` or
  ``gpu-nvidia-h100-80gb-hbm3``; the name of the results-page blocks (docs/results/<kind>.md) and part of a
  bench run's id.
- ``bf16_note(caps)``: why bf16 is slow where it is emulated, for flags and reasons.

The measured side (matmul peak per dtype) lives in ``measure.probes.matmul_peak_gflops``;
``mnist-bench machine`` prints both.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any

import torch

from .kinds import machine_kind

# ISA extensions that decide how fast the precisions run (x86 /proc/cpuinfo flag names).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
             "amx_tile", "amx_bf16", "amx_int8", "amx_fp16")
# Flags (x86, then aarch64) that give bf16 arithmetic in hardware, as oneDNN uses it.
BF16_HARDWARE_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def _cpuinfo() -> dict[str, str]:
    """The first processor's ``/proc/cpuinfo`` fields (empty off Linux)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                if fields:
                    break
                continue
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_flags() -> set[str]:
    """The CPU's feature flags (x86 ``flags``, aarch64 ``Features``)."""
    info = _cpuinfo()
    return set((info.get("flags") or info.get("Features") or "").split())


def cache_sizes_kib() -> dict[str, int]:
    """Cache sizes of the first CPU in KiB by level and type, e.g. ``{"L1d": 32, "L2": 1024, "L3": 32768}``
    (L3 is usually shared by all cores; empty where sysfs does not say)."""
    sizes: dict[str, int] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        scale = {"K": 1, "M": 1024, "G": 1024 * 1024}.get(size[-1:], None)
        if scale is None or not size[:-1].isdigit():
            continue
        sizes[f"L{level}{suffix}"] = int(size[:-1]) * scale
    return sizes


def _onednn_bf16() -> bool | None:
    """Whether oneDNN runs bf16 with hardware support here (torch's own check, which also honours an
    ``ONEDNN_MAX_CPU_ISA`` limit); None where this torch build cannot tell."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return None


@functools.lru_cache(maxsize=1)
def capabilities() -> dict[str, Any]:
    """Static facts about this machine's compute (cached per process).

    Keys: ``cpu`` (model name), ``cpu_vendor``, ``arch``, ``cpu_count``, ``cpu_capability`` (the
    vector level torch dispatches to, ``torch.backends.cpu.get_cpu_capability()``), ``cpu_isa``
    (the ``ISA_FLAGS`` present, comma separated), ``bf16_hardware`` (an ISA flag for bf16 arithmetic
    is present), ``onednn_bf16`` (oneDNN agrees), ``bf16_native`` (both: bf16 runs in hardware
    rather than being emulated), ``onednn_max_isa`` (the ``ONEDNN_MAX_CPU_ISA`` limit, if any),
    ``cache_kib``, and for CUDA ``gpu``, ``gpu_capability`` and ``gpu_bf16``. ``machine_kind``
    names the combination.
    """
    info = _cpuinfo()
    flags = cpu_flags()
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch < 2.1
        capability = None
    hardware = any(flag in flags for flag in BF16_HARDWARE_FLAGS)
    onednn = _onednn_bf16()
    cuda = torch.cuda.is_available()
    caps: dict[str, Any] = {
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_vendor": info.get("vendor_id") or info.get("CPU implementer") or platform.machine(),
        "arch": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": capability,
        "cpu_isa": ",".join(flag for flag in ISA_FLAGS if flag in flags),
        "bf16_hardware": hardware,
        "onednn_bf16": onednn,
        "bf16_native": hardware and onednn is not False,
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA"),
        "cache_kib": cache_sizes_kib(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
        "gpu_bf16": bool(torch.cuda.is_bf16_supported()) if cuda else None,
    }
    caps["machine_kind"] = machine_kind(caps)
    return caps


def bf16_note(device_type: str, caps: dict[str, Any] | None = None) -> str:
    """Why bf16 runs slowly on ``device_type`` here, or ``""`` when bf16 has hardware support."""
    caps = caps or capabilities()
    if device_type == "cuda":
        return "" if caps.get("gpu_bf16") is not False else "bf16 not supported by this GPU"
    if caps.get("bf16_native"):
        return ""
    if caps.get("bf16_hardware") and caps.get("onednn_max_isa"):
        return f"bf16 emulated: oneDNN limited to {caps['onednn_max_isa']}"
    return "bf16 emulated on this CPU: no avx512_bf16/amx_bf16"
