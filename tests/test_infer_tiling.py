"""Tiled inference: tiles cover the image, blend weights form a partition of unity, tiling is exact
wherever a tile holds a pixel's receptive field, and memory stays bounded for large images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from _app_helpers import tiny_generator_file
from translate.errors import UsageError
from translate.infer import (
    blended_mask,
    resolve_tile,
    tile_starts,
    tile_weights,
    translate_image,
    translate_tensor,
    translate_tiled,
)
from translate.io.generator_file import load_generator

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("length,tile,overlap", [(1000, 256, 32), (257, 256, 64), (4096, 512, 64), (700, 300, 299),
                                                 (200, 256, 32), (512, 512, 0)])
def test_tiles_cover_the_image_with_at_least_the_overlap_and_no_more_tiles_than_needed(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == max(0, length - tile)
    assert all(b > a and a + tile - b >= overlap for a, b in zip(starts, starts[1:]))
    if len(starts) > 1:  # one tile fewer could not cover the image with that overlap
        assert (len(starts) - 2) * (tile - overlap) + tile < length


@pytest.mark.parametrize("length,tile,overlap,multiple", [(330, 128, 16, 4), (1102, 512, 64, 4), (1000, 256, 30, 8),
                                                          (513, 512, 64, 4), (333, 128, 24, 16)])
def test_tiles_start_on_the_networks_grid_and_cover_the_padded_image(length, tile, overlap, multiple):
    # A stride-2 network computes something else on an input shifted by less than its multiple: tiles
    # off that grid differ from the untiled output even far from the seams.
    starts = tile_starts(length, tile, overlap, multiple)
    padded = -(-length // multiple) * multiple
    assert starts[0] == 0 and starts[-1] == padded - tile
    assert all(start % multiple == 0 for start in starts)
    assert all(b > a and a + tile - b >= overlap for a, b in zip(starts, starts[1:]))


def test_blend_weights_of_neighbours_sum_to_one_across_every_overlap():
    length, tile = 900, 256
    starts = tile_starts(length, tile, 48)
    total = torch.zeros(length)
    for start, w in zip(starts, tile_weights(starts, tile, length)):
        assert w.min() > 0
        total[start:start + len(w)] += w
    torch.testing.assert_close(total, torch.ones(length), atol=1e-6, rtol=0)


class Pointwise(nn.Module):
    """Each output pixel depends on its input pixel only: any tiling must reproduce it exactly."""

    architecture = {"name": "resnet_6blocks"}

    def forward(self, x, condition=None):
        return torch.tanh(1.7 * x + 0.3) * (1.0 if condition is None else 0.5)


def test_tiling_a_pointwise_map_changes_nothing_even_on_the_seams():
    x = torch.rand(2, 3, 333, 517, generator=torch.Generator().manual_seed(0)) * 2 - 1
    whole = translate_tensor(Pointwise(), x)
    tiled = translate_tensor(Pointwise(), x, tile=128, overlap=24)
    assert (tiled - whole).abs().max().item() <= 1e-6


def test_uint8_input_is_tiled_a_piece_at_a_time_with_the_same_result():
    image = np.random.default_rng(1).integers(0, 256, (300, 260, 3), dtype=np.uint8)
    tiled = translate_image(Pointwise(), image, tile=128, overlap=16)
    assert np.array_equal(tiled, translate_image(Pointwise(), image))


def smooth_image(seed=0, size=320):
    # Smooth structure, as a photo has, so outputs are not dominated by pixel noise.
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 16, size // 16, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


# resnet_2blocks sees 31 px around each pixel (stem 3, downsampling 1 + 2, four 3x3 convolutions at 1/4
# resolution 16, upsampling 4 + 2, head 3). 128-px tiles spread over 320 px overlap by 32 px, and every
# pixel that one tile alone gives lies >= 31 px inside that tile or at the image's border.
SIZE, TILE, OVERLAP = 320, 128, 16


def test_batch_norm_generator_tiled_equals_untiled_wherever_one_tile_gives_the_pixel(tmp_path):
    model = load_generator(tiny_generator_file(tmp_path / "bn.safetensors", name="resnet_2blocks", norm="batch", ngf=4))
    x = smooth_image()
    whole, tiled = translate_tensor(model, x), translate_tensor(model, x, tile=TILE, overlap=OVERLAP)
    interior = ~torch.from_numpy(blended_mask(SIZE, SIZE, TILE, OVERLAP, 4))
    diff = (tiled - whole).abs().amax(dim=1)[0]
    assert interior.float().mean() > 0.3
    assert diff[interior].max().item() <= 1e-5
    assert diff[~interior].max().item() <= 0.1  # seams: two tiles blended, each a little off near its border


# 330 px with 64 px of overlap: spreading the tiles evenly alone would start them at 50, 101, 151, 202,
# off the network's grid of 4; every pixel one tile alone gives is >= 64 px from the others' borders.
@pytest.mark.parametrize("size, overlap", [(SIZE, OVERLAP), (330, 64)])
def test_instance_norm_tiles_with_whole_image_statistics_equal_untiled_inference(tmp_path, size, overlap):
    model = load_generator(tiny_generator_file(tmp_path / "in.safetensors", name="resnet_2blocks", norm="instance",
                                               ngf=4))
    x = smooth_image(seed=3, size=size)
    whole = translate_tensor(model, x)
    exact = translate_tiled(model, x, tile=TILE, overlap=overlap, statistics="image", statistics_pixels=None)
    own = translate_tiled(model, x, tile=TILE, overlap=overlap, statistics="tile")
    interior = ~torch.from_numpy(blended_mask(size, size, TILE, overlap, 4))
    exact_diff = (exact - whole).abs().amax(dim=1)[0]
    own_diff = (own - whole).abs().amax(dim=1)[0]
    assert exact_diff[interior].max().item() <= 1e-4
    # Each tile's own statistics are not the image's: that is what the whole-image statistics fix.
    assert own_diff[interior].mean().item() > 10 * exact_diff[interior].mean().item()


def test_bad_tile_settings_are_usage_errors():
    with pytest.raises(UsageError, match="tile must be"):
        resolve_tile("big", 10, 10)
    with pytest.raises(UsageError, match="overlap"):
        translate_tiled(Pointwise(), torch.zeros(1, 3, 64, 64), tile=64, overlap=64)
    assert resolve_tile("auto", 1024, 1024) is None and resolve_tile("auto", 1025, 1024) == 512


def _peak_growth_mb(model: Path, image: Path, tile) -> float:
    code = ("import json; from apps.tiling_report import _peak_child; "
            f"print(json.dumps(_peak_child({str(model)!r}, {str(image)!r}, {tile!r}, 64, None)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_growth_mb"]


@pytest.mark.slow
def test_tiled_inference_of_a_2048_image_stays_within_its_memory_bound(tmp_path):
    # The bound: 18 bytes per pixel (uint8 input and result, float output accumulator: 75 MB at
    # 2048 x 2048) plus the larger of one 512-px tile's activations and the instance-norm statistics
    # pass on the image shrunk to 1 MP (unet_128, ngf 4: tens of MB) -> under 200 MB. Untiled, this
    # network grows the peak by several times that (docs/app.md has the measurements).
    model = tiny_generator_file(tmp_path / "g.safetensors", name="unet_128", norm="instance", ngf=4)
    image = tmp_path / "image.npy"
    rng = np.random.default_rng(0)
    np.save(image, rng.integers(0, 256, (2048, 2048, 3), dtype=np.uint8))
    tiled = _peak_growth_mb(model, image, 512)
    assert tiled < 200, f"tiled inference grew the peak RSS by {tiled:.0f} MB"


@pytest.mark.parametrize("name", ["resnet_6blocks", "discogan"])
def test_images_thinner_than_the_network_takes_are_padded_up_to_it(tmp_path, name):
    # a 1x1 or 3x2000 picture is padded past the network's smallest size, not refused
    generator = load_generator(tiny_generator_file(tmp_path / "g.safetensors", name=name))
    for height, width in [(1, 1), (3, 200), (4, 30), (20, 20)]:
        x = torch.rand(1, 3, height, width) * 2 - 1
        out = translate_tensor(generator, x)
        assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_tiled_translation_of_a_tensor_stays_on_its_device(norm):
    # The meta device stands in for a GPU: nothing of the input may be copied to the CPU on the way
    # (the whole-image statistics pass, the tiles, the blended output).
    from translate.io.generator_file import TranslationGenerator
    from translate.nets.generators import ResnetGenerator

    generator = TranslationGenerator(ResnetGenerator(ngf=4, n_blocks=1, norm=norm)).eval().to("meta")
    x = torch.empty(1, 3, 64, 64, device="meta")
    assert translate_tensor(generator, x, tile=32, overlap=8).device.type == "meta"
