"""A model spec → a usable model: the built-ins, an installed package's models, and your own.

Wherever a model name goes (``train --model``, the suite's ``--bench-models``, ``tta``, ``profile``,
``speedup``, a checkpoint), it may be:

- a **registered name**: a built-in (``registry.MODELS``), or a model an installed package declares
  under the entry-point group ``mnist_bench.models`` (``name = "package.module:Name"``);
- **a file of your own**: ``path/to/file.py:Name`` (relative to the current directory);
- **a module**: ``package.module:Name``.

``Name`` is an ``nn.Module`` subclass or a function returning one; keyword arguments come from
``--model-arg key=value`` (``parse_model_args``: Python literals, else text). ``check_model`` builds it
once on the CPU and runs one ``(2, 1, 28, 28)`` batch through it before anything is trained or written:
every way a model cannot be used is a ``ModelError``, one line naming the spec, the problem and the fix.
``model_source`` says where a model came from (kind, qualified name, file and its SHA-256), which the
rows, run folders and checkpoints record, so that ``predict`` can refuse a file that changed since.

    >>> check_model("v2").kind
    'built-in'
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .registry import IMAGE_SHAPE, MODELS, NUM_CLASSES, ModelError, check_name, entry_points, is_spec, split_spec


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``kind`` (built-in, entry point, file, module), the class or function's
    qualified name, and for a file or module its path and SHA-256 (of the file's bytes)."""

    spec: str
    kind: str
    qualname: str
    path: str | None = None
    sha256: str | None = None

    def fields(self) -> dict[str, Any]:
        """The columns a row records (``model`` itself is the spec)."""
        return {"model_kind": self.kind, "model_qualname": self.qualname, "model_sha256": self.sha256}


def slug(spec: str) -> str:
    """The spec as a file-name part: a built-in's name itself; ``path/to/net.py:Name`` → ``net-Name``."""
    if not is_spec(spec):
        return spec
    target, _, attr = spec.rpartition(":")
    stem = Path(target).stem if target.endswith(".py") else target.rsplit(".", 1)[-1]
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{stem}-{attr}")


def parse_model_args(pairs: Iterable[str]) -> dict[str, Any]:
    """``["width=64", "act='gelu'", "name=wide"]`` → ``{"width": 64, "act": "gelu", "name": "wide"}``:
    each value a Python literal where it reads as one, else the text."""
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = str(pair).partition("=")
        if not sep or not key.strip().isidentifier():
            raise ModelError(f"--model-arg takes key=value with a Python name as key, got {pair!r}; "
                             "fix: e.g. --model-arg width=64")
        try:
            kwargs[key.strip()] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            kwargs[key.strip()] = text
    return kwargs


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _import_failed(spec: str, where: str, exc: BaseException) -> ModelError:
    return ModelError(f"model {spec}: importing {where} raised {type(exc).__name__}: {exc}; "
                      "fix: make the file import cleanly (run it with python to see the error)")


def _load_file(spec: str, target: str) -> tuple[Any, Path, str]:
    """The module a file defines, imported once per content (a changed file is a new module)."""
    path = Path(target).expanduser()  # checked to exist by check_name
    digest = _sha256(path)
    name = f"mnist_bench_user_{digest[:16]}_{''.join(c if c.isalnum() else '_' for c in path.stem)}"
    if name not in sys.modules:
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ModelError(f"model {spec}: {target} is not a Python file; fix: pass a .py file")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module  # before running it: dataclasses, pickling and torch.compile look it up
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise _import_failed(spec, target, exc) from None
    return sys.modules[name], path.resolve(), digest


def _load_module(spec: str, target: str) -> tuple[Any, Path | None, str | None]:
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and target.startswith(exc.name):
            raise ModelError(f"model {spec}: no module {exc.name!r} here; fix: install it, or pass "
                             "path/to/file.py:Name for a file") from None
        raise _import_failed(spec, target, exc) from None
    except Exception as exc:
        raise _import_failed(spec, target, exc) from None
    file = getattr(module, "__file__", None)
    path = Path(file).resolve() if file else None
    return module, path, (_sha256(path) if path and path.is_file() else None)


