"""Image reading: every common mode becomes 8-bit RGB with the right values; folders are listed stably."""

import numpy as np
import pytest
from PIL import Image

import translate  # noqa: F401 - sets NO_ALBUMENTATIONS_UPDATE before albumentations is imported
from translate.data.images import grayscale_rgb, list_images, load_rgb, to_rgb_array
from translate.data.transforms import to_tensor
from translate.errors import UsageError


def _save(tmp_path, image: Image.Image, name: str = "x.png", **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def test_grayscale_is_copied_into_three_channels(tmp_path):
    gray = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    out = load_rgb(_save(tmp_path, Image.fromarray(gray, "L")))
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_bilevel_image_becomes_black_and_white(tmp_path):
    bits = Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("1")
    np.testing.assert_array_equal(load_rgb(_save(tmp_path, bits))[0], [[0, 0, 0], [255, 255, 255]])


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque: unchanged
    rgba[0, 1] = (0, 0, 0, 0)  # transparent black: white
    rgba[0, 2] = (100, 0, 200, 128)  # half: c * a + 255 * (1 - a)
    out = load_rgb(_save(tmp_path, Image.fromarray(rgba, "RGBA")))
    a = 128 / 255
    expected_half = np.rint(np.array([100, 0, 200]) * a + 255 * (1 - a))
    np.testing.assert_array_equal(out[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 2], expected_half)


def test_gray_with_alpha_is_composited_on_white(tmp_path):
    la = Image.fromarray(np.array([[[50, 255], [50, 0]]], dtype=np.uint8), "LA")
    out = to_rgb_array(la)
    np.testing.assert_array_equal(out[0], [[50, 50, 50], [255, 255, 255]])


@pytest.mark.parametrize("mode, colour", [("L", 7), ("RGB", (7, 8, 9))])
def test_a_transparent_colour_of_a_gray_or_rgb_png_is_white(tmp_path, mode, colour):
    image = Image.new(mode, (2, 1), colour)
    image.putpixel((1, 0), 200 if mode == "L" else (200, 100, 50))
    loaded = load_rgb(_save(tmp_path, image, name=f"{mode}.png", transparency=colour))  # tRNS chunk
    np.testing.assert_array_equal(loaded[0], [[255, 255, 255], [200, 200, 200] if mode == "L" else [200, 100, 50]])


def test_a_transparent_value_of_a_16_bit_gray_png_is_white(tmp_path):
    # to_rgb_array looked for tRNS in 8-bit modes only: the transparent pixels came out black.
    values = np.array([[0, 51400]], dtype=np.uint16)  # 51400 / 257 = 200
    image = Image.fromarray(values)  # uint16: mode I;16
    path = _save(tmp_path, image, name="g16.png", transparency=0)
    assert Image.open(path).info.get("transparency") == 0  # the tRNS chunk went into the file
    np.testing.assert_array_equal(load_rgb(path)[0], [[255, 255, 255], [200, 200, 200]])
    np.testing.assert_array_equal(load_rgb(_save(tmp_path, image, name="plain.png"))[0], [[0, 0, 0], [200, 200, 200]])


def test_palette_image_uses_its_colours_and_transparency(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putdata([0, 1])
    np.testing.assert_array_equal(load_rgb(_save(tmp_path, palette))[0], [[255, 0, 0], [0, 0, 255]])
    transparent = _save(tmp_path, palette, name="t.png", transparency=1)  # index 1 transparent
    np.testing.assert_array_equal(load_rgb(transparent)[0], [[255, 0, 0], [255, 255, 255]])


def test_cmyk_uses_the_multiplicative_formula(tmp_path):
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255], [51, 102, 153, 102]]], dtype=np.uint8)
    out = load_rgb(_save(tmp_path, Image.fromarray(cmyk, "CMYK"), name="c.tif"))
    c, m, y, k = cmyk[0, 3].astype(float)
    expected_mixed = np.rint([(255 - c) * (255 - k) / 255, (255 - m) * (255 - k) / 255, (255 - y) * (255 - k) / 255])
    np.testing.assert_array_equal(out[0, :3], [[255, 255, 255], [0, 255, 255], [0, 0, 0]])
    np.testing.assert_array_equal(out[0, 3], expected_mixed)


def test_sixteen_bit_gray_maps_full_range_to_eight_bits(tmp_path):
    values = (np.arange(0, 256, 17, dtype=np.uint16) * 257).reshape(1, -1)  # 257 * k -> k exactly
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    out = load_rgb(_save(tmp_path, image))
    np.testing.assert_array_equal(out[0, :, 0], np.arange(0, 256, 17))
    # PIL's own convert("L") clips everything above 255 to white; we must not.
    assert out[0, 1, 0] == 17


def test_sixteen_bit_rgb_png_keeps_its_colours(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb16 = np.zeros((1, 2, 3), dtype=np.uint16)
    rgb16[0, 0] = (257 * 10, 257 * 20, 257 * 30)
    rgb16[0, 1] = (65535, 0, 257 * 128)
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), rgb16[..., ::-1])  # OpenCV writes BGR; the file holds 16-bit RGB
    np.testing.assert_array_equal(load_rgb(path)[0], [[10, 20, 30], [255, 0, 128]])


