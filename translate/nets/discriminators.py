"""Discriminators: PatchGAN (any depth), PixelGAN, multi-scale PatchGAN, DiscoGAN's D; projection heads.

All return raw logits (no sigmoid): the objectives in `translate.core.objectives` work on logits.
PatchGAN and PixelGAN follow the reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix,
`models/networks.py`): 4x4 convolutions, LeakyReLU(0.2), no norm on the first layer, channel multipliers
doubling per layer and capped at 8, one stride-1 layer before the 1-channel head.

A conditional pix2pix discriminator that judges (input, output) pairs is the same network with
`in_channels = 6`: the caller concatenates the two images.

Projection (Miyato & Koyama 2018, eq. 3): for a label or text condition given as a vector c,

    D(x, c) = psi(phi(x)) + <embed(c), phi(x)>

with phi the feature map before the last convolution, psi that convolution, and embed a linear map from
the condition to phi's channels. For a PatchGAN it is applied per patch: each output location's
projection term is <embed(c), mean of phi over the same window the head convolution reads> (4x4 with
padding 1 for a PatchGAN, 1x1 for PixelGAN). The projected map thus has exactly the logit map's size,
and the whole head equals one convolution whose kernel is psi's plus embed(c)/(k*k) at every tap.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from translate.errors import UsageError
from translate.nets.layers import (
    ConvNormAct,
    check_condition,
    check_norm,
    config_from_dict,
    conv_bias,
    is_tracing,
    leaky_relu,
    make_norm,
    receptive_field,
    smallest_valid_size,
)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Everything needed to rebuild a discriminator's architecture; JSON-serializable."""

    name: str
    in_channels: int = 3
    ndf: int = 64
    n_layers: int = 3
    norm: str = "instance"
    condition_dim: int = 0
    num_scales: int = 1  # multiscale only

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DiscriminatorConfig":
        return config_from_dict(cls, data, "discriminator")


