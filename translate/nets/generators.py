"""Generators: the ResNet and U-Net generators of CycleGAN/pix2pix, and DiscoGAN's encoder-decoder.

Layer order, kernel sizes, padding, norms, dropout and biases follow the reference implementation
(junyanz/pytorch-CycleGAN-and-pix2pix, `models/networks.py`) so that its published weights load here
(`translate.io.reference` maps its `model.N...` keys onto the names used below).

Conditioning. With `condition_dim > 0` a generator takes a condition vector c of shape (N, condition_dim)
(a label embedding or a text encoding, made outside the generator) and modulates its features with FiLM
(Perez et al. 2018): h <- h * (1 + gamma(c)) + beta(c), per channel, placed *after* a normalization layer,
as conditional instance norm does (Dumoulin et al. 2017). Why there and not elsewhere:

- Before a norm, a per-channel shift is removed by the norm (instance norm removes it exactly), so the
  condition would fade; after the norm and before the ReLU it decides which units fire, which no later
  layer can undo.
- FiLM costs one small linear layer per modulated stage. Concatenating a broadcast condition to the input
  image instead would widen the full-resolution 7x7 stem convolution by condition_dim channels (a
  64-dim embedding at 256x256 multiplies the stem's cost by about 20) and reach the deep layers only
  through many convolutions.
- FiLM layers are extra modules (`...film.linear.*`); with `condition_dim = 0` there are none and the
  parameter layout is exactly the plain network's, so reference weights still map.

Upsampling. Every generator doubles its resolution with transposed convolutions, as the reference does
(`upsample="transpose"`, the default, the layout of published weights). A 3x3 transposed conv of stride
2 (the ResNet generators) covers the output pixels unevenly, and early in training its outputs carry a
fine checkerboard (Odena, Dumoulin and Olah 2016, "Deconvolution and Checkerboard Artifacts").
`upsample="resize"` replaces each one by nearest-neighbour x2 then a 3x3 conv (same channels, same
norm and activation after it), which spreads every input pixel evenly and cannot make that pattern;
it costs more multiply-adds (a 3x3 conv at the doubled resolution) and its weights are its own.

Where: the ResNet generator modulates after the first norm of every residual block (the bottleneck);
the U-Net after the norm of every decoder stage but the last; DiscoGAN after every decoder norm.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn as nn

from translate.errors import UsageError
from translate.nets.layers import (
    FiLM,
    ConvNormAct,
    check_condition,
    check_norm,
    config_from_dict,
    conv_bias,
    is_tracing,
    leaky_relu,
    make_norm,
    padding_mode,
    upsampling_conv,
)


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to rebuild a generator's architecture (not its weights); JSON-serializable."""

    name: str
    in_channels: int = 3
    out_channels: int = 3
    ngf: int = 64
    norm: str = "instance"
    dropout: bool = False
    condition_dim: int = 0
    padding: str = "reflect"  # ResNet generators only
    upsample: str = "transpose"  # "transpose" (the reference) or "resize" (nearest x2 then a 3x3 conv)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GeneratorConfig":
        return config_from_dict(cls, data, "generator")


def check_size(name: str, multiple: int, min_size: int, height: int, width: int) -> None:
    """UsageError unless height and width are multiples of `multiple` and at least `min_size`."""
    if height % multiple or width % multiple or height < min_size or width < min_size:
        raise UsageError(
            f"{name} needs height and width that are multiples of {multiple} and at least {min_size} "
            f"(got {height}x{width}); resize or pad the images (translate.nets.pad_to_multiple)")


class _SizeChecked(nn.Module):
    """Mixin: networks whose input height and width must be multiples of `required_multiple`."""

    required_multiple: int = 1
    min_size: int = 1

    def check_image_size(self, height: int, width: int) -> None:
        """Raises UsageError unless (height, width) can go through this network."""
        check_size(self.config.name, self.required_multiple, self.min_size, height, width)


