"""What a machine is called, from its recorded facts alone (no torch): ``machine_kind`` (the slug figures are
kept under, e.g. ``cpu-amd-avx512-bf16``), ``machine_label`` and ``machine_tag`` (one line for people). The
facts are read by ``capabilities.py`` on this machine, or come from a run's recorded environment, so pages
about runs of other machines name them without importing torch.
"""

from __future__ import annotations

from typing import Any


def _slug(text: str) -> str:
    return "-".join("".join(c.lower() if c.isalnum() else " " for c in text).split())


def machine_kind(caps: dict[str, Any]) -> str:
    """A short, stable name for the kind of machine a figure belongs to.

    GPU machines: ``gpu-<device name>``. CPUs: ``cpu-<vendor>-<top ISA level>``, where the level is
    ``amx`` (AMX bf16 tiles), ``avx512-bf16`` (AVX-512 with bf16 dot products), ``avx512``, ``avx2``
    or the architecture; an ``ONEDNN_MAX_CPU_ISA`` limit is appended (``-isa-avx2``) because it
    changes what the CPU runs. The vendor comes from ``vendor_id`` (the model name alone does not
    tell an AVX2 EPYC from an AVX-512 one).
    """
    if caps.get("gpu"):
        return f"gpu-{_slug(caps['gpu'])}"
    isa = set((caps.get("cpu_isa") or "").split(","))
    if "amx_bf16" in isa:
        level = "amx"
    elif "avx512_bf16" in isa:
        level = "avx512-bf16"
    elif "avx512f" in isa:
        level = "avx512"
    elif "avx2" in isa:
        level = "avx2"
    else:
        level = _slug(caps.get("arch") or "cpu")
    vendor = {"genuineintel": "intel", "authenticamd": "amd"}.get(str(caps.get("cpu_vendor", "")).lower(),
                                                                    _slug(str(caps.get("cpu_vendor", ""))))
    limit = f"-isa-{_slug(caps['onednn_max_isa'])}" if caps.get("onednn_max_isa") else ""
    return "-".join(part for part in ("cpu", vendor, level) if part) + limit


def machine_label(caps: dict[str, Any]) -> str:
    """One line for people: ``AMD EPYC (2 cores; AVX512, avx512_bf16, bf16 native)`` or the GPU name."""
    if caps.get("gpu"):
        return f"{caps['gpu']} (CUDA capability {caps['gpu_capability']})"
    isa = caps.get("cpu_isa") or ""
    extras = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in isa.split(",")]
    bf16 = "bf16 native" if caps.get("bf16_native") else "bf16 emulated"
    limit = f", oneDNN limited to {caps['onednn_max_isa']}" if caps.get("onednn_max_isa") else ""
    parts = [caps.get("cpu_capability") or caps.get("arch"), *extras, bf16]
    return f"{caps['cpu']} ({caps['cpu_count']} cores; {', '.join(str(p) for p in parts if p)}{limit})"


def machine_tag(env: dict[str, Any]) -> str:
    """Short name of the compute device: the GPU name, else the CPU model, core count and what it
    can do (``AMD EPYC (2 cores; AVX512, avx512_bf16, bf16 native)``). Rows written before the
    capabilities were recorded give the model and core count only."""
    if env.get("gpu"):
        return env["gpu"]
    if "cpu_isa" not in env:
        return f"{env['cpu']} ({env['cpu_count']} cores)"
    return machine_label(env)
