"""Importing the reference implementation's published generators (.pth) into translate.nets.

The reference networks below are written for this test from the reference's documented structure
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py): one nn.Sequential named `model` for the
ResNet generator, nested skip blocks `model.model.N` for the U-Net, in-place activations included. They
share no code with translate.nets, so a mapping mistake shows up as different outputs.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn as nn

from translate.errors import UsageError
from translate.io.reference import (
    convert_reference_state_dict,
    infer_reference_config,
    load_reference_generator,
    read_reference_state_dict,
)
from translate.nets import ResnetGenerator, UNetGenerator


def reference_norm(kind: str):
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "none":
        return lambda channels: nn.Identity()
    return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)


class ReferenceResnetBlock(nn.Module):
    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ReferenceResnetGenerator(nn.Module):
    def __init__(self, in_ch, out_ch, ngf, norm, n_blocks, use_dropout=False):
        super().__init__()
        norm_layer = reference_norm(norm)
        use_bias = norm == "instance"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7, bias=use_bias), norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            m = 2**i
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=use_bias),
                       norm_layer(ngf * m * 2), nn.ReLU(True)]
        layers += [ReferenceResnetBlock(4 * ngf, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(2):
            m = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=use_bias),
                       norm_layer(ngf * m // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class ReferenceSkipBlock(nn.Module):
    def __init__(self, outer, inner, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=None, use_dropout=False, use_bias=False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner, 4, stride=2, padding=1, bias=use_bias)
        if outermost:
            layers = [downconv, submodule, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), downconv, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=use_bias), norm_layer(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), downconv, norm_layer(inner), submodule, nn.ReLU(True),
                      nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=use_bias), norm_layer(outer)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)  # x has been through the in-place LeakyReLU by now


class ReferenceUnetGenerator(nn.Module):
    def __init__(self, in_ch, out_ch, num_downs, ngf, norm, use_dropout=True):
        super().__init__()
        kw = dict(norm_layer=reference_norm(norm), use_bias=norm == "instance")
        block = ReferenceSkipBlock(ngf * 8, ngf * 8, innermost=True, **kw)
        for _ in range(num_downs - 5):
            block = ReferenceSkipBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **kw)
        block = ReferenceSkipBlock(ngf * 4, ngf * 8, submodule=block, **kw)
        block = ReferenceSkipBlock(ngf * 2, ngf * 4, submodule=block, **kw)
        block = ReferenceSkipBlock(ngf, ngf * 2, submodule=block, **kw)
        self.model = ReferenceSkipBlock(out_ch, ngf, input_nc=in_ch, submodule=block, outermost=True, **kw)

    def forward(self, x):
        return self.model(x)


@torch.no_grad()
def randomize_(net: nn.Module, seed: int) -> nn.Module:
    """Weights far from any init (so a swapped layer cannot hide) and non-trivial BN statistics."""
    g = torch.Generator().manual_seed(seed)
    for name, p in net.named_parameters():
        if p.dim() > 1:
            p.copy_(torch.randn(p.shape, generator=g) * (1.5 / p[0].numel() ** 0.5))
        elif name.endswith("weight"):
            p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
            m.num_batches_tracked.fill_(1234)
    return net


def image_batch(n: int, size: int, seed: int = 0, channels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1


def test_resnet_9blocks_instance_norm_checkpoint_gives_reference_outputs(tmp_path):
    ref = randomize_(ReferenceResnetGenerator(3, 3, 8, "instance", 9), seed=1).eval()
    state = ref.state_dict()
    # An old (PyTorch < 0.4) CycleGAN checkpoint also carries InstanceNorm running statistics.
    for name, module in ref.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.full((module.num_features,), 5.0)
            state[f"{name}.running_var"] = torch.full((module.num_features,), 9.0)
            state[f"{name}.num_batches_tracked"] = torch.tensor(7)
    path = tmp_path / "latest_net_G.pth"
    torch.save(state, path)

    ours = load_reference_generator(path, "resnet_9blocks", norm="instance")
    x = image_batch(2, 32)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert isinstance(ours, ResnetGenerator) and not ours.training
    assert ours.config.ngf == 8 and ours.config.norm == "instance"
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_resnet_6blocks_batch_norm_with_dropout_and_dataparallel_prefix(tmp_path):
    ref = randomize_(ReferenceResnetGenerator(3, 1, 4, "batch", 6, use_dropout=True), seed=2).eval()
    path = tmp_path / "net.pth"
    torch.save({"module." + k: v for k, v in ref.state_dict().items()}, path)

    ours = load_reference_generator(path, "resnet_6blocks")  # norm inferred from the weights
    x = image_batch(3, 16, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=0)
    assert ours.config.norm == "batch" and ours.config.out_channels == 1


@pytest.mark.parametrize("num_downs,norm", [(8, "batch"), (7, "instance")])
def test_unet_checkpoint_gives_reference_outputs(tmp_path, num_downs, norm):
    ref = randomize_(ReferenceUnetGenerator(3, 3, num_downs, 4, norm), seed=4).eval()
    path = tmp_path / "facades_label2photo.pth"
    torch.save(ref.state_dict(), path)
    name = f"unet_{2**num_downs}"

    ours = load_reference_generator(path, name, norm=norm)
    x = image_batch(2, 2**num_downs, seed=5)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert isinstance(ours, UNetGenerator) and ours.config.name == name
    assert expected.abs().mean() > 0.05  # not saturated or dead: the comparison means something
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_convert_reference_state_dict_maps_every_key_once():
    ref = ReferenceUnetGenerator(3, 3, 8, 2, "batch")
    converted = convert_reference_state_dict(ref.state_dict(), "unet_256", "batch")
    ours = UNetGenerator(3, 3, 2, "batch", num_downs=8)
    assert list(converted) != []
    assert set(converted) == set(ours.state_dict())
    assert len(converted) == len(ref.state_dict())


def test_infer_reference_config_reads_widths_from_weights():
    state = ReferenceResnetGenerator(1, 2, 5, "instance", 6).state_dict()
    config = infer_reference_config(state)
    assert (config.name, config.in_channels, config.out_channels, config.ngf, config.norm) == (
        "resnet_6blocks", 1, 2, 5, "instance")


class NotATensor:
    def __init__(self):
        self.payload = "anything"


def test_pickle_that_needs_code_is_refused_with_one_line(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model.1.weight": torch.zeros(2, 3, 7, 7), "extra": NotATensor()}, path)
    with pytest.raises(UsageError, match="needs code to load") as info:
        load_reference_generator(path, "resnet_9blocks")
    assert "\n" not in str(info.value)

    whole_model = tmp_path / "model.pth"
    torch.save(ReferenceResnetGenerator(3, 3, 2, "instance", 1), whole_model)
    with pytest.raises(UsageError, match="needs code to load"):
        read_reference_state_dict(whole_model)


def test_unreadable_or_missing_files_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        read_reference_state_dict(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(UsageError):
        read_reference_state_dict(junk)
    nested = tmp_path / "nested.pth"
    torch.save({"state_dict": {"model.1.weight": torch.zeros(1)}}, nested)
    with pytest.raises(UsageError, match="flat state dict"):
        read_reference_state_dict(nested)


def test_wrong_net_name_or_norm_is_a_clear_error(tmp_path):
    path = tmp_path / "cyclegan.pth"
    torch.save(ReferenceResnetGenerator(3, 3, 4, "instance", 9).state_dict(), path)
    with pytest.raises(UsageError, match=r"9 residual blocks.*resnet_9blocks generator, not resnet_6blocks"):
        load_reference_generator(path, "resnet_6blocks")
    with pytest.raises(UsageError, match=r"holds a resnet_9blocks generator, not unet_256"):
        load_reference_generator(path, "unet_256")
    with pytest.raises(UsageError, match=r"trained with instance norm .* not batch; pass --norm instance"):
        load_reference_generator(path, "resnet_9blocks", norm="batch")
    with pytest.raises(UsageError, match="no discogan generator"):
        load_reference_generator(path, "discogan")
    with pytest.raises(UsageError, match="unknown generator"):
        load_reference_generator(path, "resnet_9")

    unet = tmp_path / "pix2pix.pth"
    torch.save(ReferenceUnetGenerator(3, 3, 7, 2, "batch").state_dict(), unet)
    with pytest.raises(UsageError, match=r"7 U-Net levels.*unet_128 generator, not unet_256"):
        load_reference_generator(unet, "unet_256")
    with pytest.raises(UsageError, match=r"trained with batch norm"):
        load_reference_generator(unet, "unet_128", norm="instance")

    plain = tmp_path / "no_norm.pth"  # the reference's --norm none: no norm layers, no inner biases
    torch.save(ReferenceResnetGenerator(3, 3, 4, "none", 6).state_dict(), plain)
    with pytest.raises(UsageError, match=r"trained with --norm none"):
        load_reference_generator(plain, "resnet_6blocks")
