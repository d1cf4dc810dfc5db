"""Checkpoints on real MNIST: save → load gives the same model; every way a file can be wrong (missing,
truncated, a flipped byte, not a checkpoint, weights of another model, a planted pickle) is one
``CheckpointError`` line naming the file; ``train --save`` end to end through the CLI.

The trained model is the session's (``trained_model`` in conftest.py, FastNet trained once for every file
that needs one); the CLI run is the session's too (``cli_train``)."""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from mnist_models import data
from mnist_models.cli import main as cli
from mnist_models.config import RunConfig
from mnist_models.models import get_model
from mnist_models.train import checkpoint as ckpt
from mnist_models.train.checkpoint import CheckpointError, load_checkpoint, plain, read_checkpoint, save_checkpoint
from mnist_models.train.checkpoint_path import check_save_path
from mnist_models.train.engine import build_training, make_predictions


@pytest.fixture(scope="module")
def test_images(mnist_root: Path) -> list[torch.Tensor]:
    images, _ = data.load_split("test", mnist_root)
    return list(images[:512].unsqueeze(1).float() / 255)


@pytest.fixture
def saved(trained_model: dict, tmp_path: Path) -> Path:
    """A checkpoint of the trained model of this test's own, to read, alter or replace."""
    model, cfg, metrics = trained_model["model"], trained_model["cfg"], trained_model["metrics"]
    return save_checkpoint(tmp_path / "model.pt", model, cfg, metrics)


def largest_weight(model: torch.nn.Module) -> tuple[str, torch.Tensor]:
    """The model's largest floating-point tensor (its name and value): its bytes are unique in the file."""
    return max(((k, v) for k, v in model.state_dict().items() if v.is_floating_point()), key=lambda kv: kv[1].numel())


def assert_one_line_error(info: pytest.ExceptionInfo, path: Path, *words: str) -> str:
    """The CheckpointError is one line naming the file, with a fix and the given words."""
    text = str(info.value)
    assert "\n" not in text and str(path) in text and "fix:" in text, text
    for word in words:
        assert word in text, text
    return text


def rewrite(source: Path, target: Path, **changes) -> Path:
    """A copy of a checkpoint's dict with ``changes``, written with plain torch.save (hashes as given)."""
    payload = torch.load(source, weights_only=True) | changes
    torch.save(payload, target)
    return target


def rehash(payload: dict) -> dict:
    """Recompute both hashes, as a forger (or a careless tool) would: the content checks must still hold."""
    payload["weights_sha256"] = ckpt.weights_digest(payload["state_dict"])
    payload["metadata_sha256"] = ckpt.metadata_digest(payload)
    return payload


# --------------------------------------------------------------------------------------------
# Round trip


def test_round_trip_gives_the_same_model(trained_model: dict, saved: Path, test_images: list[torch.Tensor]) -> None:
    model, config, metrics = load_checkpoint(saved, "cpu")
    assert isinstance(model, type(trained_model["model"])) and not model.training
    assert config == plain(asdict(trained_model["cfg"])) and metrics == trained_model["metrics"]
    assert metrics["test_acc_pct"] > 80  # a trained model, not a fresh one
    before = make_predictions(trained_model["model"], test_images)
    after = make_predictions(model, test_images)
    assert torch.equal(before, after)


def test_the_file_holds_the_format_versions_and_hashes(trained_model: dict, saved: Path) -> None:
    payload = read_checkpoint(saved)
    assert payload["format"] == ckpt.FORMAT and payload["format_version"] == ckpt.FORMAT_VERSION
    assert payload["model"] == "fastnet"
    assert payload["versions"]["torch"] == torch.__version__ and type(payload["versions"]["torch"]) is str
    assert "git_commit" in payload["versions"] and ckpt.PACKAGE in payload["versions"]
    assert payload["weights_sha256"] == ckpt.weights_digest(trained_model["model"].state_dict())
    assert set(payload["state_dict"]) == set(get_model("fastnet").state_dict())
    assert not list(saved.parent.glob(".*.tmp")), "the atomic write left its temp file behind"


def test_saving_again_replaces_the_file_whole(trained_model: dict, saved: Path) -> None:
    first = saved.read_bytes()
    save_checkpoint(saved, trained_model["model"], trained_model["cfg"], {**trained_model["metrics"], "note": "second"})
    assert saved.read_bytes() != first
    assert load_checkpoint(saved).metrics["note"] == "second"
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.pt"]


