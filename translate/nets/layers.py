"""Building blocks shared by the generators and discriminators: norms, conv stages, FiLM, init.

The norm layers and the bias rule follow the reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix,
`models/networks.py`), so that its published weights map onto these networks:

- `batch`: BatchNorm2d with learned scale and shift and running statistics;
- `instance`: InstanceNorm2d without learned scale/shift and without running statistics, so that it
  normalizes with each image's own statistics in training and in evaluation alike;
- `layer`: layer norm over each sample's channels and positions (GroupNorm with one group) with a
  learned scale and shift per channel, for discriminators only: a WGAN-GP critic's stand-in for batch
  norm (translate.models.base.critic_norm);
- a convolution followed by batch norm has no bias (the norm's shift replaces it); with instance norm it
  has one. The reference also drops the bias when there is no norm at all (`norm="none"`); here a
  convolution without a norm after it keeps its bias, since nothing else can shift its output.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable, Mapping, TypeVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from translate.errors import UsageError

NORM_NAMES = ("batch", "instance", "layer", "none")
INIT_NAMES = ("normal", "xavier", "kaiming", "orthogonal")
PADDING_NAMES = ("reflect", "replicate", "zero")


_Config = TypeVar("_Config")


def config_from_dict(cls: type[_Config], data: Mapping[str, Any], what: str) -> _Config:
    """An architecture config dataclass (`what`: "generator", "discriminator") rebuilt from its JSON
    dict; UsageError for a field the class does not know or a missing 'name'."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"unknown {what} config field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if "name" not in data:
        raise UsageError(f"{what} config has no 'name'")
    return cls(**dict(data))


def check_norm(norm: str) -> str:
    if norm not in NORM_NAMES:
        raise UsageError(f"unknown norm {norm!r}; choose one of {', '.join(NORM_NAMES)}")
    return norm


def make_norm(norm: str, channels: int) -> nn.Module:
    """The normalization layer after a convolution with `channels` outputs (nn.Identity for "none")."""
    check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "layer":  # the mean over all channels leaves a per-channel conv bias in place: it stays
        return nn.GroupNorm(1, channels, affine=True)
    return nn.Identity()


def conv_bias(norm: str) -> bool:
    """Whether a convolution followed by this norm carries a bias (see the module docstring)."""
    return check_norm(norm) != "batch"


def padding_mode(padding: str) -> str:
    """Conv2d's padding_mode for a padding name; 'reflect' pads like nn.ReflectionPad2d, exactly."""
    if padding not in PADDING_NAMES:
        raise UsageError(f"unknown padding {padding!r}; choose one of {', '.join(PADDING_NAMES)}")
    return "zeros" if padding == "zero" else padding


UPSAMPLE_NAMES = ("transpose", "resize")


def check_upsample(upsample: str) -> str:
    if upsample not in UPSAMPLE_NAMES:
        raise UsageError(f"unknown upsample {upsample!r}; choose one of {', '.join(UPSAMPLE_NAMES)}")
    return upsample


class ResizeConv2d(nn.Module):
    """Doubles height and width: nearest-neighbour x2, then a 3x3 convolution (Odena et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True, padding_mode: str = "zeros"):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode=padding_mode, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def upsampling_conv(upsample: str, in_channels: int, out_channels: int, kernel: int, *, bias: bool,
                    padding_mode: str = "zeros") -> nn.Module:
    """A layer that doubles height and width: the reference's stride-2 transposed conv (kernel 3 with
    output_padding 1, or kernel 4; padding 1 either way), or `ResizeConv2d` for upsample="resize"."""
    if check_upsample(upsample) == "resize":
        return ResizeConv2d(in_channels, out_channels, bias=bias, padding_mode=padding_mode)
    return nn.ConvTranspose2d(in_channels, out_channels, kernel, stride=2, padding=1,
                              output_padding=1 if kernel == 3 else 0, bias=bias)


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al. 2018): h * (1 + gamma(c)) + beta(c), per channel.

    Written as 1 + gamma so that a zero condition (and the small initial weights) leaves h unchanged.
    """

    def __init__(self, condition_dim: int, channels: int):
        super().__init__()
        self.linear = nn.Linear(condition_dim, 2 * channels)

    def forward(self, h: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.linear(condition).chunk(2, dim=1)
        return h * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]


