"""Variant table and skip logic of the benchmark suite."""

from __future__ import annotations

import pytest

from mnist_models.config import ConfigError, RunConfig
from mnist_models.variants import BASELINE, VARIANTS, get_variant, list_variants

ISSUE_VARIANTS = {"eager", "channels_last", "bf16", "bf16+channels_last", "fp16", "compile", "compile-max-autotune",
                  "compile-reduce-overhead", "cudagraph", "notebook-loader", "compile-freeze-bf16", "auto",
                  "augment"}


def test_every_named_variant_is_registered_and_eager_is_the_baseline():
    assert set(list_variants()) == ISSUE_VARIANTS
    assert BASELINE == "eager" and VARIANTS["eager"].changes == ()


@pytest.mark.parametrize("name", sorted(ISSUE_VARIANTS))
def test_variant_applies_its_changes_and_nothing_else(name):
    base = RunConfig(model="v2", device="cpu", loader="fast")
    variant = VARIANTS[name]
    cfg = variant.apply(base)
    for field, value in variant.changes:
        assert getattr(cfg, field) == value
    unchanged = {k for k in base.__dataclass_fields__} - {k for k, _ in variant.changes}
    assert all(getattr(cfg, k) == getattr(base, k) for k in unchanged)


def test_cpu_skips_name_a_reason():
    skipped = {name: v.skip_reason("cpu") for name, v in VARIANTS.items() if v.skip_reason("cpu") is not None}
    assert set(skipped) == {"fp16", "compile-reduce-overhead", "cudagraph", "compile-freeze-bf16"}
    for name, reason in skipped.items():  # one line naming the variant and why
        assert reason.startswith(name) and "\n" not in reason and len(reason) > len(name) + 10
    assert "CUDA only" in skipped["fp16"] and "inference only" in skipped["compile-freeze-bf16"]
    assert all(VARIANTS[name].skip_reason("cuda") is None for name in ("fp16", "compile-reduce-overhead", "cudagraph"))


def test_freezing_variant_skips_training_only():
    variant = VARIANTS["compile-freeze-bf16"]
    assert "inference only" in variant.skip_reason("cpu", "train")
    assert variant.skip_reason("cpu", "inference") is None
    assert dict(variant.changes)["weights_bf16"] and dict(variant.changes)["freeze"]


@pytest.mark.parametrize("name", ["notebook-loader", "augment"])
def test_loader_variants_skip_inference_only(name):
    assert VARIANTS[name].skip_reason("cpu", "train") is None
    assert "loader" in VARIANTS[name].skip_reason("cpu", "inference")


def test_only_the_loader_variants_skip_inference_and_only_freezing_skips_training():
    assert [n for n, v in VARIANTS.items() if v.skip_reason("cuda", "inference")] == ["notebook-loader", "augment"]
    assert [n for n, v in VARIANTS.items() if v.skip_reason("cuda", "train")] == ["compile-freeze-bf16"]


def test_cuda_graph_rejects_fp16_and_compile():
    with pytest.raises(ConfigError, match="GradScaler"):
        RunConfig(cuda_graph=True, precision="fp16")
    with pytest.raises(ConfigError, match="compile"):
        RunConfig(cuda_graph=True, compile="default")


def test_unknown_variant_lists_known_ones():
    with pytest.raises(KeyError, match="bf16"):
        get_variant("turbo")
