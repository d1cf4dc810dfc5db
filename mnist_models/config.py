"""RunConfig: every choice a training run makes, frozen, built once and logged whole.

The CLI and the benchmarks build one ``RunConfig`` and pass it unchanged to the engine;
``dataclasses.asdict(cfg)`` goes into every result row. Each field carries its own help, choices
and unit (``dataclasses.field(metadata=...)``), from which the command line's flags are generated
(``cli/flags.py``), so a new setting is added here once. Protocols are named bundles of defaults
(``notebook`` is the seed notebook's per-model settings); explicit values override them. "seed" means
the RNG seed only: the notebook's protocol and loader were once spelled ``seed``, and that spelling still
works, with one deprecation line (``DEPRECATED``).

This module imports no torch: the time-to-accuracy worker builds its config before the import
that its start-up clock measures.

    >>> cfg = RunConfig.from_protocol("notebook", model="v1")
    >>> cfg.lr, cfg.batch_size, cfg.epochs
    (0.01, 32, 3)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import UserError
from .models import MODELS, check_name

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")  # the first three are host.device.PRECISIONS' rows
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
LOADERS = ("notebook", "fast")
BACKENDS = ("auto", "gloo", "nccl")  # torch.distributed's, for data-parallel runs (auto: NCCL on CUDA, else gloo)
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "onecycle")
AUGMENTATIONS = ("none", "affine", "elastic")  # their ranges: data/augment.py
INVERT_CHOICES = ("auto", "yes", "no")  # predict --invert: data/images.py
PROTOCOLS = ("notebook",)
# Old spellings still accepted, each with one deprecation line: (field, old value) → new value.
DEPRECATED = {("loader", "seed"): "notebook", ("protocol", "seed"): "notebook"}
MAX_BATCH_SIZE = 60_000  # MNIST's training images
# The default policy, declared here once: a command's run that no flag and no protocol pins (train, tta,
# speedup's fast path, machine's probe) gets the precision and memory format measured fastest for it here,
# decided once per run at its entry (train/runtime.resolve). RunConfig's own field defaults stay the notebook's
# (fp32; memory format auto, which the notebook loader makes NCHW without measuring), as does --protocol
# notebook, so a RunConfig built in code measures nothing unless it asks to.
MEASURED_DEFAULTS: dict[str, Any] = {"precision": "auto", "channels_last": None}


class ConfigError(UserError, ValueError):
    """A setting is invalid. The message is one line naming the setting and what is allowed."""


def deprecation(name: str, old: str, new: str) -> None:
    """Say once per process (a ``FutureWarning``, which Python shows by default and the CLI prints as one
    line) that ``old`` is an old spelling of ``new``."""
    flag = "--" + name.replace("_", "-")
    warnings.warn(f'{flag} {old} is now spelled {flag} {new} ("seed" means the RNG seed only); the old spelling '
                  "still works", FutureWarning, stacklevel=3)


def _positive_int(value: Any) -> bool:
    """An int (not a bool, not a float) greater than zero."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def setting(default: Any, help: str, choices: tuple[str, ...] | None = None, unit: str | None = None,
            flag: str | None = None) -> Any:
    """A RunConfig field with its metadata: ``help`` (one phrase), ``choices``, ``unit`` and the CLI
    ``flag`` when it is not ``--<field-name>``."""
    return field(default=default, metadata={"help": help, "choices": choices, "unit": unit, "flag": flag})


