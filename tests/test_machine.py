"""Machine capabilities: ISA flags, native bf16, the kind name, and the `machine` command."""

from __future__ import annotations

import json

import torch

from mnist_models.cli import main as cli
from mnist_models.host.capabilities import bf16_note, cache_sizes_kib, capabilities, cpu_flags
from mnist_models.host.kinds import machine_kind, machine_label


def test_capabilities_describe_this_cpu() -> None:
    caps = capabilities()
    assert caps["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    flags = cpu_flags()
    assert set(caps["cpu_isa"].split(",")) - {""} <= flags  # only flags the CPU has
    assert caps["bf16_hardware"] == any(f in flags for f in ("avx512_bf16", "amx_bf16", "bf16"))
    assert caps["bf16_native"] == (caps["bf16_hardware"] and caps["onednn_bf16"] is not False)
    assert caps["machine_kind"] == machine_kind(caps) and caps["cpu_count"] >= 1
    assert all(size > 0 for size in cache_sizes_kib().values())


def test_machine_kind_tells_cpus_apart_by_isa_not_by_model_name() -> None:
    epyc = {"gpu": None, "cpu_vendor": "AuthenticAMD", "arch": "x86_64"}
    assert machine_kind({**epyc, "cpu_isa": "avx2,fma"}) == "cpu-amd-avx2"
    assert machine_kind({**epyc, "cpu_isa": "avx2,avx512f,avx512_bf16"}) == "cpu-amd-avx512-bf16"
    xeon = {"gpu": None, "cpu_vendor": "GenuineIntel", "arch": "x86_64"}
    assert machine_kind({**xeon, "cpu_isa": "avx2,avx512f,avx512_bf16,amx_tile,amx_bf16"}) == "cpu-intel-amx"
    assert machine_kind({**xeon, "cpu_isa": "avx2,avx512f"}) == "cpu-intel-avx512"
    limited = {**epyc, "cpu_isa": "avx2,avx512f,avx512_bf16", "onednn_max_isa": "AVX2"}
    assert machine_kind(limited) == "cpu-amd-avx512-bf16-isa-avx2"
    assert machine_kind({"gpu": "NVIDIA H100 80GB HBM3"}) == "gpu-nvidia-h100-80gb-hbm3"


def test_bf16_note_says_why_bf16_is_slow() -> None:
    avx2 = {"cpu": "AMD EPYC", "cpu_count": 2, "cpu_capability": "AVX2", "cpu_isa": "avx2", "bf16_native": False,
            "bf16_hardware": False}
    assert bf16_note("cpu", avx2) == "bf16 emulated on this CPU: no avx512_bf16/amx_bf16"
    assert bf16_note("cpu", {**avx2, "bf16_native": True}) == ""
    limited = {**avx2, "bf16_hardware": True, "onednn_max_isa": "AVX2"}
    assert bf16_note("cpu", limited) == "bf16 emulated: oneDNN limited to AVX2"
    assert machine_label(avx2) == "AMD EPYC (2 cores; AVX2, bf16 emulated)"


def test_machine_command_prints_capabilities_and_peaks(capsys) -> None:
    assert cli.main(["machine", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["machine_kind"] == capabilities()["machine_kind"]
    assert set(report["matmul_peak_gflop_per_s"]) >= {"cpu/fp32", "cpu/bf16"}
    assert all(v > 0 for v in report["matmul_peak_gflop_per_s"].values())
    assert set(report["memory_bandwidth_gb_per_s"]) >= {"cpu"} and report["memory_bandwidth_gb_per_s"]["cpu"] > 0
    assert report["environment"]["cpu_isa"] == capabilities()["cpu_isa"]


def test_machine_command_with_a_model_says_what_auto_picks(capsys) -> None:
    assert cli.main(["machine", "--model", "v0", "--batch-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "auto for v0" in out and "precision auto →" in out and "matmul peak cpu/bf16" in out
    assert "memory bandwidth cpu" in out and "GB/s (copy of 256 MiB, best call)" in out


