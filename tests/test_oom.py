"""The out-of-memory line names what the command that ran out can change (``train/oom.py``): predict
has no ``--batch-size``, so its line says to pass fewer images per call, or to use the CPU. The
out-of-memory is injected on this CPU, as tests/test_resources.py does for ``train``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from mnist_models.cli import main as cli
from mnist_models.cli.actions import predict
from mnist_models.config import RunConfig
from mnist_models.models import get_model
from mnist_models.train.checkpoint import save_checkpoint


def test_predict_out_of_memory_names_what_predict_can_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = save_checkpoint(tmp_path / "v0.pt", get_model("v0"), RunConfig(model="v0"), {})
    images = []
    for i in range(5):
        images.append(str(tmp_path / f"{i}.png"))
        Image.new("L", (28, 28), 0).save(images[-1])

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")

    monkeypatch.setattr(predict, "make_predictions", out_of_memory)
    code = cli.main(["predict", "--checkpoint", str(checkpoint), "--device", "cpu", *images])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in captured.err + captured.out, captured.err
    assert lines[0].startswith("mnist-bench: error: CUDA out of memory at batch size 5")
    assert "fix: pass at most 2 images per call" in lines[0] and "--batch-size" not in lines[0]
    assert predict.oom_fix(1, torch.device("cuda")) == "use --device cpu"  # one image on a GPU: the CPU
