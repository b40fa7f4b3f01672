"""The two 2-D Gaussian mixtures of PacGAN's Table 1 (Lin et al. 2018, sec. 4.1), after VEEGAN.

- `ring8`: 8 Gaussians with means on the unit circle at angles 2*pi*k/8, std 0.01.
- `grid25`: 25 Gaussians with means on {-4, -2, 0, 2, 4}^2, std 0.05.

Each component has weight 1/K and an isotropic covariance std^2 * I (the published code's settings).
PacGAN trains on a fixed set of 100,000 samples; here every batch is drawn afresh from the mixture,
which is the same distribution without the finite-set noise.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from translate.errors import UsageError

from translate.lab.config import MIXTURE_NAMES


@dataclass(frozen=True)
class GaussianMixture:
    """K isotropic Gaussians of equal weight in the plane."""

    name: str
    means: torch.Tensor  # (K, 2), float64
    std: float

    @property
    def num_modes(self) -> int:
        return self.means.shape[0]

    @property
    def extent(self) -> float:
        """Half-width of a square that holds every mode with a margin, for plots."""
        return float(self.means.abs().max()) * 1.5 + 0.5

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n float32 samples: a uniformly chosen mode plus std * N(0, I)."""
        modes = torch.randint(self.num_modes, (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return (self.means[modes] + self.std * noise).float()


def ring8() -> GaussianMixture:
    angles = torch.arange(8, dtype=torch.float64) * (2.0 * math.pi / 8)
    return GaussianMixture("ring8", torch.stack([angles.cos(), angles.sin()], dim=1), std=0.01)


def grid25() -> GaussianMixture:
    coords = (-4.0, -2.0, 0.0, 2.0, 4.0)
    means = torch.tensor(list(itertools.product(coords, coords)), dtype=torch.float64)
    return GaussianMixture("grid25", means, std=0.05)


def get_mixture(name: str) -> GaussianMixture:
    """The mixture called `name` (ring8 or grid25)."""
    key = name.strip().lower()
    if key == "ring8":
        return ring8()
    if key == "grid25":
        return grid25()
    raise UsageError(f"unknown mixture {name!r}; choose one of {', '.join(MIXTURE_NAMES)}")
