"""Translating images with a trained generator, at any size.

An image is padded to the multiple the generator needs (reflection where the image is large enough,
edge replication otherwise), translated, and cropped back to its own size, so outputs match inputs
pixel for pixel.

Large images are translated in tiles so that memory stays bounded (`translate_tiled`): overlapping
square tiles spread evenly over the image, each translated on its own, blended with raised-cosine
ramps across every overlap (the ramps of two neighbours sum to one), so no seam shows. Memory then
grows with the tile, not the image: the image, the output accumulator and one tile's activations.
Generators with instance norm normalise each tile with its own statistics, so a tiled result differs
slightly from the untiled one even far from the seams; docs/app.md measures by how much, and why the
defaults (`DEFAULT_TILE`, `DEFAULT_OVERLAP`, `AUTO_TILE_PIXELS`) are what they are.
"""

from __future__ import annotations

import contextlib
import html
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import numpy as np
import torch
import torch.nn.functional as F

from translate.data.images import IMAGE_EXTENSIONS, list_images
from translate.errors import UsageError


def generator_size_rule(generator) -> tuple[int, int]:
    """(the multiple its height and width must be, the smallest they may be)."""
    from translate.nets.generators import size_rule

    return size_rule(generator.architecture["name"])


def generator_multiple(generator) -> int:
    return generator_size_rule(generator)[0]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [-1, 1]."""
    # np.require copies only arrays torch cannot share (read-only ones, e.g. np.asarray of a PIL image).
    array = np.require(image, dtype=np.uint8, requirements=["C", "W"])
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    if x.dim() == 4:
        x = x[0]
    height, width = x.shape[-2:]
    out = np.empty((height, width, 3), dtype=np.uint8)
    # Converted in bands of rows, so that a large image needs no full-size float temporaries.
    for y0 in range(0, height, 256):
        band = ((x[:, y0:y0 + 256].float().clamp(-1, 1) + 1.0) * 127.5 + 0.5).to(torch.uint8)
        out[y0:y0 + 256] = band.permute(1, 2, 0).cpu().numpy()
    return out


def pad_to_multiple(x: torch.Tensor, multiple: int, smallest: int = 1) -> tuple[torch.Tensor, tuple[int, int]]:
    """Padded on the bottom and right to multiples of `multiple` of at least `smallest`; with (H, W)."""
    h, w = x.shape[-2:]
    least = math.ceil(smallest / multiple)
    ph, pw = (max(math.ceil(n / multiple), least) * multiple - n for n in (h, w))
    if ph == 0 and pw == 0:
        return x, (h, w)
    # Reflection needs the pad to be smaller than the image; large pads (small images into unet_256)
    # replicate the border instead.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


# Tiling defaults; docs/app.md has the measurements behind them.
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64
AUTO_TILE_PIXELS = 1024 * 1024  # images with more pixels are tiled when tiling is "auto"

Progress = Callable[[int, int], None]  # (tiles done, tiles in all)


@torch.no_grad()
def translate_tensor(generator, x: torch.Tensor, condition=None, autocast=None, *, tile: int | str | None = None,
                     overlap: int = DEFAULT_OVERLAP, progress: Progress | None = None) -> torch.Tensor:
    """Translate a (N, 3, H, W) batch in [-1, 1] of any H, W; returns the same size.

    tile: None translates the whole image at once; an int translates it in tiles of about that side
    (see `translate_tiled`); "auto" tiles with DEFAULT_TILE when H * W exceeds AUTO_TILE_PIXELS."""
    tile = resolve_tile(tile, x.shape[-2], x.shape[-1])
    if tile is not None:
        return translate_tiled(generator, x, condition, autocast, tile=tile, overlap=overlap, device=x.device,
                               progress=progress)
    padded, (h, w) = pad_to_multiple(x, *generator_size_rule(generator))
    with (autocast or contextlib.nullcontext)():
        out = generator(padded, condition)
    return out.float()[..., :h, :w]


def resolve_tile(tile: int | str | None, height: int, width: int) -> int | None:
    """The tile side to use for an image of height x width: None means "no tiling"."""
    if tile is None or tile == "off":
        return None
    if tile == "auto":
        return DEFAULT_TILE if height * width > AUTO_TILE_PIXELS else None
    if isinstance(tile, str):
        try:
            tile = int(tile)
        except ValueError:
            raise UsageError(f"tile must be a number of pixels, 'auto' or 'off', got {tile!r}") from None
    if tile <= 0:
        raise UsageError(f"the tile size must be positive, got {tile}")
    return int(tile)


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Offsets of the fewest tiles of side `tile` that cover [0, length) with neighbours overlapping by
    at least `overlap` pixels, spread evenly: the first at 0, the last ending at `length` rounded up to
    `multiple` (translate_tensor pads it as the whole image would be padded).

    Every offset is a multiple of `multiple` (the generator's, a power of two): a network of stride-2
    layers computes something else on an input shifted by anything less, so only tiles on its grid
    reproduce the untiled output. `tile` must be a multiple of it; an overlap that would leave less than
    `multiple` between starts is cut to tile - multiple."""
    if length <= tile:
        return [0]
    if tile % multiple:
        raise ValueError(f"tile {tile} is not a multiple of {multiple}")
    # In units of `multiple`: the padded length, the tile, and the overlap rounded up.
    units, tile_units = math.ceil(length / multiple), tile // multiple
    overlap_units = min(math.ceil(overlap / multiple), tile_units - 1)
    gaps = math.ceil((units - tile_units) / (tile_units - overlap_units))  # tiles - 1
    return [multiple * ((i * (units - tile_units)) // gaps) for i in range(gaps + 1)]


def _ramp(n: int, rising: bool) -> torch.Tensor:
    """Raised cosine over n pixels, strictly between 0 and 1; a rising and a falling ramp over the same
    pixels sum to 1 (sin^2 + cos^2), so two blended tiles keep the image's brightness."""
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    up = 0.5 - 0.5 * torch.cos(math.pi * t)
    return (up if rising else 1.0 - up).float()


def tile_weights(starts: list[int], tile: int, length: int) -> list[torch.Tensor]:
    """One blending weight per pixel of each tile along one axis: 1 inside, ramps across the overlap
    with each neighbour, and no ramp at the image's own borders."""
    weights = []
    for i, start in enumerate(starts):
        size = min(tile, length - start)
        w = torch.ones(size)
        if i > 0:
            n = starts[i - 1] + tile - start  # overlap with the previous tile
            w[:n] *= _ramp(n, rising=True)
        if i + 1 < len(starts):
            n = start + size - starts[i + 1]  # overlap with the next tile
            w[size - n:] *= _ramp(n, rising=False)
        weights.append(w)
    return weights


class InstanceNormStatistics:
    """The channel statistics every instance norm of a generator sees on one whole image, recorded once
    and then used for each tile, so that tiles are normalised alike (instance norm otherwise normalises
    each tile with its own mean and variance, and a tile of sky comes out differently from the same sky
    in the whole picture). Batch-norm networks need none of this: they use running statistics."""

    def __init__(self, generator):
        self.layers = [m for m in generator.modules()
                       if isinstance(m, torch.nn.InstanceNorm2d) and not m.track_running_stats]
        self.stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __bool__(self) -> bool:
        return bool(self.layers)

    @contextlib.contextmanager
    def record(self):
        def keep(module, inputs, output):
            x = inputs[0].float()
            self.stats[id(module)] = (x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), unbiased=False, keepdim=True))

        handles = [m.register_forward_hook(keep) for m in self.layers]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    @contextlib.contextmanager
    def apply(self):
        def normalise(module, inputs, output):
            mean, var = self.stats[id(module)]
            x = inputs[0]
            return ((x.float() - mean.to(x.device)) * torch.rsqrt(var.to(x.device) + module.eps)).to(output.dtype)

        handles = [m.register_forward_hook(normalise) for m in self.layers]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()


