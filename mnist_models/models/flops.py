"""Parameter and FLOP counts of models (FLOPs counted by ``torch.utils.flop_counter``, not assumed), and the
activation traffic of a forward pass (the bandwidth roofline's numerator)."""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .registry import IMAGE_SHAPE
from .spec import get_model, parse_model_args


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def training_flops(model: nn.Module) -> int:
    """FLOPs of one training step per image: forward plus backward, counted (not assumed 3×).

    The input needs no gradient, so the first layer's input-gradient is not counted, as in a
    real step. The model's gradients are cleared afterwards.
    """
    device = next(model.parameters()).device
    batch = 2
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(batch, *IMAGE_SHAPE, device=device)).sum().backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops()) // batch


def forward_flops(model: nn.Module) -> int:
    """Forward FLOPs for one image (2 per multiply-add), counted by ``torch.utils.flop_counter``.

    Counts the matmul/conv work only (bias adds, ReLU and pooling are not counted), the usual
    convention for model FLOPs.
    """
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *IMAGE_SHAPE, device=device))
    return int(counter.get_total_flops())


def activation_elements(model: nn.Module) -> int:
    """Elements a forward pass of one image moves through memory, at least: the input read once, and every
    leaf module's output written once and read once (a view of its input, such as ``Flatten``'s, moves
    nothing; the logits are read once). Weights are left out (they are read once per batch, not per
    image). Times the activations' element size (2 for bf16/fp16, 4 for fp32): bytes per image."""
    device = next(model.parameters()).device
    outputs: list[int] = []

    def count(module: nn.Module, inputs: tuple, output: object) -> None:
        if not isinstance(output, torch.Tensor):  # a module of your own returning a tuple: not counted
            return
        storage = output.untyped_storage().data_ptr()
        shares = any(isinstance(i, torch.Tensor) and i.untyped_storage().data_ptr() == storage for i in inputs)
        outputs.append(0 if shares else output.numel())

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *IMAGE_SHAPE, device=device))
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    return IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2] + 2 * sum(outputs) - outputs[-1]


@functools.cache
def model_flops(name: str, model_args: tuple[str, ...] = ()) -> dict[str, int]:
    """Forward and training FLOPs per image of a model spec (a built-in or your own, with its ``--model-arg``
    pairs), counted once per process (building the model leaves the global RNG state as it was)."""
    with torch.random.fork_rng(devices=[]):
        model = get_model(name, **parse_model_args(model_args))
        return {"forward": forward_flops(model), "training": training_flops(model),
                "activations": activation_elements(model)}
