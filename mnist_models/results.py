"""The one results writer: rows + config + environment → files under ``results/``.

- ``runs.jsonl`` is append-only: each call appends whole lines and never rewrites what is there.
- Tables (CSV, Markdown) are written atomically (temp file + rename), so an interrupted write
  leaves the previous version intact.
- ``environment()`` captures the software and hardware a number was measured on.

See ``results/README.md`` for every file and column.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import socket
import subprocess
import tempfile
import uuid
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import torch

from .fileio import atomic_write_bytes

if TYPE_CHECKING:
    import pandas

RUNS_FILE = "runs.jsonl"


class ResultsError(OSError):
    """The results directory cannot be written. The message is one line with the fix."""


def new_run_id() -> str:
    """UTC timestamp plus a short random suffix, e.g. ``20261125T163000Z-3f9a1c``."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


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
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Versions, device and CPU of this process, and its host allocator settings (``host_allocator``:
    what ``runtime.tune_host_allocator`` applied, ``"default"`` before any run was set up)."""
    from .runtime import host_allocator

    return {**_static_environment(), "host_allocator": host_allocator()}


# The machine's capabilities that every result row carries (see machine.capabilities()).
CAPABILITY_KEYS = ("cpu_vendor", "cpu_capability", "cpu_isa", "bf16_native", "onednn_max_isa", "cache_kib",
                   "gpu_capability", "machine_kind")


@functools.lru_cache(maxsize=1)
def _static_environment() -> dict[str, Any]:
    """The parts of ``environment()`` that cannot change within a process (cached)."""
    from .machine import capabilities

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


def machine_tag(env: dict[str, Any] | None = None) -> str:
    """Short name of the compute device: the GPU name, else the CPU model, core count and what it
    can do (``AMD EPYC (2 cores; AVX512, avx512_bf16, bf16 native)``). Rows written before the
    capabilities were recorded give the model and core count only."""
    from .machine import machine_label

    env = env or environment()
    if env.get("gpu"):
        return env["gpu"]
    if "cpu_isa" not in env:
        return f"{env['cpu']} ({env['cpu_count']} cores)"
    return machine_label(env)


def check_writable(directory: str | os.PathLike[str]) -> Path:
    """Create ``directory`` if needed and prove it and its ``runs.jsonl`` are writable, before any work."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
        if (path / RUNS_FILE).exists():  # appending nothing proves it is a writable file
            with open(path / RUNS_FILE, "a", encoding="utf-8"):
                pass
    except OSError as exc:
        raise ResultsError(f"results directory {path} is not writable ({exc.strerror or exc}); "
                           "fix: pass --results DIR with a writable folder") from None
    return path


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def to_json(obj: Any) -> str:
    """One-line JSON with dataclasses, paths and tensors converted."""
    return json.dumps(obj, default=_jsonable, allow_nan=True)


