"""The model registry and the seed notebook's three models (fast, CPU only)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mnist_models import models
from mnist_models.models import (
    UnknownModelError,
    count_parameters,
    forward_flops,
    get_model,
    list_models,
    model_flops,
    register_model,
)

# Official facts of the seed notebook (hidden_units=10).
SEED_PARAMETERS = {"v0": 7_960, "v1": 7_960, "v2": 7_740}
SEED_FLOPS_PER_IMAGE = {"v0": 15_880, "v1": 15_880, "v2": 2_267_720}


def test_registry_holds_the_seed_models_in_order():
    assert list_models()[:3] == ["v0", "v1", "v2"]


@pytest.mark.parametrize("name", list_models())
def test_forward_and_backward(name):
    """Every registered model maps (N,1,28,28) to finite (N,10) logits and gets finite grads."""
    torch.manual_seed(0)
    model = get_model(name)
    assert isinstance(model, nn.Module)
    for n in (1, 5):
        x = torch.rand(n, 1, 28, 28)
        logits = model(x)
        assert logits.shape == (n, 10)
        assert logits.dtype == torch.float32
        assert torch.isfinite(logits).all()

    model.zero_grad(set_to_none=True)
    y = torch.randint(0, 10, (5,))
    loss = nn.functional.cross_entropy(model(torch.rand(5, 1, 28, 28)), y)
    assert torch.isfinite(loss)
    loss.backward()
    params = list(model.named_parameters())
    assert params, f"{name} has no parameters"
    for pname, p in params:
        assert p.grad is not None, f"{name}.{pname} got no gradient"
        assert p.grad.shape == p.shape
        assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"


def test_get_model_builds_fresh_instances():
    """Two calls give two independent models (no shared parameters)."""
    a, b = get_model("v0"), get_model("v0")
    assert a is not b
    pa, pb = next(a.parameters()), next(b.parameters())
    assert pa.data_ptr() != pb.data_ptr()


@pytest.mark.parametrize("name", sorted(SEED_PARAMETERS))
def test_parameter_count_matches_seed(name):
    assert count_parameters(get_model(name)) == SEED_PARAMETERS[name]


def test_fastnet_is_the_designed_time_to_accuracy_net():
    # conv5x5/2 (800) + BN (64) + conv3x3 (9,216) + BN (64) + Linear(1568,128) (200,832) + Linear(128,10) (1,290)
    model = get_model("fastnet")
    assert count_parameters(model) == 212_266
    # the stride-2 first layer: nothing runs at 28×28 after it
    assert model.features[0](torch.zeros(1, 1, 28, 28)).shape == (1, 32, 14, 14)
    assert forward_flops(model) == 4_330_240


# The stronger architectures (issue 18) and time to accuracy's fastnet2 (issue 19): parameters by hand
# from their layers, forward FLOPs (2 per multiply-add, convolutions and linear layers) by hand from each
# layer's output size.
ARCHITECTURES = {
    # conv1 6·25+6, conv2 16·6·25+16, 400·120+120, 120·84+84, 84·10+10 | 2·(784·150 + 100·2400 + 48000+10080+840)
    "lenet5": (61_706, 833_040),
    # 32·9+32, 64·32·9+64, 9216·128+128, 128·10+10 | 2·(676·9·32 + 576·288·64 + 9216·128 + 1280)
    "examples-cnn": (1_199_882, 23_984_896),
    # 784·256+256, 256·256+256, 256·10+10 | 2·(784·256 + 256·256 + 2560)
    "mlp": (269_322, 537_600),
    # convs 9·(1·32 + 32·32 + 32·64 + 64·64 + 64·128), BN 2·(32+32+64+64+128), 128·10+10
    # | 2·9·(784·32 + 196·32·32 + 196·32·64 + 49·64·64 + 49·64·128) + 2·1280
    "bncnn": (140_458, 22_130_176),
    # 32·25, BN 2·32, 48·32·9, BN 2·48, 2352·128+128, 128·10+10 | 2·(196·32·25 + 49·48·288 + 2352·128 + 1280)
    "fastnet2": (317_258, 2_273_024),
}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_stronger_architectures_have_their_pinned_size(name):
    params, flops = ARCHITECTURES[name]
    model = get_model(name)
    assert (count_parameters(model), forward_flops(model)) == (params, flops)


def test_quick_suite_models_are_the_seed_models_and_fastnet2():
    """The quick suite's default models (``ModelSpec.quick``); every other built-in is left out of it."""
    assert list_models(quick=True) == ["v0", "v1", "v2", "fastnet2"]
    assert set(list_models()) - set(list_models(quick=True)) == set(ARCHITECTURES) - {"fastnet2"} | {"fastnet"}


