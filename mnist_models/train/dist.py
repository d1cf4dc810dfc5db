"""Data-parallel training on torch.distributed: one process per rank, started by ``torchrun`` (or by
``mnist-bench train --nproc N`` or ``profile --nproc N``, which run ``torch.distributed.run`` themselves:
``launch.py``).

    torchrun --standalone --nproc-per-node 2 -m mnist_models train --ddp --model v2

``Dist.start`` reads the rank and world that torchrun put in the environment, gives each process
``cores // local world size`` threads (torchrun's default is one; ``THREADS`` in the environment, set by
``launch.py``, overrides), and joins the process group: gloo on
the CPU, NCCL on CUDA (``--backend`` overrides), with a timeout on every collective so that a rank that
hangs ends the job instead of stalling it. Then:

- ``resolve``: rank 0 makes the run's automatic choices (precision, memory format: measured with the
  threads a rank has) and sends them to the others, so every rank runs the same concrete config;
- ``check_same_world``: every rank's config, model source and data set are compared with rank 0's before
  training; a rank launched with other flags or files is refused with one line naming it;
- ``wrap``: the model in ``DistributedDataParallel`` (gradients averaged over ranks after every
  backward; rank 0's initial weights broadcast);
- ``sum``: a tensor summed over ranks (the engine's evaluation and epoch figures);
- ``share``: a Python object of rank 0's sent to every rank (``resolve``'s choices, a profile's folder id);
  ``gather``: one Python object from each rank, on every rank;
- ``finish``: how a rank ends once its work is done (a barrier, then ``leave``: no interpreter shutdown
  under gloo's threads); ``rank_failed``: how it ends on an error; ``record_failure``: its one-line failure
  written to torchelastic's error file (``TORCHELASTIC_ERROR_FILE``), where the launcher reads which rank
  failed and why.

Only rank 0 writes rows, checkpoints and progress (``is_main``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import nn

from ..config import BACKENDS, ConfigError, RunConfig, check_distributed_config
from ..errors import LAUNCHED, MachineLimit, UserError, leave
from ..host.device import resolve_device
from ..results.provenance import model_source
from .runtime import Resolved, resolve

LOST = "lost contact with another rank"  # how a rank whose peer died says so (not the job's root cause)
DEFAULT_TIMEOUT_S = 120.0  # a collective waiting longer than this for a rank ends the job
THREADS = "MNIST_BENCH_THREADS"  # threads per rank, when the launcher chose them (else cores // local world)


class DistError(UserError):
    """A data-parallel run cannot start or go on: one line naming the rank and the fix."""


def cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pick_backend(name: str, device: torch.device) -> str:
    """``auto`` → NCCL on CUDA, gloo on the CPU; NCCL without CUDA is refused."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    if name == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if name == "nccl" and device.type != "cuda":
        raise ConfigError("--backend nccl runs on CUDA devices only; fix: use --backend gloo (or auto) on the CPU")
    return name


