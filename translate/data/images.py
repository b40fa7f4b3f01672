"""Reading image files as 8-bit RGB arrays, whatever their mode, and finding them in folders.

Every image leaves `load_rgb` as a (H, W, 3) uint8 array in RGB order. The conversions, and why:

| PIL mode            | becomes                                                                      |
|---------------------|------------------------------------------------------------------------------|
| RGB                 | itself (PIL reads 16-bit-per-channel RGB PNGs as RGB already, keeping the high byte) |
| L, 1                | the gray value copied into R, G and B                                        |
| I;16 (16-bit gray)  | round(v / 257): 65535 maps to 255, 257*k to exactly k. PIL's own convert("L") clips instead |
| I (32-bit int)      | read as 16-bit values (clipped to 0..65535), then as I;16                    |
| F (32-bit float)    | taken as [0, 1] when no value exceeds 1, else as [0, 255]; clipped            |
| RGBA, LA, PA; P, L, RGB with a transparent colour (tRNS) | composited on white (see below)       |
| P (palette)         | its palette colours                                                          |
| CMYK                | R = (255 - C)(255 - K) / 255, and likewise for G (M) and B (Y)               |
| others (YCbCr, ...) | PIL's convert("RGB")                                                         |

Alpha is composited on white rather than dropped: fully transparent pixels usually hold arbitrary
colours (often black) that nobody meant to show, and white is how such images look on a page. The
reference implementation drops alpha (convert("RGB")); for opaque images the two agree.

EXIF orientation is applied, so phone photos are upright as every viewer shows them.

JPEG files can be decoded at a reduced scale (libjpeg's DCT scaling, 1/2, 1/4 or 1/8) when the caller
says how large the image must stay (`min_size`): a 12-megapixel photo that is resized to 286 pixels
anyway decodes several times faster.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from translate.errors import UsageError

# Images above this many pixels are refused as likely decompression bombs (PIL's own warning threshold,
# about 9,500 x 9,500; a 256-px training set never comes near it).
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")

# EXIF orientations 5-8 rotate by 90 degrees: the stored width is the displayed height.
_EXIF_ORIENTATION_TAG = 0x0112
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


def is_image_file(name: str | os.PathLike) -> bool:
    """True for file names with one of the image extensions, in any letter case."""
    return os.fspath(name).lower().endswith(IMAGE_EXTENSIONS)


def _is_hidden(name: str) -> bool:
    # .ipynb_checkpoints, .DS_Store and the __MACOSX folders that zip tools on macOS add.
    return name.startswith(".") or name == "__MACOSX"


def list_images(folder: str | os.PathLike) -> list[Path]:
    """All image files under `folder`, recursively, sorted by their path relative to it.

    Hidden files and folders (names starting with a dot, and __MACOSX) are skipped. Linked folders are
    followed (a folder linked in from elsewhere holds images like any other), each real folder once, so
    a link back up the tree cannot loop. The order depends only on the names, so every process
    (DataLoader worker, DDP rank, resumed run) sees the same list.
    """
    folder = Path(folder)
    found: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(directory)
        if real in seen:  # reached again through a link
            subdirs[:] = []
            continue
        seen.add(real)
        subdirs[:] = sorted(d for d in subdirs if not _is_hidden(d))  # which path of a twice-linked folder counts
        for name in files:
            if not _is_hidden(name) and is_image_file(name):
                path = Path(directory) / name
                found.append((path.relative_to(folder).as_posix(), path))
    found.sort(key=lambda item: item[0])
    return [path for _, path in found]


def describe_folder(folder: Path, limit: int = 3) -> str:
    """A short account of what a folder holds, for error messages ("4 files, e.g. a.txt, b.txt")."""
    try:
        names = sorted(n for n in os.listdir(folder) if not _is_hidden(n))
    except OSError:
        return "nothing readable"
    if not names:
        return "nothing"
    shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return f"{len(names)} entries ({shown})"


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    weight = alpha.astype(np.float32)[..., None] / 255.0
    out = rgb.astype(np.float32) * weight + 255.0 * (1.0 - weight)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _sixteen_bit_to_eight(values: np.ndarray) -> np.ndarray:
    # 65535 / 257 = 255 exactly, so the full 16-bit range maps onto the full 8-bit range.
    values = np.clip(values.astype(np.float64), 0, 65535)
    return np.rint(values / 257.0).astype(np.uint8)


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert a PIL image of any common mode to a (H, W, 3) uint8 RGB array (see the module table)."""
    mode = image.mode
    if mode in ("RGB", "L") and "transparency" in image.info:
        # A PNG's tRNS chunk: one colour of a gray or RGB image is transparent, composited on white as
        # an alpha channel would be.
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint8)
        return _composite_on_white(rgba[..., :3], rgba[..., 3])
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8)
    if mode == "L":
        return _gray_to_rgb(np.asarray(image, dtype=np.uint8))
    if mode == "1":
        return _gray_to_rgb(np.asarray(image.convert("L"), dtype=np.uint8))
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image) if mode != "I" else np.asarray(image, dtype=np.int64)
        gray = _gray_to_rgb(_sixteen_bit_to_eight(values))
        transparent = image.info.get("transparency")
        if isinstance(transparent, int):  # a 16-bit gray PNG's tRNS: that one value is transparent
            return _composite_on_white(gray, np.where(values == transparent, 0, 255).astype(np.uint8))
        return gray
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        scale = 255.0 if values.size and float(np.nanmax(values)) <= 1.0 else 1.0
        values = np.nan_to_num(values * scale, nan=0.0)
        return _gray_to_rgb(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    if mode == "CMYK":
        cmyk = np.asarray(image, dtype=np.float32)
        ink_free = 255.0 - cmyk[..., :3]
        key_free = (255.0 - cmyk[..., 3:4]) / 255.0
        return np.clip(np.rint(ink_free * key_free), 0, 255).astype(np.uint8)
    if mode == "P" and "transparency" not in image.info:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint8)
        return _composite_on_white(rgba[..., :3], rgba[..., 3])
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def upright_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of an opened image as `load_rgb` returns it: EXIF orientations 5-8 turn it a
    quarter."""
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block: load_rgb then keeps the image as stored
        orientation = 1
    return (image.height, image.width) if orientation in _TRANSPOSING_ORIENTATIONS else (image.width, image.height)


def _request_reduced_decode(image: Image.Image, min_size: tuple[int, int], halves: bool = False) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale while both sides stay >= min_size (width, height).

    Only scales that divide both sides (and, for an A|B image, each half's width): libjpeg rounds a
    scaled size up, and the last row or column then stands for a partial block padded by the encoder,
    which stretches the picture by up to (s - 1) / s pixels and, at the middle of an A|B image,
    mixes B into A's last column. Other sizes decode at full resolution."""
    width, height = min_size
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block must not stop the image from loading
        orientation = 1
    turned = orientation in _TRANSPOSING_ORIENTATIONS
    if turned:
        width, height = height, width
    upright_width = image.height if turned else image.width
    for scale in (8, 4, 2):
        fits = image.width // scale >= width and image.height // scale >= height
        exact = image.width % scale == 0 and image.height % scale == 0 and (not halves or upright_width % (2 * scale) == 0)
        if fits and exact:
            image.draft("RGB", (image.width // scale, image.height // scale))
            return


def load_rgb(path: str | os.PathLike, *, min_size: tuple[int, int] | None = None, halves: bool = False) -> np.ndarray:
    """Read an image file as a (H, W, 3) uint8 RGB array, upright (EXIF orientation applied).

    min_size: (width, height) the image will at least be resized to afterwards; JPEGs may then be
    decoded at a reduced scale that still covers it. None decodes at full resolution. halves: the image
    is an A|B pair (a reduced decode must keep the halves apart).
    """
    try:
        with Image.open(path) as image:
            # PIL refuses above twice MAX_IMAGE_PIXELS and only warns between; here both are refused,
            # from the header, before anything is decoded.
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(path)
            if min_size is not None and image.format == "JPEG":
                _request_reduced_decode(image, min_size, halves)
            upright = ImageOps.exif_transpose(image)
            return to_rgb_array(upright if upright is not None else image)
    except Image.DecompressionBombError:
        raise ImageReadError(path, f"it is larger than {MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?); "
                                   "shrink it or remove it") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        why = " ".join(str(error).split()) or type(error).__name__  # one line
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            why = "the file is empty (0 bytes)"
        raise ImageReadError(path, f"{why}; remove or replace the file") from None


class ImageReadError(UsageError):
    """An image file that cannot be used: `path`, and `why` (one line that ends with what to do)."""

    def __init__(self, path, why: str):
        self.path, self.why = os.fspath(path), why
        super().__init__(f"cannot read image {self.path}: {why}")


ODD_WIDTH_WHY = "an odd number, so its A and B halves cannot be equal; crop or pad it to an even width"


def split_halves(array: np.ndarray, path: str | os.PathLike = "") -> tuple[np.ndarray, np.ndarray]:
    """Split a side-by-side A|B image into its halves; an odd width is an ImageReadError naming `path`."""
    width = array.shape[1]
    if width % 2:
        raise ImageReadError(path, f"it is {width} pixels wide, {ODD_WIDTH_WHY}")
    return array[:, : width // 2], array[:, width // 2 :]


def load_side_by_side(path: str | os.PathLike, *, min_size: tuple[int, int] | None = None) -> np.ndarray:
    """load_rgb for an A|B image, checked to split evenly (`split_halves`)."""
    image = load_rgb(path, min_size=min_size, halves=True)
    split_halves(image, path)
    return image


def grayscale_rgb(array: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B) copied into three channels."""
    luma = array.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return _gray_to_rgb(np.clip(np.rint(luma), 0, 255).astype(np.uint8))
