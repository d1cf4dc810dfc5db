"""``--augment``: the fast loader's augmentation on the device and the notebook loader's torchvision v2
transforms change the training images, keep the labels, and are seeded (real MNIST, CPU)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch

from mnist_models import data
from mnist_models.data.augment import AUGMENTS, DeviceAugment

CPU = torch.device("cpu")


def _epoch(loader, seed: int, batches: int = 5) -> list[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)
    return list(itertools.islice(iter(loader), batches))


@pytest.mark.parametrize("kind", ["fast", "notebook"])
@pytest.mark.parametrize("augment", ["affine", "elastic"])
def test_augment_changes_images_and_keeps_labels(mnist_root, kind, augment):
    """The same seed gives the same shuffle as without augmentation: the labels match batch by batch,
    the images differ, and they stay MNIST-shaped floats in [0, 1]."""
    plain = _epoch(data.make_loader(kind, "train", 64, CPU, mnist_root), seed=3)
    augmented = _epoch(data.make_loader(kind, "train", 64, CPU, mnist_root, augment=augment, seed=3), seed=3)
    for (xp, yp), (xa, ya) in zip(plain, augmented, strict=True):
        assert torch.equal(yp, ya)
        assert xa.shape == xp.shape == (64, 1, 28, 28) and xa.dtype == torch.float32
        assert 0 <= xa.min() and xa.max() <= 1
        changed = (xa - xp).abs().flatten(1).amax(1) > 0.05
        assert changed.float().mean() > 0.9  # nearly every image moved (a draw near identity may not)


def test_test_split_is_never_augmented(mnist_root):
    plain = next(iter(data.make_loader("fast", "test", 100, CPU, mnist_root)))
    asked = next(iter(data.make_loader("fast", "test", 100, CPU, mnist_root, augment="elastic", seed=1)))
    assert torch.equal(plain[0], asked[0])


def test_fast_loader_augmentation_is_seeded_and_leaves_the_global_rng_alone(mnist_root):
    def first_batches(aug_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        loader = data.make_loader("fast", "train", 32, CPU, mnist_root, augment="affine", seed=aug_seed)
        images = torch.cat([x for x, _ in _epoch(loader, seed=0, batches=3)])
        return images, torch.rand(3)  # the global RNG after the epoch's batches

    a, rng_a = first_batches(7)
    again, rng_again = first_batches(7)
    other, rng_other = first_batches(8)
    assert torch.equal(a, again) and not torch.equal(a, other)
    assert torch.equal(rng_a, rng_other) and torch.equal(rng_a, rng_again)  # own generator, not the global one


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Total ink and centre of mass (pixels, from the image centre) of each image."""
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    mass = x.sum((1, 2, 3))
    centre = torch.stack([(x[:, 0] * xs).sum((1, 2)), (x[:, 0] * ys).sum((1, 2))], 1) / mass[:, None]
    return mass, centre


def test_affine_geometry_moves_digits_as_its_ranges_say(mnist_root):
    """A shift keeps each digit's ink and moves its centre by at most ±10% of the side per axis; a rotation
    turns a dot about the image centre by at most ±10°, keeping its distance; a scale changes the ink by
    at most its square."""
    images, _ = data.load_split("train", mnist_root)
    x = images[:512].unsqueeze(1).float() / 255
    mass, centre = _moments(x)
    base = AUGMENTS["affine"]

    # A few digits touch the border, where a move crops ink: the checks hold for the ones that keep it all.
    shifted = DeviceAugment(replace(base, degrees=0.0, scale=(1.0, 1.0)), 0, CPU)(x)
    mass_s, centre_s = _moments(shifted)
    kept = torch.isclose(mass_s, mass, rtol=0.02)
    assert kept.float().mean() > 0.95 and (mass_s <= mass * 1.02).all()
    moved = (centre_s - centre).abs()[kept]
    assert moved.max() <= 0.1 * 28 + 0.05 and moved.mean() > 0.5

    # MNIST centres each digit's mass in the image, so a rotation shows on a dot 8 px right of the centre.
    dot = torch.zeros(256, 1, 28, 28)
    dot[:, :, 13:15, 21:23] = 1.0
    rotated = DeviceAugment(replace(base, translate=0.0, scale=(1.0, 1.0)), 0, CPU)(dot)
    mass_r, centre_r = _moments(rotated)
    assert torch.allclose(mass_r, torch.full_like(mass_r, 4.0), rtol=0.05)
    assert torch.allclose(centre_r.norm(dim=1), torch.full_like(mass_r, 8.0), atol=0.2)
    turn = torch.rad2deg(torch.atan2(centre_r[:, 1], centre_r[:, 0]))
    assert turn.abs().max() <= base.degrees + 0.5 and turn.std() > base.degrees / 3  # uniform on ±10°: std 5.8

    scaled = DeviceAugment(replace(base, degrees=0.0, translate=0.0), 0, CPU)(x)
    ratio = _moments(scaled)[0] / mass
    low, high = base.scale
    assert (ratio <= high**2 + 0.03).all() and ratio.std() > 0.02
    assert ((ratio >= low**2 - 0.03).float().mean() > 0.95)  # less only where a scaled-up digit lost ink


def test_elastic_adds_a_distortion_to_the_affine_map(mnist_root):
    images, _ = data.load_split("train", mnist_root)
    x = images[:64].unsqueeze(1).float() / 255
    affine = DeviceAugment(AUGMENTS["affine"], 5, CPU)(x)
    elastic = DeviceAugment(AUGMENTS["elastic"], 5, CPU)(x)  # the same affine draws, then the displacement
    assert not torch.allclose(affine, elastic, atol=0.05)
    ratio = _moments(elastic)[0] / _moments(affine)[0]  # it stretches and squeezes strokes locally, ink kept
    assert abs(ratio.median() - 1) < 0.05 and ((ratio > 0.6) & (ratio < 1.5)).all()