def _builder(spec: str, module: Any, attr: str, where: str) -> Callable[..., Any]:
    if not hasattr(module, attr):
        defined = sorted(n for n, v in vars(module).items() if not n.startswith("_") and
                         (inspect.isfunction(v) or (inspect.isclass(v) and issubclass(v, nn.Module)))
                         and getattr(v, "__module__", None) == module.__name__)
        names = ", ".join(defined) or "no module class or function"
        raise ModelError(f"model {spec}: {where} has no {attr!r} (it defines: {names}); fix: pass one of its "
                         "names after the colon")
    obj = getattr(module, attr)
    if inspect.isclass(obj) and not issubclass(obj, nn.Module):
        raise ModelError(f"model {spec}: {attr} is a class but not an nn.Module; fix: name an nn.Module subclass "
                         "or a function returning one")
    if not callable(obj) or isinstance(obj, nn.Module):
        what = "an nn.Module instance" if isinstance(obj, nn.Module) else f"a {type(obj).__name__}"
        raise ModelError(f"model {spec}: {attr} is {what}, not an nn.Module subclass or a function returning one; "
                         "fix: name the class (or a factory), not an object")
    return obj


@functools.cache
def _resolve(spec: str) -> tuple[Callable[..., Any], ModelSource]:
    if spec in MODELS:
        builder = cls = MODELS[spec].builder()
        if not isinstance(builder, type):
            with torch.device("meta"):  # the class a constructor builds, without memory or the RNG
                cls = type(builder())
        return builder, ModelSource(spec, "built-in", f"{cls.__module__}.{cls.__qualname__}")
    check_name(spec)
    declared = entry_points()
    kind, target_spec = "file", spec
    if spec in declared:
        kind, target_spec = "entry point", declared[spec]
    target, attr, is_file = split_spec(spec, target_spec)
    if is_file and kind == "file":
        module, path, digest = _load_file(spec, target)
    else:
        kind = kind if kind == "entry point" else "module"
        module, path, digest = _load_module(spec, target)
    builder = _builder(spec, module, attr, Path(target).name if is_file else target)
    qualname = f"{getattr(builder, '__module__', target)}.{getattr(builder, '__qualname__', attr)}"
    if kind == "file":  # the module's name is derived from the content; the file's own name says more
        qualname = f"{Path(target).stem}.{getattr(builder, '__qualname__', attr)}"
    return builder, ModelSource(spec, kind, qualname, str(path) if path else None, digest)


def model_source(spec: str) -> ModelSource:
    """Where the model ``spec`` names comes from (raises ``UnknownModelError`` / ``ModelError``)."""
    return _resolve(spec)[1]


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a freshly initialised model from a spec (uses the current torch RNG state); ``kwargs`` go to its
    constructor (e.g. ``hidden_units=16`` for the seed models). A constructor that raises, or returns
    anything but an ``nn.Module``, is a ``ModelError``."""
    builder, _ = _resolve(name)
    try:
        model = builder(**kwargs)
    except Exception as exc:
        args = f" with {', '.join(f'{k}={v!r}' for k, v in kwargs.items())}" if kwargs else ""
        raise ModelError(f"model {name}: building it{args} raised {type(exc).__name__}: {exc}; fix: the "
                         "constructor must work with no arguments, or pass its arguments as --model-arg key=value"
                         ) from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"model {name}: its constructor returned {type(model).__name__}, not an nn.Module; fix: "
                         "return the model")
    return model


def check_model(name: str, model_args: tuple[str, ...] = ()) -> ModelSource:
    """Raise ``UnknownModelError`` / ``ModelError`` unless the model can be used; return its source.

    A built-in with no arguments is known good. Anything else is built once on the CPU (the global RNG
    state left as it was) and given one ``(2, 1, 28, 28)`` batch: its parameters must hold a float tensor
    and its forward must return ``(2, 10)`` float logits. Checked once per process per spec and arguments.
    """
    return _checked(name, tuple(model_args))


@functools.cache
def _checked(name: str, model_args: tuple[str, ...]) -> ModelSource:
    source = model_source(name)
    kwargs = parse_model_args(model_args)
    if source.kind == "built-in" and not kwargs:
        return source
    with torch.random.fork_rng(devices=[]):
        model = get_model(name, **kwargs)
    if not any(p.is_floating_point() for p in model.parameters()):
        raise ModelError(f"model {name}: it has no float parameters (nothing to train); fix: give it layers "
                         "with weights, e.g. nn.Linear")
    batch = torch.zeros(2, *IMAGE_SHAPE)
    try:
        with torch.no_grad():
            out = model.eval()(batch)
    except Exception as exc:
        raise ModelError(f"model {name}: its forward raised {type(exc).__name__} on a (2, 1, 28, 28) batch: "
                         f"{exc}; fix: take (N, 1, 28, 28) images in [0, 1] and return (N, 10) logits") from None
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (2, NUM_CLASSES) or not out.is_floating_point():
        got = f"{out.dtype} {shape}" if isinstance(out, torch.Tensor) else shape
        raise ModelError(f"model {name}: its forward returned {got} for a (2, 1, 28, 28) batch, not (2, 10) float "
                         "logits; fix: end with a layer of 10 outputs (flatten first)")
    return source
