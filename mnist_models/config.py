"""RunConfig: every choice a training run makes, frozen, built once and logged whole.

The CLI and the benchmarks build one ``RunConfig`` and pass it unchanged to the engine;
``dataclasses.asdict(cfg)`` goes into every result row. Protocols are named bundles of
defaults (``seed`` is the seed notebook's per-model settings); explicit values override them.

    >>> cfg = RunConfig.from_protocol("seed", model="v1")
    >>> cfg.lr, cfg.batch_size, cfg.epochs
    (0.01, 32, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
LOADERS = ("seed", "fast")
OPTIMIZERS = ("sgd", "adam")
PROTOCOLS = ("seed",)


class ConfigError(ValueError):
    """A setting is invalid. The message is one line naming the setting and what is allowed."""


def _positive_int(value: Any) -> bool:
    """An int (not a bool, not a float) greater than zero."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class RunConfig:
    """One training run, fully specified.

    Defaults are the seed notebook's settings for V0/V2; ``from_protocol`` applies per-model ones.
    """

    model: str = "v2"  # registry name, see `mnist-bench models`
    device: str = "auto"  # auto | cpu | cuda; auto picks cuda when available
    # fp32 | bf16 (autocast) | fp16 (autocast + GradScaler, CUDA only) | auto: the faster of fp32 and
    # bf16 for this model on this machine, measured (bf16 only when clearly faster; see runtime)
    precision: str = "fp32"
    compile: str = "none"  # none | default | reduce-overhead | max-autotune (torch.compile mode)
    # NHWC memory format for the model and its 4-D inputs; None = auto: NCHW with the seed
    # loader (the notebook's way), and with the fast loader whichever format the runtime
    # measures faster for this model, device, precision and batch size.
    channels_last: bool | None = None
    cuda_graph: bool = False  # capture the whole training step in one CUDA graph (CUDA, fp32/bf16)
    loader: str = "seed"  # seed (torchvision DataLoader) | fast (whole split on the device)
    batch_size: int = 32  # images per training step
    eval_batch_size: int | None = None  # images per evaluation batch; None = batch_size (the notebook's way)
    lr: float = 0.1  # learning rate
    optimizer: str = "sgd"  # sgd (plain, no momentum) | adam
    label_smoothing: float = 0.0  # training loss only: cross-entropy label smoothing in [0, 1)
    epochs: int = 3  # passes over the 60,000 training images
    seed: int = 42  # torch.manual_seed before the model is built
    data_root: str | None = None  # None: $MNIST_BENCH_DATA or the per-user cache
    protocol: str | None = None  # the protocol whose defaults were applied, for the record

    def __post_init__(self) -> None:
        for name, allowed in (("device", DEVICES), ("precision", PRECISIONS),
                              ("compile", COMPILE_MODES), ("loader", LOADERS),
                              ("optimizer", OPTIMIZERS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
        if not _positive_int(self.batch_size):
            raise ConfigError(f"batch size must be a positive integer, got {self.batch_size!r}")
        if self.eval_batch_size is not None and not _positive_int(self.eval_batch_size):
            raise ConfigError(f"evaluation batch size must be a positive integer, got {self.eval_batch_size!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"epochs must be an integer ≥ 1, got {self.epochs!r}")
        if self.channels_last not in (True, False, None):
            raise ConfigError(f"channels_last must be true, false or None (auto), got {self.channels_last!r}")
        if self.cuda_graph and self.precision == "fp16":
            raise ConfigError("cuda_graph cannot capture fp16's GradScaler (it syncs with the host); "
                              "fix: use --precision bf16 or fp32 with --cuda-graph")
        if self.cuda_graph and self.compile != "none":
            raise ConfigError("cuda_graph and torch.compile both capture the step; fix: pick one "
                              "(compile mode reduce-overhead uses CUDA graphs itself)")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {self.lr!r}")
        # Model names are checked against the registry, which lives in models.py.
        from .models import MODELS, list_models

        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; known models: {', '.join(list_models())}")

    @classmethod
    def from_protocol(cls, protocol: str | None = None, **overrides: Any) -> RunConfig:
        """Build a config from a protocol's defaults, then ``overrides`` (None values ignored)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        base: dict[str, Any] = {}
        if protocol is not None:
            if protocol not in PROTOCOLS:
                raise ConfigError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
            base = seed_protocol(given.get("model", cls.model))
        return cls(**{**base, **given, "protocol": protocol})

    def with_(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


# The seed notebook's settings: batch 32, plain SGD, 3 epochs, torch.manual_seed(42), the
# torchvision DataLoader, no normalisation; lr 0.1 for V0 and V2 but 0.01 for V1.
SEED_LR = {"v0": 0.1, "v1": 0.01, "v2": 0.1}


def seed_protocol(model: str) -> dict[str, Any]:
    """The seed notebook's settings for ``model`` (models it did not have get lr 0.1)."""
    return {
        "batch_size": 32,
        "eval_batch_size": None,
        "lr": SEED_LR.get(model, 0.1),
        "optimizer": "sgd",
        "label_smoothing": 0.0,
        "epochs": 3,
        "seed": 42,
        "loader": "seed",
        "precision": "fp32",
        "compile": "none",
        "channels_last": None,
        "cuda_graph": False,
    }