class ConvNormAct(nn.Module):
    """conv -> norm -> (FiLM) -> activation. Submodules are named `conv`, `norm`, `film`, `act`.

    `norm` and `act` may be nn.Identity, which has no weights, so a stage without a norm has only
    `conv.*` keys in the state dict.
    """

    def __init__(self, conv: nn.Module, norm: nn.Module, act: nn.Module, film: FiLM | None = None):
        super().__init__()
        self.conv = conv
        self.norm = norm
        self.film = film
        self.act = act

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(self.conv(x))
        if self.film is not None:
            h = self.film(h, condition)
        return self.act(h)


def leaky_relu() -> nn.Module:
    # The slope 0.2 of DCGAN (Radford et al. 2016), used by every PatchGAN and U-Net encoder.
    return nn.LeakyReLU(0.2)


def check_condition(condition: torch.Tensor | None, condition_dim: int, batch: int, who: str) -> None:
    """Raises UsageError when a condition is missing, unexpected, or of the wrong shape."""
    if condition_dim == 0:
        if condition is not None:
            raise UsageError(f"{who} was built without conditioning (condition_dim=0) but got a condition; "
                             "build it with condition_dim > 0 or pass no condition")
        return
    if condition is None:
        raise UsageError(f"{who} was built with condition_dim={condition_dim}; pass a condition tensor "
                         f"of shape (N, {condition_dim})")
    if condition.dim() != 2 or condition.shape[1] != condition_dim or condition.shape[0] != batch:
        raise UsageError(f"{who} expects a condition of shape ({batch}, {condition_dim}), "
                         f"got {tuple(condition.shape)}")


def is_tracing() -> bool:
    """True while torch.jit / torch.export / torch.compile trace the forward (size checks are skipped)."""
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()


@torch.no_grad()
def init_weights(module: nn.Module, init: str = "normal", gain: float = 0.02,
                 generator: torch.Generator | None = None) -> nn.Module:
    """The reference implementation's initialization (pix2pix/CycleGAN papers: N(0, 0.02)).

    Convolution, transposed convolution and linear weights get the chosen init (normal: N(0, gain);
    xavier: xavier-normal with `gain`; kaiming: kaiming-normal, fan_in; orthogonal with `gain`) and zero
    biases; batch-norm scales get N(1, gain) and zero shifts. Other modules (embeddings, GRUs) are left
    to their own defaults. Returns the module.
    """
    if init not in INIT_NAMES:
        raise UsageError(f"unknown init {init!r}; choose one of {', '.join(INIT_NAMES)}")
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if init == "normal":
                nn.init.normal_(m.weight, 0.0, gain, generator=generator)
            elif init == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain, generator=generator)
            elif init == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in", generator=generator)
            else:
                nn.init.orthogonal_(m.weight, gain=gain, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain, generator=generator)
            nn.init.zeros_(m.bias)
    return module


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def smallest_valid_size(layers: Iterable[tuple[int, int, int]], limit: int = 1 << 16) -> int:
    """Smallest input length whose output length is >= 1 after the (kernel, stride, padding) layers."""
    layers = list(layers)
    for size in range(1, limit):
        s = size
        for kernel, stride, padding in layers:
            s = conv_output_size(s, kernel, stride, padding)
            if s < 1:
                break
        else:
            return size
    raise ValueError("no input size up to the limit gives an output")


def receptive_field(layers: Iterable[tuple[int, int, int]]) -> int:
    """Receptive field of one output of a stack of (kernel, stride, padding) convolutions:
    r = 1 + sum_l (k_l - 1) * prod_{m < l} s_m."""
    r, jump = 1, 1
    for kernel, stride, _ in layers:
        r += (kernel - 1) * jump
        jump *= stride
    return r


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def pad_to_multiple(images: torch.Tensor, multiple: int) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Pads (N, C, H, W) images on the bottom and right up to multiples of `multiple`.

    Returns the padded batch and a function that crops a same-sized output back to (H, W). Reflection
    padding where the image is large enough, replication otherwise.
    """
    h, w = images.shape[-2:]
    ph = math.ceil(h / multiple) * multiple - h
    pw = math.ceil(w / multiple) * multiple - w
    if ph == 0 and pw == 0:
        return images, lambda out: out
    mode = "reflect" if ph < h and pw < w else "replicate"
    padded = nn.functional.pad(images, (0, pw, 0, ph), mode=mode)
    return padded, lambda out: out[..., :h, :w]