class ResidualBlock(nn.Module):
    """x + norm2(conv2(dropout(relu(film(norm1(conv1(x))))))), two 3x3 convolutions (He et al. 2016
    as used by Johnson et al. 2016 and CycleGAN)."""

    def __init__(self, channels: int, norm: str, dropout: bool, padding: str, condition_dim: int = 0):
        super().__init__()
        bias = conv_bias(norm)
        mode = padding_mode(padding)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode=mode, bias=bias)
        self.norm1 = make_norm(norm, channels)
        self.film = FiLM(condition_dim, channels) if condition_dim > 0 else None
        self.act = nn.ReLU()
        # Dropout 0.5 inside the block, between the two convolutions (the reference's place for it).
        self.dropout = nn.Dropout(0.5) if dropout else nn.Identity()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode=mode, bias=bias)
        self.norm2 = make_norm(norm, channels)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm1(self.conv1(x))
        if self.film is not None:
            h = self.film(h, condition)
        h = self.dropout(self.act(h))
        return x + self.norm2(self.conv2(h))


class ResnetGenerator(_SizeChecked):
    """The CycleGAN generator (Johnson et al. 2016 as adapted by Zhu et al. 2017, appendix 7.2):

    stem   7x7 conv (reflection padding 3), ngf channels, norm, ReLU
    down   two 3x3 stride-2 convs, doubling the channels, each with norm and ReLU
    blocks n_blocks residual blocks at 4*ngf channels, 1/4 resolution
    up     two 3x3 stride-2 transposed convs (output_padding 1), halving the channels, norm, ReLU
           (or, with upsample="resize", nearest x2 and a 3x3 conv each)
    head   7x7 conv (reflection padding 3) to out_channels, with bias, then tanh

    Height and width must be multiples of 4 (two halvings and two doublings).
    """

    required_multiple = 4
    min_size = 8  # the residual blocks' reflection padding needs at least 2 pixels at 1/4 resolution

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, norm: str = "instance",
                 dropout: bool = False, n_blocks: int = 9, padding: str = "reflect", condition_dim: int = 0,
                 upsample: str = "transpose"):
        super().__init__()
        if n_blocks < 0:
            raise UsageError(f"n_blocks must be >= 0, got {n_blocks}")
        check_norm(norm)
        padding_mode(padding)  # validates the name
        bias = conv_bias(norm)
        self.condition_dim = condition_dim
        self.config = GeneratorConfig(f"resnet_{n_blocks}blocks", in_channels, out_channels, ngf, norm,
                                      dropout, condition_dim, padding, upsample)
        # The stem's and head's 7x7 convs are reflection-padded whatever `padding` says (reference).
        self.stem = ConvNormAct(nn.Conv2d(in_channels, ngf, 7, padding=3, padding_mode="reflect", bias=bias),
                                make_norm(norm, ngf), nn.ReLU())
        self.down = nn.Sequential(*[
            ConvNormAct(nn.Conv2d(ngf * 2**i, ngf * 2 ** (i + 1), 3, stride=2, padding=1, bias=bias),
                        make_norm(norm, ngf * 2 ** (i + 1)), nn.ReLU())
            for i in range(2)])
        self.blocks = nn.ModuleList(
            [ResidualBlock(4 * ngf, norm, dropout, padding, condition_dim) for _ in range(n_blocks)])
        self.up = nn.Sequential(*[
            ConvNormAct(upsampling_conv(upsample, ngf * 2 ** (2 - i), ngf * 2 ** (1 - i), 3, bias=bias,
                                        padding_mode=padding_mode(padding)),
                        make_norm(norm, ngf * 2 ** (1 - i)), nn.ReLU())
            for i in range(2)])
        self.head = ConvNormAct(nn.Conv2d(ngf, out_channels, 7, padding=3, padding_mode="reflect"),
                                nn.Identity(), nn.Tanh())

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if not is_tracing():
            self.check_image_size(x.shape[-2], x.shape[-1])
            check_condition(condition, self.condition_dim, x.shape[0], self.config.name)
        h = self.down(self.stem(x))
        for block in self.blocks:
            h = block(h, condition)
        return self.head(self.up(h))


