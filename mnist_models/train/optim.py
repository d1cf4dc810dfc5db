"""The optimisers training uses: torch.optim's own ``Adam`` and ``SGD``, run without importing
``torch._dynamo``.

torch.optim wraps ``Optimizer.add_param_group``, ``zero_grad``, ``state_dict`` and ``load_state_dict`` in
``torch._disable_dynamo``, and every ``step`` in ``_use_grad_for_differentiable``; both import
``torch._dynamo`` on first call (1.0 s on the 2-core EPYC, more on slower machines; docs/decisions.md,
2026-12-06), only to keep torch.compile from tracing them. An eager run never needs that, and time to
accuracy counts every second from process start. So these subclasses call the same methods' bodies
(``inspect.unwrap`` follows ``functools.wraps``' ``__wrapped__`` to them): the same parameter checks, the
same state, the same kernels (fused Adam on the CPU and CUDA, ``capturable`` inside a CUDA graph), with
gradients off during the update as the wrapper does. The schedulers (``OneCycleLR``) work unchanged. A
test holds both against torch.optim's own classes, step for step, and checks that training with them
leaves ``torch._dynamo`` unimported.

Inside ``torch.compile`` the subclasses are traced as any Python code is: the suite's compiled cases
compile the model, not the optimiser step, so nothing there changes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

_ADD_PARAM_GROUP = inspect.unwrap(torch.optim.Optimizer.add_param_group)
_ZERO_GRAD = inspect.unwrap(torch.optim.Optimizer.zero_grad)
_STATE_DICT = inspect.unwrap(torch.optim.Optimizer.state_dict)
_LOAD_STATE_DICT = inspect.unwrap(torch.optim.Optimizer.load_state_dict)


class _EagerMethods:
    """``add_param_group``, ``zero_grad``, ``state_dict``, ``load_state_dict`` and ``step`` of a torch.optim
    class, unwrapped (see the module)."""

    _step_body: Callable[..., Any]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _ADD_PARAM_GROUP(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _ZERO_GRAD(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return _STATE_DICT(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _LOAD_STATE_DICT(self, state_dict)

    def step(self, closure: Callable[[], float] | None = None) -> Any:
        with torch.no_grad():  # what the step's wrapper does for a non-differentiable optimiser
            return type(self)._step_body(self, closure)


class Adam(_EagerMethods, torch.optim.Adam):
    """``torch.optim.Adam``, the same update, without the ``torch._dynamo`` import."""

    _step_body = inspect.unwrap(torch.optim.Adam.step)


class SGD(_EagerMethods, torch.optim.SGD):
    """``torch.optim.SGD``, the same update, without the ``torch._dynamo`` import."""

    _step_body = inspect.unwrap(torch.optim.SGD.step)
