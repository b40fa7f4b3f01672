"""Datasets of image pairs (paired) or of two image pools (unpaired), and a sampler for them.

A sample is a dict:

    {"A": (3, H, W) float tensor in [-1, 1], "B": ..., "A_path": str, "B_path": str}
    + "label": int and/or "text": str        when the set is conditioned
    + "B_truth": tensor, "B_truth_path": str  when an unpaired set has ground truth for this A

Every random choice (the unpaired B image, crop offsets, flips) is drawn from a generator seeded by
(seed, epoch, index, stream). A sample therefore does not depend on how many DataLoader workers or DDP
ranks read the set, nor on what was read before it, and a resumed run sees the same data. The epoch
reaches the dataset through `set_epoch(epoch)` or, for persistent DataLoader workers (which keep their
own copy of the dataset), through the index itself: `dataset[(epoch, index)]`, which `EpochSampler`
yields.
"""

from __future__ import annotations

import math
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Union

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from translate.data.images import grayscale_rgb, load_rgb, load_side_by_side, split_halves
from translate.data.layouts import (
    PAIRED_LAYOUTS,
    Condition,
    Conditions,
    aligned_files,
    aligned_folder_pairs,
    unaligned_files,
    truth_file,
)
from translate.data.transforms import PairTransform, TransformConfig, build_transform
from translate.errors import UsageError

# Independent random streams of one sample.
STREAM_PAIRING = 0  # which B image an unpaired A meets
STREAM_GEOMETRY_A = 1  # crop/flip of A (and of everything that shares its geometry)
STREAM_GEOMETRY_B = 2  # crop/flip of an unpaired B
STREAM_ORDER = 3  # EpochSampler's permutation (drawn with index 0)

DIRECTIONS = ("a2b", "b2a")
PAIRINGS = ("paired", "unpaired")
IMAGE_PARTS = ("full", "left", "right", "gray")
SIDE_BY_SIDE_PARTS = ("left", "right")  # the halves of an aligned A|B image


