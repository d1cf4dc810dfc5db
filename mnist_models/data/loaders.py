"""The two loaders that feed training; both yield float32 images in [0, 1] shaped (B, 1, 28, 28)
and int64 labels.

- ``seed``: ``torchvision.datasets.MNIST`` + ``ToTensor()`` + ``DataLoader``, exactly as the
  seed notebook (shuffle for train only, no workers);
- ``fast``: the whole split resident on the target device as uint8, converted per batch there,
  batches sliced from one tensor with no per-sample Python work. With the same torch seed it
  draws the same shuffle order as the notebook loader, so both yield the same batches.

``--augment`` (``augment.py``) changes the training split's images only: on the device, from the loader's
own generator, in the fast loader; with torchvision transforms v2 in the notebook's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .augment import DeviceAugment, device_augment, notebook_transforms
from .datasets import dataset_spec, raw_dir, resolve_root
from .inputs import is_custom
from .verify import DataError, load_split


class _Transformed(Dataset):
    """A tensor data set's images through a transform (your own data with ``--augment``)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:  # noqa: ANN001
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i]), self.labels[i]


def notebook_loader(split: str, batch_size: int, data_root: str | os.PathLike[str] | None = None,
                    drop_last: bool = False, dataset: str = "mnist", augment: str = "none"):  # noqa: ANN201
    """The seed notebook's loader: torchvision MNIST (FashionMNIST) + ToTensor + DataLoader (train shuffled;
    ``augment``: torchvision transforms v2 on the split's images, ``augment.notebook_transforms``).

    The files are verified first, and the dataset torchvision builds is checked against the
    verified tensors, so unverified bytes never reach training.
    """
    from torchvision import datasets  # lazy: ~1 s that the fast loader (time to accuracy) never needs

    images, labels = load_split(split, data_root, dataset)
    if is_custom(dataset):  # your own data: already verified tensors; ToTensor's scaling, as for MNIST's files
        if augment == "none":
            data = TensorDataset(images.unsqueeze(1).float().div(255), labels)
        else:
            data = _Transformed(images.unsqueeze(1), labels, notebook_transforms(augment))
        return DataLoader(data, batch_size=batch_size, shuffle=split == "train", drop_last=drop_last)
    kind = getattr(datasets, dataset_spec(dataset).torchvision)
    data = kind(root=str(resolve_root(data_root)), train=split == "train", download=False,
                transform=notebook_transforms(augment))
    if not (torch.equal(data.data, images) and torch.equal(data.targets, labels)):
        folder = raw_dir(resolve_root(data_root), dataset_spec(dataset))
        raise DataError(f"torchvision read different bytes from {folder} than were verified; fix: run "
                        "`mnist-bench data --repair`")
    return DataLoader(data, batch_size=batch_size, shuffle=split == "train", drop_last=drop_last)


def draw_like_dataloader(n: int, shuffle: bool) -> torch.Tensor | None:
    """Consume the global torch RNG exactly as one ``DataLoader`` pass does; the shuffle order or None.

    Every DataLoader iterator draws one int64 (the workers' base seed), shuffled or not; with
    ``shuffle=True``, ``RandomSampler`` then draws one more to seed its own generator and calls
    ``randperm``. Drawing the same way keeps the fast loader's batches equal to the seed
    loader's for the same seed, across epochs with evaluation passes in between.
    """
    torch.empty((), dtype=torch.int64).random_()
    if not shuffle:
        return None
    generator = torch.Generator()
    generator.manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
    return torch.randperm(n, generator=generator)


class FastLoader:
    """Batches sliced from a whole split held on the device as uint8.

    Per batch: one gather (or slice) and a uint8 → float32 / 255 conversion on the device, the
    divisor a tensor on that device so that CUDA divides exactly as the CPU (and torchvision's
    ``ToTensor``) does: divided by a Python number, CUDA multiplies by its reciprocal instead, which
    differs in the last bit for some pixel values. The batches are bit-identical on every device.
    No per-sample Python work and no host-device copies after construction. ``augment`` (training
    only) transforms each batch on the device after the conversion.

    ``shard=(rank, world)`` (data-parallel training, ``train/dist.py``): every rank draws the same
    global order (the same seed), a global batch is ``world × batch_size`` consecutive indices of it,
    and rank ``r`` takes its ``r``-th slice; the last partial global batch is dropped so that every
    rank takes the same number of steps. World size 1 with batch ``world × b`` sees the same global
    batches, so data-parallel and one-process runs can be compared step for step.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool,
                 device: torch.device, drop_last: bool = False, augment: DeviceAugment | None = None,
                 shard: tuple[int, int] = (0, 1)) -> None:
        self.images = images.to(device).unsqueeze(1)  # (N, 1, 28, 28) uint8
        self.divisor = torch.tensor(255.0, device=device)  # a device tensor: true division everywhere
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device
        self.drop_last = drop_last  # skip a last partial batch (fixed shapes for CUDA graphs)
        self.augment = augment
        self.rank, self.world = shard

    def __len__(self) -> int:
        n, size = len(self.labels), self.batch_size * self.world  # the global batch
        return n // size if self.drop_last or self.world > 1 else -(-n // size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = draw_like_dataloader(n, self.shuffle)
        if order is not None:
            order = order.to(self.device)
        size = self.batch_size * self.world
        for start in range(self.rank * self.batch_size, len(self) * size, size):
            if order is None:
                x, y = self.images[start:start + self.batch_size], self.labels[start:start + self.batch_size]
            else:
                index = order[start:start + self.batch_size]
                x, y = self.images[index], self.labels[index]
            x = x.float().div_(self.divisor)
            yield (x if self.augment is None else self.augment(x)), y


def make_loader(loader: str, split: str, batch_size: int, device: torch.device,
                data_root: str | os.PathLike[str] | None = None, drop_last: bool = False,
                dataset: str = "mnist", augment: str = "none", seed: int = 0,
                shard: tuple[int, int] = (0, 1)):  # noqa: ANN201
    """The named loader (``notebook`` or ``fast``) for a dataset's split; train is shuffled, test is not.
    ``augment`` applies to the training split only; the fast loader's draws are seeded with ``seed``.

    ``shard=(rank, world)`` (fast loader only): the training split as ``FastLoader`` shards it; the test
    split cut into ``world`` contiguous parts, rank ``r`` holding part ``r``, so that every test image is
    counted once when the ranks' sums are added."""
    augment = augment if split == "train" else "none"
    rank, world = shard
    if loader == "notebook":
        if world > 1:
            raise ValueError("the notebook loader is not sharded; data-parallel runs use the fast loader")
        return notebook_loader(split, batch_size, data_root, drop_last, dataset, augment)
    if loader == "fast":
        images, labels = load_split(split, data_root, dataset)
        if split != "train" and world > 1:
            lo, hi = rank * len(labels) // world, (rank + 1) * len(labels) // world
            images, labels, shard = images[lo:hi], labels[lo:hi], (0, 1)
        # each rank augments its own images with its own stream
        return FastLoader(images, labels, batch_size, shuffle=split == "train", device=device, drop_last=drop_last,
                          augment=device_augment(augment, seed + rank, device), shard=shard)
    raise ValueError(f"unknown loader {loader!r}; known: seed, fast")
