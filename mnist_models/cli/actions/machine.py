"""What ``mnist-bench machine`` does (``cli/commands/machine.py``): capabilities, matmul peaks, auto's choice."""

from __future__ import annotations

import argparse
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from ...config import MEASURED_DEFAULTS, RunConfig
from ...host.capabilities import bf16_note, capabilities
from ...host.device import peak_precisions, resolve_device
from ...measure.probes import BANDWIDTH_MIB, matmul_peak_gflops, measured_peak_sizes, memory_bandwidth_gbs
from ...results.provenance import environment
from ...results.store import to_json
from ...train.runtime import resolve


def measure(probe: RunConfig, args: argparse.Namespace) -> dict[str, Any]:
    """The capabilities, the matmul peaks of every device here, and the auto choice for ``--model`` (``probe``:
    the command line's config of it)."""
    device = resolve_device(probe.device)
    devices = [torch.device("cpu")] + ([device] if device.type == "cuda" else [])
    peaks = {f"{d.type}/{p}": matmul_peak_gflops(d, p) for d in devices for p in peak_precisions(d)}
    report: dict[str, Any] = {**capabilities(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                              "matmul_peak_gflop_per_s": peaks, "matmul_peak_size": measured_peak_sizes(),
                              "memory_bandwidth_gb_per_s": {d.type: memory_bandwidth_gbs(d) for d in devices}}
    if args.model is not None:  # what a train run of it with the fast loader would get (the default policy)
        run = resolve(probe.with_(loader="fast", **MEASURED_DEFAULTS))
        report["auto"] = {"model": args.model, "device": run.cfg.device, "batch_size": run.cfg.batch_size,
                          "precision": run.cfg.precision, "channels_last": run.cfg.channels_last,
                          "reason": run.reason, "probe_step_ms": dict(run.step_ms)}
    return report


def table(report: dict[str, Any]) -> Table:
    """The report as a two-column table for people."""
    out = Table(title="This machine", title_justify="left", show_header=False)
    out.add_column("what", style="bold")
    out.add_column("value", overflow="fold")
    caches = ", ".join(f"{k} {v:,} KiB" for k, v in report["cache_kib"].items()) or "unknown"
    bf16 = "native (hardware bf16, oneDNN uses it)" if report["bf16_native"] else bf16_note("cpu")
    for label, value in (("kind", report["machine_kind"]),
                         ("CPU", f"{report['cpu']} ({report['cpu_vendor']}, {report['arch']}, "
                                 f"{report['cpu_count']} cores)"),
                         ("torch dispatch", str(report["cpu_capability"])), ("ISA flags", report["cpu_isa"] or "none"),
                         ("bf16", bf16), ("caches (per core; L3 shared)", caches), ("GPU", report["gpu"] or "none"),
                         ("torch", f"{report['torch']}, {report['torch_threads']} threads")):
        out.add_row(label, value)
    for key, value in report["matmul_peak_gflop_per_s"].items():
        out.add_row(f"matmul peak {key}",
                    f"{value:,.1f} GFLOP/s (square {report['matmul_peak_size'][key]}, best call)")
    for key, value in report["memory_bandwidth_gb_per_s"].items():
        out.add_row(f"memory bandwidth {key}", f"{value:,.1f} GB/s (copy of {BANDWIDTH_MIB[key]} MiB, best call)")
    if "auto" in report:
        auto = report["auto"]
        out.add_row(f"auto for {auto['model']} (batch {auto['batch_size']})",
                    f"{auto['precision']}, {'NHWC' if auto['channels_last'] else 'NCHW'}: {auto['reason']}")
    return out


def run(probe: RunConfig, args: argparse.Namespace, out: Console, err: Console) -> int:
    """Measure and print (or ``--json``) this machine's figures."""
    report = measure(probe, args)
    if args.json:
        out.file.write(to_json({**report, "environment": environment()}) + "\n")
        out.file.flush()
    else:
        out.print(table(report))
    return 0