def _downscaled(x: torch.Tensor | np.ndarray, max_pixels: int | None) -> torch.Tensor:
    """The image (as a float batch) shrunk by area averaging to at most `max_pixels` (None: full size)."""
    height, width = (x.shape[:2] if isinstance(x, np.ndarray) else x.shape[-2:])
    scale = 1.0 if max_pixels is None or height * width <= max_pixels else math.sqrt(max_pixels / (height * width))
    size = (max(1, int(height * scale)), max(1, int(width * scale)))
    if isinstance(x, np.ndarray):
        if size != (height, width):
            from PIL import Image

            x = np.asarray(Image.fromarray(x).resize((size[1], size[0]), Image.BOX))
        return to_tensor(x)
    return x if size == (height, width) else F.interpolate(x, size=size, mode="area")


@torch.no_grad()
def translate_tiled(generator, x: torch.Tensor | np.ndarray, condition=None, autocast=None, *,
                    tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, device="cpu",
                    statistics: str = "image", statistics_pixels: int | None = AUTO_TILE_PIXELS,
                    progress: Progress | None = None) -> torch.Tensor:
    """Translate an image in overlapping tiles and blend them; returns (N, 3, H, W) float in [-1, 1].

    x: a (N, 3, H, W) tensor in [-1, 1], or one (H, W, 3) uint8 image (converted a tile at a time, so a
    full-size float copy of the input is never made). `tile` is rounded up to the generator's required
    multiple; `overlap` must be smaller than the tile. Memory beyond the model: the input, the float
    output (12 bytes per pixel and image), and one tile's activations.

    statistics (instance-norm generators only): "image" normalises every tile with the statistics of
    the whole image, measured first on a copy shrunk to at most `statistics_pixels` (None: full size,
    which makes tiling exact wherever a tile holds a pixel's whole receptive field); "tile" lets each
    tile use its own.
    """
    if statistics not in ("image", "tile"):
        raise UsageError(f"statistics must be 'image' or 'tile', got {statistics!r}")
    multiple = generator_multiple(generator)
    tile = max(multiple, math.ceil(tile / multiple) * multiple)
    if not 0 <= overlap < tile:
        raise UsageError(f"the overlap must be at least 0 and smaller than the tile ({tile} px), got {overlap}")
    from_uint8 = isinstance(x, np.ndarray)
    if from_uint8:
        height, width = x.shape[:2]
        batch = 1
    else:
        batch, _, height, width = x.shape
    norms = InstanceNormStatistics(generator) if statistics == "image" else None
    normalisation = contextlib.nullcontext()
    if norms:
        with norms.record():
            translate_tensor(generator, _downscaled(x, statistics_pixels).to(device), condition, autocast)
        normalisation = norms.apply()
    ys, xs = tile_starts(height, tile, overlap, multiple), tile_starts(width, tile, overlap, multiple)
    # A tensor's translation stays on its device; an image's is gathered on the CPU (it may be huge).
    out_device = torch.device("cpu") if from_uint8 else x.device
    wy = [w.to(out_device) for w in tile_weights(ys, tile, height)]
    wx = [w.to(out_device) for w in tile_weights(xs, tile, width)]
    # The tiles form a grid and every weight is a product wy * wx, so the weights' sum is the outer
    # product of the per-axis sums: no full-size weight image is needed.
    sum_y, sum_x = torch.zeros(height, device=out_device), torch.zeros(width, device=out_device)
    for y0, w in zip(ys, wy):
        sum_y[y0:y0 + len(w)] += w
    for x0, w in zip(xs, wx):
        sum_x[x0:x0 + len(w)] += w
    out = torch.zeros(batch, 3, height, width, device=out_device)
    total, done = len(ys) * len(xs), 0
    with normalisation:
        for y0, weight_y in zip(ys, wy):
            for x0, weight_x in zip(xs, wx):
                y1, x1 = y0 + len(weight_y), x0 + len(weight_x)
                if from_uint8:
                    piece = to_tensor(x[y0:y1, x0:x1]).to(device)
                else:
                    piece = x[..., y0:y1, x0:x1].to(device)
                result = translate_tensor(generator, piece, condition, autocast).to(out.device)
                out[..., y0:y1, x0:x1] += result * (weight_y[:, None] * weight_x[None, :])
                done += 1
                if progress is not None:
                    progress(done, total)
    out /= sum_y[:, None] * sum_x[None, :]
    return out


