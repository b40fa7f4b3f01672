"""The lab's generator and discriminator: small MLPs, the same for every objective and regularizer.

Both work in the lab's training coordinates (the mixture divided by its largest |mode mean|, so the
modes lie in [-1, 1]^2). Neither has batch norm, so that the WGAN-GP penalty (which treats samples
independently, Gulrajani et al. 2017, sec. 4) and the spectral regularizers see a plain network.

- `MLPGenerator`: z ~ N(0, I_2) -> 2-D point, `depth` hidden ReLU layers, plus a fixed linear skip
  `skip_gain * z`. The skip makes G's initial samples a Gaussian that already spans the modes
  (std 0.5 against modes in [-1, 1]), so the game starts by moving mass locally into modes instead of
  first inflating a tiny blob, which in our runs overshot to the square's outline and left the inner
  modes empty.
- `MLPDiscriminator`: x -> [x, sin(2 pi B x), cos(2 pi B x)] -> `depth` hidden ReLU layers -> one raw
  logit (no sigmoid: the objectives take logits). B is a fixed random (2, F) matrix with entries
  N(0, sigma^2): random Fourier features (Tancik et al. 2020, "Fourier Features Let Networks Learn High
  Frequency Functions in Low Dimensional Domains"). A plain ReLU MLP on 2-D input learns the fine
  structure of 25 modes 0.0125 wide very slowly (spectral bias): its landscape stayed a smooth
  plateau over all modes for thousands of steps, and G's samples stayed smeared between them. The
  features are buffers, not parameters: WGAN's clipping and the spectral regularizers act on the
  trained Linear layers only.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _mlp(in_features: int, width: int, depth: int, out_features: int, negative_slope: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    features = in_features
    for _ in range(depth):
        layers.append(nn.Linear(features, width))
        layers.append(nn.LeakyReLU(negative_slope) if negative_slope > 0 else nn.ReLU())
        features = width
    layers.append(nn.Linear(features, out_features))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> point in the plane (N, 2)."""

    def __init__(
        self, z_dim: int = 2, width: int = 64, depth: int = 4, negative_slope: float = 0.0, skip_gain: float = 0.5
    ):
        super().__init__()
        if skip_gain and z_dim < 2:
            raise ValueError("the skip connection needs z_dim >= 2")
        self.z_dim = z_dim
        self.skip_gain = skip_gain
        self.net = _mlp(z_dim, width, depth, 2, negative_slope)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        if self.skip_gain:
            out = out + self.skip_gain * z[:, :2]
        return out


class FourierFeatures(nn.Module):
    """x -> [x, sin(2 pi x B), cos(2 pi x B)] with a fixed random B ~ N(0, sigma^2) of shape (2, F)."""

    def __init__(self, num_frequencies: int, sigma: float):
        super().__init__()
        self.register_buffer("frequencies", torch.randn(2, num_frequencies) * sigma)
        self.out_features = 2 + 2 * num_frequencies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = (2 * math.pi) * (x @ self.frequencies)
        return torch.cat([x, angles.sin(), angles.cos()], dim=1)


class MLPDiscriminator(nn.Module):
    """point (N, 2) -> raw logit (N, 1). fourier_features=0 gives the plain MLP on (x, y)."""

    def __init__(
        self,
        width: int = 64,
        depth: int = 3,
        negative_slope: float = 0.0,
        fourier_features: int = 64,
        fourier_sigma: float = 1.5,
    ):
        super().__init__()
        if fourier_features > 0:
            self.features: nn.Module = FourierFeatures(fourier_features, fourier_sigma)
            in_features = self.features.out_features
        else:
            self.features = nn.Identity()
            in_features = 2
        self.net = _mlp(in_features, width, depth, 1, negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.features(x))