class UNetDecoderStage(nn.Module):
    """One decoder stage of the U-Net: ReLU -> 4x4 stride-2 transposed conv -> norm -> (FiLM) ->
    (dropout 0.5); the outermost stage ends in tanh instead of a norm."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, *, outermost: bool, dropout: bool,
                 condition_dim: int = 0, upsample: str = "transpose"):
        super().__init__()
        self.act = nn.ReLU()
        # The outermost transposed conv keeps its bias whatever the norm (reference).
        self.conv = upsampling_conv(upsample, in_channels, out_channels, 4,
                                    bias=True if outermost else conv_bias(norm))
        self.norm = nn.Identity() if outermost else make_norm(norm, out_channels)
        self.film = FiLM(condition_dim, out_channels) if condition_dim > 0 and not outermost else None
        self.out = nn.Tanh() if outermost else (nn.Dropout(0.5) if dropout else nn.Identity())

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(self.conv(self.act(x)))
        if self.film is not None:
            h = self.film(h, condition)
        return self.out(h)


class UNetGenerator(_SizeChecked):
    """The pix2pix U-Net (Isola et al. 2017, appendix 6.1.1; Ronneberger et al. 2015), `num_downs` levels.

    encoder[k]: 4x4 stride-2 conv -> norm -> LeakyReLU(0.2); no norm on the first level, and the
                innermost level is the bare conv (its ReLU opens the decoder). Channels ngf, 2ngf, 4ngf,
                then 8ngf for every further level.
    decoder[k]: mirrors encoder[k]: it takes concat(encoder[k]'s output, decoder[k+1]'s output) (the
                innermost takes the bottleneck alone) and returns encoder[k]'s input resolution; dropout on
                the 8ngf levels between the fourth and the innermost, when enabled; tanh at decoder[0].

    The skip connections carry the encoder features after their LeakyReLU, as in the reference (where an
    in-place LeakyReLU at the start of each inner block rewrites the tensor that the block concatenates).
    Either way gives the same images and gradients, since the decoder stage opens with a ReLU and
    relu(leaky_relu(x)) = relu(x). Height and width must be multiples of 2**num_downs (unet_256: 256).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, norm: str = "batch",
                 dropout: bool = False, num_downs: int = 8, condition_dim: int = 0, upsample: str = "transpose"):
        super().__init__()
        if num_downs < 5:
            raise UsageError(f"a U-Net needs at least 5 levels, got num_downs={num_downs}")
        check_norm(norm)
        bias = conv_bias(norm)
        self.condition_dim = condition_dim
        self.num_downs = num_downs
        self.required_multiple = 2**num_downs
        self.min_size = 2**num_downs
        self.config = GeneratorConfig(f"unet_{2**num_downs}", in_channels, out_channels, ngf, norm, dropout,
                                      condition_dim, "zero", upsample)
        widths = [ngf * min(2**k, 8) for k in range(num_downs)]  # encoder[k]'s output channels
        encoder = []
        for k in range(num_downs):
            c_in = in_channels if k == 0 else widths[k - 1]
            innermost, outermost = k == num_downs - 1, k == 0
            encoder.append(ConvNormAct(
                nn.Conv2d(c_in, widths[k], 4, stride=2, padding=1, bias=bias),
                nn.Identity() if (innermost or outermost) else make_norm(norm, widths[k]),
                nn.Identity() if innermost else leaky_relu()))
        self.encoder = nn.ModuleList(encoder)
        decoder = []
        for k in range(num_downs):
            c_out = out_channels if k == 0 else widths[k - 1]
            c_in = widths[k] if k == num_downs - 1 else 2 * widths[k]
            decoder.append(UNetDecoderStage(c_in, c_out, norm, outermost=k == 0,
                                            dropout=dropout and 4 <= k <= num_downs - 2,
                                            condition_dim=condition_dim, upsample=upsample))
        self.decoder = nn.ModuleList(decoder)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if not is_tracing():
            self.check_image_size(x.shape[-2], x.shape[-1])
            check_condition(condition, self.condition_dim, x.shape[0], self.config.name)
        skips = []
        h = x
        for stage in self.encoder:
            h = stage(h)
            skips.append(h)
        h = self.decoder[-1](skips[-1], condition)
        for k in range(self.num_downs - 2, -1, -1):
            h = self.decoder[k](torch.cat([skips[k], h], dim=1), condition)
        return h


