"""Training and evaluation loops, fit(), predictions: on real MNIST (subsets unless marked slow)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mnist_models import data
from mnist_models.config import RunConfig
from mnist_models.data import load_split, make_loader
from mnist_models.models import get_model
from mnist_models.train import auto, engine, optim
from mnist_models.train.engine import (
    FitResult,
    Training,
    TrainingError,
    build_training,
    evaluate,
    fit,
    make_optimizer,
    make_predictions,
)
from mnist_models.train.runtime import Resolved, Runtime, seed_everything
from mnist_models.train.step import make_train_step

TRAIN_KEYS = {"train_loss", "train_acc_pct", "train_s", "train_images", "train_img_per_s"}
EVAL_KEYS = {"test_loss", "test_acc_pct", "eval_s"}
ROW_KEYS = {"epoch"} | TRAIN_KEYS | EVAL_KEYS
CPU = torch.device("cpu")


def cpu_runtime(**settings) -> Runtime:
    return Runtime.from_config(RunConfig(device="cpu", channels_last=False, **settings))


def subset_loader(mnist_root: Path, split: str, n: int, batch_size: int, shuffle: bool) -> data.FastLoader:
    """A FastLoader over the first ``n`` images of a real split."""
    images, labels = data.load_split(split, mnist_root)
    return data.FastLoader(images[:n], labels[:n], batch_size, shuffle=shuffle, device=CPU)


def subset_tensors(mnist_root: Path, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = data.load_split(split, mnist_root)
    return images[:n].unsqueeze(1).float() / 255, labels[:n]


def train_pass(model: nn.Module, loader, optimizer: torch.optim.Optimizer, rt: Runtime, **hooks) -> dict:
    """One pass of the engine's loop over ``loader`` for a hand-built model and optimiser."""
    loss_fn = nn.CrossEntropyLoss()
    step = make_train_step(model, optimizer, rt.amp, loss_fn)
    return Training(RunConfig(device="cpu"), rt, loader, [], model, optimizer, loss_fn, step).train_epoch(**hooks)


@pytest.fixture(scope="module")
def trained_v0(mnist_root: Path) -> nn.Module:
    """V0 after one SGD epoch on 2,048 real images: good enough that per-batch losses differ."""
    seed_everything(0)
    rt = cpu_runtime()
    model = rt.prepare_model(get_model("v0"))
    loader = subset_loader(mnist_root, "train", 2048, 32, shuffle=True)
    train_pass(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), rt)
    model.eval()
    return model


# --------------------------------------------------------------------------------------------
# the training loop


def test_train_epoch_returns_documented_keys(mnist_root: Path) -> None:
    seed_everything(0)
    rt = cpu_runtime()
    model = rt.prepare_model(get_model("v0"))
    loader = subset_loader(mnist_root, "train", 2048, 64, shuffle=True)
    row = train_pass(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), rt)
    assert set(row) == TRAIN_KEYS
    assert all(math.isfinite(v) for v in row.values())
    assert row["train_images"] == 2048
    assert 0.0 <= row["train_acc_pct"] <= 100.0
    assert row["train_loss"] > 0.0
    assert row["train_s"] > 0.0
    assert row["train_img_per_s"] == pytest.approx(2048 / row["train_s"])
    assert model.training  # the loop leaves the model in training mode