def test_a_compiled_model_is_saved_without_the_orig_mod_prefix(trained_model: dict, tmp_path: Path,
                                                                test_images: list[torch.Tensor]) -> None:
    compiled = torch.compile(trained_model["model"])  # the wrapper's state_dict keys start with _orig_mod.
    assert all(key.startswith("_orig_mod.") for key in compiled.state_dict())
    path = save_checkpoint(tmp_path / "compiled.pt", compiled, trained_model["cfg"], trained_model["metrics"])
    state = torch.load(path, weights_only=True)["state_dict"]
    assert state and not any("_orig_mod" in key for key in state)
    model = load_checkpoint(path).model
    assert torch.equal(make_predictions(model, test_images), make_predictions(trained_model["model"], test_images))


@pytest.mark.slow
def test_a_model_trained_compiled_loads_plain(mnist_root: Path, tmp_path: Path) -> None:
    """Compiled for real (inductor), a few steps through the engine (compiling is the cost, not the steps):
    the checkpoint loads into a plain V0."""
    cfg = RunConfig(model="v0", device="cpu", loader="fast", epochs=1, batch_size=64, channels_last=False,
                    compile="default", data_root=str(mnist_root))
    training = build_training(cfg)
    metrics = training.train_epoch(max_steps=3)
    path = save_checkpoint(tmp_path / "compiled.pt", training.model, cfg, metrics)
    model, config, _ = load_checkpoint(path)
    assert config["compile"] == "default" and not any("_orig_mod" in k for k in model.state_dict())
    x = torch.rand(8, 1, 28, 28)
    with torch.inference_mode():
        assert torch.allclose(model(x), training.model.eval()(x), atol=1e-5)


def test_loading_leaves_the_callers_rng_alone(saved: Path) -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    load_checkpoint(saved)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------------------------
# Every broken file: one CheckpointError line


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "nope.pt")
    assert_one_line_error(info, tmp_path / "nope.pt", "no such file")