def test_count_parameters_skips_frozen():
    model = get_model("v0")
    model.layer_stack[1].weight.requires_grad_(False)
    assert count_parameters(model) == SEED_PARAMETERS["v0"] - 784 * 10


@pytest.mark.parametrize("name", sorted(SEED_FLOPS_PER_IMAGE))
def test_forward_flops_match_seed(name):
    assert forward_flops(get_model(name)) == SEED_FLOPS_PER_IMAGE[name]


def test_v2_head_sees_490_features():
    model = get_model("v2")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1
    assert linears[0].in_features == 490
    assert linears[0].out_features == 10
    # And the feature maps really are 10 x 7 x 7 when they reach the head.
    features = model.block_2(model.block_1(torch.rand(2, 1, 28, 28)))
    assert features.shape == (2, 10, 7, 7)


def test_v1_ends_in_relu():
    """V1 keeps the seed's ReLU on the logits: outputs are >= 0 and some are clipped to 0."""
    torch.manual_seed(0)
    model = get_model("v1")
    assert isinstance(list(model.modules())[-1], nn.ReLU)
    with torch.no_grad():
        out = model(torch.rand(256, 1, 28, 28))
        pre_relu = model.layer_stack[:-1](torch.rand(256, 1, 28, 28))
    assert (out >= 0).all()
    assert (out == 0).any()
    assert (pre_relu < 0).any()  # the clipping is not vacuous for this initialisation


def test_v0_can_output_negative_logits():
    """Contrast with V1: V0 has no final ReLU."""
    torch.manual_seed(0)
    with torch.no_grad():
        out = get_model("v0")(torch.rand(256, 1, 28, 28))
    assert (out < 0).any()


def test_unknown_model_lists_known_names():
    with pytest.raises(UnknownModelError) as info:
        get_model("nope")
    message = str(info.value)
    assert "nope" in message
    for name in ("v0", "v1", "v2"):
        assert name in message
    assert isinstance(info.value, KeyError)  # callers catching KeyError still work


@pytest.fixture
def isolated_registry():
    """The registry restored after the test, so registering in a test leaves the real one as it was (every
    module holds the same dict: it is emptied and refilled, not replaced)."""
    saved = dict(models.MODELS)
    yield models.MODELS
    models.MODELS.clear()
    models.MODELS.update(saved)


def test_duplicate_registration_raises(isolated_registry):
    before = dict(isolated_registry)
    with pytest.raises(ValueError, match="v0"):
        register_model("v0", "impostor")(lambda: nn.Linear(784, 10))
    assert isolated_registry == before  # the original entry survives


def test_registered_model_is_listed_and_built(isolated_registry):
    @register_model("tiny-test", "a test-only model")
    def _tiny():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    assert list_models()[-1] == "tiny-test"
    assert get_model("tiny-test")(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_training_flops_count_forward_and_backward():
    """v0 by hand: forward 15,880; backward = weight grads of both layers (2·784·10 + 2·10·10) plus
    the input grad of the second layer (2·10·10); the first layer's input needs no gradient."""
    from mnist_models.models import training_flops

    model = get_model("v0")
    assert training_flops(model) == 15_880 + 2 * 784 * 10 + 2 * 10 * 10 + 2 * 10 * 10
    assert all(p.grad is None for p in model.parameters())
    v2 = get_model("v2")
    assert 2 * forward_flops(v2) < training_flops(v2) < 3 * forward_flops(v2)


def test_activation_traffic_is_counted_layer_by_layer():
    """Elements a forward pass moves per image: the input read once, each leaf's output written and read once,
    the logits read once, a view (Flatten) nothing. v2 by hand: outputs of conv, ReLU, conv, ReLU at 10·28·28
    (4 × 7,840), the pool and conv, ReLU, conv, ReLU at 10·14·14 (5 × 1,960), the pool (490), the logits (10)."""
    outputs = 4 * 7840 + 5 * 1960 + 490 + 10
    assert model_flops("v2")["activations"] == 784 + 2 * outputs - 10 == 84_094
    assert model_flops("v0")["activations"] == 784 + 2 * (10 + 10) - 10

