"""Benchmark variants: named changes to a RunConfig, and where each applies.

A variant is a set of ``RunConfig`` field changes on top of the baseline ``eager`` (fp32, NCHW,
no compilation, the fast loader). The benchmark suite parametrises over ``VARIANTS``; a variant
that does not apply on a device is skipped with the reason ``skip_reason`` gives, never dropped.

    >>> cfg = VARIANTS["bf16+channels_last"].apply(RunConfig(model="v2", loader="fast"))
    >>> cfg.precision, cfg.channels_last
    ('bf16', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import RunConfig, deprecation

BASELINE = "eager"


@dataclass(frozen=True)
class Variant:
    """One benchmark variant: config changes, and which devices and phases it applies to."""

    name: str
    description: str
    changes: tuple[tuple[str, Any], ...] = ()
    cuda_only: bool = False
    train_only: bool = False
    inference_only: bool = False

    @property
    def compiles(self) -> bool:
        """Whether the variant runs through ``torch.compile``."""
        return dict(self.changes).get("compile", "none") != "none"

    def apply(self, cfg: RunConfig) -> RunConfig:
        """``cfg`` with this variant's changes (validated by RunConfig)."""
        return cfg.with_(**dict(self.changes))

    def skip_reason(self, device: str, phase: str = "train") -> str | None:
        """Why this variant does not run on ``device`` ("cpu"/"cuda") in ``phase``, or None."""
        if self.cuda_only and device != "cuda":
            return f"{self.name} runs on CUDA only ({self.description})"
        if self.train_only and phase != "train":
            return f"{self.name} changes the training data loader; inference has no loader"
        if self.inference_only and phase == "train":
            return f"{self.name} folds the weights into constants (inductor freezing): inference only"
        return None


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("eager", "fp32, NCHW, eager, fast loader: the baseline"),
    Variant("channels_last", "fp32, NHWC memory format", (("channels_last", True),)),
    Variant("bf16", "bfloat16 autocast", (("precision", "bf16"),)),
    Variant("bf16+channels_last", "bfloat16 autocast, NHWC", (("precision", "bf16"), ("channels_last", True))),
    Variant("fp16", "float16 autocast + GradScaler", (("precision", "fp16"),), cuda_only=True),
    Variant("auto", "precision and memory format chosen by measuring here (train.auto.resolve_auto): what "
            "--precision auto picks", (("precision", "auto"), ("channels_last", None))),
    Variant("compile", "torch.compile, default mode", (("compile", "default"),)),
    Variant("compile-max-autotune", "torch.compile, max-autotune mode", (("compile", "max-autotune"),)),
    Variant("compile-reduce-overhead", "torch.compile, reduce-overhead mode (CUDA graphs)",
            (("compile", "reduce-overhead"),), cuda_only=True),
    Variant("cudagraph", "whole step captured with torch.cuda.graph", (("cuda_graph", True),), cuda_only=True),
    Variant("compile-freeze-bf16", "bf16 weights and inputs, NHWC, torch.compile with inductor freezing",
            (("channels_last", True), ("compile", "default"), ("weights_bf16", True), ("freeze", True)),
            inference_only=True),
    Variant("notebook-loader", "eager fp32 fed by the notebook's torchvision DataLoader", (("loader", "notebook"),),
            train_only=True),
    Variant("augment", "eager fp32, random affine augmentation on the device (--augment affine): its cost per "
            "step, and its accuracy at the case's steps", (("augment", "affine"),), train_only=True),
)}


def list_variants() -> list[str]:
    return list(VARIANTS)


# Old variant names, still accepted with one deprecation line, and read as today's from older run folders.
RENAMED_VARIANTS = {"seed-loader": "notebook-loader"}


def current_name(name: str) -> str:
    """Today's name of a variant (an old one is said once: ``config.deprecation``)."""
    if name in RENAMED_VARIANTS:
        deprecation("variant", name, RENAMED_VARIANTS[name])
        return RENAMED_VARIANTS[name]
    return name


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[current_name(name)]
    except KeyError:
        raise KeyError(f"unknown variant {name!r}; known variants: {', '.join(VARIANTS)}") from None
