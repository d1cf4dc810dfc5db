"""Checkpoints: a trained model's weights with the config that trained it, its final metrics and the
versions that made it, in one file written atomically and read back safely.

``save_checkpoint(path, model, cfg, metrics)`` writes a ``torch.save`` dict (``FORMAT``, version
``FORMAT_VERSION``) through ``results.store.atomic_write_bytes``:

- ``format``, ``format_version``, ``model`` (the spec: a registered name or your own ``file.py:Name``),
  ``created_utc``, ``model_source`` (kind, qualified name, file path and SHA-256: ``models.spec``);
- ``state_dict``: the weights, on the CPU and contiguous; a ``torch.compile``'d model is saved as its
  original module (no ``_orig_mod.`` prefix), so any checkpoint loads into a plain model;
- ``config`` (the RunConfig as a plain dict), ``metrics`` (e.g. the last epoch's row), ``versions``
  (torch, python, mnist-bench, the git commit);
- ``weights_sha256``: SHA-256 over every tensor (name, dtype, shape, bytes, in key order), and
  ``metadata_sha256``: over the canonical JSON of model, config, metrics, versions and creation time.

``load_checkpoint(path, device)`` reads it with ``torch.load(weights_only=True)`` only (no arbitrary
pickled objects are ever executed), checks the format, both hashes, the model (a file of your own
unchanged since, unless allowed) and the weights against that model's shapes, then rebuilds the model
and loads the weights strictly. Every failure is a ``CheckpointError``: one line naming the file, the
problem and the fix. The path checks that need no torch (``check_checkpoint``, ``check_save_path``) are
in ``checkpoint_path.py``, so the command line refuses a wrong path before it imports torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import warnings
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ..host.device import resolve_device
from ..models import ModelError, UnknownModelError, check_model, get_model, list_models, parse_model_args
from ..results.provenance import environment, utc_now
from ..results.store import DiskFullError, atomic_write_bytes
from .checkpoint_path import SAVE_HINT, CheckpointError, check_checkpoint

FORMAT = "mnist-bench-checkpoint"
FORMAT_VERSION = 2  # 2 added model_source (your own models); version 1 files are read as before
READABLE_VERSIONS = (1, 2)
PACKAGE = "mnist-bench"
METADATA_KEYS = ("model", "config", "metrics", "versions", "created_utc", "model_source")
METADATA_KEYS_V1 = METADATA_KEYS[:5]


class LoadedCheckpoint(NamedTuple):
    """What ``load_checkpoint`` returns (unpacks as ``model, config, metrics``)."""

    model: nn.Module
    config: dict[str, Any]
    metrics: dict[str, Any]


def original_module(model: nn.Module) -> nn.Module:
    """The module a ``torch.compile`` wrapper holds (the model itself when it is not compiled)."""
    while hasattr(model, "_orig_mod"):
        model = model._orig_mod
    return model


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in key order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def metadata_digest(payload: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the checkpoint's metadata (``METADATA_KEYS``)."""
    keys = METADATA_KEYS_V1 if payload.get("format_version") == 1 else METADATA_KEYS
    text = json.dumps({key: payload.get(key) for key in keys}, sort_keys=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def plain(value: Any) -> Any:
    """``value`` as builtin JSON-like data (str subclasses such as torch's version → str, tuples → lists),
    which ``torch.load(weights_only=True)`` reads back; anything else raises CheckpointError."""
    if value is None or isinstance(value, bool):
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    raise CheckpointError(f"a checkpoint holds plain data only, got {type(value).__name__} ({value!r:.60})")


def _versions() -> dict[str, Any]:
    try:
        package = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        package = None
    return {"torch": torch.__version__, "python": platform.python_version(), PACKAGE: package,
            "git_commit": environment()["git_commit"]}


def _expected_shapes(name: str, kwargs: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The state-dict keys and shapes of a model, built on the meta device (no memory, no RNG)."""
    with torch.device("meta"):
        return {key: tuple(t.shape) for key, t in get_model(name, **kwargs).state_dict().items()}


def _misfit(name: str, state: dict[str, Any], kwargs: dict[str, Any]) -> str:
    """Why ``state`` does not fit model ``name`` built with ``kwargs`` ("" when it does)."""
    expected = _expected_shapes(name, kwargs)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {expected[k]}" for k in expected
             if k in state and tuple(state[k].shape) != expected[k]]
    problems = [f"{label}: {', '.join(items[:3])}{' …' if len(items) > 3 else ''}"
                for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", wrong)) if items]
    return "; ".join(problems)


def checkpoint_bytes(model: nn.Module, cfg: Any, metrics: dict[str, Any]) -> bytes:
    """The checkpoint file's bytes (see the module docstring for the format)."""
    config = asdict(cfg) if is_dataclass(cfg) and not isinstance(cfg, type) else dict(cfg)
    name, model_args = config.get("model"), tuple(config.get("model_args") or ())
    source = check_model(name, model_args)
    state = {key: t.detach().cpu().contiguous() for key, t in original_module(model).state_dict().items()}
    misfit = _misfit(name, state, parse_model_args(model_args))
    if misfit:
        raise CheckpointError(f"the weights to save do not fit model {name!r} named by the config ({misfit}); "
                              "fix: save the model that the config trained")
    payload: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": name,
                               "config": plain(config), "metrics": plain(dict(metrics)), "versions": plain(_versions()),
                               "created_utc": utc_now(), "model_source": plain(asdict(source)), "state_dict": state}
    payload["weights_sha256"] = weights_digest(state)
    payload["metadata_sha256"] = metadata_digest(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, cfg: Any, metrics: dict[str, Any]) -> Path:
    """Write the checkpoint of ``model`` (trained as ``cfg`` says, ending with ``metrics``) to ``path``
    atomically: a reader sees the previous file or the whole new one (the bytes are made in memory by
    ``torch.save`` first). A full disk is ``DiskFullError`` (one line naming the file, exit 1)."""
    data = checkpoint_bytes(model, cfg, metrics)
    try:
        return atomic_write_bytes(path, data)
    except DiskFullError:
        raise
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path}: cannot be written ({exc.strerror or exc}); "
                              "fix: pass --save a path in a writable folder") from None