class DiscoGANGenerator(_SizeChecked):
    """DiscoGAN's encoder-decoder generator without skips (Kim et al. 2017, and SKTBrain/DiscoGAN):

    encoder  four 4x4 stride-2 convs, ngf, 2ngf, 4ngf, 8ngf channels, LeakyReLU(0.2), norm on all but
             the first (64x64 -> 4x4x8ngf)
    decoder  three 4x4 stride-2 transposed convs back to ngf channels with norm and ReLU, then a fourth
             to out_channels and tanh (the public code ends in a sigmoid for [0, 1] images; ours are in
             [-1, 1])

    Batch norm by default (the paper's). Height and width must be multiples of 16, at least 32.
    """

    required_multiple = 16
    # at 16x16 the fourth stage's output is 1x1, and its norm cannot train there (instance norm never,
    # batch norm not with one image); at 32 it is 2x2
    min_size = 32

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, norm: str = "batch",
                 dropout: bool = False, condition_dim: int = 0, upsample: str = "transpose"):
        super().__init__()
        check_norm(norm)
        if dropout:
            raise UsageError("the DiscoGAN generator has no dropout layers; build it with dropout=False")
        self.condition_dim = condition_dim
        self.config = GeneratorConfig("discogan", in_channels, out_channels, ngf, norm, False, condition_dim,
                                      "zero", upsample)
        widths = [ngf, 2 * ngf, 4 * ngf, 8 * ngf]
        self.encoder = nn.Sequential(*[
            ConvNormAct(nn.Conv2d(in_channels if k == 0 else widths[k - 1], widths[k], 4, stride=2, padding=1,
                                  bias=True if k == 0 else conv_bias(norm)),
                        nn.Identity() if k == 0 else make_norm(norm, widths[k]), leaky_relu())
            for k in range(4)])
        self.decoder = nn.ModuleList([
            ConvNormAct(upsampling_conv(upsample, widths[k], widths[k - 1], 4, bias=conv_bias(norm)),
                        make_norm(norm, widths[k - 1]), nn.ReLU(),
                        FiLM(condition_dim, widths[k - 1]) if condition_dim > 0 else None)
            for k in (3, 2, 1)])
        self.head = ConvNormAct(upsampling_conv(upsample, ngf, out_channels, 4, bias=True), nn.Identity(),
                                nn.Tanh())

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if not is_tracing():
            self.check_image_size(x.shape[-2], x.shape[-1])
            check_condition(condition, self.condition_dim, x.shape[0], self.config.name)
        h = self.encoder(x)
        for stage in self.decoder:
            h = stage(h, condition)
        return self.head(h)


GENERATOR_NAMES = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128", "discogan")

_RESNET_NAME = re.compile(r"resnet_(\d+)blocks$")
_UNET_NAME = re.compile(r"unet_(\d+)$")


def parse_generator_name(name: str) -> tuple[str, int]:
    """('resnet', n_blocks), ('unet', num_downs) or ('discogan', 0); UsageError for anything else."""
    m = _RESNET_NAME.match(name)
    if m:
        return "resnet", int(m.group(1))
    m = _UNET_NAME.match(name)
    if m:
        size = int(m.group(1))
        if size >= 32 and size & (size - 1) == 0:
            return "unet", size.bit_length() - 1
    if name == "discogan":
        return "discogan", 0
    raise UsageError(f"unknown generator {name!r}; choose one of {', '.join(GENERATOR_NAMES)}")


def size_rule(name: str) -> tuple[int, int]:
    """(required multiple, smallest size) of a generator's input height and width, by name."""
    family, depth = parse_generator_name(name)
    if family == "resnet":
        return ResnetGenerator.required_multiple, ResnetGenerator.min_size
    if family == "unet":
        return 2**depth, 2**depth
    return DiscoGANGenerator.required_multiple, DiscoGANGenerator.min_size
