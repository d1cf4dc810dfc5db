"""Data sets beyond MNIST: Fashion-MNIST offline, verified by SHA-256, trained end to end, named in rows.

Fashion-MNIST's offline copy is Debian's ``dataset-fashion-mnist`` (``make setup`` installs it where apt
works); where it is missing these tests skip, saying so. An unknown ``--dataset`` and a comparison across
data sets are in the bad-input inventory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_cli import run_cli

from mnist_models.data import FASHION_MNIST, DataError, load_split, prepare, sha256_file

needs_fashion = pytest.mark.skipif(not Path(FASHION_MNIST.offline).is_dir(),
                                   reason=f"Fashion-MNIST's offline copy ({FASHION_MNIST.offline}) is not installed: "
                                          "apt-get install dataset-fashion-mnist")


@needs_fashion
def test_fashion_mnist_is_prepared_offline_verified_and_balanced(tmp_path: Path) -> None:
    statuses = prepare(tmp_path, dataset="fashion-mnist")
    assert [s.name for s in statuses] == [f.name for f in FASHION_MNIST.files]
    assert {s.source for s in statuses} == {f"{FASHION_MNIST.offline} (offline)"}
    for status, spec in zip(statuses, FASHION_MNIST.files, strict=True):
        assert status.path == tmp_path / "FashionMNIST" / "raw" / spec.name
        assert sha256_file(status.path) == spec.sha256
    assert {s.source for s in prepare(tmp_path, dataset="fashion-mnist")} == {"present"}
    for split, per_class in (("train", 6_000), ("test", 1_000)):  # ten classes, balanced
        images, labels = load_split(split, tmp_path, "fashion-mnist")
        assert images.shape == (10 * per_class, 28, 28) and images.dtype == torch.uint8
        assert torch.bincount(labels).tolist() == [per_class] * 10
    mnist_like = (tmp_path / "FashionMNIST" / "raw").iterdir()
    assert all(p.stat().st_size > 0 for p in mnist_like)


@needs_fashion
def test_a_corrupted_fashion_file_is_refused_then_repaired(tmp_path: Path) -> None:
    prepare(tmp_path, dataset="fashion-mnist")
    labels = tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    data = bytearray(labels.read_bytes())
    data[100] ^= 1
    labels.write_bytes(bytes(data))
    with pytest.raises(DataError, match="does not match the official"):
        prepare(tmp_path, dataset="fashion-mnist")
    repaired = {s.name: s.source for s in prepare(tmp_path, dataset="fashion-mnist", repair=True)}
    assert repaired["t10k-labels-idx1-ubyte"].endswith("(offline)") and repaired["t10k-images-idx3-ubyte"] == "present"


@needs_fashion
@pytest.mark.slow
def test_train_on_fashion_mnist_end_to_end(tmp_path: Path, mnist_root: Path) -> None:
    """One epoch of v2 on Fashion-MNIST from the command line: its accuracy is Fashion's (well below what
    the same run reaches on MNIST, ~97%), and its row says which data set it was."""
    results = tmp_path / "results"
    done = run_cli(["train", "--dataset", "fashion-mnist", "--model", "v2", "--loader", "fast", "--epochs", "1",
                    "--precision", "fp32", "--json", "--data-root", str(tmp_path / "data"), "--results", str(results)],
                   tmp_path, mnist_root)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert 75.0 < figures["test_acc_pct"] < 92.0
    (row,) = [json.loads(line) for line in (results / "runs.jsonl").read_text().splitlines()]
    assert row["config"]["dataset"] == "fashion-mnist"
    assert (tmp_path / "data" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def make_png_digits(folder: Path, mnist_root: Path, per_split: dict[str, int]) -> None:
    """MNIST digits saved as a folder of one's own would hold them: dark ink on light paper, RGB, 56 × 56."""
    from PIL import Image

    for split, n in per_split.items():
        images, labels = load_split(split, mnist_root)
        for i in range(n):
            label_dir = folder / split / str(int(labels[i]))
            label_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(255 - images[i].numpy()).resize((56, 56)).convert("RGB").save(label_dir / f"{i}.png")


def test_an_npz_of_ones_own_is_used_as_it_is_and_cached_by_content(tmp_path: Path, mnist_root: Path) -> None:
    import numpy as np

    x, y = load_split("train", mnist_root)
    xt, yt = load_split("test", mnist_root)
    npz = tmp_path / "mine.npz"
    np.savez(npz, x_train=x[:300].numpy(), y_train=y[:300].numpy(), x_test=xt[:100].numpy(), y_test=yt[:100].numpy())
    cache = tmp_path / "cache"
    (status,) = prepare(cache, dataset=str(npz))
    assert status.source == f"converted from {npz}" and status.path.parent == cache / "custom"
    images, labels = load_split("test", cache, str(npz))
    assert torch.equal(images, xt[:100]) and torch.equal(labels, yt[:100])
    assert prepare(cache, dataset=str(npz))[0].source == "present"  # the second run reads the cache
    np.savez(npz, x_train=x[:301].numpy(), y_train=y[:301].numpy(), x_test=xt[:100].numpy(), y_test=yt[:100].numpy())
    (changed,) = prepare(cache, dataset=str(npz))
    assert changed.source.startswith("converted") and changed.path != status.path  # new content, new cache


@pytest.mark.slow
def test_a_folder_of_png_digits_trains_end_to_end(tmp_path: Path, mnist_root: Path) -> None:
    """A folder of scanned-looking digits (dark on light, RGB, twice MNIST's size): normalised as predict
    normalises images, it trains v2 well past chance, and the row names the folder."""
    folder = tmp_path / "digits"
    make_png_digits(folder, mnist_root, {"train": 2000, "test": 500})
    results, data_root = tmp_path / "results", tmp_path / "data"
    done = run_cli(["train", "--dataset", str(folder), "--model", "v2", "--loader", "fast", "--epochs", "3",
                    "--precision", "fp32", "--json", "--data-root", str(data_root), "--results", str(results)],
                   tmp_path, mnist_root)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["test_acc_pct"] > 70.0  # 82.4% measured; chance is 10%
    rows = [json.loads(line) for line in (results / "runs.jsonl").read_text().splitlines()]
    assert {row["config"]["dataset"] for row in rows} == {str(folder)} and len(rows) == 3
    (status,) = prepare(data_root, dataset=str(folder))  # the rows name the content they trained on
    assert {row["runtime"]["dataset_sha256"] for row in rows} == {status.sha256}
    images, labels = load_split("test", data_root, str(folder))
    assert images.shape == (500, 28, 28) and images.dtype == torch.uint8 and labels.max() <= 9
    assert images[:, 0, :].float().mean() < 5  # white on black, as MNIST: the top row is background
