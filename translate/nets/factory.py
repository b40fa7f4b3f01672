"""One factory per network kind, with the same keyword arguments for every architecture (as timm does).

    G = create_generator("resnet_9blocks")                    # CycleGAN's G
    G = create_generator("unet_256", norm="batch", dropout=True)   # pix2pix's G
    D = create_discriminator("basic", in_channels=6, norm="batch")  # pix2pix's conditional D
    G2 = build_generator_from_config(G.config)                 # same architecture, e.g. to load weights

`norm=None` picks the architecture's published norm (`PUBLISHED_NORMS`): instance norm for the ResNet
generators and PatchGANs (CycleGAN), batch norm for the U-Nets (pix2pix) and for DiscoGAN. The reference
code's command-line default is instance norm everywhere; pix2pix sets batch norm itself.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from translate.errors import UsageError
from translate.nets.discriminators import (
    DiscoGANDiscriminator,
    DiscriminatorConfig,
    MultiScaleDiscriminator,
    PatchDiscriminator,
    PixelDiscriminator,
)
from translate.nets.generators import (
    GENERATOR_NAMES,
    DiscoGANGenerator,
    GeneratorConfig,
    ResnetGenerator,
    UNetGenerator,
    check_size,
    parse_generator_name,
    size_rule,
)
from translate.nets.layers import check_norm, check_upsample, init_weights

DISCRIMINATOR_NAMES = ("basic", "n_layers", "pixel", "multiscale", "discogan")

PUBLISHED_NORMS = {
    "resnet": "instance", "unet": "batch", "discogan": "batch",
    "basic": "instance", "n_layers": "instance", "pixel": "instance", "multiscale": "instance",
}


def _check_channels(**values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"{key} must be a positive integer, got {value!r}")


def create_generator(name: str, *, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                     norm: str | None = None, dropout: bool = False, condition_dim: int = 0,
                     init: str = "normal", init_gain: float = 0.02, generator: torch.Generator | None = None,
                     **kwargs: Any) -> nn.Module:
    """A generator by name (`GENERATOR_NAMES`; also `resnet_<n>blocks` and `unet_<2**k>`), initialized
    with the reference init. `generator` seeds the init; kwargs: `padding` ("reflect", "replicate",
    "zero") for the ResNet generators, `upsample` ("transpose", the reference's, or "resize": nearest x2
    and a 3x3 conv) for all. The network's `.config` rebuilds it."""
    family, depth = parse_generator_name(name)
    _check_channels(in_channels=in_channels, out_channels=out_channels, ngf=ngf)
    if condition_dim < 0:
        raise UsageError(f"condition_dim must be >= 0, got {condition_dim}")
    norm = check_norm(norm) if norm is not None else PUBLISHED_NORMS[family]
    padding = kwargs.pop("padding", "reflect")
    upsample = check_upsample(kwargs.pop("upsample", "transpose"))
    if kwargs:
        raise UsageError(f"unexpected generator option(s) {', '.join(sorted(kwargs))}")
    if family == "resnet":
        net = ResnetGenerator(in_channels, out_channels, ngf, norm, dropout, depth, padding, condition_dim, upsample)
    else:
        if padding not in ("reflect", "zero"):
            raise UsageError(f"{name} has no padding option; it pads with zeros")
        if family == "unet":
            net = UNetGenerator(in_channels, out_channels, ngf, norm, dropout, depth, condition_dim, upsample)
        else:
            net = DiscoGANGenerator(in_channels, out_channels, ngf, norm, dropout, condition_dim, upsample)
    return init_weights(net, init, init_gain, generator)


def create_discriminator(name: str, *, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                         norm: str | None = None, condition_dim: int = 0, num_scales: int = 2,
                         init: str = "normal", init_gain: float = 0.02, generator: torch.Generator | None = None
                         ) -> nn.Module:
    """A discriminator by name (`DISCRIMINATOR_NAMES`): "basic" is the 70x70 PatchGAN (n_layers=3 whatever
    `n_layers` says), "n_layers" a PatchGAN of `n_layers` stride-2 layers, "pixel" the 1x1 PixelGAN,
    "multiscale" `num_scales` PatchGANs of `n_layers`, "discogan" DiscoGAN's D (returns logits and
    features). With condition_dim > 0 a projection head adds <embed(c), phi(x)> to the logits."""
    if name not in DISCRIMINATOR_NAMES:
        raise UsageError(f"unknown discriminator {name!r}; choose one of {', '.join(DISCRIMINATOR_NAMES)}")
    _check_channels(in_channels=in_channels, ndf=ndf)
    if condition_dim < 0:
        raise UsageError(f"condition_dim must be >= 0, got {condition_dim}")
    norm = check_norm(norm) if norm is not None else PUBLISHED_NORMS[name]
    if name == "basic":
        net = PatchDiscriminator(in_channels, ndf, 3, norm, condition_dim, name="basic")
    elif name == "n_layers":
        net = PatchDiscriminator(in_channels, ndf, n_layers, norm, condition_dim, name="n_layers")
    elif name == "pixel":
        net = PixelDiscriminator(in_channels, ndf, norm, condition_dim)
    elif name == "multiscale":
        net = MultiScaleDiscriminator(in_channels, ndf, n_layers, norm, condition_dim, num_scales)
    else:
        net = DiscoGANDiscriminator(in_channels, ndf, norm, condition_dim)
    return init_weights(net, init, init_gain, generator)


def build_generator_from_config(config: GeneratorConfig | Mapping[str, Any]) -> nn.Module:
    """The generator that `config` (a GeneratorConfig or its dict, e.g. from exported metadata)
    describes, freshly initialized; load weights into it."""
    if not isinstance(config, GeneratorConfig):
        config = GeneratorConfig.from_dict(config)
    kwargs = {"padding": config.padding} if config.name.startswith("resnet") else {}
    kwargs["upsample"] = config.upsample
    return create_generator(config.name, in_channels=config.in_channels, out_channels=config.out_channels,
                            ngf=config.ngf, norm=config.norm, dropout=config.dropout,
                            condition_dim=config.condition_dim, **kwargs)


def build_discriminator_from_config(config: DiscriminatorConfig | Mapping[str, Any]) -> nn.Module:
    if not isinstance(config, DiscriminatorConfig):
        config = DiscriminatorConfig.from_dict(config)
    return create_discriminator(config.name, in_channels=config.in_channels, ndf=config.ndf,
                                n_layers=config.n_layers, norm=config.norm, condition_dim=config.condition_dim,
                                num_scales=max(config.num_scales, 1))


def required_multiple(name: str) -> int:
    """What a generator's input height and width must be multiples of: 4 for the ResNet generators,
    2**num_downs for a U-Net (unet_256: 256, unet_128: 128), 16 for DiscoGAN."""
    return size_rule(name)[0]


def check_image_size(name: str, height: int, width: int) -> None:
    """UsageError unless a generator called `name` accepts (height, width) images."""
    multiple, min_size = size_rule(name)
    check_size(name, multiple, min_size, height, width)