def blended_mask(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> np.ndarray:
    """(H, W) bool: True where tiles overlap and are blended (the seams), False where one tile alone
    gives the pixel. `tile` is rounded up to `multiple` as translate_tiled does."""
    tile = max(multiple, math.ceil(tile / multiple) * multiple)
    shared = []
    for length in (height, width):
        cover = np.zeros(length, dtype=np.int32)
        for start in tile_starts(length, tile, overlap, multiple):
            cover[start:start + tile] += 1
        shared.append(cover > 1)
    return shared[0][:, None] | shared[1][None, :]


def translate_image(generator, image: np.ndarray, condition=None, *, device="cpu", autocast=None,
                    max_pixels: int | None = None, tile: int | str | None = None, overlap: int = DEFAULT_OVERLAP,
                    statistics: str = "image", progress: Progress | None = None) -> np.ndarray:
    """Translate one (H, W, 3) uint8 RGB image; returns an image of the same size.

    tile: None (default) translates it whole; an int or "auto" as in `translate_tensor`; `statistics`
    as in `translate_tiled`."""
    if max_pixels is not None and image.shape[0] * image.shape[1] > max_pixels:
        raise UsageError(f"the image has {image.shape[1]}x{image.shape[0]} pixels, more than the limit of {max_pixels}; "
                         "downscale it first")
    tile = resolve_tile(tile, image.shape[0], image.shape[1])
    if tile is not None:
        return to_uint8(translate_tiled(generator, image, condition, autocast, tile=tile, overlap=overlap,
                                        device=device, statistics=statistics, progress=progress))
    x = to_tensor(image).to(device)
    return to_uint8(translate_tensor(generator, x, condition, autocast))


def list_inputs(path: Path) -> list[Path]:
    """The images to translate: `path` itself, or the images under the folder `path` as training lists
    them (`list_images`: hidden files and __MACOSX/ left out), without what translate-infer wrote into
    folders inside it (an output folder there holds the results of earlier runs, not inputs)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        # The copies a results page of ours shows (OUT/images/) are not inputs, nor the translations a
        # run wrote into a folder inside this one (this run's --output or another). The user's own
        # images in such a folder are: an --output that already holds photos does not hide them.
        records: dict[Path, set[str]] = {}
        files = [f for f in list_images(path) if not _page_copy(f, path) and not _written_here(f, path, records)]
        if not files:
            raise UsageError(f"{path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return files
    raise UsageError(f"input {path} not found")


def _page_copy(file: Path, root: Path) -> bool:
    """Whether `file` (under the folder `root`) is in the images/ folder of a translate-infer output."""
    for parent in file.relative_to(root).parents:
        if parent == Path("."):  # the input folder itself: translating a page's copies is asked for
            break
        folder = root / parent
        if folder.name == "images" and (folder.parent / WRITTEN_RECORD).is_file():
            return True
    return False


def _written_here(file: Path, root: Path, records: dict[Path, set[str]]) -> bool:
    """Whether `file` (under the folder `root`) was written by translate-infer into a results folder
    inside `root` (`written_before`; `records` caches them by folder). `root` itself does not count:
    translating a results folder's images is asked for."""
    for parent in file.relative_to(root).parents:
        if parent == Path("."):
            break
        folder = root / parent
        if folder not in records:
            records[folder] = written_before(folder)
        if file.relative_to(folder).as_posix() in records[folder]:
            return True
    return False


def output_names(names: list[Path]) -> list[Path]:
    """The PNG each input (a path relative to the input folder) is written to: its name with the
    extension .png, except where inputs differ only in extension (photo.jpg, photo.png): those not
    named .png already keep theirs before it (photo.jpg.png), so that no output overwrites another."""
    # Compared case-insensitively: on macOS and Windows Photo.png and photo.png are the same file.
    def key(path: Path) -> str:
        return path.as_posix().casefold()

    plain = [name.with_suffix(".png") for name in names]
    shared = Counter(key(out) for out in plain)
    outs = [name.with_name(name.name + ".png") if shared[key(out)] > 1 and out != name else out
            for name, out in zip(names, plain)]
    first: dict[str, tuple[Path, Path]] = {}
    for name, out in zip(names, outs):
        other, other_out = first.setdefault(key(out), (name, out))
        if other == name:
            continue
        if other_out != out:  # A.png and a.png: two files here, one on a case-blind disk
            if other.as_posix().casefold() == name.as_posix().casefold():
                raise UsageError(f"{other} and {name} differ only in case, and on a case-blind disk (macOS, Windows) "
                                 "their translations would be one file; rename one of them")
            raise UsageError(f"{other} and {name} would be written to {other_out} and {out}, which differ only in "
                             "case: one file on a case-blind disk (macOS, Windows); rename one of them")
        # (otherwise an input is itself named like photo.jpg.png)
        raise UsageError(f"{other} and {name} would both be written to {out}; rename one of them")
    return outs


def refuse_overwriting(writes: list[Path], inputs: list[Path]) -> None:
    """A UsageError when a path about to be written is one of `inputs` (the same file, whatever the
    path says: compared by device and inode, so links and case-insensitive file systems count)."""
    def identity(path: Path) -> tuple[int, int]:
        st = path.stat()
        return st.st_dev, st.st_ino

    protected = {identity(p): p for p in inputs}
    for path in writes:
        hit = protected.get(identity(path)) if path.exists() else None
        if hit is not None:
            raise UsageError(f"writing {path} would overwrite the input {hit}; choose an --output folder "
                             "apart from the inputs")


#: translate-infer's record, in its output folder, of the files it wrote there (relative paths)
WRITTEN_RECORD = ".translate-infer.json"
#: how a results page of write_index begins, and its column heads (pages from before the record are
#: recognised by them)
_PAGE_START = "<!doctype html><meta charset='utf-8'><title>"
_PAGE_COLUMNS = "<th>input</th><th>output</th>"


def written_before(out_dir: Path) -> set[str]:
    """The files (relative posix paths) earlier translate-infer runs wrote into `out_dir`: its record,
    or for a folder written before the record existed, index.html and the images its page shows."""
    import json
    import re

    record = out_dir / WRITTEN_RECORD
    if record.is_file():
        try:
            return {str(name) for name in json.loads(record.read_text(encoding="utf-8"))["files"]}
        except (OSError, ValueError, KeyError, TypeError):
            return set()
    page = out_dir / "index.html"
    try:
        text = page.read_text(encoding="utf-8") if page.is_file() else ""
    except (OSError, UnicodeDecodeError):
        return set()
    if not text.startswith(_PAGE_START) or _PAGE_COLUMNS not in text:
        return set()  # not a results page of ours
    from urllib.parse import unquote

    return {"index.html"} | {unquote(html.unescape(src), errors="surrogateescape")
                             for src in re.findall(r'<img src="([^"]*)"', text)}


def refuse_foreign_files(writes: list[Path], out_dir: Path) -> None:
    """A UsageError when a path about to be written already exists and no translate-infer run wrote it
    (the user's own file in the --output folder)."""
    ours = written_before(out_dir)
    for path in writes:
        if path.exists():
            rel = relative_src(path, out_dir)
            if rel not in ours:
                raise UsageError(f"{out_dir} already holds {rel}, which is not recorded as written by translate-infer "
                                 f"({WRITTEN_RECORD}); pick an empty or new --output folder, or move that file away")


def record_writes(writes: list[Path], out_dir: Path) -> None:
    """Add `writes` to the folder's record (before they are written: an interrupted run's files are
    still known as ours)."""
    from translate.train.checkpoint import atomic_write_json

    names = written_before(out_dir) | {relative_src(path, out_dir) for path in writes}
    atomic_write_json({"files": sorted(names)}, out_dir / WRITTEN_RECORD)


def truth_for(input_file: Path, input_root: Path, cache: dict | None = None) -> Path | None:
    """The ground truth of an input, where a dataset provides one: `testA/x.png` -> `testA_truth/x.png`
    (a synthetic unpaired set's), or the other side of a paired folder: `test/A/x.png` -> `test/B/x.*`
    (and `A/test` -> `B/test`) in the aligned_folders layout. `cache` (a dict kept across the inputs of
    one folder) holds the other side's listing, read once rather than once per input."""
    folder = input_root if input_root.is_dir() else input_file.parent
    truth_dir = folder.parent / (folder.name + "_truth")
    candidate = truth_dir / input_file.relative_to(folder)
    if candidate.is_file():
        return candidate
    return _other_side(input_file, folder, {} if cache is None else cache)


def _other_side(input_file: Path, folder: Path, cache: dict) -> Path | None:
    """The file of `input_file`'s pair on the other side of an aligned_folders dataset (matched by name
    without the extension, as training pairs them); None where `folder` is not one side of a split."""
    from translate.data.images import is_image_file
    from translate.data.layouts import SPLITS, detect_layout

    other = {"A": "B", "B": "A"}
    if folder.name in other and folder.parent.name in SPLITS:  # DIR/test/A
        side = folder.parent / other[folder.name]
    elif folder.parent.name in other and folder.name in SPLITS:  # DIR/A/test (the reference's form)
        side = folder.parent.parent / other[folder.parent.name] / folder.name
    else:
        return None
    dataset = folder.parent.parent
    if ("layout", dataset) not in cache:
        try:
            cache["layout", dataset] = detect_layout(dataset)
        except UsageError:
            cache["layout", dataset] = None
    if cache["layout", dataset] != "aligned_folders":
        return None
    relative = input_file.relative_to(folder)
    place = side / relative.parent
    if ("stems", place) not in cache:  # (per input, a folder of thousands was listed thousands of times)
        stems: dict[str, list[Path]] = {}
        if place.is_dir():
            for p in place.iterdir():
                if is_image_file(p.name) and p.is_file():
                    stems.setdefault(p.with_suffix("").name, []).append(p)
        cache["stems", place] = stems
    matches = cache["stems", place].get(relative.with_suffix("").name, [])
    return matches[0] if len(matches) == 1 else None


@dataclass(frozen=True)
class Job:
    """One input and the files translate-infer writes for it."""

    source: Path
    name: str  # the input's path relative to the input folder, as index.html shows it
    output: Path  # the translation
    shown_input: Path  # the input as translated (resized where asked), for index.html
    truth: Path | None  # the dataset's ground truth, where there is one
    shown_truth: Path | None  # its copy, for index.html

    @property
    def writes(self) -> list[Path]:
        return [p for p in (self.output, self.shown_input, self.shown_truth) if p is not None]


def _twice_as_wide(path: Path) -> bool:
    """Whether the image `path` is exactly twice as wide as it is high, as every A|B pair of an aligned
    dataset is (two square halves); False when it cannot be read (its decoding reports that later)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001 - any decoder error: not a pair, and said properly when decoded
        return False
    return width == 2 * height


def side_by_side_split(path: Path, files: list[Path]) -> bool:
    """Whether `path` is a split folder (train, val, test) of an aligned dataset, or an image in one,
    whose images (`files`, the inputs read from it) are side-by-side A|B pairs, each twice as wide as
    high: the input is one half and the ground truth the other."""
    from translate.data.layouts import SPLITS, detect_layout

    split = path if path.is_dir() else path.parent
    if not (path.exists() and split.name in SPLITS):
        return False
    if not (files and all(_twice_as_wide(file) for file in files)):
        return False  # photos in a folder that happens to be called test/: not pairs to cut in half
    side = {"A": "B", "B": "A"}.get(split.parent.name)
    if side is not None and (split.parent.parent / side / split.name).is_dir():
        return False  # DIR/A/test of the reference's pre-combine form: one side of the pairs, not pairs
    try:
        return detect_layout(split.parent) == "aligned"
    except UsageError:
        return False


def plan_jobs(files: list[Path], input_root: Path, out_dir: Path, *, halves: bool = False) -> list[Job]:
    """What translating `files` into `out_dir` writes: one distinct output per input (`output_names`),
    and distinct copies of inputs and truths under images/ for index.html. With `halves` each file is
    an A|B pair whose other half is its truth (`side_by_side_split`)."""
    rels = [f.relative_to(input_root) if input_root.is_dir() else Path(f.name) for f in files]
    outs = output_names(rels)
    taken = {out.as_posix().casefold() for out in outs} | {"index.html"}

    def shown(prefix: str, out: Path, suffix: str) -> Path:
        # Flattened into images/, where a/b.png and a_b.png would meet: the later one gets a number.
        stem = "images/" + prefix + out.with_suffix("").as_posix().replace("/", "_")
        name, n = stem + suffix, 1
        while name.casefold() in taken:
            n += 1
            name = f"{stem}-{n}{suffix}"
        taken.add(name.casefold())
        return out_dir / name

    jobs, truths = [], {}
    for file, rel, out in zip(files, rels, outs):
        truth = file if halves else truth_for(file, input_root, truths)
        jobs.append(Job(file, rel.as_posix(), out_dir / out, shown("input_", out, ".png"), truth,
                        None if truth is None else shown("truth_", out, ".png" if halves else truth.suffix)))
    return jobs


def _shown_text(name: str) -> str:
    """A file name as a page can show it: the bytes of a name that is not UTF-8 (Python holds them as
    surrogates, which no UTF-8 file can store) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def write_index(out_dir: Path, rows: list[dict], title: str) -> Path:
    """An index.html that shows input | output | truth for each image, as the reference's results page."""
    has_truth = any(r.get("truth") for r in rows)
    head = "<tr><th>name</th>" + _PAGE_COLUMNS + ("<th>ground truth</th>" if has_truth else "") + "</tr>"
    lines = []
    for r in rows:
        cells = [f"<td>{html.escape(_shown_text(r['name']))}</td>"]
        for key in ("input", "output") + (("truth",) if has_truth else ()):
            src = r.get(key)
            # URL-quoted: a file name with '#', '?' or '%' would otherwise point somewhere else; a name that
            # is not UTF-8 (an old zip's) keeps its bytes, as %XX, so the browser still finds the file.
            cells.append(f'<td><img src="{html.escape(quote(src, errors="surrogateescape"))}" width="256"></td>'
                         if src else "<td></td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    page = (
        _PAGE_START + "{t}</title>"
        "<style>body{{font-family:sans-serif}}td,th{{padding:4px;text-align:center}}img{{image-rendering:auto}}</style>"
        "<h1>{t}</h1><table>{h}{rows}</table>"
    ).format(t=html.escape(_shown_text(title)), h=head, rows="".join(lines))
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def relative_src(target: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(target.resolve(), out_dir.resolve())).as_posix()