class ProjectionHead(nn.Module):
    """The projection term <embed(c), phi> per output location, pooled over the head conv's window."""

    def __init__(self, condition_dim: int, channels: int, kernel: int, padding: int):
        super().__init__()
        # No bias: a condition-only offset would not depend on x (Miyato & Koyama drop it too).
        self.embed = nn.Linear(condition_dim, channels, bias=False)
        self.kernel = kernel
        self.padding = padding

    def forward(self, phi: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        e = self.embed(condition)
        inner = (phi * e[:, :, None, None]).sum(dim=1, keepdim=True)
        if self.kernel == 1 and self.padding == 0:
            return inner
        # count_include_pad: the zero padding of the head conv counts, as it does in psi.
        return F.avg_pool2d(inner, self.kernel, stride=1, padding=self.padding, count_include_pad=True)


class _Checked(nn.Module):
    """A discriminator of `features` -> `head` logits, plus the projection term when conditioned."""

    min_size: int = 1

    def judge(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        phi = self.features(x)
        logits = self.head(phi)
        if self.projection is not None:
            logits = logits + self.projection(phi, condition)
        return logits

    def check_image_size(self, height: int, width: int) -> None:
        if height < self.min_size or width < self.min_size:
            raise UsageError(f"{self.config.name} discriminator needs images of at least "
                             f"{self.min_size}x{self.min_size} (got {height}x{width}); use larger images or "
                             "fewer layers")


class PatchDiscriminator(_Checked):
    """PatchGAN (Isola et al. 2017, sec. 3.2.2): classifies overlapping patches as real or fake.

    features[0]      4x4 stride-2 conv, ndf channels, LeakyReLU (no norm)
    features[1..n-1] 4x4 stride-2 conv, ndf * min(2**i, 8) channels, norm, LeakyReLU
    features[n]      4x4 stride-1 conv, ndf * min(2**n, 8) channels, norm, LeakyReLU
    head             4x4 stride-1 conv to one logit per patch

    n_layers = 3 is the 70x70 PatchGAN (receptive field 70; a 256x256 input gives a 30x30 map).
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 condition_dim: int = 0, name: str | None = None):
        super().__init__()
        if n_layers < 1:
            raise UsageError(f"a PatchGAN needs n_layers >= 1, got {n_layers}")
        check_norm(norm)
        bias = conv_bias(norm)
        self.condition_dim = condition_dim
        self.config = DiscriminatorConfig(name or ("basic" if n_layers == 3 else "n_layers"), in_channels, ndf,
                                          n_layers, norm, condition_dim)
        widths = [ndf * min(2**i, 8) for i in range(n_layers + 1)]
        stages = [ConvNormAct(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.Identity(), leaky_relu())]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            stages.append(ConvNormAct(nn.Conv2d(widths[i - 1], widths[i], 4, stride=stride, padding=1, bias=bias),
                                      make_norm(norm, widths[i]), leaky_relu()))
        self.features = nn.Sequential(*stages)
        self.head = nn.Conv2d(widths[-1], 1, 4, stride=1, padding=1)
        self.projection = ProjectionHead(condition_dim, widths[-1], 4, 1) if condition_dim > 0 else None
        layers = [(4, 2, 1)] * n_layers + [(4, 1, 1), (4, 1, 1)]
        self.receptive_field = receptive_field(layers)
        self.min_size = smallest_valid_size(layers)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if not is_tracing():
            self.check_image_size(x.shape[-2], x.shape[-1])
            check_condition(condition, self.condition_dim, x.shape[0], "this discriminator")
        return self.judge(x, condition)


class PixelDiscriminator(_Checked):
    """1x1 PixelGAN (Isola et al. 2017): judges each pixel's colour alone.

    features: 1x1 conv to ndf, LeakyReLU; 1x1 conv to 2*ndf, norm, LeakyReLU. head: 1x1 conv to 1.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, norm: str = "instance", condition_dim: int = 0):
        super().__init__()
        check_norm(norm)
        bias = conv_bias(norm)
        self.condition_dim = condition_dim
        self.config = DiscriminatorConfig("pixel", in_channels, ndf, 0, norm, condition_dim)
        self.features = nn.Sequential(
            ConvNormAct(nn.Conv2d(in_channels, ndf, 1), nn.Identity(), leaky_relu()),
            ConvNormAct(nn.Conv2d(ndf, 2 * ndf, 1, bias=bias), make_norm(norm, 2 * ndf), leaky_relu()))
        self.head = nn.Conv2d(2 * ndf, 1, 1, bias=bias)  # the reference's bias rule, also on the head
        self.projection = ProjectionHead(condition_dim, 2 * ndf, 1, 0) if condition_dim > 0 else None
        self.receptive_field = 1

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if not is_tracing():
            check_condition(condition, self.condition_dim, x.shape[0], "this discriminator")
        return self.judge(x, condition)


class MultiScaleDiscriminator(_Checked):
    """PatchGANs at `num_scales` image scales (Wang et al. 2018, pix2pixHD, sec. 3.2), each with its own
    weights; scale s sees the image average-pooled s times (3x3, stride 2). Returns a list of logit maps,
    finest first, which every objective accepts."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 condition_dim: int = 0, num_scales: int = 2):
        super().__init__()
        if not 1 <= num_scales <= 4:
            raise UsageError(f"num_scales must be between 1 and 4, got {num_scales}")
        self.condition_dim = condition_dim
        self.config = DiscriminatorConfig("multiscale", in_channels, ndf, n_layers, norm, condition_dim, num_scales)
        self.scales = nn.ModuleList(
            [PatchDiscriminator(in_channels, ndf, n_layers, norm, condition_dim) for _ in range(num_scales)])
        self.min_size = self.scales[0].min_size * 2 ** (num_scales - 1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> list[torch.Tensor]:
        if not is_tracing():
            self.check_image_size(x.shape[-2], x.shape[-1])
        outputs = []
        for i, scale in enumerate(self.scales):
            if i > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x, condition))
        return outputs


class DiscoGANDiscriminator(_Checked):
    """DiscoGAN's discriminator (Kim et al. 2017; SKTBrain/DiscoGAN): four 4x4 stride-2 convs (ndf .. 8ndf,
    LeakyReLU(0.2), norm on all but the first) and a 4x4 valid conv to the logit (1x1 for 64x64 inputs).

    Returns (logits, features) where features are the activations of the 2nd, 3rd and 4th conv stages,
    the ones DiscoGAN's feature-matching loss compares.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, norm: str = "batch", condition_dim: int = 0):
        super().__init__()
        check_norm(norm)
        self.condition_dim = condition_dim
        self.config = DiscriminatorConfig("discogan", in_channels, ndf, 4, norm, condition_dim)
        widths = [ndf, 2 * ndf, 4 * ndf, 8 * ndf]
        self.features = nn.ModuleList([
            ConvNormAct(nn.Conv2d(in_channels if k == 0 else widths[k - 1], widths[k], 4, stride=2, padding=1,
                                  bias=True if k == 0 else conv_bias(norm)),
                        nn.Identity() if k == 0 else make_norm(norm, widths[k]), leaky_relu())
            for k in range(4)])
        self.head = nn.Conv2d(8 * ndf, 1, 4, stride=1, padding=0)
        self.projection = ProjectionHead(condition_dim, 8 * ndf, 4, 0) if condition_dim > 0 else None
        layers = [(4, 2, 1)] * 4 + [(4, 1, 0)]
        self.receptive_field = receptive_field(layers)
        self.min_size = smallest_valid_size(layers)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if not is_tracing():
            self.check_image_size(x.shape[-2], x.shape[-1])
            check_condition(condition, self.condition_dim, x.shape[0], "this discriminator")
        feats = []
        h = x
        for stage in self.features:
            h = stage(h)
            feats.append(h)
        logits = self.head(h)
        if self.projection is not None:
            logits = logits + self.projection(h, condition)
        return logits, feats[1:]
