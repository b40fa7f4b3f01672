"""The lab's generator and discriminator: small MLPs, the same for every objective and regularizer.

D ends in a linear layer that emits a raw logit (no sigmoid): the objectives in `translate.core`
work on logits. Neither network has batch norm, so that the WGAN-GP penalty (which treats samples
independently, Gulrajani et al. sec. 4) and spectral normalization see the plain Lipschitz structure.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _mlp(
    in_features: int, width: int, depth: int, out_features: int, negative_slope: float, batch_norm: bool = False
) -> nn.Sequential:
    layers: list[nn.Module] = []
    features = in_features
    for _ in range(depth):
        layers.append(nn.Linear(features, width, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width, momentum=0.05))
        layers.append(nn.LeakyReLU(negative_slope) if negative_slope > 0 else nn.ReLU())
        features = width
    layers.append(nn.Linear(features, out_features))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> point in the plane (N, 2)."""

    def __init__(
        self,
        z_dim: int = 2,
        width: int = 256,
        depth: int = 3,
        negative_slope: float = 0.0,
        batch_norm: bool = False,
        skip_gain: float = 0.0,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.skip_gain = skip_gain
        self.net = _mlp(z_dim, width, depth, 2, negative_slope, batch_norm)

    def forward(self, z):
        out = self.net(z)
        if self.skip_gain:
            out = out + self.skip_gain * z[:, :2]
        return out


class FourierFeatures(nn.Module):
    """x -> [x, sin(2 pi x B), cos(2 pi x B)] with a fixed random B ~ N(0, sigma^2) (Tancik et al. 2020)."""

    def __init__(self, num_frequencies: int, sigma: float, generator: torch.Generator | None = None):
        super().__init__()
        self.register_buffer("frequencies", torch.randn(2, num_frequencies, generator=generator) * sigma)
        self.out_features = 2 + 2 * num_frequencies

    def forward(self, x):
        angles = 2 * math.pi * x @ self.frequencies
        return torch.cat([x, angles.sin(), angles.cos()], dim=1)


class MLPDiscriminator(nn.Module):
    """point (N, 2) -> raw logit (N, 1)."""

    def __init__(
        self,
        width: int = 256,
        depth: int = 3,
        negative_slope: float = 0.0,
        fourier_features: int = 0,
        fourier_sigma: float = 3.0,
    ):
        super().__init__()
        self.features = FourierFeatures(fourier_features, fourier_sigma) if fourier_features > 0 else nn.Identity()
        in_features = self.features.out_features if fourier_features > 0 else 2
        self.net = _mlp(in_features, width, depth, 1, negative_slope)

    def forward(self, x):
        return self.net(self.features(x))
