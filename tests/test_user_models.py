"""Models of your own: a file, a module or an installed package's entry point, wherever a model name goes.

The bad ones (a missing file, a name it lacks, a forward returning the wrong shape, …) are in the bad-input
inventory (``test_bad_inputs.py``); here the good ones work as a built-in does: trained on real MNIST,
counted, recorded with their source, run through the suite and predicted from a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image
from test_cli import run_cli

from mnist_models.cli import main as cli
from mnist_models.data import load_split
from mnist_models.models import (
    check_model,
    count_parameters,
    entry_points,
    get_model,
    model_flops,
    model_source,
    parse_model_args,
    slug,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "my_model.py"
TINY = '''
from torch import nn


class Tiny(nn.Module):
    """One linear layer: 784 → 10."""

    def __init__(self, bias: bool = True):
        super().__init__()
        self.fc = nn.Linear(784, 10, bias=bias)

    def forward(self, x):
        return self.fc(x.flatten(1))
'''


def test_model_args_are_python_literals_else_text() -> None:
    assert parse_model_args(["width=64", "act='gelu'", "name=wide", "drop=0.5", "flags=[1, 2]", "on=True"]) == \
        {"width": 64, "act": "gelu", "name": "wide", "drop": 0.5, "flags": [1, 2], "on": True}


def test_a_file_model_is_counted_as_a_built_in_is(tmp_path: Path) -> None:
    """Parameters and FLOPs of a model of your own come from the same counters, with its --model-arg pairs."""
    spec = f"{EXAMPLE}:wide"
    for width in (8, 16):
        model = get_model(spec, width=width)
        convs = (1 * 9 + 1) * width + (width * 9 + 1) * 2 * width
        assert count_parameters(model) == convs + (2 * width * 49 + 1) * 10
        # 2 FLOPs per multiply-add: conv1 at 28×28, conv2 at 14×14, the linear layer
        expected = 2 * (28 * 28 * width * 9 + 14 * 14 * 2 * width * width * 9 + 2 * width * 49 * 10)
        assert model_flops(spec, (f"width={width}",))["forward"] == expected
    (tmp_path / "tiny.py").write_text(TINY, encoding="utf-8")
    tiny = f"{tmp_path / 'tiny.py'}:Tiny"
    assert model_flops(tiny)["forward"] == 2 * 784 * 10
    assert count_parameters(get_model(tiny, bias=False)) == 7840
    assert slug(tiny) == "tiny-Tiny" and slug("v2") == "v2"


def test_a_module_and_an_installed_entry_point_are_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``package.module:Name`` imports the module; a distribution declaring the entry-point group
    ``mnist_bench.models`` adds a name that ``models`` lists with its source."""
    package = tmp_path / "site" / "mynets"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(TINY, encoding="utf-8")
    info = tmp_path / "site" / "mynets-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mynets\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[mnist_bench.models]\ntiny = mynets:Tiny\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert entry_points() == {"tiny": "mynets:Tiny"}
    assert model_source("mynets:Tiny").kind == "module" and model_source("tiny").kind == "entry point"
    assert check_model("tiny").qualname == "mynets.Tiny"
    assert cli.main(["models", "--json"]) == 0
    listing = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert list(listing)[:4] == ["v0", "v1", "v2", "fastnet"] and listing["v2"]["source"] == "built-in"
    assert [name for name, m in listing.items() if m["quick_suite"]] == ["v0", "v1", "v2", "fastnet2"]
    assert listing["tiny"]["source"] == "entry point" and listing["tiny"]["parameters"] == 7850
    assert listing["tiny"]["flops_per_image"] == 2 * 784 * 10


