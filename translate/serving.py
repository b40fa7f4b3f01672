"""Serving exported generators to people: what the Gradio app (apps/translate_app.py) stands on.

- `scan_models(root)`: the models in a folder, each a one-way generator or a two-way pair (a run's
  G_A and G_B), named by its path relative to the folder, with its card.
- `inside(root, path)`: a path resolved (symlinks followed) and refused unless it stays inside the
  folder: no `..`, no absolute paths, no symbolic links that lead out.
- `ModelCache`: loaded generators, one per file, the least recently used dropped beyond `capacity`.
- `read_upload(path, max_pixels)`: an uploaded file as RGB, refused with a message when it is not an
  image, downscaled (with a notice) when it has more pixels than allowed.
- `TranslationService`: the above together: list, describe and run models (at the upload's size, or
  at the model's training size and scaled back up).

Nothing here imports gradio, so it is tested without a browser or a server.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from translate.errors import UsageError

DEFAULT_MAX_PIXELS = 1024 * 1024
DEFAULT_CACHE_SIZE = 2
DIRECTIONS = ("a2b", "b2a")


def inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """`path` (relative to `root`, or absolute) resolved, with every symbolic link followed; UsageError
    unless the result lies inside `root` (itself resolved)."""
    base = Path(root).resolve()
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = base / candidate
    resolved = candidate.resolve()
    if resolved != base and base not in resolved.parents:
        raise UsageError(f"{path} lies outside the models folder {base}; only models inside it can be loaded")
    return resolved


@dataclass
class CatalogModel:
    """A model the app offers: one generator file, or two (a2b and b2a) of a two-way run."""

    name: str
    files: dict[str, Path]  # direction -> file
    meta: dict[str, dict]  # direction -> metadata (generator, condition, card)

    @property
    def two_way(self) -> bool:
        return len(self.files) == 2

    @property
    def directions(self) -> list[str]:
        return [d for d in DIRECTIONS if d in self.files]

    def metadata(self, direction: str | None = None) -> dict:
        return self.meta[direction if direction in self.meta else self.directions[0]]

    @property
    def condition(self) -> dict:
        return self.metadata().get("condition", {}) or {"kind": "none"}

    def unknown_words(self, caption: str) -> list[str]:
        """The words of `caption` a caption-conditioned model never saw in training (read as unknown)."""
        if self.condition.get("kind") != "text":
            return []
        from translate.nets.conditions import Vocabulary

        return Vocabulary.from_list(self.condition.get("vocabulary", [])).unknown_words(caption)

    def training_size(self, direction: str | None = None) -> int | None:
        """The image size the generator was trained at (its card's `size`), where the card says."""
        size = self.metadata(direction).get("card", {}).get("size")
        return int(size) if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None

    @property
    def paints_best_at_training_size(self) -> bool:
        """U-Net generators: their bottleneck sees the whole picture, so on a larger image they repaint
        less than at the size they were trained at (docs/unpaired.md). ResNet and DiscoGAN generators
        are treated as local."""
        name = str(self.metadata().get("generator", {}).get("name", ""))
        return name.startswith("unet") and self.training_size() is not None

    def direction_label(self, direction: str) -> str:
        card = self.metadata(direction).get("card", {})
        return f"{card.get('source', 'A')} \u2192 {card.get('target', 'B')}"

    def describe(self) -> list[str]:
        from translate.io.cards import describe

        lines = describe(self.metadata())
        if self.two_way:
            other = self.metadata("b2a")
            lines.insert(1, f"and back: {self.direction_label('b2a')} ({other.get('card', {}).get('role', 'G_B')})")
        return lines


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__"


def scan_models(root: str | os.PathLike, log=None) -> list[CatalogModel]:
    """Every exported generator under `root` (recursively; hidden folders skipped; links out of the
    folder ignored). A folder whose files are a run's G_A and G_B becomes one two-way model named by the
    folder; a run's single G too; any other file is a model named by its path without `.safetensors`."""
    from translate.io.generator_file import read_metadata

    base = Path(root).resolve()
    if not base.is_dir():
        raise UsageError(f"models folder {root} not found; train a model (translate-train) or pass --models DIR")
    models: list[CatalogModel] = []
    for directory, subdirs, files in os.walk(base):
        subdirs[:] = sorted(d for d in subdirs if not _is_hidden(d))
        found: dict[Path, dict] = {}
        for name in sorted(files):
            if _is_hidden(name) or not name.endswith(".safetensors"):
                continue
            path = Path(directory) / name
            try:
                resolved = inside(base, path)
                found[resolved] = read_metadata(resolved)
            except UsageError as e:
                if log:
                    log(f"skipping {path}: {e}")
        if not found:
            continue
        folder = Path(directory).relative_to(base).as_posix()
        roles = {meta["card"].get("role"): (path, meta) for path, meta in found.items()}
        by_stem = {path.stem: (path, meta) for path, meta in found.items()}
        pair = _two_way(roles)
        if pair is not None:
            models.append(CatalogModel(folder if folder != "." else "model", *pair))
            found = {p: m for p, m in found.items() if p not in pair[0].values()}
        for path, meta in found.items():
            if path.stem == "G" and len(by_stem) == 1 and folder != ".":
                name = folder
            else:
                name = (Path(directory) / path.stem).relative_to(base).as_posix()
            direction = "a2b"
            models.append(CatalogModel(name, {direction: path}, {direction: meta}))
    return sorted(_unique_names(models, base, log), key=lambda m: m.name)


def _unique_names(models: list[CatalogModel], base: Path, log=None) -> list[CatalogModel]:
    """Models named after their folder (a run's G, or its G_A and G_B) that would share a name with
    another (`demo/G.safetensors` beside `demo.safetensors`) are named by their files' paths instead,
    so that neither hides the other."""
    counts = Counter(m.name for m in models)
    for model in models:
        if counts[model.name] > 1:
            by_path = "+".join(sorted(p.relative_to(base).with_suffix("").as_posix() for p in model.files.values()))
            if by_path != model.name:
                if log:
                    log(f"two models would be called {model.name}: listing {by_path} by its path")
                model.name = by_path
    return models


def _two_way(roles: dict) -> tuple[dict, dict] | None:
    """({direction: file}, {direction: meta}) when the folder holds a matching G_A and G_B."""
    if "G_A" not in roles or "G_B" not in roles:
        return None
    (path_a, meta_a), (path_b, meta_b) = roles["G_A"], roles["G_B"]
    if meta_a["card"].get("run") != meta_b["card"].get("run"):
        return None
    da, db = meta_a["card"].get("translates", "a2b"), meta_b["card"].get("translates", "b2a")
    if {da, db} != set(DIRECTIONS):
        da, db = "a2b", "b2a"
    return {da: path_a, db: path_b}, {da: meta_a, db: meta_b}


class ModelCache:
    """Loaded generators by file, the least recently used dropped when more than `capacity` are held.
    A file changed on disk (new modification time) is loaded again."""

    def __init__(self, capacity: int = DEFAULT_CACHE_SIZE, device: str = "cpu"):
        if capacity < 1:
            raise UsageError(f"the model cache must hold at least one model, got {capacity}")
        self.capacity = capacity
        self.device = device
        self._models: OrderedDict[Path, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a file was read (for tests and logs)

    def get(self, path: Path):
        from translate.io.generator_file import load_generator

        mtime = path.stat().st_mtime
        with self._lock:
            held = self._models.get(path)
            if held is not None and held[0] == mtime:
                self._models.move_to_end(path)
                return held[1]
            model = load_generator(path, self.device)
            self.loads += 1
            self._models[path] = (mtime, model)
            self._models.move_to_end(path)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
            return model

    def __contains__(self, path: Path) -> bool:
        return path in self._models

    def __len__(self) -> int:
        return len(self._models)


def fit_within(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The largest (width, height) with the same aspect ratio and at most `max_pixels` pixels."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    while w * h > max_pixels:  # int() of a product can still round up past the limit
        w, h = (w - 1, h) if w >= h else (w, h - 1)
    return w, h


def read_upload(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, str | None]:
    """An uploaded file as a (H, W, 3) uint8 RGB array and a notice when it was downscaled.

    UsageError when the file is not an image PIL can read (or is a decompression bomb)."""
    from PIL import Image, UnidentifiedImageError

    from translate.data.images import MAX_IMAGE_PIXELS, ImageReadError, load_rgb, upright_size

    def refused(kind: str) -> UsageError:  # the upload's name only: the server's paths stay private
        return UsageError(f"{Path(path).name} is {kind}; upload a PNG, JPEG, WebP, BMP or TIFF picture")

    def too_large(size: str = "") -> UsageError:
        limit = f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels" if MAX_IMAGE_PIXELS >= 1e6 else f"{MAX_IMAGE_PIXELS:,} pixels"
        return UsageError(f"{Path(path).name} is too large to open safely{size}; scale it down below {limit} "
                          "and upload it again")

    try:
        with Image.open(path) as image:
            image.verify()  # reads the file's structure: most truncated or fake images fail here
        with Image.open(path) as image:  # (verify leaves the image unusable)
            width, height = upright_size(image)  # a phone's portrait JPEG is stored landscape
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as e:
        raise (too_large() if isinstance(e, Image.DecompressionBombError) else refused("not an image")) from None
    if width * height > MAX_IMAGE_PIXELS:  # PIL only warns up to twice its limit; load_rgb refuses
        raise too_large(f" ({width}\u00d7{height} pixels)")
    target = fit_within(width, height, max_pixels)
    try:
        if target == (width, height):
            return load_rgb(path), None
        image = load_rgb(path, min_size=target)  # JPEGs decode at a reduced scale first
    except ImageReadError:  # e.g. a JPEG cut short, which verify() does not read far enough to see
        raise refused("damaged or cut short") from None
    small = np.asarray(Image.fromarray(image).resize(target, Image.LANCZOS))
    return small, (f"The image was downscaled from {width}\u00d7{height} to {target[0]}\u00d7{target[1]} "
                   f"pixels (this app translates at most {max_pixels:,} pixels).")


#: An unknown model name rescans the models folder at most this often (seconds).
UNKNOWN_NAME_RESCAN_S = 2.0


@dataclass
class TranslationService:
    """The models of one folder, ready to translate: scan, describe, load (LRU), run."""

    root: Path
    max_pixels: int = DEFAULT_MAX_PIXELS
    cache_size: int = DEFAULT_CACHE_SIZE
    device: str = "cpu"
    log: object = None
    models: dict[str, CatalogModel] = field(default_factory=dict)

    def __post_init__(self):
        self.root = Path(self.root)
        if self.max_pixels < 64 * 64:
            raise UsageError(f"--max-pixels must allow at least 64x64 pixels, got {self.max_pixels}")
        self.cache = ModelCache(self.cache_size, self.device)
        # One translation at a time: tiled inference sets image-wide instance-norm statistics on the
        # cached (shared) generator for the duration of a call, and memory stays that of one image.
        self._translating = threading.Lock()
        self.rescan()

    def rescan(self) -> list[str]:
        self.models = {m.name: m for m in scan_models(self.root, log=self.log)}
        self._scanned_at = time.monotonic()
        return list(self.models)

    def model(self, name: str) -> CatalogModel:
        if name not in self.models and time.monotonic() - self._scanned_at >= UNKNOWN_NAME_RESCAN_S:
            # A name the last scan did not see: scan again (a model added since), then refuse. Not more
            # often than every few seconds: made-up names sent in a stream cannot keep the server reading
            # the folder.
            self.rescan()
        if name not in self.models:
            raise UsageError(f"no model named {name!r} in {self.root}; choose one of the list")
        return self.models[name]

    def painting_size(self, name: str, image_shape: tuple[int, ...], direction: str = "a2b") -> tuple[int, int] | None:
        """(width, height) at which `translate(..., at_training_size=True)` paints an image of
        `image_shape`: shrunk so that its shorter side is the model's training size. None when the
        model's card gives no size or the image is no larger than that."""
        entry = self.model(name)
        size = entry.training_size(direction if direction in entry.files else None)
        height, width = image_shape[:2]
        if size is None or min(height, width) <= size:
            return None
        scale = size / min(height, width)
        return max(size, round(width * scale)), max(size, round(height * scale))

    def translate(self, name: str, image: np.ndarray, direction: str = "a2b", condition=None,
                  tile: int | str | None = "auto", at_training_size: bool = False) -> np.ndarray:
        """Translate an RGB uint8 image with model `name` in `direction`. With `at_training_size`, an
        image larger than the model's training size is painted at that size (`painting_size`) and the
        painting scaled back up to the image's size."""
        from translate.infer import translate_image

        entry = self.model(name)
        if direction not in DIRECTIONS:
            raise UsageError(f"the direction is a2b or b2a, not {direction!r}")
        if direction not in entry.files:  # a one-way model translates its one way, whichever is asked
            direction = entry.directions[0]
        target = self.painting_size(name, image.shape, direction) if at_training_size else None
        if target is not None:
            from translate.data.transforms import resize_image

            painted = self.translate(name, resize_image(image, *target), direction, condition, tile)
            return resize_image(painted, image.shape[1], image.shape[0])
        # Checked again at load time: the file could have been replaced by a link since the scan.
        path = inside(self.root, entry.files[direction])
        try:
            generator = self.cache.get(path)
        except FileNotFoundError:
            raise UsageError(f"the files of model {name!r} are no longer in the models folder; press Rescan") from None
        except UsageError as e:  # damaged since the scan: said with the file's name, the server's paths stay private
            raise UsageError(str(e).replace(str(path), Path(path).name)) from None
        if generator.conditioned:
            if condition is None or (isinstance(condition, str) and not condition.strip()):
                raise UsageError(f"this model needs a condition: {generator.condition_hint()}")
        else:
            condition = None
        with self._translating:
            return translate_image(generator, image, condition, device=self.device, max_pixels=self.max_pixels,
                                   tile=tile)