def test_train_epoch_is_sample_weighted(mnist_root: Path, trained_v0: nn.Module) -> None:
    # With lr 0 the model does not change during the epoch, so the epoch's loss and accuracy
    # must equal the full-subset values, however the shuffled batches fall; 1,000 images at
    # batch 64 leave a last batch of 40.
    n, batch = 1000, 64
    rt = cpu_runtime()
    x, y = subset_tensors(mnist_root, "train", n)
    with torch.no_grad():
        logits = trained_v0(x)
    expected_loss = nn.functional.cross_entropy(logits, y).item()
    expected_acc = 100.0 * (logits.argmax(1) == y).sum().item() / n

    calls: list[tuple[str, int, int]] = []
    row = train_pass(trained_v0, subset_loader(mnist_root, "train", n, batch, shuffle=True),
                     torch.optim.SGD(trained_v0.parameters(), lr=0.0), rt, on_batch=lambda *a: calls.append(a))
    trained_v0.eval()
    assert row["train_images"] == n
    assert row["train_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert row["train_acc_pct"] == pytest.approx(expected_acc, abs=1e-9)
    assert calls == [("train", i, 16) for i in range(1, 17)]


# --------------------------------------------------------------------------------------------
# evaluate


def hand_eval(model: nn.Module, mnist_root: Path, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image losses and hits of ``model`` on the first ``n`` test images, in one pass."""
    x, y = subset_tensors(mnist_root, "test", n)
    with torch.no_grad():
        logits = model(x)
    return nn.functional.cross_entropy(logits, y, reduction="none"), (logits.argmax(1) == y).float()


def test_evaluate_accuracy_matches_hand_computation(mnist_root: Path, trained_v0: nn.Module) -> None:
    n, batch = 1000, 64  # 15 full batches and a last one of 40
    _, hits = hand_eval(trained_v0, mnist_root, n)
    expected_acc = 100.0 * hits.mean().item()
    # A per-batch mean would give another figure; the check below must be able to tell them apart.
    per_batch_acc = 100.0 * torch.stack([c.mean() for c in hits.split(batch)]).mean().item()
    assert abs(per_batch_acc - expected_acc) > 0.01

    calls: list[tuple[str, int, int]] = []
    row = evaluate(trained_v0, subset_loader(mnist_root, "test", n, batch, shuffle=False), cpu_runtime(),
                   nn.CrossEntropyLoss(), on_batch=lambda *a: calls.append(a))
    assert set(row) == EVAL_KEYS
    assert all(math.isfinite(v) for v in row.values())
    assert row["test_acc_pct"] == pytest.approx(expected_acc, abs=1e-3)
    assert row["test_loss"] > 0.0
    assert row["eval_s"] > 0.0
    assert calls == [("eval", i, 16) for i in range(1, 17)]
    assert not trained_v0.training


@pytest.mark.slow
def test_evaluate_accuracy_matches_torchmetrics_on_the_test_set(mnist_root: Path, trained_v0: nn.Module) -> None:
    from torchmetrics.classification import MulticlassAccuracy

    images, labels = load_split("test", mnist_root)
    with torch.no_grad():
        logits = trained_v0(images.unsqueeze(1).float() / 255)
    reference = MulticlassAccuracy(num_classes=10, average="micro")(logits, labels).item()
    row = evaluate(trained_v0, make_loader("fast", "test", 1000, torch.device("cpu"), mnist_root), cpu_runtime(),
                   nn.CrossEntropyLoss())
    assert row["test_acc_pct"] == pytest.approx(100.0 * reference, abs=1e-3)


def test_build_training_uses_the_evaluation_batch_size_and_smooths_the_training_loss_only(mnist_root: Path) -> None:
    cfg = RunConfig(model="v0", device="cpu", loader="fast", batch_size=64, eval_batch_size=500,
                    label_smoothing=0.1, channels_last=False, data_root=str(mnist_root))
    training = build_training(cfg)
    assert len(training.test_loader) == 20 and len(training.train_loader) == 938
    assert training.loss_fn.label_smoothing == 0.1
    plain = build_training(cfg.with_(label_smoothing=0.0))
    # The test loss is plain cross-entropy whatever the training loss smooths.
    assert training.evaluate()["test_loss"] == pytest.approx(plain.evaluate()["test_loss"], rel=1e-6)


def test_evaluate_loss_is_sample_weighted(mnist_root: Path, trained_v0: nn.Module) -> None:
    n, batch = 1000, 64  # 15 full batches and a last one of 40
    losses, _ = hand_eval(trained_v0, mnist_root, n)
    expected_loss = losses.mean().item()
    per_batch_loss = torch.stack([c.mean() for c in losses.split(batch)]).mean().item()
    assert abs(per_batch_loss - expected_loss) > 1e-4  # the two definitions really differ here

    row = evaluate(trained_v0, subset_loader(mnist_root, "test", n, batch, shuffle=False), cpu_runtime(),
                   nn.CrossEntropyLoss())
    assert row["test_loss"] == pytest.approx(expected_loss, rel=1e-5)


def test_evaluate_does_not_change_the_model(mnist_root: Path, trained_v0: nn.Module) -> None:
    before = [p.detach().clone() for p in trained_v0.parameters()]
    evaluate(trained_v0, subset_loader(mnist_root, "test", 256, 64, shuffle=False), cpu_runtime(),
             nn.CrossEntropyLoss())
    assert all(torch.equal(a, b) for a, b in zip(before, trained_v0.parameters(), strict=True))


# --------------------------------------------------------------------------------------------
# Learning on a subset, fp32 and bf16

V2_SUBSET, V2_BATCH, V2_EPOCHS = 512, 32, 3
V2_ADAM = RunConfig(model="v2", device="cpu", optimizer="adam", lr=3e-3, channels_last=False)


def run_v2_subset(mnist_root: Path, precision: str) -> tuple[list[dict], dict, list[torch.dtype]]:
    """V2 trained with Adam on 512 real images for 3 epochs; per-epoch rows, final eval, logit dtypes."""
    cfg = V2_ADAM.with_(precision=precision)
    rt = Runtime.from_config(cfg)
    seed_everything(0)
    model = rt.prepare_model(get_model("v2"))
    dtypes: list[torch.dtype] = []
    model.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
    optimizer = make_optimizer(cfg, model)
    train = subset_loader(mnist_root, "train", V2_SUBSET, V2_BATCH, shuffle=True)
    rows = [train_pass(model, train, optimizer, rt) for _ in range(V2_EPOCHS)]
    final = evaluate(model, subset_loader(mnist_root, "test", 1000, 250, shuffle=False), rt,
                     nn.CrossEntropyLoss())
    return rows, final, dtypes


@pytest.fixture(scope="module")
def v2_fp32(mnist_root: Path):
    return run_v2_subset(mnist_root, "fp32")


def test_v2_loss_decreases_over_epochs(v2_fp32) -> None:
    rows, final, dtypes = v2_fp32
    losses = [r["train_loss"] for r in rows]
    assert all(math.isfinite(v) for v in losses)
    assert losses[0] > losses[1] > losses[2]
    assert losses[-1] < 0.6 * losses[0]
    assert rows[-1]["train_acc_pct"] > rows[0]["train_acc_pct"]
    assert final["test_acc_pct"] > 50.0  # chance is 10 %
    assert set(dtypes) == {torch.float32}


def test_bf16_on_cpu_trains_close_to_fp32(mnist_root: Path, v2_fp32) -> None:
    rows32, final32, _ = v2_fp32
    rows16, final16, dtypes = run_v2_subset(mnist_root, "bf16")
    assert set(dtypes) == {torch.bfloat16}  # the model really ran under bf16 autocast
    assert all(math.isfinite(r["train_loss"]) for r in rows16)
    assert math.isfinite(final16["test_loss"])
    assert final16["test_acc_pct"] == pytest.approx(final32["test_acc_pct"], abs=3.0)
    assert rows16[-1]["train_loss"] == pytest.approx(rows32[-1]["train_loss"], rel=0.15)


# --------------------------------------------------------------------------------------------
# make_optimizer, make_predictions


def test_make_optimizer() -> None:
    model = get_model("v0")
    sgd = make_optimizer(RunConfig(model="v0", optimizer="sgd", lr=0.05), model)
    assert isinstance(sgd, torch.optim.SGD) and type(sgd) is optim.SGD  # torch's, without torch._dynamo
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.05, 0, 0)
    adam = make_optimizer(RunConfig(model="v0", optimizer="adam", lr=1e-3), model)
    assert type(adam) is optim.Adam and adam.param_groups[0]["lr"] == 1e-3
    assert adam.param_groups[0]["fused"]  # one kernel per parameter, not torch's CPU per-op loop
    assert len(sgd.param_groups[0]["params"]) == len(list(model.parameters()))


def test_make_predictions(mnist_root: Path, trained_v0: nn.Module) -> None:
    x, _ = subset_tensors(mnist_root, "test", 9)
    probs = make_predictions(trained_v0, list(x))
    assert probs.shape == (9, 10)
    assert probs.device.type == "cpu"
    assert (probs >= 0).all()
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(9))
    with torch.no_grad():
        assert torch.equal(probs.argmax(dim=1), trained_v0(x).argmax(dim=1))
    assert not trained_v0.training


# --------------------------------------------------------------------------------------------
# fit on subsets (make_loader patched to serve the first images of each real split)


@pytest.fixture
def small_loaders(monkeypatch: pytest.MonkeyPatch):
    sizes = {"train": 512, "test": 300}
    requested: list[tuple[str, str, int]] = []

    def fake_make_loader(loader, split, batch_size, device, data_root=None, drop_last=False, dataset="mnist",
                         augment="none", seed=0, shard=(0, 1)):  # these tests train without augmentation
        requested.append((loader, split, batch_size))
        images, labels = data.load_split(split, data_root, dataset)
        n = sizes[split]
        return data.FastLoader(images[:n], labels[:n], batch_size, shuffle=split == "train", device=device,
                               drop_last=drop_last)

    monkeypatch.setattr(engine, "make_loader", fake_make_loader)
    return requested


def tiny_config(mnist_root: Path, **changes) -> RunConfig:
    settings = {"model": "v0", "device": "cpu", "loader": "fast", "batch_size": 64, "epochs": 2,
                "data_root": str(mnist_root), **changes}
    return RunConfig.from_protocol("notebook", **settings)


def test_fit_returns_one_row_per_epoch(mnist_root: Path, small_loaders) -> None:
    cfg = tiny_config(mnist_root)
    seen_rows: list[dict] = []
    phases: list[str] = []
    result = fit(cfg, on_batch=lambda phase, done, total: phases.append(phase), on_epoch=seen_rows.append)
    assert isinstance(result, FitResult)  # the config that ran: the memory format auto left open, decided
    assert result.config == cfg.with_(channels_last=result.runtime["channels_last"])
    assert [r["epoch"] for r in result.rows] == [1, 2]
    assert seen_rows == result.rows
    for row in result.rows:
        assert set(row) == ROW_KEYS
        assert all(math.isfinite(v) for v in row.values())
        assert row["train_images"] == 512
    # 512 / 64 = 8 training batches, 300 / 64 → 5 evaluation batches, per epoch.
    assert phases == (["train"] * 8 + ["eval"] * 5) * 2
    assert small_loaders == [("fast", "train", 64), ("fast", "test", 64)]
    assert isinstance(result.model, nn.Module)
    assert result.rows[1]["train_loss"] < result.rows[0]["train_loss"]


def test_fit_of_a_resolved_run_decides_nothing_again(mnist_root: Path, small_loaders,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's automatic choices are made at its entry (``resolve``); fit and the runtime it builds read
    them, measure nothing and carry the reason into the result."""
    decided = Resolved(tiny_config(mnist_root, epochs=1).with_(precision="bf16", channels_last=True),
                       tiny_config(mnist_root, epochs=1, precision="auto"), "precision auto → bf16: (given)")

    def no_probe(keys: object) -> None:
        raise AssertionError("a resolved run must not be measured again")

    monkeypatch.setattr(auto, "probe_steps", no_probe)
    result = fit(decided)
    assert result.config == decided.cfg
    assert result.runtime == {"device": "cpu", "precision": "bf16", "channels_last": True,
                              "auto_reason": "precision auto → bf16: (given)", "deterministic": False}


def test_fit_is_reproducible_from_the_seed(mnist_root: Path, small_loaders) -> None:
    metrics = ("train_loss", "train_acc_pct", "test_loss", "test_acc_pct")

    def final(**changes) -> tuple[float, ...]:
        row = fit(tiny_config(mnist_root, epochs=1, **changes)).rows[-1]
        return tuple(row[k] for k in metrics)

    assert final(seed=3) == final(seed=3)
    assert final(seed=3) != final(seed=4)


def test_fit_model_is_the_trained_one(mnist_root: Path, small_loaders) -> None:
    result = fit(tiny_config(mnist_root, epochs=1))
    images, labels = data.load_split("test", mnist_root)
    x, y = images[:300].unsqueeze(1).float() / 255, labels[:300]
    with torch.no_grad():
        acc = 100.0 * (result.model(x).argmax(1) == y).float().mean().item()
    assert acc == pytest.approx(result.rows[-1]["test_acc_pct"], abs=1e-3)


def test_fit_raises_training_error_on_divergence(mnist_root: Path, small_loaders) -> None:
    epochs_seen: list[dict] = []
    with pytest.raises(TrainingError) as info:
        fit(tiny_config(mnist_root, lr=1e30), on_epoch=epochs_seen.append)
    message = str(info.value)
    assert "\n" not in message
    assert "epoch 1" in message and "lr" in message and "v0" in message
    assert epochs_seen == []  # no row is reported for the diverged epoch


# --------------------------------------------------------------------------------------------
# Full-data runs (slow)


@pytest.fixture(scope="module")
def v0_seed_protocol_fit(mnist_root: Path) -> FitResult:
    """V0, one epoch, exactly the notebook protocol (torchvision DataLoader, batch 32, SGD lr 0.1)."""
    return fit(RunConfig.from_protocol("notebook", model="v0", epochs=1, data_root=str(mnist_root)))


@pytest.mark.slow
class TestV0SeedProtocolEpoch:
    """V0 trained for one whole epoch under the notebook protocol (the module's fixture), then compared."""

    def test_v0_seed_protocol_one_epoch_accuracy(self, v0_seed_protocol_fit: FitResult) -> None:
        (row,) = v0_seed_protocol_fit.rows
        assert row["train_images"] == 60_000
        assert row["test_acc_pct"] >= 90.0


    def test_fast_and_seed_loaders_give_the_same_training(self, mnist_root: Path,
                                                          v0_seed_protocol_fit: FitResult) -> None:
        # Same seed → same shuffle order → the same batches, so the same training, loader for loader.
        fast = fit(v0_seed_protocol_fit.config.with_(loader="fast"))
        (seed_row,), (fast_row,) = v0_seed_protocol_fit.rows, fast.rows
        assert fast_row["train_images"] == seed_row["train_images"] == 60_000
        assert fast_row["train_loss"] == pytest.approx(seed_row["train_loss"], abs=1e-4)
        assert fast_row["test_loss"] == pytest.approx(seed_row["test_loss"], abs=1e-4)
        assert fast_row["train_acc_pct"] == pytest.approx(seed_row["train_acc_pct"], abs=0.02)
        assert fast_row["test_acc_pct"] == pytest.approx(seed_row["test_acc_pct"], abs=0.02)


@pytest.mark.slow
def test_v2_seed_protocol_one_epoch_accuracy(mnist_root: Path) -> None:
    # TinyVGG under the notebook protocol (batch 32, SGD lr 0.1), one epoch, with the fast loader
    # (same batches as the notebook loader, less time): at least 97 % on the full test set.
    cfg = RunConfig.from_protocol("notebook", model="v2", epochs=1, loader="fast", data_root=str(mnist_root))
    (row,) = fit(cfg).rows
    assert row["train_images"] == 60_000
    assert math.isfinite(row["test_loss"])
    assert row["test_acc_pct"] >= 97.0
