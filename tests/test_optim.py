"""The training optimisers (``train/optim.py``): torch.optim's Adam and SGD without the ``torch._dynamo``
import. They must update exactly as torch.optim's own classes do, schedule included (that training then
leaves ``torch._dynamo`` unimported is tests/test_imports.py's)."""

from __future__ import annotations

import pytest
import torch

from mnist_models.models import get_model
from mnist_models.train import optim

CASES = [(optim.Adam, torch.optim.Adam, {"fused": True}), (optim.Adam, torch.optim.Adam, {"foreach": True}),
         (optim.SGD, torch.optim.SGD, {})]


def trained(cls: type[torch.optim.Optimizer], steps: int = 12, **kw: object) -> tuple[list[torch.Tensor], dict]:
    """v2 after ``steps`` one-cycle steps on seeded random batches with ``cls``: its weights and its state."""
    torch.manual_seed(0)
    model = get_model("v2")
    opt = cls(model.parameters(), lr=0.01, **kw)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=steps)
    draw = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.rand(16, 1, 28, 28, generator=draw), torch.randint(0, 10, (16,), generator=draw)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        schedule.step()
    return [p.detach().clone() for p in model.parameters()], opt.state_dict()


@pytest.mark.parametrize(("ours", "theirs", "kw"), CASES, ids=["adam-fused", "adam-foreach", "sgd"])
def test_the_update_is_torch_optims_step_for_step(ours, theirs, kw) -> None:
    mine, my_state = trained(ours, **kw)
    reference, their_state = trained(theirs, **kw)
    assert all(torch.equal(a, b) for a, b in zip(mine, reference, strict=True))
    assert my_state["param_groups"] == their_state["param_groups"]  # the schedule moved both alike
    for key in their_state["state"]:
        for name, value in their_state["state"][key].items():
            assert torch.equal(my_state["state"][key][name], value), name


def test_a_state_dict_round_trips_into_torch_optim() -> None:
    _, state = trained(optim.Adam, fused=True)
    model = get_model("v2")
    theirs = torch.optim.Adam(model.parameters(), lr=0.01, fused=True)
    theirs.load_state_dict(state)
    assert theirs.state_dict()["param_groups"] == state["param_groups"]
