"""Training-data augmentation (``--augment``): random affine maps (rotation, translation, scale), and
optionally an elastic distortion on top, drawn per image.

Two implementations of one recipe (``AUGMENTS`` holds its ranges, the one place they are set):

- ``DeviceAugment``, used by the fast loader: the whole batch in two kernels on the device it already lives
  on, ``affine_grid`` + ``grid_sample`` (bilinear, zeros outside), every random draw from the loader's own
  ``torch.Generator`` seeded from the run's seed, so a run is repeatable and the global RNG (and with it
  the shuffle order the notebook loader shares) is untouched;
- ``notebook_transforms``, used by the notebook's loader: torchvision transforms v2 (``RandomAffine``,
  ``ElasticTransform``) per image in the DataLoader, drawing from the global RNG that the run seeds, as a
  notebook user would write it.

Labels are never changed. Test and evaluation data are never augmented.

    >>> AUGMENTS["affine"].degrees, AUGMENTS["affine"].translate, AUGMENTS["affine"].scale
    (10.0, 0.1, (0.9, 1.1))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import AUGMENTATIONS


@dataclass(frozen=True)
class AugmentSpec:
    """One ``--augment`` choice: the affine ranges (``degrees`` ±, ``translate`` ± as a fraction of the image
    side, ``scale`` min–max), and the elastic displacement (torchvision's ``alpha`` and ``sigma``; alpha 0:
    none)."""

    name: str
    degrees: float
    translate: float
    scale: tuple[float, float]
    elastic_alpha: float = 0.0
    elastic_sigma: float = 0.0
    help: str = ""


AUGMENTS: dict[str, AugmentSpec] = {a.name: a for a in (
    AugmentSpec("none", 0.0, 0.0, (1.0, 1.0), help="no augmentation (the notebook's way)"),
    AugmentSpec("affine", 10.0, 0.1, (0.9, 1.1), help="random rotation ±10°, shift ±10% and scale 0.9–1.1 per image"),
    AugmentSpec("elastic", 10.0, 0.1, (0.9, 1.1), 34.0, 4.0,
                help="affine, then an elastic distortion (alpha 34, sigma 4) per image"),
)}


if tuple(AUGMENTS) != AUGMENTATIONS:  # the names live in config (the flag's choices), the ranges here
    raise ImportError(f"data/augment.py defines {tuple(AUGMENTS)}, config.AUGMENTATIONS is {AUGMENTATIONS}")




def _gaussian_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    radius = int(8 * sigma + 1) // 2  # torchvision's kernel size, 8σ + 1 made odd
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


class DeviceAugment:
    """A batch's augmentation on its own device, from a generator seeded with ``seed``.

    Per image: an angle, a shift and a scale drawn uniformly from the spec's ranges give a 2×3 map from
    output to input coordinates (``affine_grid``'s convention, ``align_corners=False``); an elastic spec
    adds a smooth random displacement to that grid as torchvision's ``ElasticTransform(alpha, sigma)`` draws
    it (uniform noise in [-1, 1] per pixel and axis, blurred by a Gaussian of ``sigma`` pixels, times
    ``alpha / side`` in grid units); ``grid_sample`` reads the image there.
    """

    def __init__(self, spec: AugmentSpec, seed: int, device: torch.device) -> None:
        self.spec = spec
        self.device = device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed % 2**63)
        self.kernel = _gaussian_kernel(spec.elastic_sigma, device) if spec.elastic_alpha else None

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=self.generator, device=self.device) * (high - low) + low

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        s = self.spec
        angle = self._uniform(n, -s.degrees, s.degrees) * (math.pi / 180)
        scale = self._uniform(n, *s.scale)
        # A shift of t pixels is 2t/side in grid units; the image moves by +t, so the grid by -t.
        tx = self._uniform(n, -s.translate, s.translate) * 2
        ty = self._uniform(n, -s.translate, s.translate) * 2
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # Output → input: the inverse of (shift ∘ rotate ∘ scale): scale⁻¹ · rotate⁻¹ · (p − t).
        theta = torch.stack([torch.stack([cos, sin, -(cos * tx + sin * ty)], 1),
                             torch.stack([-sin, cos, -(-sin * tx + cos * ty)], 1)], 1)
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        if self.kernel is not None:
            grid = grid + self._displacement(n, h, w)
        return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)

    def _displacement(self, n: int, h: int, w: int) -> torch.Tensor:
        noise = torch.rand(n * 2, 1, h, w, generator=self.generator, device=self.device) * 2 - 1
        k = self.kernel
        pad = len(k) // 2
        noise = F.conv2d(F.pad(noise, (pad, pad, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
        noise = F.conv2d(F.pad(noise, (0, 0, pad, pad), mode="reflect"), k.view(1, 1, -1, 1))
        # torchvision's convention: alpha / side in grid units, x displacement then y (the grid's last axis).
        scale = torch.tensor([1 / w, 1 / h], device=self.device) * self.spec.elastic_alpha
        return noise.view(n, 2, h, w).permute(0, 2, 3, 1) * scale


def device_augment(name: str, seed: int, device: torch.device) -> DeviceAugment | None:
    """The fast loader's augmentation for ``--augment name`` (None for none)."""
    return None if name == "none" else DeviceAugment(AUGMENTS[name], seed, device)


def notebook_transforms(name: str):  # noqa: ANN201 - a torchvision transform
    """The notebook loader's transform for ``--augment name``: torchvision's ``ToTensor`` for none (as the
    notebook), else transforms v2 ending in the same affine (and elastic) ranges as ``DeviceAugment``."""
    from torchvision import transforms
    from torchvision.transforms import v2

    s = AUGMENTS[name]
    if s.name == "none":
        return transforms.ToTensor()
    steps = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
             v2.RandomAffine(degrees=s.degrees, translate=(s.translate, s.translate), scale=s.scale,
                             interpolation=v2.InterpolationMode.BILINEAR)]
    if s.elastic_alpha:
        steps.append(v2.ElasticTransform(alpha=s.elastic_alpha, sigma=s.elastic_sigma))
    return v2.Compose(steps)
