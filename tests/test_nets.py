"""Generators and discriminators: shapes, published parameter counts, init, sizes, configs, bf16."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from translate.errors import UsageError
from translate.nets import (
    DISCRIMINATOR_NAMES,
    GENERATOR_NAMES,
    build_discriminator_from_config,
    build_generator_from_config,
    check_image_size,
    create_discriminator,
    create_generator,
    pad_to_multiple,
    parameter_count,
    receptive_field,
    required_multiple,
)
from translate.nets.generators import size_rule

SMALLEST_SIZE = {"resnet_9blocks": 16, "resnet_6blocks": 16, "unet_256": 256, "unet_128": 128, "discogan": 64}


def images(n: int, size: int, seed: int = 0, channels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_generator_maps_images_to_images_in_tanh_range(name):
    size = SMALLEST_SIZE[name]
    net = create_generator(name, ngf=4, in_channels=1, out_channels=3).eval()
    with torch.no_grad():
        out = net(images(2, size, channels=1))
    assert out.shape == (2, 3, size, size)
    assert out.abs().max() <= 1.0


def test_resnet_generator_takes_any_multiple_of_4():
    net = create_generator("resnet_6blocks", ngf=4).eval()
    with torch.no_grad():
        assert net(images(1, 20)[..., :12]).shape == (1, 3, 20, 12)


@pytest.mark.parametrize("name,n_layers,size,expected", [
    ("basic", 3, 256, 30),       # the 70x70 PatchGAN's 30x30 map
    ("n_layers", 1, 64, 30),
    ("n_layers", 2, 64, 14),
    ("n_layers", 5, 256, 6),
    ("pixel", 3, 32, 32),
])
def test_patch_discriminator_logit_map_sizes(name, n_layers, size, expected):
    net = create_discriminator(name, ndf=4, n_layers=n_layers)
    out = net(images(2, size))
    assert out.shape == (2, 1, expected, expected)


def test_patchgan_receptive_field_is_70_by_formula_and_by_gradient():
    net = create_discriminator("basic", ndf=4, norm="none")  # no norm: outputs depend on their patch only
    assert net.receptive_field == 70
    assert receptive_field([(4, 2, 1)] * 3 + [(4, 1, 1)] * 2) == 70
    x = images(1, 128).requires_grad_(True)
    out = net(x)
    out[0, 0, out.shape[-2] // 2, out.shape[-1] // 2].backward()
    touched = x.grad[0].abs().sum(dim=0) > 0
    rows, cols = touched.any(dim=1).nonzero(), touched.any(dim=0).nonzero()
    assert int(rows.max() - rows.min() + 1) == 70
    assert int(cols.max() - cols.min() + 1) == 70


def test_receptive_fields_of_other_depths():
    fields = [create_discriminator("n_layers", n_layers=n, ndf=2).receptive_field for n in (1, 2, 3, 4)]
    assert fields == [16, 34, 70, 142]
    assert create_discriminator("discogan", ndf=2).receptive_field == 94


def test_multiscale_discriminator_returns_one_map_per_scale():
    net = create_discriminator("multiscale", ndf=4, num_scales=3)
    outs = net(images(2, 128))
    assert [o.shape[-1] for o in outs] == [14, 6, 2]
    assert len(set(id(s) for s in net.scales)) == 3


def test_discogan_discriminator_returns_logits_and_three_feature_maps():
    net = create_discriminator("discogan", ndf=4)
    logits, features = net(images(3, 64))
    assert logits.shape == (3, 1, 1, 1)
    assert [tuple(f.shape[1:]) for f in features] == [(8, 16, 16), (16, 8, 8), (32, 4, 4)]


# Published parameter counts. The reference prints them as "Total number of parameters : X.XXX M"
# (num_params / 1e6, three decimals): CycleGAN G 11.378 M and D 2.765 M, pix2pix G 54.414 M and D
# 2.769 M. The exact integers follow from the layer lists (e.g. the basic D with instance norm:
# 3*64*16+64 + (64*128+128*256+256*512)*16 + (128+256+512) + 512*16+1 = 2,764,737).
@pytest.mark.parametrize("kind,name,kwargs,exact,printed", [
    ("G", "resnet_9blocks", dict(norm="instance"), 11_378_179, "11.378"),
    ("G", "unet_256", dict(norm="batch"), 54_413_955, "54.414"),
    ("D", "basic", dict(in_channels=3, norm="instance"), 2_764_737, "2.765"),
    ("D", "basic", dict(in_channels=6, norm="batch"), 2_768_705, "2.769"),
])
def test_parameter_counts_equal_the_reference_printouts(kind, name, kwargs, exact, printed):
    factory = create_generator if kind == "G" else create_discriminator
    count = parameter_count(factory(name, **kwargs))
    assert count == exact
    assert f"{count / 1e6:.3f}" == printed


def test_init_is_normal_0_02_with_batch_norm_scales_around_1():
    net = create_generator("unet_128", ngf=32, norm="batch", generator=torch.Generator().manual_seed(0))
    conv_weights = torch.cat([m.weight.flatten() for m in net.modules()
                              if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    biases = [m.bias for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None]
    bn_scales = torch.cat([m.weight for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
    bn_shifts = torch.cat([m.bias for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
    assert conv_weights.numel() > 1e6
    assert abs(conv_weights.std().item() - 0.02) < 0.0005
    assert abs(conv_weights.mean().item()) < 0.0005
    assert all(torch.all(b == 0) for b in biases) and len(biases) == 1  # only the outermost upconv
    assert abs(bn_scales.mean().item() - 1.0) < 0.005 and abs(bn_scales.std().item() - 0.02) < 0.005
    assert torch.all(bn_shifts == 0)

    wide = create_generator("resnet_6blocks", ngf=16, init_gain=0.05)
    assert abs(wide.blocks[0].conv1.weight.std().item() - 0.05) < 0.002


def test_init_generator_makes_weights_reproducible():
    a = create_discriminator("basic", ndf=8, generator=torch.Generator().manual_seed(3))
    b = create_discriminator("basic", ndf=8, generator=torch.Generator().manual_seed(3))
    c = create_discriminator("basic", ndf=8, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.head.weight, c.head.weight)


def test_bias_only_where_no_batch_norm_follows():
    batch = create_generator("resnet_9blocks", ngf=4, norm="batch")
    instance = create_generator("resnet_9blocks", ngf=4, norm="instance")
    assert batch.stem.conv.bias is None and batch.blocks[0].conv1.bias is None
    assert instance.stem.conv.bias is not None and instance.blocks[0].conv1.bias is not None
    assert batch.head.conv.bias is not None
    assert not any(isinstance(m, nn.InstanceNorm2d) and (m.affine or m.track_running_stats)
                   for m in instance.modules())


def test_dropout_sits_where_the_reference_puts_it():
    unet = create_generator("unet_256", ngf=2, dropout=True)
    with_dropout = [k for k, stage in enumerate(unet.decoder) if isinstance(stage.out, nn.Dropout)]
    assert with_dropout == [4, 5, 6]  # the three 8*ngf levels between the fourth and the innermost
    resnet = create_generator("resnet_9blocks", ngf=2, dropout=True)
    assert all(isinstance(block.dropout, nn.Dropout) for block in resnet.blocks)


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_generator_config_rebuilds_the_same_architecture_from_json(name):
    net = create_generator(name, ngf=4, in_channels=2, dropout=name.startswith("unet"), condition_dim=3)
    config = json.loads(json.dumps(net.config.to_dict()))
    rebuilt = build_generator_from_config(config)
    assert rebuilt.config == net.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}


@pytest.mark.parametrize("name", DISCRIMINATOR_NAMES)
def test_discriminator_config_rebuilds_the_same_architecture(name):
    net = create_discriminator(name, ndf=4, in_channels=6, n_layers=2, condition_dim=5, num_scales=2)
    rebuilt = build_discriminator_from_config(json.loads(json.dumps(net.config.to_dict())))
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}


def test_unknown_names_and_options_are_one_line_usage_errors():
    for call in (lambda: create_generator("resnet_12"), lambda: create_discriminator("patch"),
                 lambda: create_generator("unet_100"), lambda: create_generator("resnet_9blocks", norm="group"),
                 lambda: create_generator("resnet_9blocks", widht=3), lambda: create_generator("unet_256", ngf=0),
                 lambda: build_generator_from_config({"name": "unet_256", "depth": 3})):
        with pytest.raises(UsageError) as info:
            call()
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("build, what", [(build_generator_from_config, "generator"),
                                         (build_discriminator_from_config, "discriminator")])
def test_a_config_with_an_unknown_field_or_no_name_is_refused_by_name(build, what):
    with pytest.raises(UsageError, match=rf"unknown {what} config field\(s\) depth, width; known: .*n[dg]f"):
        build({"name": "unet_256" if what == "generator" else "basic", "width": 3, "depth": 2})
    with pytest.raises(UsageError, match=rf"^{what} config has no 'name'$"):
        build({"ngf" if what == "generator" else "ndf": 8})


def test_required_multiple_and_size_validation():
    assert [required_multiple(n) for n in GENERATOR_NAMES] == [4, 4, 256, 128, 16]
    check_image_size("resnet_9blocks", 256, 260)
    with pytest.raises(UsageError, match="multiples of 256"):
        check_image_size("unet_256", 256, 200)
    with pytest.raises(UsageError, match="multiples of 4"):
        create_generator("resnet_6blocks", ngf=2)(images(1, 30))
    with pytest.raises(UsageError, match="at least 24"):
        create_discriminator("basic", ndf=2)(images(1, 16))


@pytest.mark.parametrize("name", GENERATOR_NAMES)
@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_every_generator_trains_at_its_smallest_accepted_size(name, norm):
    # the size rule must not accept a size at which a training step fails inside a norm layer
    multiple, smallest = size_rule(name)
    net = create_generator(name, ngf=2, norm=norm).train()
    net(images(1, smallest)).mean().backward()
    below = smallest - multiple
    if below > 0:
        with pytest.raises(UsageError, match=f"at least {smallest}"):
            net(images(1, below))


def test_pad_to_multiple_then_crop_restores_the_size():
    x = images(1, 40)[..., :37]
    padded, crop = pad_to_multiple(x, 16)
    assert padded.shape[-2:] == (48, 48)
    assert torch.equal(crop(padded), x)


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_norm_layers_under_bf16_autocast_stay_finite_and_close_to_fp32(norm):
    net = create_generator("resnet_6blocks", ngf=8, norm=norm, generator=torch.Generator().manual_seed(0))
    disc = create_discriminator("basic", ndf=8, norm=norm)
    x = images(4, 32)
    with torch.no_grad():
        ref_out, ref_logits = net(x), disc(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, logits = net(x), disc(x)
    # Convolutions run in bf16 and the norms keep their input dtype, so outputs come back in bf16;
    # norms accumulate their statistics in fp32 inside (errors stay at bf16 rounding, ~1e-2 here).
    assert out.dtype == torch.bfloat16 and logits.dtype == torch.bfloat16
    assert torch.isfinite(out).all() and torch.isfinite(logits).all()
    assert (out.float() - ref_out).abs().mean() < 0.02
    assert (logits.float() - ref_logits).abs().mean() < 0.02 * ref_logits.abs().mean() + 1e-3
    if norm == "batch":
        assert all(m.running_mean.dtype == torch.float32 for m in net.modules() if isinstance(m, nn.BatchNorm2d))


@pytest.mark.parametrize("name", GENERATOR_NAMES)
def test_resize_upsampling_keeps_the_shapes_and_rebuilds_from_json(name):
    size = SMALLEST_SIZE[name]
    net = create_generator(name, ngf=4, upsample="resize")
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    assert net(images(1, size)).shape == (1, 3, size, size)
    rebuilt = build_generator_from_config(json.loads(json.dumps(net.config.to_dict())))
    assert rebuilt.config.upsample == "resize"
    rebuilt.load_state_dict(net.state_dict())  # same keys and shapes
    # A config written before the option existed means the reference's transposed convolutions.
    old = {k: v for k, v in create_generator(name, ngf=4).config.to_dict().items() if k != "upsample"}
    assert any(isinstance(m, nn.ConvTranspose2d) for m in build_generator_from_config(old).modules())


def test_transposed_conv_makes_a_checkerboard_and_resize_conv_does_not():
    # Odena et al. 2016: a 3x3 stride-2 transposed conv sums 1, 2 or 4 kernel taps into each output pixel,
    # so a constant input with constant weights comes out as a periodic pattern; nearest x2 then a 3x3
    # conv gives every interior pixel all nine taps.
    from translate.nets.layers import upsampling_conv

    x = torch.ones(1, 1, 8, 8)
    outputs = {}
    for mode in ("transpose", "resize"):
        layer = upsampling_conv(mode, 1, 1, 3, bias=False)
        for p in layer.parameters():
            nn.init.constant_(p, 1.0)
        outputs[mode] = layer(x)[0, 0, 2:-2, 2:-2].detach()
    assert outputs["resize"].shape == outputs["transpose"].shape == (12, 12)
    assert torch.equal(outputs["resize"], torch.full((12, 12), 9.0))
    assert sorted(outputs["transpose"].unique().tolist()) == [1.0, 2.0, 4.0]
    assert torch.equal(outputs["transpose"][0::2, 0::2], torch.ones(6, 6))  # one tap
    assert torch.equal(outputs["transpose"][1::2, 1::2], torch.full((6, 6), 4.0))  # four taps


def test_unknown_upsample_is_a_usage_error():
    with pytest.raises(UsageError, match="upsample"):
        create_generator("resnet_6blocks", upsample="bilinear")
