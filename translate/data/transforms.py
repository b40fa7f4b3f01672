"""Paired image transforms: the same random geometry on every image of a sample.

The preprocess modes are the reference implementation's (`--preprocess`), with sizes scaled by the
crop size: `load_size = round(size * 286 / 256)` unless given, so 256 -> 286 as published and
128 -> 143.

| mode                   | training                                        | test time                     |
|------------------------|-------------------------------------------------|-------------------------------|
| `resize_and_crop`      | resize to load x load, random size x size crop  | resize to size x size         |
| `crop`                 | random size x size crop at the native size      | resize to size x size         |
| `scale_width`          | width -> load, height keeps the aspect (>= size) | width -> size, aspect kept (>= size) |
| `scale_width_and_crop` | as scale_width, then a random size x size crop  | width -> size, aspect kept    |
| `none`                 | sides rounded to a multiple of `multiple`       | the same                      |

Every training mode then flips horizontally with probability 1/2 (unless `flip=False`). Test-time
transforms never crop or flip. Sides that are not fixed by the mode (scale_width, none) are rounded to a
multiple of `multiple` (4 by default, what resnet generators need; pass 256 for unet_256): scale_width's
load width too (286 -> 288).

The images of one sample (A and B of a pair, A and its ground truth) go through one albumentations
`Compose` call with `additional_targets`, so crops and flips are identical. The randomness comes from a
seed the caller passes (derived from (seed, epoch, index) by the dataset), never from a global RNG.
Images smaller than the crop are scaled up first (noted once per transform, not per image).

Output: float32 tensors (3, H, W) in [-1, 1].
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from typing import Mapping

import albumentations as A
import cv2
import numpy as np
import torch

from translate.errors import UsageError

logger = logging.getLogger("translate.data")

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")

# The published random jitter: resize 256 images to 286, crop back to 256 (Isola et al. 2017, appendix 6.2;
# CycleGAN keeps it).
REFERENCE_LOAD_SIZE = 286
REFERENCE_CROP_SIZE = 256


def default_load_size(size: int) -> int:
    """The load size that keeps the published 286/256 ratio: round(size * 286 / 256)."""
    return int(round(size * REFERENCE_LOAD_SIZE / REFERENCE_CROP_SIZE))


#: the largest side images are resized to for training, evaluation and the synthetic sets: a mistyped
#: --size (25600) would otherwise try to allocate gigabytes per image
MAX_SIDE = 8192


def check_side(flag: str, value: int | None) -> None:
    if value is not None and value > MAX_SIDE:
        raise UsageError(f"{flag} {value} is beyond {MAX_SIDE} pixels, the largest side images are resized to here; "
                         f"pass a smaller {flag}")


@dataclass(frozen=True)
class TransformConfig:
    """How images are resized, cropped and flipped (the reference `--preprocess` family)."""

    size: int = 256  # the crop size: what the networks see
    load_size: int | None = None  # None: round(size * 286 / 256)
    preprocess: str = "resize_and_crop"
    flip: bool = True  # random horizontal flips while training
    multiple: int = 4  # sides the mode leaves free are rounded to a multiple of this

    def __post_init__(self) -> None:
        if self.preprocess not in PREPROCESS_MODES:
            raise UsageError(
                f"unknown preprocess mode {self.preprocess!r}; choose one of {', '.join(PREPROCESS_MODES)}"
            )
        if self.size < 1 or self.multiple < 1:
            raise UsageError(f"size ({self.size}) and multiple ({self.multiple}) must be positive")
        check_side("--size", self.size)
        check_side("--load-size", self.load_size)
        if self.load_size is not None and self.load_size < self.size and "crop" in self.preprocess:
            raise UsageError(
                f"load size {self.load_size} is smaller than the crop size {self.size}; "
                f"use a load size >= {self.size} or leave it out"
            )

    @property
    def resolved_load_size(self) -> int:
        return self.load_size if self.load_size is not None else default_load_size(self.size)


def _round_to_multiple(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area averaging when shrinking (no aliasing) and bicubic when enlarging, axis by
    axis where one side shrinks and the other grows.

    The reference code uses PIL's antialiased bicubic, which area averaging approximates when shrinking.
    """
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    # One side shrinks and the other grows (a wide photo to a square): one axis at a time, so that the
    # shrinking one is averaged (bicubic alone would alias it) and the other interpolated.
    if width < w and height > h:
        return resize_image(resize_image(image, width, h), width, height)
    if width > w and height < h:
        return resize_image(resize_image(image, w, height), width, height)
    interpolation = cv2.INTER_AREA if width <= w and height <= h else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interpolation)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [-1, 1]: x / 127.5 - 1."""
    # numpy, not torch: in the main process torch's intra-op threads make this small strided
    # conversion tens of times slower on a busy 2-core machine.
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    chw /= 127.5
    chw -= 1.0
    return torch.from_numpy(chw)


class PairTransform:
    """Applies one random geometry to all images of a sample.

    `transform({"A": a, "B": b}, seed)` -> {"A": tensor, "B": tensor}. The first key is the reference:
    the others are resized to its size first (when they differ) and then share its crop and flip.
    """

    def __init__(self, config: TransformConfig, *, train: bool, max_images: int = 3) -> None:
        self.config = config
        self.train = train
        self._noted: set[str] = set()
        self._lock = threading.Lock()  # the Compose's random state is set per call
        self._target_names = ["image"] + [f"image{i}" for i in range(1, max_images)]
        steps: list = []
        if train and "crop" in config.preprocess:
            steps.append(A.RandomCrop(height=config.size, width=config.size))
        if train and config.flip:
            steps.append(A.HorizontalFlip(p=0.5))
        self._compose = A.Compose(
            steps, additional_targets={name: "image" for name in self._target_names[1:]}
        )

    def __getstate__(self) -> dict:
        # The notes already shown are per process; a worker starts with a clean slate.
        state = self.__dict__.copy()
        state["_noted"] = set()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _note_once(self, key: str, message: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            logger.info(message)

    # -- sizes -------------------------------------------------------------------------------------

    def target_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) an image of this size is resized to before any crop."""
        config, size, multiple = self.config, self.config.size, self.config.multiple
        mode = config.preprocess
        if mode == "none":
            return _round_to_multiple(width, multiple), _round_to_multiple(height, multiple)
        if mode.startswith("scale_width"):
            # The width rounded too (the published 286 is no multiple of 4: the reference's own
            # scale_width runs then fail in the generator); the height at least the crop size, as the
            # reference's max(load * h / w, crop).
            new_width = _round_to_multiple(config.resolved_load_size if self.train else size, multiple)
            new_height = max(_round_to_multiple(new_width * height / width, multiple), size)
            return new_width, new_height
        if not self.train:
            return size, size
        if mode == "resize_and_crop":
            load = config.resolved_load_size
            return load, load
        # crop: native size, scaled up (aspect kept) only when a side is shorter than the crop.
        if width >= size and height >= size:
            return width, height
        scale = size / min(width, height)
        self._note_once(
            "upscale",
            f"images smaller than the {size}px crop (e.g. {width}x{height}) are scaled up to cover it",
        )
        return max(size, int(round(width * scale))), max(size, int(round(height * scale)))

    def decode_size(self) -> tuple[int, int] | None:
        """The smallest (width, height) a decoded image may have without losing output detail, or
        None when the native resolution matters (crop, none)."""
        mode, config = self.config.preprocess, self.config
        if mode == "none" or (mode == "crop" and self.train):
            return None
        if mode.startswith("scale_width"):
            return (config.resolved_load_size if self.train else config.size), 1
        side = config.resolved_load_size if self.train else config.size
        return side, side

    # -- application -------------------------------------------------------------------------------

    def __call__(self, images: Mapping[str, np.ndarray], seed: int) -> dict[str, torch.Tensor]:
        keys = list(images)
        if not keys:
            return {}
        if len(keys) > len(self._target_names):
            raise ValueError(f"at most {len(self._target_names)} images per sample, got {len(keys)}")
        reference = images[keys[0]]
        height, width = reference.shape[:2]
        new_width, new_height = self.target_size(width, height)
        arrays = {}
        for key in keys:
            image = images[key]
            if image.shape[:2] != (height, width):
                self._note_once(
                    f"mismatch-{key}",
                    f"{_KEY_NAMES.get(key, key)} images that differ in size from their {keys[0]} "
                    f"(e.g. {image.shape[1]}x{image.shape[0]} vs {width}x{height}) are resized to match",
                )
            arrays[key] = resize_image(image, new_width, new_height)
        named = {name: arrays[key] for name, key in zip(self._target_names, keys)}
        with self._lock:
            self._compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
            result = self._compose(**named)
        return {key: to_tensor(result[name]) for name, key in zip(self._target_names, keys)}


#: how the notes name a sample's images (B_truth: the ground truth of an unpaired set's test image)
_KEY_NAMES = {"B_truth": "ground-truth"}


def build_transform(config: TransformConfig | None = None, *, train: bool) -> PairTransform:
    """The transform for training (random crop/flip) or test time (resize only)."""
    return PairTransform(config or TransformConfig(), train=train)