@dataclass(frozen=True)
class Dist:
    """This process's place in a data-parallel job."""

    rank: int
    world: int
    local_rank: int
    local_world: int
    backend: str
    threads: int  # intra-op threads of this rank
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, cfg: RunConfig, backend: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> Dist:
        """Join the job torchrun started (its environment names rank, world and rendezvous: the train
        command refuses ``--ddp`` without it)."""
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        check_distributed_config(cfg, world)
        local_rank, local_world = int(os.environ["LOCAL_RANK"]), int(os.environ["LOCAL_WORLD_SIZE"])
        device = resolve_device(cfg.device)  # the one device resolution (auto → cuda where present)
        if device.type == "cuda":
            if local_rank >= torch.cuda.device_count():
                raise DistError(f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} here); fix: "
                                f"--nproc-per-node {torch.cuda.device_count()} or fewer")
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        chosen = pick_backend(backend, device)
        threads = int(os.environ.get(THREADS) or max(1, cores() // local_world))
        torch.set_num_threads(threads)
        dist.init_process_group(chosen, timeout=timedelta(seconds=timeout_s),
                                device_id=device if device.type == "cuda" else None)
        return cls(rank, world, local_rank, local_world, chosen, threads, device)

    def finish(self, code: int = 0) -> NoReturn:
        """End this rank once every rank is done: a barrier (a rank that left while rank 0 still reported
        would look to torchrun like a failed one), the process group destroyed, then ``leave``, never an
        interpreter shutdown. DistributedDataParallel keeps gloo's process group alive past
        ``destroy_process_group``, and gloo's worker thread frees the barrier's work (and the tensors it
        held) just after the barrier returns; when that lands in the interpreter's shutdown, taking the GIL
        ends the thread inside a C++ destructor and the process aborts (``terminate called without an
        active exception``): SIGABRT, which torchrun reports as a failed job after every row was written.
        Measured: 2 such aborts in 40 two-rank runs on a loaded 2-core machine, and one in CI."""
        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
        leave(code)

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world

    def resolve(self, cfg: RunConfig) -> Resolved:
        """The run's automatic choices, made once, on rank 0 (the others wait), and sent to every rank."""
        return self.share(resolve(cfg) if self.is_main else None)

    def share(self, value: Any) -> Any:
        """Rank 0's ``value`` (picklable), on every rank (the others' ``value`` is ignored)."""
        box: list[Any] = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), by rank, on every rank."""
        seen: list[Any] = [None] * self.world
        dist.all_gather_object(seen, value)
        return seen

    def check_same_world(self, cfg: RunConfig) -> None:
        """Refuse, before training, a job whose ranks would train different things: the config, the model's
        source (your own file's SHA-256) or the data set differ from rank 0's."""
        mine = {**asdict(cfg), "model_source": asdict(model_source(cfg.model)), "data_root": None}
        seen = self.gather(mine)
        for rank, theirs in enumerate(seen):
            diff = [f"{key} {theirs[key]!r} (rank 0: {seen[0][key]!r})" for key in seen[0]
                    if theirs[key] != seen[0][key]]
            if diff:
                raise DistError(f"rank {rank} was launched with a different run: {'; '.join(diff)}; fix: launch "
                                "every rank with the same flags, model file and data set")

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model in DistributedDataParallel (on CUDA, bound to this rank's GPU)."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over every rank (in place, returned)."""
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def columns(self, img_per_s: float, batch_size: int) -> dict[str, Any]:
        """What an epoch row of a data-parallel run adds: world size, backend, the global batch, threads per
        rank and the images per second of one rank (``img_per_s``: all ranks together)."""
        return {"world_size": self.world, "backend": self.backend, "global_batch": batch_size * self.world,
                "threads_per_rank": self.threads, "rank_img_per_s": img_per_s / self.world}



def collective_failure(exc: BaseException) -> str | None:
    """What a failed collective says (a peer gone, ``--dist-timeout`` passed), in one line; None for any other
    error. torch.distributed raises ``DistError``; gloo's transport errors inside DDP's backward arrive as a
    plain RuntimeError naming gloo's sources."""
    text = str(exc)
    if not isinstance(exc, dist.DistError) and not (isinstance(exc, RuntimeError) and "gloo" in text):
        return None
    detail = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
    return f"{LOST}: {detail.rsplit('] ', 1)[-1].strip()}"


def rank_failed(exc: BaseException, dist: Dist | None) -> int:
    """How a rank ends on ``exc``: bad input (``UserError``, exit 2), the machine's limit (``MachineLimit``, 1)
    or a failed collective (1) is written to torchelastic's error file as one line (``record_failure``),
    printed too unless ``train --nproc`` launched the rank (it prints the first failure, once), and the rank
    leaves at once once it joined a process group (``leave``; before that, the code is returned). Any other
    exception is a bug: re-raised, with its traceback."""
    lost = collective_failure(exc)
    if lost is None and not isinstance(exc, (UserError, MachineLimit)):
        raise exc
    code = 2 if isinstance(exc, UserError) else 1
    line = record_failure(lost or str(exc))
    if not os.environ.get(LAUNCHED):
        print(f"mnist-bench: error: {line}", file=sys.stderr)
    if dist is None:
        return code
    leave(code)


def record_failure(message: str) -> str:
    """This rank's one-line failure, ``"rank R: message"``, also written to torchelastic's error file
    (``TORCHELASTIC_ERROR_FILE``, set by torchrun for each rank), where ``torchrun``'s summary and the
    launcher (``launch.py``) read which rank failed and why."""
    line = f"rank {os.environ.get('RANK', '?')}: {message}"
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"message": line, "timestamp": int(time.time())}, fh)
    return line