@pytest.mark.parametrize("keep", [0, 10, 0.5, -10])
def test_a_truncated_file(saved: Path, tmp_path: Path, keep: float) -> None:
    raw = saved.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(raw[:int(len(raw) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(cut)
    assert_one_line_error(info, cut, "not a readable checkpoint")


def test_a_flipped_byte_in_the_weights_fails_the_hash(trained_model: dict, saved: Path, tmp_path: Path) -> None:
    raw = bytearray(saved.read_bytes())
    weight = largest_weight(trained_model["model"])[1].contiguous().numpy().tobytes()
    at = raw.find(weight)  # torch.save stores tensors uncompressed: find the weights' bytes in the file
    assert at > 0
    raw[at + len(weight) // 2] ^= 0x40
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(raw))
    assert torch.load(flipped, weights_only=True)["format"] == ckpt.FORMAT  # torch itself does not notice
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(flipped)
    assert_one_line_error(info, flipped, "SHA-256 mismatch")


def test_changed_weights_or_metrics_fail_the_hash(saved: Path, tmp_path: Path) -> None:
    payload = torch.load(saved, weights_only=True)
    weights = {k: v + 0.01 if k.endswith("bias") else v for k, v in payload["state_dict"].items()}
    for name, change in (("weights", {"state_dict": weights}),
                         ("metrics", {"metrics": {**payload["metrics"], "test_acc_pct": 99.9}}),
                         ("model", {"model": "v1"})):
        doctored = rewrite(saved, tmp_path / f"{name}.pt", **change)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(doctored)
        assert_one_line_error(info, doctored, "SHA-256 mismatch")


@pytest.mark.parametrize("content", ["text", "empty", "plain-dict", "old-version", "no-weights"])
def test_files_that_are_not_checkpoints(content: str, saved: Path, tmp_path: Path) -> None:
    path = tmp_path / f"{content}.pt"
    if content == "text":
        path.write_text("these are not the weights you are looking for\n")
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "plain-dict":
        torch.save({"layer_stack.1.weight": torch.zeros(10, 784)}, path)
    elif content == "old-version":
        rewrite(saved, path, format_version=0)
    else:
        rewrite(saved, path, state_dict=None)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert_one_line_error(info, path)


def test_weights_that_do_not_fit_their_declared_model(saved: Path, tmp_path: Path) -> None:
    payload = torch.load(saved, weights_only=True)  # FastNet's weights, declared as V2, hashes made consistent
    payload["model"] = "v2"
    path = tmp_path / "misfit.pt"
    torch.save(rehash(payload), path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert_one_line_error(info, path, "do not fit model 'v2'", "missing", "unexpected")

    payload = torch.load(saved, weights_only=True)  # right keys, wrong shapes
    payload["state_dict"]["classifier.3.weight"] = torch.zeros(12, 128)
    torch.save(rehash(payload), path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert_one_line_error(info, path, "classifier.3.weight (12, 128) vs (10, 128)")


def test_a_model_the_registry_does_not_know(saved: Path, tmp_path: Path) -> None:
    payload = torch.load(saved, weights_only=True)
    payload["model"] = "v9"
    path = tmp_path / "unknown.pt"
    torch.save(rehash(payload), path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert_one_line_error(info, path, "'v9'", "known: v0, v1, v2")


def plant(marker: str) -> None:
    """What the planted payload runs when unpickled without weights_only: it creates a marker file."""
    Path(marker).touch()


class Planted:
    """An object whose unpickling calls ``plant``: arbitrary code in a pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return plant, (str(self.marker),)


def test_a_planted_pickle_is_refused_and_never_run(saved: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    payload = torch.load(saved, weights_only=True) | {"extra": Planted(marker)}
    path = tmp_path / "planted.pt"
    torch.save(payload, path)
    torch.load(path, weights_only=False)  # the payload is live: a full unpickler runs it
    assert marker.exists()
    marker.unlink()

    calls: list[dict] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert_one_line_error(info, path, "weights_only=True")
    assert not marker.exists(), "the planted code ran"
    load_checkpoint(saved)
    assert calls and all(call.get("weights_only") is True for call in calls)


def test_saving_weights_that_do_not_fit_the_config(trained_model: dict, tmp_path: Path) -> None:
    model, cfg, metrics = trained_model["model"], trained_model["cfg"], trained_model["metrics"]
    with pytest.raises(CheckpointError, match="do not fit model 'v2'"):
        save_checkpoint(tmp_path / "x.pt", model, cfg.with_(model="v2"), metrics)
    with pytest.raises(CheckpointError, match="plain data only"):
        save_checkpoint(tmp_path / "x.pt", model, cfg, {"acc": torch.tensor(1.0)})
    assert not (tmp_path / "x.pt").exists()


def test_check_save_path(tmp_path: Path) -> None:
    assert check_save_path(tmp_path / "new" / "deeper" / "m.pt") == tmp_path / "new" / "deeper" / "m.pt"
    with pytest.raises(CheckpointError, match="is a folder"):
        check_save_path(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="cannot be created or written"):
        check_save_path(blocker / "m.pt")


# --------------------------------------------------------------------------------------------
# The CLI: train --save


def test_train_save_end_to_end(cli_train: dict, mnist_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               test_images: list[torch.Tensor]) -> None:
    """The session's CLI run (``cli_train``: ``--json --save models/v0.pt``, a folder that did not exist)."""
    path = cli_train["checkpoint"]
    summary = json.loads(cli_train["out"].rstrip("\n").splitlines()[-1])
    assert cli_train["code"] == 0 and summary["checkpoint"] == str(path) and path.is_file()
    model, config, metrics = load_checkpoint(path)
    assert config == summary["config"] and metrics == summary["epochs"][-1]
    assert metrics["test_acc_pct"] == summary["test_acc_pct"] > 85
    labels = data.load_split("test", mnist_root)[1][:512]
    assert (make_predictions(model, test_images).argmax(1) == labels).float().mean() > 0.8

    # Saving again over a checkpoint replaces it, and the text output names the file too (batches of 1,000,
    # NCHW and fp32 keep this second run short).
    again = shutil.copy(path, tmp_path / "v0.pt")
    argv = ["train", "--model", "v0", "--loader", "fast", "--epochs", "1", "--batch-size", "1000", "--precision",
            "fp32", "--no-channels-last", "--data-root", str(mnist_root), "--results", str(tmp_path / "results")]
    assert cli.main([*argv, "--save", str(again)]) == 0
    assert f"checkpoint saved to {again}" in capsys.readouterr().out
    assert load_checkpoint(again).config["batch_size"] == 1000


def test_checkpoint_bytes_load_with_weights_only(trained_model: dict) -> None:
    raw = ckpt.checkpoint_bytes(trained_model["model"], trained_model["cfg"], trained_model["metrics"])
    payload = torch.load(io.BytesIO(raw), weights_only=True)
    assert all(isinstance(value, torch.Tensor) for value in payload["state_dict"].values())
    assert all(type(value) in (int, float, bool, str, type(None)) for value in payload["metrics"].values())