@dataclass(frozen=True)
class RunConfig:
    """One training run, fully specified.

    Defaults are the seed notebook's settings for V0/V2; ``from_protocol`` applies per-model ones.
    """

    model: str = setting("v2", "a registered name (see `mnist-bench models`), or your own: path/to/file.py:Name or "
                               "package.module:Name (an nn.Module subclass or a function returning one)")
    model_args: tuple[str, ...] = setting((), "a keyword argument for the model's constructor, key=value (a Python "
                                              "literal, else text); repeat for more", flag="--model-arg")
    device: str = setting("auto", "where to run; auto picks cuda when available", DEVICES)
    precision: str = setting("fp32", "fp32, bf16 (autocast), fp16 (autocast + GradScaler, CUDA only) or auto: the "
                                     "faster of fp32 and bf16 for this model here, measured", PRECISIONS)
    compile: str = setting("none", "torch.compile mode", COMPILE_MODES)
    # None = auto: NCHW with the notebook loader (the notebook's way), and with the fast loader whichever
    # format the runtime measures faster for this model, device, precision and batch size.
    channels_last: bool | None = setting(None, "NHWC (--channels-last) or NCHW (--no-channels-last); default "
                                               "auto: NCHW with the notebook loader, the measured faster one with the "
                                               "fast loader")
    cuda_graph: bool = setting(False, "capture the whole training step in one CUDA graph (CUDA, fp32/bf16)")
    loader: str = setting("notebook", "notebook (torchvision DataLoader, the notebook's way) or fast (whole split on "
                                      "the device)", LOADERS)
    batch_size: int = setting(32, "training batch size", unit="images per step")
    eval_batch_size: int | None = setting(None, "images per evaluation batch (None: the training batch size, the "
                                                "notebook's way)")
    lr: float = setting(0.1, "learning rate (the one-cycle schedule's peak)")
    optimizer: str = setting("sgd", "sgd (plain, no momentum) or adam (fused)", OPTIMIZERS)
    lr_schedule: str = setting("constant", "learning-rate schedule over the run's steps", LR_SCHEDULES)
    label_smoothing: float = setting(0.0, "cross-entropy label smoothing of the training loss, in [0, 1)")
    augment: str = setting("none", "training-data augmentation per image: none, affine (rotation ±10°, shift ±10%, "
                                   "scale 0.9–1.1) or elastic (affine plus an elastic distortion); seeded by --seed",
                           AUGMENTATIONS)
    epochs: int = setting(3, "passes over the 60,000 training images (the budget when a target is set)")
    seed: int = setting(42, "torch.manual_seed before the model is built")
    # Runtime.from_config applies it (host/device.py make_deterministic): the one place.
    deterministic: bool = setting(False, "deterministic kernels and every RNG seeded: two runs on one machine give "
                                         "bit-identical metrics and weights (slower; eager only; auto precision and "
                                         "memory format become fp32 and NCHW, not measured)")
    dataset: str = setting("mnist", "the data set: mnist or fashion-mnist (each verified by SHA-256, available "
                                    "offline; `mnist-bench data --dataset NAME` prepares it)")
    data_root: str | None = setting(None, "MNIST root (default: $MNIST_BENCH_DATA, else ~/.cache/mnist-bench)",
                                    flag="--data-root")
    # Time to accuracy: evaluate every eval_every steps from eval_from of the budget on, stop at the
    # first evaluation at or above target_pct.
    target_pct: float | None = setting(None, "stop at the first evaluation at or above this test accuracy",
                                       unit="percent", flag="--target")
    eval_every: int | None = setting(None, "training steps between evaluations on the full test set (None: once "
                                           "an epoch)")
    eval_from: float = setting(0.0, "fraction of the budget before the first evaluation, in [0, 1)")
    # Inference only (the benchmark suite's variants): cast weights and inputs to bfloat16 (no
    # autocast); let inductor fold the weights into constants (needs compile mode default).
    weights_bf16: bool = setting(False, "inference: bfloat16 weights and inputs")
    freeze: bool = setting(False, "inference: inductor freezing (weights folded into constants)")
    protocol: str | None = setting(None, "apply a protocol's defaults first: notebook (the seed notebook's settings)",
                                   PROTOCOLS)

    def __post_init__(self) -> None:
        for name in ("loader", "protocol"):  # an old spelling: renamed, said once (``deprecation``)
            new = DEPRECATED.get((name, getattr(self, name)))
            if new is not None:
                deprecation(name, getattr(self, name), new)
                object.__setattr__(self, name, new)
        for name, allowed in (("device", DEVICES), ("precision", PRECISIONS), ("compile", COMPILE_MODES),
                              ("loader", LOADERS), ("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES),
                              ("augment", AUGMENTATIONS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"unknown {name.replace('_', ' ')} {value!r}; choose one of: {', '.join(allowed)}")
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
        if not _positive_int(self.batch_size):
            raise ConfigError(f"batch size must be a positive integer, got {self.batch_size!r}")
        if self.batch_size > MAX_BATCH_SIZE:  # a larger batch than the training set cannot be filled
            raise ConfigError(f"batch size {self.batch_size:,} is more than the {MAX_BATCH_SIZE:,} training images; "
                              f"fix: pass --batch-size from 1 to {MAX_BATCH_SIZE:,}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not -2**63 <= self.seed < 2**64:
            raise ConfigError(f"seed must be an integer that fits torch.manual_seed's 64 bits, got {self.seed!r}; "
                              "fix: pick a seed from 0 to 2**64 - 1")
        if self.eval_batch_size is not None and not _positive_int(self.eval_batch_size):
            raise ConfigError(f"evaluation batch size must be a positive integer, got {self.eval_batch_size!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"epochs must be an integer ≥ 1, got {self.epochs!r}")
        if self.channels_last not in (True, False, None):
            raise ConfigError(f"channels_last must be true, false or None (auto), got {self.channels_last!r}")
        self._check_combinations()
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not 0 < self.lr < float("inf"):
            raise ConfigError(f"learning rate must be a finite number > 0, got {self.lr!r}")
        if self.target_pct is not None and not 0 < self.target_pct <= 100:
            raise ConfigError(f"--target is a test accuracy in percent (0, 100], got {self.target_pct:g}")
        if self.eval_every is not None and not _positive_int(self.eval_every):
            raise ConfigError(f"--eval-every must be ≥ 1, got {self.eval_every}")
        if not 0 <= self.eval_from < 1:
            raise ConfigError(f"--eval-from is a fraction of the budget in [0, 1), got {self.eval_from:g}")
        if isinstance(self.model_args, list):  # from JSON (a checkpoint's or a worker's config): the same pairs
            object.__setattr__(self, "model_args", tuple(self.model_args))
        try:
            check_name(self.model)  # a built-in or installed name, known without torch
            if self.model_args or self.model not in MODELS:
                # Your own model, or a built-in with arguments: built and given one batch, once per process. Lazy:
                # that imports torch, which a command refusing a bad flag, or the time-to-accuracy worker, waits for.
                from .models import check_model

                check_model(self.model, self.model_args)
        except UserError as exc:
            raise ConfigError(str(exc)) from None

    def _check_combinations(self) -> None:
        if self.cuda_graph and self.precision == "fp16":
            raise ConfigError("cuda_graph cannot capture fp16's GradScaler (it syncs with the host); "
                              "fix: use --precision bf16 or fp32 with --cuda-graph")
        if self.cuda_graph and self.compile != "none":
            raise ConfigError("cuda_graph and torch.compile both capture the step; fix: pick one "
                              "(compile mode reduce-overhead uses CUDA graphs itself)")
        if self.deterministic and self.compile != "none":
            raise ConfigError(f"--deterministic runs eager kernels only, not --compile {self.compile}: "
                              "torch.compile can pick its kernels by timing them (autotuning), which may differ "
                              "from run to run; fix: drop --compile (or --deterministic)")
        if self.freeze and self.compile != "default":
            raise ConfigError("inductor freezing is applied with compile mode 'default' only")

    @classmethod
    def from_protocol(cls, protocol: str | None = None, **overrides: Any) -> RunConfig:
        """Build a config from a protocol's defaults, then ``overrides`` (None values ignored)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        base: dict[str, Any] = {}
        if protocol is not None:
            if ("protocol", protocol) in DEPRECATED:
                deprecation("protocol", protocol, DEPRECATED["protocol", protocol])
                protocol = DEPRECATED["protocol", protocol]
            if protocol not in PROTOCOLS:
                raise ConfigError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
            base = notebook_protocol(given.get("model", cls.model))
        return cls(**{**base, **given, "protocol": protocol})

    def with_(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def check_global_batch(batch_size: int, world: int) -> None:
    """A data-parallel run's global batch (``world`` × the per-process ``batch_size``) must fit in the training
    images, else no global batch can be filled and no step taken."""
    if batch_size * world > MAX_BATCH_SIZE:
        raise ConfigError(f"global batch {batch_size * world:,} ({world} processes × batch size {batch_size:,}) is "
                          f"more than the {MAX_BATCH_SIZE:,} training images; fix: pass --batch-size from 1 to "
                          f"{MAX_BATCH_SIZE // world:,}")


def check_distributed_config(cfg: RunConfig, world: int = 1) -> None:
    """What data-parallel training (``--nproc``, ``--ddp``) cannot run: the notebook loader (not sharded),
    CUDA graphs (a graph cannot hold DDP's gradient hooks) and, over ``world`` processes, a global batch larger
    than the training set (``check_global_batch``)."""
    check_global_batch(cfg.batch_size, world)
    if cfg.loader == "notebook":
        raise ConfigError("data-parallel training shards the fast loader; fix: drop --loader notebook "
                          "(and --protocol notebook, which sets it), or drop --nproc/--ddp")
    if cfg.cuda_graph:
        raise ConfigError("--cuda-graph cannot capture DDP's gradient all-reduce; fix: drop --cuda-graph with "
                          "--nproc/--ddp")


# The seed notebook's settings: batch 32, plain SGD, 3 epochs, torch.manual_seed(42), the
# torchvision DataLoader, no normalisation; lr 0.1 for V0 and V2 but 0.01 for V1.
NOTEBOOK_LR = {"v0": 0.1, "v1": 0.01, "v2": 0.1}


def notebook_protocol(model: str) -> dict[str, Any]:
    """The seed notebook's settings for ``model`` (models it did not have get lr 0.1)."""
    return {
        "batch_size": 32,
        "eval_batch_size": None,
        "lr": NOTEBOOK_LR.get(model, 0.1),
        "optimizer": "sgd",
        "label_smoothing": 0.0,
        "epochs": 3,
        "seed": 42,
        "loader": "notebook",
        "precision": "fp32",
        "compile": "none",
        "channels_last": None,
        "cuda_graph": False,
    }


def protocol_notes(name: str) -> str:
    """How the protocols change a field's default, for its help: ``"0.01 for v1 under --protocol notebook"``
    (empty when no protocol changes it)."""
    if name == "lr":
        return ", ".join(f"{lr:g} for {model}" for model, lr in NOTEBOOK_LR.items() if lr != RunConfig.lr) + \
            " under --protocol notebook"
    if name in MEASURED_DEFAULTS and MEASURED_DEFAULTS[name] is not None:  # a command's default the protocol fixes
        return f"{notebook_protocol(RunConfig.model)[name]} under --protocol notebook"
    return ""