def sample_seed(seed: int, epoch: int, index: int, stream: int) -> int:
    """A 63-bit seed that depends only on (seed, epoch, index, stream) (numpy's SeedSequence hash)."""
    if min(seed, epoch, index, stream) < 0:
        raise ValueError(f"seed, epoch, index and stream must be >= 0, got {(seed, epoch, index, stream)}")
    state = np.random.SeedSequence([seed, epoch, index, stream]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


@dataclass(frozen=True)
class ImageRef:
    """An image on disk, or part of one: the left/right half of an A|B image, or its gray version."""

    path: str
    part: str = "full"


@dataclass(frozen=True)
class Entry:
    """One sample's sources: A, its B partner (None when B is drawn from a pool), A's ground truth."""

    a: ImageRef
    b: ImageRef | None = None
    b_truth: ImageRef | None = None
    condition: Condition | None = None


Key = Union[int, tuple[int, int]]


def read_ref(ref: ImageRef, decode_size: tuple[int, int] | None = None) -> np.ndarray:
    """The whole file behind `ref`, decoded at least at `decode_size` (width, height) per half for a
    side-by-side A|B image, whose width is checked to split evenly."""
    if ref.part in SIDE_BY_SIDE_PARTS:
        decode = None if decode_size is None else (2 * decode_size[0], decode_size[1])
        return load_side_by_side(ref.path, min_size=decode)
    return load_rgb(ref.path, min_size=decode_size)


class TranslationDataset(Dataset):
    """Paired (every entry has its B) or unpaired (B drawn from `b_pool`) translation data."""

    def __init__(
        self,
        entries: list[Entry],
        *,
        transform: PairTransform,
        b_pool: list[ImageRef] | None = None,
        seed: int = 0,
        serial: bool = False,
        label_names: tuple[str, ...] | None = None,
        num_labels: int = 0,
        root: str | os.PathLike | None = None,
        split: str | None = None,
        direction: str = "a2b",
    ) -> None:
        if not entries:
            raise UsageError("the dataset has no images")
        if b_pool is None and any(e.b is None for e in entries):
            raise ValueError("a paired dataset needs a B for every entry; pass b_pool for unpaired data")
        if b_pool is not None and not b_pool:
            raise UsageError("the dataset has no B images")
        if seed < 0:
            raise UsageError(f"seed must be >= 0, got {seed}")
        self.entries = entries
        self.b_pool = b_pool
        self.transform = transform
        self.seed = seed
        self.serial = serial
        self.epoch = 0
        self.label_names = label_names
        self.num_labels = num_labels
        self.root = None if root is None else Path(root)
        self.split = split
        self.direction = direction
        self.has_labels = all(e.condition is not None and e.condition.label is not None for e in entries)
        self.has_texts = all(e.condition is not None and e.condition.text is not None for e in entries)

    @property
    def pairing(self) -> str:
        return "paired" if self.b_pool is None else "unpaired"

    @property
    def has_truth(self) -> bool:
        return any(e.b_truth is not None for e in self.entries)

    @property
    def texts(self) -> list[str]:
        """Every caption of this split, in entry order (to build a tokenizer's vocabulary)."""
        return [e.condition.text for e in self.entries if e.condition is not None and e.condition.text is not None]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch that seeds this dataset's random choices (call before each epoch)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        # As the reference: an unpaired epoch visits the larger of the two domains once.
        if self.b_pool is None:
            return len(self.entries)
        return max(len(self.entries), len(self.b_pool))

    def _read(self, ref: ImageRef, cache: dict[str, np.ndarray]) -> np.ndarray:
        if ref.path not in cache:
            cache[ref.path] = read_ref(ref, self.transform.decode_size())
        image = cache[ref.path]
        if ref.part == "left":
            return split_halves(image, ref.path)[0]
        if ref.part == "right":
            return split_halves(image, ref.path)[1]
        if ref.part == "gray":
            return grayscale_rgb(image)
        return image

    def __getitem__(self, key: Key) -> dict:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        entry = self.entries[index % len(self.entries)]
        cache: dict[str, np.ndarray] = {}
        images = {"A": self._read(entry.a, cache)}
        if entry.b is not None:
            images["B"] = self._read(entry.b, cache)
        if entry.b_truth is not None:
            images["B_truth"] = self._read(entry.b_truth, cache)
        out = self.transform(images, sample_seed(self.seed, epoch, index, STREAM_GEOMETRY_A))

        b_ref = entry.b
        if self.b_pool is not None:
            if self.serial:
                b_index = index % len(self.b_pool)
            else:
                rng = np.random.default_rng(sample_seed(self.seed, epoch, index, STREAM_PAIRING))
                b_index = int(rng.integers(len(self.b_pool)))
            b_ref = self.b_pool[b_index]
            b_image = self._read(b_ref, cache)
            out["B"] = self.transform({"B": b_image}, sample_seed(self.seed, epoch, index, STREAM_GEOMETRY_B))["B"]

        sample = {"A": out["A"], "B": out["B"], "A_path": entry.a.path, "B_path": b_ref.path}
        if entry.b_truth is not None:
            sample["B_truth"] = out["B_truth"]
            sample["B_truth_path"] = entry.b_truth.path
        if self.has_labels:
            sample["label"] = entry.condition.label
        if self.has_texts:
            sample["text"] = entry.condition.text
        return sample


class EpochSampler(Sampler):
    """Indices for one epoch as (epoch, index) keys: shuffled by (seed, epoch), split across DDP ranks.

    - Every rank builds the same permutation from (seed, epoch) and takes every world_size-th index
      starting at its rank (padding by repeating the first indices, as DistributedSampler does, so
      that all ranks run the same number of steps; drop_last trims instead).
    - `set_epoch(epoch, start=k)` skips this rank's first k samples: resuming in the middle of an
      epoch continues exactly where the interrupted run stopped.
    - The yielded keys carry the epoch, so datasets in persistent DataLoader workers (which never
      see `dataset.set_epoch`) still draw that epoch's crops, flips and pairings.
    """

    def __init__(
        self,
        length: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    @property
    def samples_per_rank(self) -> int:
        if self.drop_last:
            return self.length // self.world_size
        return math.ceil(self.length / self.world_size)

    def indices(self) -> list[int]:
        """This rank's indices for the current epoch (before `start` is skipped)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, 0, STREAM_ORDER))
            order = torch.randperm(self.length, generator=generator).tolist()
        else:
            order = list(range(self.length))
        total = self.samples_per_rank * self.world_size
        if total > len(order):
            order += (order * math.ceil(total / len(order)))[: total - len(order)]
        order = order[:total]
        return order[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.indices()[self.start :]:
            yield (self.epoch, index)

    def __len__(self) -> int:
        return max(0, self.samples_per_rank - self.start)


# -- building datasets from a folder ----------------------------------------------------------------


def _relative(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _attach_conditions(
    entries: list[Entry], root: Path, split: str, conditions: Conditions | None, extra_keys: list[list[str]]
) -> list[Entry]:
    """Give each entry its condition; all entries of the split have one, or none has."""
    if conditions is None:
        return entries
    metadata = ", ".join(Path(s).name for s in conditions.sources)  # the files named in messages
    attached: list[Entry] = []
    missing: list[str] = []
    for entry, extra in zip(entries, extra_keys):
        candidates = [_relative(root, Path(entry.a.path))]
        if entry.b is not None:
            candidates.append(_relative(root, Path(entry.b.path)))
        found = conditions.lookup(candidates + extra)
        named = [key for key in dict.fromkeys(candidates + extra) if key in conditions.by_file]
        if len({conditions.by_file[key] for key in named}) > 1:
            # The A file's record was read in a2b and the B file's in b2a: one pair, two meanings.
            raise UsageError(f"the metadata ({metadata}) gives {named[0]} and {named[1]} of one pair different "
                             "conditions; give each pair one record")
        if found is None:
            missing.append(candidates[0])
        attached.append(Entry(entry.a, entry.b, entry.b_truth, found))
    if len(missing) == len(entries):
        # The metadata says nothing about this split, unless its names miss the images narrowly: a record
        # for 00000.png where the image is train/00000.png, or for train/00000.PNG or train/00000.jpg (names
        # written on a system that ignores case, images converted since) would otherwise leave the model
        # unconditioned without a word.
        def loose(name: str) -> str:
            return posixpath.splitext(name)[0].casefold()

        # Only names that are no image's path count (test/00000.png is another image's, not a near miss).
        stray = [key for key in conditions.by_file if not (root / key).is_file()]
        by_path = {loose(key): key for key in stray}
        by_name = {loose(posixpath.basename(key)): key for key in stray}
        near = next(((by_path.get(loose(m)) or by_name[loose(posixpath.basename(m))], m) for m in missing
                     if loose(m) in by_path or loose(posixpath.basename(m)) in by_name), None)
        if near is not None:
            raise UsageError(
                f"the metadata ({metadata}) names {near[0]!r}, which is "
                f"no image's path; names are relative to the dataset folder and match case and extension, "
                f"e.g. {near[1]!r}")
        return entries
    if missing:
        raise UsageError(
            f"the metadata ({metadata}) gives a condition for "
            f"{len(entries) - len(missing)} of {len(entries)} {split} images (missing e.g. {missing[0]}); "
            "give every image of a split one, or none"
        )
    for kind in ("label", "text"):  # a blank or null cell would turn that condition off without a word
        lacking = [e for e in attached if getattr(e.condition, kind) is None]
        if lacking and len(lacking) < len(attached):
            raise UsageError(
                f"the metadata ({metadata}) gives a {kind} for "
                f"{len(attached) - len(lacking)} of {len(attached)} {split} images, not for "
                f"{_relative(root, Path(lacking[0].a.path))} (a blank or null {kind}); give every image of a split one, or none")
    return attached


def build_entries(
    root: Path, layout: str, split: str, *, swap: bool, pairing: str, conditions: Conditions | None = None
) -> tuple[list[Entry], list[ImageRef] | None]:
    """The entries (and, for unpaired reading, the B pool) of one split of a dataset folder.

    swap: read B as A and A as B (direction b2a, or a reversed alias such as photo2vangogh).
    """
    if pairing not in PAIRINGS:
        raise UsageError(f"unknown pairing {pairing!r}; choose paired or unpaired")
    extra_keys: list[list[str]]
    if layout == "unaligned":
        if pairing == "paired":
            raise UsageError(
                f"{root} is unpaired (trainA/, trainB/); paired models need train/ of A|B images "
                "or train/A/ + train/B/ with matching names"
            )
        side_a, side_b = ("B", "A") if swap else ("A", "B")
        files = dict(zip(("A", "B"), unaligned_files(root, split)))
        entries = []
        for path in files[side_a]:
            truth = truth_file(root, split, side_a, path)
            entries.append(Entry(ImageRef(str(path)), None, ImageRef(str(truth)) if truth else None))
        pool = [ImageRef(str(p)) for p in files[side_b]]
        extra_keys = [[] for _ in entries]
        return _attach_conditions(entries, root, split, conditions, extra_keys), pool

    if layout == "aligned":
        left_right = [(ImageRef(str(p), "left"), ImageRef(str(p), "right")) for p in aligned_files(root, split)]
        extra_keys = [[] for _ in left_right]
    elif layout == "aligned_folders":
        pairs = aligned_folder_pairs(root, split)
        left_right = [(ImageRef(str(a)), ImageRef(str(b))) for a, b in pairs]
        extra_keys = [[f"{split}/{a.name}", f"{split}/{a.stem}"] for a, _ in pairs]
    elif layout == "colorization":
        left_right = [(ImageRef(str(p), "gray"), ImageRef(str(p))) for p in aligned_files(root, split)]
        extra_keys = [[] for _ in left_right]
    else:
        raise ValueError(f"unknown layout {layout!r}")
    if swap:
        left_right = [(b, a) for a, b in left_right]
    if pairing == "paired":
        entries = [Entry(a, b) for a, b in left_right]
        return _attach_conditions(entries, root, split, conditions, extra_keys), None
    # Unpaired reading of paired data: each A meets a B drawn from all B images, pairing ignored.
    entries = [Entry(a) for a, _ in left_right]
    pool = [b for _, b in left_right]
    return _attach_conditions(entries, root, split, conditions, extra_keys), pool


def open_dataset(
    data,
    split: str = "train",
    *,
    direction: str = "a2b",
    pairing: str | None = None,
    transform: TransformConfig | None = None,
    train: bool | None = None,
    seed: int = 0,
    serial: bool | None = None,
    limit: int | None = None,
    root: str | os.PathLike = "datasets",
    download: bool = False,
) -> TranslationDataset:
    """Open one split of a dataset for reading.

    data: a `ResolvedDataset` (from `resolve_dataset`), or anything `resolve_dataset` accepts (a path,
        a registry name or alias, a synth-* name), resolved with `root` and `download`.
    direction: 'a2b' or 'b2a'; combined with the alias swap of the resolved name.
    pairing: 'paired' or 'unpaired'; None follows the layout. Paired data can be read unpaired (each A
        meets a random B); unpaired data cannot be read paired.
    transform: sizes and preprocess mode; `train` (default: split == 'train') chooses random crops and
        flips or the test-time resize.
    serial: unpaired B images in order (index % len) instead of random; default: not train.
    limit: read at most this many images per domain (the reference --max_dataset_size).
    """
    from translate.data.resolve import ResolvedDataset, resolve_dataset

    resolved = data if isinstance(data, ResolvedDataset) else resolve_dataset(data, root=root, download=download)
    if direction not in DIRECTIONS:
        raise UsageError(f"unknown direction {direction!r}; choose a2b or b2a")
    if split not in resolved.splits:
        raise UsageError(
            f"{resolved.path} has no {split} split (found: {', '.join(resolved.splits) or 'none'}); "
            "choose one of those"
        )
    pairing = pairing or ("paired" if resolved.layout in PAIRED_LAYOUTS else "unpaired")
    train = (split == "train") if train is None else train
    serial = (not train) if serial is None else serial
    swap = resolved.swap != (direction == "b2a")
    conditions = resolved.load_conditions()
    entries, pool = build_entries(
        resolved.path, resolved.layout, split, swap=swap, pairing=pairing, conditions=conditions
    )
    if limit is not None:
        entries = entries[:limit]
        pool = None if pool is None else pool[:limit]
    return TranslationDataset(
        entries,
        b_pool=pool,
        transform=build_transform(transform, train=train),
        seed=seed,
        serial=serial,
        label_names=conditions.label_names if conditions else None,
        num_labels=conditions.num_labels if conditions else 0,
        root=resolved.path,
        split=split,
        direction=resolved.effective_direction(direction),
    )