def _torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)``, its failures as one line."""
    try:
        with warnings.catch_warnings():  # torch warns about a pickle protocol it then refuses: the one line says it
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to parse untrusted bytes is the same user error
        text = str(exc)
        if "Weights only load failed" in text and "Unsupported global" in text:
            raise CheckpointError(f"checkpoint {path}: holds Python objects beyond tensors and plain data, refused "
                                  f"(checkpoints load with torch.load(weights_only=True)); {SAVE_HINT}") from None
        raise CheckpointError(f"checkpoint {path}: not a readable checkpoint (truncated, corrupted or another kind "
                              f"of file); {SAVE_HINT}") from None


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The verified checkpoint dict: the file exists, is this format, and both hashes match."""
    path = check_checkpoint(path)
    payload = _torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: not an mnist-bench checkpoint (no {FORMAT!r} format tag); "
                              f"{SAVE_HINT}")
    if payload.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(f"checkpoint {path}: format version {payload.get('format_version')!r}, this "
                              f"mnist-bench reads version {FORMAT_VERSION}; fix: use the mnist-bench that wrote it, "
                              "or train again with --save")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(t, torch.Tensor)
                                              for k, t in state.items()):
        raise CheckpointError(f"checkpoint {path}: has no weights (state_dict); {SAVE_HINT}")
    try:
        intact = weights_digest(state) == payload.get("weights_sha256") and \
            metadata_digest(payload) == payload.get("metadata_sha256")
    except (TypeError, ValueError, RuntimeError):  # metadata that is not plain JSON data, odd tensors
        intact = False
    if not intact:
        raise CheckpointError(f"checkpoint {path}: SHA-256 mismatch, the file is corrupted; fix: copy it again "
                              "or train again with --save")
    return payload


def _spec(path: Path, payload: dict[str, Any], allow_changed_source: bool) -> str:
    """The spec that rebuilds the checkpoint's model here: a file of your own by the absolute path it was
    trained from, refused when its bytes changed since (unless ``allow_changed_source``)."""
    name, source = payload.get("model"), payload.get("model_source") or {}
    if source.get("kind") != "file":
        return name
    file = Path(source.get("path") or "")
    if not file.is_file():
        raise CheckpointError(f"checkpoint {path}: its model's file {file} is gone; fix: restore it (the model "
                              f"was {name})")
    if source.get("sha256") != hashlib.sha256(file.read_bytes()).hexdigest() and not allow_changed_source:
        raise CheckpointError(f"checkpoint {path}: its model's file {file} changed since it was trained (SHA-256 "
                              f"{str(source.get('sha256'))[:12]}… then); fix: restore the file, or pass "
                              "--allow-changed-source if the change keeps the weights' meaning")
    return f"{file}:{name.rpartition(':')[2]}"


def _build(path: Path, payload: dict[str, Any], allow_changed_source: bool = False) -> nn.Module:
    """The model the checkpoint names (built-in or your own, with its ``--model-arg`` pairs), with its
    weights loaded strictly."""
    name = _spec(path, payload, allow_changed_source)
    model_args = tuple((payload.get("config") or {}).get("model_args") or ())
    kwargs = parse_model_args(model_args)
    try:
        check_model(name, model_args)
    except UnknownModelError:
        raise CheckpointError(f"checkpoint {path}: model {name!r} is not in this mnist-bench's registry (known: "
                              f"{', '.join(list_models())}); fix: use the mnist-bench that wrote it") from None
    except ModelError as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}") from None
    misfit = _misfit(name, payload["state_dict"], kwargs)
    if misfit:
        raise CheckpointError(f"checkpoint {path}: its weights do not fit model {name!r} ({misfit}); "
                              f"{SAVE_HINT}")
    with torch.random.fork_rng(devices=[]):  # building initialises weights: leave the caller's RNG alone
        model = get_model(name, **kwargs)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: its weights do not load into model {name!r} "
                              f"({str(exc).splitlines()[0]}); {SAVE_HINT}") from None
    return model


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu",
                    allow_changed_source: bool = False) -> LoadedCheckpoint:
    """The model (on ``device``, in eval mode), its config dict and its metrics, from a verified checkpoint.
    ``device`` may be ``"auto"`` (cuda when available). A model of your own is rebuilt from the file it was
    trained from, refused if that file changed since unless ``allow_changed_source``."""
    payload = read_checkpoint(path)
    model = _build(Path(path), payload, allow_changed_source)
    target = resolve_device(device) if isinstance(device, str) else device
    return LoadedCheckpoint(model.to(target).eval(), dict(payload["config"]), dict(payload["metrics"]))
