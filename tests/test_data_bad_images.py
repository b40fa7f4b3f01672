"""Bad image files: each kind stops training before anything is written, with one line that names the
file and what to do (exit 2); with --skip-bad-images the samples that need them are left out and one
warning lists them."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _data_helpers import make_aligned, make_unaligned, pattern, write_image
from translate.data import TransformConfig, check_dataset, find_bad_images, load_rgb, open_dataset
from translate.data.images import MAX_IMAGE_PIXELS, ImageReadError
from translate.errors import UsageError


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with no image data: what a decompression bomb
    looks like to a reader that trusts headers."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


BAD_FILES = {
    "zero_byte": lambda: b"",
    "text_named_png": lambda: b"this is a text file, not a picture\n",
    "truncated": lambda: png_bytes(pattern(40, 48, seed=5))[:200],
    "corrupt": lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    # 1.5x the limit (PIL itself only warns there) and 3x (PIL refuses).
    "bomb_warned": lambda: png_header_only(10_000, int(MAX_IMAGE_PIXELS * 1.5) // 10_000),
    "bomb_refused": lambda: png_header_only(20_000, int(MAX_IMAGE_PIXELS * 3) // 20_000),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_load_rgb_refuses_each_kind_with_one_line_naming_the_file(tmp_path, kind, recwarn):
    path = tmp_path / f"{kind}.png"
    path.write_bytes(BAD_FILES[kind]())
    with pytest.raises(ImageReadError) as caught:
        load_rgb(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    assert message.endswith(("remove or replace the file", "shrink it or remove it"))
    if kind.startswith("bomb"):
        assert "decompression bomb" in message
    if kind == "zero_byte":
        assert "empty" in message


def _unaligned_with_bad(root: Path, kind: str) -> tuple[Path, Path]:
    data = make_unaligned(root, {"trainA": 4, "trainB": 4, "testA": 2, "testB": 2})
    bad = data / "trainB" / "002.png"
    bad.write_bytes(BAD_FILES[kind]())
    return data, bad


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_check_finds_the_bad_file_of_a_split(tmp_path, kind):
    data, bad = _unaligned_with_bad(tmp_path / "d", kind)
    dataset = open_dataset(data, "train", transform=TransformConfig(size=32))
    assert [b.path for b in find_bad_images(dataset)] == [str(bad)]
    with pytest.raises(UsageError, match="--skip-bad-images") as caught:
        check_dataset(dataset)
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)


def test_skipping_removes_only_samples_that_need_a_bad_file(tmp_path):
    data, bad = _unaligned_with_bad(tmp_path / "d", "truncated")
    (data / "trainA" / "000.png").write_bytes(b"")
    dataset = open_dataset(data, "train", transform=TransformConfig(size=32))
    messages = []
    skipped = check_dataset(dataset, skip_bad=True, log=messages.append)
    assert sorted(b.path for b in skipped) == sorted([str(bad), str(data / "trainA" / "000.png")])
    assert len(dataset.entries) == 3 and len(dataset.b_pool) == 3
    assert all(str(bad) != ref.path for ref in dataset.b_pool)
    warning = [m for m in messages if m.startswith("warning")]
    assert len(warning) == 1 and str(bad) in warning[0] and "000.png" in warning[0]
    for i in range(len(dataset)):  # every remaining sample reads
        dataset[i]


def test_aligned_image_of_odd_width_is_refused_by_name(tmp_path):
    data = make_aligned(tmp_path / "d", {"train": 3, "test": 1})
    odd = data / "train" / "001.png"
    write_image(odd, pattern(32, 63, seed=1))
    dataset = open_dataset(data, "train", transform=TransformConfig(size=32))
    with pytest.raises(UsageError) as caught:
        check_dataset(dataset)
    message = str(caught.value)
    assert str(odd) in message and "63 pixels wide" in message and "even width" in message
    with pytest.raises(ImageReadError, match="odd number"):  # reading it directly says the same
        dataset[1]


def test_even_width_jpeg_decoded_at_reduced_scale_still_splits(tmp_path):
    # 2 x 257 = 514 wide: libjpeg's 1/2 scale gives 257 columns (it rounds up), an odd width that the
    # file itself does not have. It must not be refused.
    data = tmp_path / "d"
    (data / "train").mkdir(parents=True)
    Image.fromarray(pattern(257, 514, seed=3)).save(data / "train" / "000.jpg", quality=95)
    dataset = open_dataset(data, "train", transform=TransformConfig(size=64, load_size=64))
    assert find_bad_images(dataset) == []
    sample = dataset[0]
    assert sample["A"].shape == sample["B"].shape == (3, 64, 64)


def test_every_file_bad_is_an_error_even_when_skipping(tmp_path):
    data = make_unaligned(tmp_path / "d", {"trainA": 2, "trainB": 2, "testA": 1, "testB": 1})
    for path in (data / "trainB").iterdir():
        path.write_bytes(b"")
    dataset = open_dataset(data, "train", transform=TransformConfig(size=32))
    with pytest.raises(UsageError, match="no usable sample"):
        check_dataset(dataset, skip_bad=True)


TINY = ["--size", "32", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--max-steps", "2", "--workers", "0",
        "--no-tensorboard", "--amp", "off", "--log-every", "1"]


def test_train_cli_stops_before_writing_anything_and_skips_on_request(tmp_path, capsys):
    from translate.cli.train import main

    data, bad = _unaligned_with_bad(tmp_path / "d", "text_named_png")
    checkpoints = tmp_path / "checkpoints"
    args = ["cyclegan", "--data", str(data), "--checkpoints", str(checkpoints), "--name", "run", *TINY]
    assert main(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and str(bad) in errors[0] and "--skip-bad-images" in errors[0]
    assert not checkpoints.exists()

    assert main([*args, "--skip-bad-images"]) == 0
    err = capsys.readouterr().err
    assert "warning: skipped 1 bad image file(s)" in err and str(bad) in err
    assert (checkpoints / "run" / "G_A.safetensors").exists()


def test_images_of_different_sizes_in_one_batch_are_refused_before_anything_is_written(tmp_path, capsys):
    # --preprocess none keeps each image's own size: a batch of two such images cannot be stacked.
    from translate.cli.train import main

    data = make_unaligned(tmp_path / "d", {"trainA": 3, "trainB": 3, "testA": 2, "testB": 2}, size=(32, 32))
    write_image(data / "trainA" / "001.png", pattern(48, 32, seed=9))
    checkpoints = tmp_path / "checkpoints"
    args = ["cyclegan", "--data", str(data), "--checkpoints", str(checkpoints), "--name", "run", *TINY,
            "--preprocess", "none"]
    assert main([*args, "--batch-size", "2"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "001.png: 32x48" in errors[0] and "--batch-size 1" in errors[0]
    assert not checkpoints.exists()
    assert main([*args, "--batch-size", "1"]) == 0  # one image a step: any sizes


def test_b_images_of_another_size_are_found_too(tmp_path):
    # In unpaired data B images are transformed on their own, not resized to their A partner.
    from translate.data.checks import check_batchable

    data = make_unaligned(tmp_path / "d", {"trainA": 2, "trainB": 2}, size=(32, 32))
    write_image(data / "trainB" / "001.png", pattern(48, 32, seed=9))
    dataset = open_dataset(data, "train", pairing="unpaired", transform=TransformConfig(size=32, preprocess="none"))
    check_batchable(dataset, 1)
    with pytest.raises(UsageError, match=r"trainB/001.png: 32x48"):
        check_batchable(dataset, 2)