@pytest.mark.slow
def test_a_file_model_trains_is_recorded_and_predicts_until_its_file_changes(tmp_path: Path,
                                                                            mnist_root: Path) -> None:
    """``train --model file.py:Name --model-arg …`` on real MNIST: in band for a small CNN, its rows
    name the spec, the arguments, the file's SHA-256 and the class; ``predict`` rebuilds it from the
    checkpoint, and refuses (exit 2) once the file changed, unless --allow-changed-source."""
    net = tmp_path / "net.py"
    shutil.copy(EXAMPLE, net)
    spec, results, save = f"{net}:SmallCNN", tmp_path / "results", tmp_path / "net.pt"
    done = run_cli(["train", "--model", spec, "--model-arg", "width=8", "--loader", "fast", "--epochs", "1",
                    "--save", str(save), "--json", "--results", str(results)],
                   tmp_path, mnist_root)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["test_acc_pct"] > 96.0  # a small CNN's first epoch on real MNIST (97.6% measured)
    (row,) = [json.loads(line) for line in (results / "runs.jsonl").read_text().splitlines()]
    assert row["config"]["model"] == spec and row["config"]["model_args"] == ["width=8"]
    assert row["model_source"] == {"spec": spec, "kind": "file", "qualname": "net.SmallCNN", "path": str(net),
                                   "sha256": hashlib.sha256(net.read_bytes()).hexdigest()}
    images, labels = load_split("test", str(mnist_root))
    digits = []
    for i in range(5):
        digits.append(tmp_path / f"digit{i}.png")
        Image.fromarray(images[i].squeeze().numpy()).save(digits[-1])
    predict = ["predict", "--checkpoint", str(save), "--json", *map(str, digits)]
    done = run_cli(predict, tmp_path, mnist_root)
    assert done.returncode == 0, done.stderr[-2000:]
    predicted = [p["digit"] for p in json.loads(done.stdout.strip().splitlines()[-1])["predictions"]]
    assert predicted == labels[:5].tolist()
    net.write_text(net.read_text() + "\n# a later edit\n")
    done = run_cli(predict, tmp_path, mnist_root)
    assert done.returncode == 2 and "changed since it was trained" in done.stderr and done.stdout == ""
    done = run_cli([*predict, "--allow-changed-source"], tmp_path, mnist_root)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_the_suite_runs_a_file_model_through_its_variants(tmp_path: Path, mnist_root: Path) -> None:
    """``--bench-models path/to/file.py:Name``: training and inference rows for each variant, with the
    model's FLOPs, its source in every case row, and the run report naming it."""
    from conftest import one_run

    spec = "examples/my_model.py:SmallCNN"  # relative to the repository, where the suite runs
    run, _ = one_run(tmp_path / "results", mnist_root, "--bench-models", spec, "--bench-variants",
                     "eager,channels_last", "--bench-device", "cpu", "-k", "SmallCNN")
    train, inference = pd.read_csv(run / "train.csv"), pd.read_csv(run / "inference.csv")
    assert set(train["model"]) == set(inference["model"]) == {spec}
    assert set(train["variant"]) == {"eager", "channels_last"} and train["test_acc_pct"].between(0, 100).all()
    assert (inference["agree_with_eager_pct"] > 99).all()
    cases = [json.loads(line) for line in (run / "cases.jsonl").read_text().splitlines()]
    digest = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert {(c["model_kind"], c["model_qualname"], c["model_sha256"]) for c in cases if "model_kind" in c} == \
        {("file", "my_model.SmallCNN", digest)}
    assert spec in (run / "report.html").read_text(encoding="utf-8")
    assert torch.isfinite(torch.tensor(inference["img_per_s"].to_numpy())).all()


def test_the_example_tinyvgg_is_the_built_in_v2_written_out() -> None:
    """examples/tinyvgg.py (docs/models.md times it against v2): the same parameters, FLOPs and state-dict
    layout, so a v2 checkpoint's weights load into it and give the same logits."""
    spec = f"{ROOT / 'examples' / 'tinyvgg.py'}:TinyVGG"
    assert model_flops(spec) == model_flops("v2")
    v2, mine = get_model("v2"), get_model(spec)
    assert count_parameters(mine) == count_parameters(v2) == 7740
    mine.load_state_dict(v2.state_dict(), strict=True)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(mine(x), v2(x))
