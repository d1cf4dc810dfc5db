"""Where a number came from: run ids, the environment (software, hardware, capabilities, git
commit) and the records that carry them into ``runs.jsonl``."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import uuid
from importlib import metadata
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import torch

from ..host.capabilities import capabilities
from ..host.kinds import machine_kind
from ..host.allocator import host_allocator
from ..models import model_source
from .store import RUN_ID_TIME

def new_run_id() -> str:
    """UTC timestamp plus a short random suffix, e.g. ``20261125T163000Z-3f9a1c``."""
    return datetime.now(timezone.utc).strftime(RUN_ID_TIME) + "-" + uuid.uuid4().hex[:6]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git_commit() -> str | None:
    """The project checkout's commit (with ``-dirty`` when it has local changes), if any."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def _version(package: str) -> str | None:
    """An installed package's version from its metadata (no import: torchvision alone costs ~1 s)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Versions, device and CPU of this process, and its host allocator settings (``host_allocator``:
    what ``host.allocator.tune_host_allocator`` applied, ``"default"`` before any run was set up)."""
    return {**_static_environment(), "host_allocator": host_allocator()}


# The machine's capabilities that every result row carries (see machine.capabilities()).
CAPABILITY_KEYS = ("cpu_vendor", "cpu_capability", "cpu_isa", "bf16_native", "onednn_max_isa", "cache_kib",
                   "gpu_capability", "machine_kind")


@functools.lru_cache(maxsize=1)
def _static_environment() -> dict[str, Any]:
    """The parts of ``environment()`` that cannot change within a process (cached)."""
    cuda = torch.cuda.is_available()
    caps = capabilities()
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "torchmetrics": _version("torchmetrics"),
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": caps["gpu"],
        "cpu": caps["cpu"],
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
        **{key: caps[key] for key in CAPABILITY_KEYS},
    }


def epoch_records(run_id: str, kind: str, config: Any, rows: Iterable[dict[str, Any]],
                  runtime: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Result rows ready for ``append_rows``: each epoch row with run id, time, config, where its model
    came from (``model_source``: kind, qualified name, your own file's path and SHA-256), what the runtime
    resolved (e.g. the auto memory format), and the environment."""
    config = asdict(config) if is_dataclass(config) else dict(config)
    config = {key: list(value) if isinstance(value, tuple) else value for key, value in config.items()}  # as JSON
    stamp, env = utc_now(), environment()
    source = asdict(model_source(config["model"])) if config.get("model") else {}
    return [{"run_id": run_id, "kind": kind, "time_utc": stamp, **row, "config": config, "model_source": source,
             "runtime": runtime or {}, "environment": env} for row in rows]



def bench_run_id(env: dict[str, Any] | None = None) -> str:
    """UTC timestamp + machine kind (+ core count on CPUs), e.g. ``20261126T020000Z-cpu-amd-avx512-bf16-2c``
    or ``…-gpu-nvidia-h100-80gb-hbm3``: two CPUs sharing a model name ("AMD EPYC") but not an ISA
    get different ids."""
    env = env or environment()
    kind = env.get("machine_kind") or machine_kind(env)
    tag = kind if env.get("gpu") else f"{kind}-{env['cpu_count']}c"
    return datetime.now(timezone.utc).strftime(RUN_ID_TIME) + "-" + tag

