"""Transforms: the published sizes, one geometry per pair, seeds in charge of all randomness."""

import logging

import numpy as np
import pytest
import torch

import translate  # noqa: F401
from translate.data.transforms import PairTransform, TransformConfig, build_transform, default_load_size
from translate.errors import UsageError
from tests._data_helpers import pattern


def test_load_size_keeps_the_published_286_to_256_ratio():
    assert default_load_size(256) == 286
    assert default_load_size(128) == 143
    assert default_load_size(64) == 72
    assert TransformConfig(size=128).resolved_load_size == 143
    assert TransformConfig(size=128, load_size=150).resolved_load_size == 150


def test_bad_settings_are_usage_errors():
    with pytest.raises(UsageError, match="preprocess"):
        TransformConfig(preprocess="zoom")
    with pytest.raises(UsageError, match="smaller than the crop"):
        TransformConfig(size=256, load_size=200)


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "crop", "scale_width_and_crop", "none"])
def test_pair_gets_identical_crop_and_flip_over_many_draws(preprocess):
    # B is a pixelwise function of A (its negative): after any shared geometry B must still be -A.
    # A crop or flip that differed between the two would break this at almost every pixel; resizing
    # may round the two differently by one gray level (1/127.5), never more.
    transform = build_transform(TransformConfig(size=32, load_size=40, preprocess=preprocess), train=True)
    a = pattern(48, 56, seed=3)
    one_level = 0.0 if preprocess == "crop" else 1 / 127.5
    distinct = set()
    for seed in range(40):
        out = transform({"A": a, "B": 255 - a}, seed)
        torch.testing.assert_close(out["B"], -out["A"], atol=one_level + 1e-6, rtol=0)
        reference = transform({"A": a}, seed)["A"]
        torch.testing.assert_close(out["A"], reference)  # the geometry depends on the seed alone
        distinct.add(out["A"][:, :4, :4].sum().item())
    assert len(distinct) > (1 if preprocess == "none" else 5)  # flips (and crops) do vary


def test_pair_geometry_holds_through_resizing_when_b_equals_a():
    transform = build_transform(TransformConfig(size=32), train=True)  # resize to 36, crop 32
    a = pattern(50, 70, seed=4)
    for seed in range(20):
        out = transform({"A": a, "B": a.copy(), "B_truth": a.copy()}, seed)
        assert torch.equal(out["A"], out["B"]) and torch.equal(out["A"], out["B_truth"])


def test_flips_happen_about_half_the_time():
    flipping = build_transform(TransformConfig(size=16, preprocess="none"), train=True)
    still = build_transform(TransformConfig(size=16, preprocess="none", flip=False), train=True)
    a = pattern(16, 16, seed=5)
    unflipped = still({"A": a}, 0)["A"]
    mirrored = torch.flip(unflipped, dims=[2])
    outcomes = [flipping({"A": a}, seed)["A"] for seed in range(200)]
    assert all(torch.equal(o, unflipped) or torch.equal(o, mirrored) for o in outcomes)
    flipped = sum(torch.equal(o, mirrored) for o in outcomes)
    assert 70 < flipped < 130


def test_same_seed_same_output_different_seed_different_crop():
    transform = build_transform(TransformConfig(size=32), train=True)
    a = pattern(64, 64, seed=6)
    assert torch.equal(transform({"A": a}, 11)["A"], transform({"A": a}, 11)["A"])
    outputs = {transform({"A": a}, seed)["A"].sum().item() for seed in range(10)}
    assert len(outputs) > 1


def test_training_output_sizes_per_mode():
    a = pattern(60, 90, seed=7)  # 90 wide, 60 tall
    size = 32

    def shape(preprocess, train=True, **kw):
        return tuple(build_transform(TransformConfig(size=size, preprocess=preprocess, **kw), train=train)(
            {"A": a}, 0)["A"].shape)

    assert shape("resize_and_crop") == (3, 32, 32)
    assert shape("crop") == (3, 32, 32)
    # width -> load 36, height 36*60/90 = 24 raised to the crop size, as the reference's max(load*h/w, crop)
    assert shape("scale_width") == (3, 32, 36)
    # The load width rounded to the generators' multiple: 128 -> 143 -> 144 (the reference keeps 143,
    # which its own resnet generators cannot return at that size).
    assert tuple(build_transform(TransformConfig(size=128, preprocess="scale_width"), train=True)(
        {"A": a}, 0)["A"].shape) == (3, 128, 144)
    assert shape("scale_width_and_crop") == (3, 32, 32)
    assert shape("none") == (3, 60, 88)  # nearest multiple of 4, halves to even as the reference: 22.5 -> 22
    assert shape("none", multiple=16) == (3, 64, 96)


def test_test_time_transform_resizes_without_crop_or_flip():
    a = pattern(60, 90, seed=8)
    transform = build_transform(TransformConfig(size=32), train=False)
    outputs = [transform({"A": a}, seed)["A"] for seed in range(5)]
    assert outputs[0].shape == (3, 32, 32)
    assert all(torch.equal(outputs[0], o) for o in outputs[1:])
    scale_width = build_transform(TransformConfig(size=32, preprocess="scale_width"), train=False)
    assert scale_width({"A": a}, 0)["A"].shape == (3, 32, 32)  # 32 * 60 / 90 = 21.3, raised to the size
    tall = pattern(90, 60, seed=8)
    assert scale_width({"A": tall}, 0)["A"].shape == (3, 48, 32)  # 32 * 90 / 60 = 48


def test_output_is_the_image_scaled_to_minus_one_one():
    a = pattern(32, 32, seed=9)
    out = build_transform(TransformConfig(size=32, preprocess="none", flip=False), train=True)({"A": a}, 0)["A"]
    expected = torch.from_numpy(a.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert out.dtype == torch.float32


def test_small_images_are_scaled_up_to_the_crop_with_one_note(caplog):
    transform = build_transform(TransformConfig(size=32, preprocess="crop"), train=True)
    small = pattern(20, 24, seed=10)
    with caplog.at_level(logging.INFO, logger="translate.data"):
        for seed in range(5):
            assert transform({"A": small}, seed)["A"].shape == (3, 32, 32)
    notes = [r for r in caplog.records if "scaled up" in r.getMessage()]
    assert len(notes) == 1


def test_mismatched_pair_sizes_are_resized_to_a():
    a, b = pattern(32, 32, seed=11), pattern(16, 16, seed=12)
    out = build_transform(TransformConfig(size=32, preprocess="crop"), train=True)({"A": a, "B": b}, 0)
    assert out["B"].shape == out["A"].shape == (3, 32, 32)


def test_transform_pickles_for_worker_processes():
    import pickle

    transform = build_transform(TransformConfig(size=16), train=True)
    a = pattern(24, 24, seed=13)
    clone = pickle.loads(pickle.dumps(transform))
    assert isinstance(clone, PairTransform)
    assert torch.equal(clone({"A": a}, 5)["A"], transform({"A": a}, 5)["A"])


def test_a_resize_that_shrinks_one_side_and_grows_the_other_does_not_alias():
    from translate.data.transforms import resize_image

    stripes = np.zeros((200, 1000, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: a uniform grey once averaged
    out = resize_image(stripes, 286, 286).astype(np.float64)
    assert out.mean() == pytest.approx(127.5, abs=2)
    import cv2

    bicubic = cv2.resize(stripes, (286, 286), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    # Averaging 3.5 columns into one leaves a faint beat (std ~15); plain bicubic aliases (std ~90).
    assert out.mean(axis=(0, 2)).std() < 0.25 * bicubic.mean(axis=(0, 2)).std()