def test_32_bit_integer_and_float_images_are_converted(tmp_path):
    as_int = Image.fromarray(np.array([[0, 257 * 200, 70000]], dtype=np.int32), "I")
    np.testing.assert_array_equal(to_rgb_array(as_int)[0, :, 0], [0, 200, 255])
    as_float = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    np.testing.assert_array_equal(to_rgb_array(as_float)[0, :, 0], [0, 128, 255])


def test_converted_images_become_minus_one_to_one_tensors(tmp_path):
    gray = Image.fromarray(np.array([[0, 255, 51]], dtype=np.uint8), "L")
    tensor = to_tensor(load_rgb(_save(tmp_path, gray)))
    assert tensor.shape == (3, 1, 3)
    np.testing.assert_allclose(tensor[:, 0].numpy(), [[-1.0, 1.0, 51 / 127.5 - 1]] * 3, atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((2, 4, 3), dtype=np.uint8))  # 4 wide, 2 tall as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    path = _save(tmp_path, image, name="r.jpg", exif=exif.tobytes())
    assert load_rgb(path).shape[:2] == (4, 2)


def test_reduced_jpeg_decoding_keeps_the_requested_size(tmp_path):
    path = _save(tmp_path, Image.fromarray(np.full((800, 1000, 3), 90, np.uint8)), name="big.jpg")
    assert load_rgb(path).shape[:2] == (800, 1000)
    reduced = load_rgb(path, min_size=(286, 286))
    assert reduced.shape[0] >= 286 and reduced.shape[1] >= 286
    assert reduced.shape[0] < 800  # decoded at 1/2 scale


@pytest.mark.parametrize("width, reduced", [(1184, True), (1181, False), (1183, False)])
def test_reduced_jpeg_decoding_keeps_the_geometry(tmp_path, width, reduced):
    # libjpeg rounds a scaled size up: at a width that is not a multiple of the scale, the last column
    # stands for a partial block and the picture comes out stretched (an edge 0.67 px off at 256 px).
    from translate.data.transforms import resize_image

    image = np.zeros((width, width, 3), np.uint8)
    image[:, width - 120:] = 255
    path = _save(tmp_path, Image.fromarray(image), name="bar.jpg", quality=100)
    full, fast = load_rgb(path), load_rgb(path, min_size=(256, 256))
    assert (fast.shape[1] < width) == reduced
    edges = []
    for decoded in (full, fast):
        row = resize_image(decoded, 256, 256)[128, :, 0].astype(float)
        i = int(np.argmax(row > 127.5))
        edges.append(i - 1 + (127.5 - row[i - 1]) / (row[i] - row[i - 1]))  # where the bar starts, sub-pixel
    assert edges[1] == pytest.approx(edges[0], abs=0.05)


def test_reduced_decoding_of_a_side_by_side_jpeg_keeps_b_out_of_a(tmp_path):
    from translate.data.images import load_side_by_side, split_halves

    half = 1151  # A|B 2302 wide: 1/2 scale would give a 575.5-column half; libjpeg's last one mixes A and B
    image = np.zeros((half, 2 * half, 3), np.uint8)
    image[:, :half] = 255
    path = _save(tmp_path, Image.fromarray(image), name="ab.jpg", quality=100)
    a, b = split_halves(load_side_by_side(path, min_size=(2 * 286, 286)))
    assert a[:, -1].min() >= 250 and b[:, 0].max() <= 5


def test_unreadable_file_is_a_usage_error_naming_it(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not an image")
    with pytest.raises(UsageError, match="broken.png"):
        load_rgb(path)


def test_folders_are_listed_recursively_by_extension_in_any_case_and_sorted(tmp_path):
    for name in ["b.PNG", "a.jpg", "sub/c.JpEg", "sub/deep/d.webp", "e.tif", "f.bmp", "g.ppm", "h.TIFF"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    for name in ["notes.txt", ".hidden.png", ".ipynb_checkpoints/x.png", "__MACOSX/y.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["a.jpg", "b.PNG", "e.tif", "f.bmp", "g.ppm", "h.TIFF", "sub/c.JpEg", "sub/deep/d.webp"]


def test_linked_folders_are_followed_once_and_a_link_up_the_tree_does_not_loop(tmp_path):
    # os.walk did not follow links: a folder linked into trainA was skipped without a word.
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "x.png").write_bytes(b"")
    root = tmp_path / "trainA"
    root.mkdir()
    (root / "a.png").write_bytes(b"")
    (root / "more").symlink_to(extra, target_is_directory=True)
    (root / "same").symlink_to(extra, target_is_directory=True)  # the same folder twice: its images once
    (root / "loop").symlink_to(root, target_is_directory=True)
    found = [p.relative_to(root).as_posix() for p in list_images(root)]
    assert found == ["a.png", "more/x.png"]


def test_grayscale_rgb_uses_rec601_luma():
    pixel = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    np.testing.assert_array_equal(grayscale_rgb(pixel)[0, :, 0], np.rint([0.299 * 255, 0.587 * 255, 0.114 * 255]))