def append_rows(directory: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> Path:
    """Append rows as JSON lines to ``directory/runs.jsonl``; earlier lines are never touched."""
    path = Path(directory) / RUNS_FILE
    text = "".join(to_json(row) + "\n" for row in rows)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return path


def read_rows(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All rows of ``directory/runs.jsonl`` (empty when there is none)."""
    path = Path(directory) / RUNS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; the previous version stays intact until the rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def has_markers(path: str | os.PathLike[str], name: str) -> bool:
    """Whether ``path`` is a file holding both ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    path = Path(path)
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    return all(marker in text for marker in _markers(name))


def splice_marked(path: str | os.PathLike[str], name: str, body: str, kind: str | None = None) -> bool:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in a file.

    With ``kind`` (a machine kind, see ``machine.machine_kind``), only the sub-block
    ``<!-- name@kind:start -->`` … ``<!-- name@kind:end -->`` inside that block is replaced, or
    added at its end when this kind has none yet: figures from other machines stay as they are.
    Returns False (and changes nothing) when the outer markers are absent.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start, end = _markers(name)
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    inner, tail = rest.split(end, 1)
    if kind is None:
        inner = f"\n{body.strip()}\n"
    else:
        sub_start, sub_end = _markers(f"{name}@{kind}")
        block = f"{sub_start}\n{body.strip()}\n{sub_end}"
        if sub_start in inner and sub_end in inner:
            before, after = inner.split(sub_start, 1)
            inner = before + block + after.split(sub_end, 1)[1]
        else:
            inner = inner.rstrip("\n") + f"\n\n{block}\n"
    write_text(path, f"{head}{start}{inner}{end}{tail}")
    return True


def splice_machine_block(path: str | os.PathLike[str], name: str, body: str, env: dict[str, Any] | None = None) -> bool:
    """Put ``body`` into ``path``'s ``name`` block as this machine kind's sub-block (see ``splice_marked``),
    under a line naming the machine, its kind and the date, so that every README figure says which
    machine it belongs to and figures from other machines are kept. The body's headings go one
    level down, under that line."""
    env = env or environment()
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    demoted = "\n".join("#" + line if line.startswith("#") else line for line in body.strip().splitlines())
    titled = f"**{machine_tag(env)}** · kind `{env['machine_kind']}` · measured {stamp}\n\n{demoted}"
    return splice_marked(path, name, titled, kind=env["machine_kind"])


def epoch_records(run_id: str, kind: str, config: Any, rows: Iterable[dict[str, Any]],
                  runtime: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Result rows ready for ``append_rows``: each epoch row with run id, time, config, what the
    runtime resolved (e.g. the auto memory format), and the environment."""
    config = asdict(config) if is_dataclass(config) else dict(config)
    stamp, env = utc_now(), environment()
    return [{"run_id": run_id, "kind": kind, "time_utc": stamp, **row, "config": config, "runtime": runtime or {},
             "environment": env} for row in rows]


def markdown_table(frame: "pandas.DataFrame", floatfmt: str = "{:.4g}") -> str:
    """A GitHub-flavoured Markdown table of a DataFrame (strings as they are, floats formatted)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if value != value else floatfmt.format(value)  # NaN → empty cell
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(str(c)) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


# --------------------------------------------------------------------------------------------
# Benchmark-suite runs: results/<run-id>/ with tables, machine info and pytest-benchmark's JSON


def bench_run_id(env: dict[str, Any] | None = None) -> str:
    """UTC timestamp + machine kind (+ core count on CPUs), e.g. ``20261126T020000Z-cpu-amd-avx512-bf16-2c``
    or ``…-gpu-nvidia-h100-80gb-hbm3``: two CPUs sharing a model name ("AMD EPYC") but not an ISA
    get different ids."""
    from .machine import machine_kind

    env = env or environment()
    kind = env.get("machine_kind") or machine_kind(env)
    tag = kind if env.get("gpu") else f"{kind}-{env['cpu_count']}c"
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + tag


def write_bench_run(results_dir: str | os.PathLike[str], run_id: str, train: "pandas.DataFrame",
                    inference: "pandas.DataFrame", summary_md: str, machine: dict[str, Any],
                    benchmark_json: dict[str, Any] | None, tta: "pandas.DataFrame | None" = None) -> Path:
    """Write one suite run to ``results_dir/run_id/`` and point ``results_dir/latest`` at it.

    Files: train.csv, inference.csv, tta.csv (when the time-to-accuracy case ran), summary.md,
    machine.json, benchmark.json (pytest-benchmark's own JSON, when benchmarks were timed). Each
    file is written atomically; earlier runs' folders are never touched.
    """
    folder = Path(results_dir) / run_id
    folder.mkdir(parents=True, exist_ok=False)
    write_text(folder / "train.csv", train.to_csv(index=False))
    write_text(folder / "inference.csv", inference.to_csv(index=False))
    if tta is not None and not tta.empty:
        write_text(folder / "tta.csv", tta.to_csv(index=False))
    write_text(folder / "summary.md", summary_md)
    write_text(folder / "machine.json", json.dumps(machine, indent=2, default=_jsonable) + "\n")
    if benchmark_json is not None:
        write_text(folder / "benchmark.json", json.dumps(benchmark_json, indent=1, default=str) + "\n")
    latest = Path(results_dir) / "latest"
    tmp = Path(results_dir) / f".latest.{uuid.uuid4().hex[:6]}"
    tmp.symlink_to(run_id, target_is_directory=True)
    os.replace(tmp, latest)  # atomic swap of the link
    return folder
