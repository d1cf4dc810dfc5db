"""The names that identify things in a run folder: a case's key (phase, model, device, variant, batch
size), a case's display name from its pytest node id, and the environment keys a table's header needs.
"""

from __future__ import annotations

import math
from typing import Any

KEYS = ("phase", "model", "device", "variant", "batch_size")
Key = tuple[str, str, str, str, int]

# The environment the tables' header needs, from machine.json or else the rows (older runs lack some).
ENV_KEYS = ("torch", "cuda", "cudnn", "gpu", "cpu", "cpu_count", "torch_threads", "git_commit", "cpu_vendor",
            "cpu_capability", "cpu_isa", "bf16_native", "onednn_max_isa", "machine_kind", "gpu_capability")


def case_key(row: dict[str, Any]) -> Key:
    """A row's key; training rows carry their training batch (32)."""
    batch = row.get("batch_size")
    batch = -1 if batch is None or (isinstance(batch, float) and math.isnan(batch)) else int(batch)
    return (str(row["phase"]), str(row["model"]), str(row["device"]), str(row["variant"]), batch)


def case_name(node_id: str) -> str:
    """``bench/test_train.py::test_train[v2-cpu-bf16]`` → ``train v2-cpu-bf16``."""
    if "::" not in node_id:
        return node_id
    name = node_id.split("::", 1)[1]
    test, _, params = name.partition("[")
    return f"{test.removeprefix('test_').replace('_', ' ')} {params.rstrip(']')}".strip()
