"""The built-in synthetic data sets: their specifications, how each picture is made, and writing them.

Every picture has its own seed, a hash of (set name, seed, split, index), so a picture depends on nothing
but its own key: asking for more training pictures leaves the ones already there unchanged, and the same
(name, seed, n_train, n_test, size) always writes byte-identical PNG files (on the same platform and
library versions).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from translate.errors import UsageError

from .captions import make_caption
from .edges import canny_edges, edge_image
from .painting import render_painting
from .scene import TIMES_OF_DAY, Scene, relight, render_photo, sample_scene, scene_seed

FORMAT_VERSION = 2  # 2: strokes drawn from the photo's visible texture, not its film grain
MIN_SIZE = 32


@dataclass(frozen=True)
class SyntheticSpec:
    """A built-in synthetic data set and its published defaults."""

    name: str
    kind: str  # "unaligned" (trainA/trainB/testA/testB) or "aligned" (A|B side by side in train/val/test)
    conditioned: bool  # a metadata.jsonl gives a label and a caption per pair
    n_train: int  # pictures per training split (per domain for an unaligned set)
    n_test: int  # pictures per test split (and per validation split where there is one)
    size: int  # pictures are size x size (an aligned file is 2 size wide)
    description: str
    splits: tuple[str, ...]  # the folders written
    labels: tuple[str, ...] = ()  # the condition labels of a conditioned set


PHOTO2VANGOGH = SyntheticSpec(
    name="synth-photo2vangogh", kind="unaligned", conditioned=False, n_train=400, n_test=50, size=256,
    description="landscape photos (A) and Van Gogh-like paintings of other landscapes (B), unpaired; "
    "testA_truth/testB_truth hold the true translation of every test picture",
    splits=("trainA", "trainB", "testA", "testB", "testA_truth", "testB_truth"),
)
EDGES2LANDSCAPE = SyntheticSpec(
    name="synth-edges2landscape", kind="aligned", conditioned=False, n_train=400, n_test=50, size=256,
    description="Canny edge maps (A, black on white) and the landscape photos they come from (B), paired",
    splits=("train", "val", "test"),
)
DAYTIME = SyntheticSpec(
    name="synth-daytime", kind="aligned", conditioned=True, n_train=400, n_test=100, size=256,
    description="a landscape in neutral daylight (A) and the same landscape at dawn, noon, dusk or night (B), "
    "paired, with the time of day as label and a caption",
    splits=("train", "test"), labels=TIMES_OF_DAY,
)

SYNTHETIC_SETS: dict[str, SyntheticSpec] = {spec.name: spec for spec in (PHOTO2VANGOGH, EDGES2LANDSCAPE, DAYTIME)}


# ---------------------------------------------------------------------------------------------------------
# One picture of each set, from its key. Tests re-render pictures with these.


def picture_seed(name: str, seed: int, split: str, index: int) -> int:
    """The seed of picture `index` of `split` in set `name` generated with `seed`."""
    return scene_seed(name, seed, split, index)


def photo2vangogh_scene(seed: int, split: str, index: int) -> Scene:
    """The scene behind picture `index` of `split` (trainA, trainB, testA or testB; the truth folders
    share the scenes of their test folders)."""
    split = split.removesuffix("_truth")
    return sample_scene(picture_seed(PHOTO2VANGOGH.name, seed, split, index))


def photo2vangogh_pair(seed: int, split: str, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(photo, painting) of one scene of synth-photo2vangogh, (size, size, 3) uint8 RGB each."""
    photo = render_photo(photo2vangogh_scene(seed, split, index), size)
    return photo, render_painting(photo)


# Edge maps need visible structure, so synth-edges2landscape has no night scenes.
_EDGE_LIGHTS = ("noon", "noon", "dawn", "dusk")


def edges2landscape_scene(seed: int, split: str, index: int) -> Scene:
    key = picture_seed(EDGES2LANDSCAPE.name, seed, split, index)
    light = _EDGE_LIGHTS[int(np.random.default_rng([key, 1]).integers(len(_EDGE_LIGHTS)))]
    return sample_scene(key, light=light)


def edges2landscape_pair(seed: int, split: str, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(edges, photo) of synth-edges2landscape: the photo's Canny edges drawn black on white, and the photo."""
    photo = render_photo(edges2landscape_scene(seed, split, index), size)
    return edge_image(canny_edges(photo)), photo


def daytime_label(index: int) -> str:
    """Labels take turns, so every split is balanced."""
    return TIMES_OF_DAY[index % len(TIMES_OF_DAY)]


def daytime_item(seed: int, split: str, index: int, size: int) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(daylight photo, photo at the labelled time of day, label, caption) of synth-daytime."""
    scene = sample_scene(picture_seed(DAYTIME.name, seed, split, index))
    label = daytime_label(index)
    caption = make_caption(scene, label, np.random.default_rng([scene.seed, 2]))
    return render_photo(relight(scene, "daylight"), size), render_photo(relight(scene, label), size), label, caption


# ---------------------------------------------------------------------------------------------------------
# Writing


def _file_name(index: int) -> str:
    return f"{index:05d}.png"


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(encoded.tobytes())


def _side_by_side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The reference aligned layout: one image 2W x H, A on the left."""
    return np.concatenate([a, b], axis=1)


Job = Callable[[], None]


def _photo2vangogh_jobs(out: Path, n_train: int, n_test: int, size: int, seed: int) -> Iterator[Job]:
    def train(split: str, index: int) -> Job:
        def run() -> None:
            photo = render_photo(photo2vangogh_scene(seed, split, index), size)
            _write_png(out / split / _file_name(index), photo if split == "trainA" else render_painting(photo))
        return run

    def test(split: str, index: int) -> Job:
        def run() -> None:
            photo, painting = photo2vangogh_pair(seed, split, index, size)
            source, truth = (photo, painting) if split == "testA" else (painting, photo)
            _write_png(out / split / _file_name(index), source)
            _write_png(out / f"{split}_truth" / _file_name(index), truth)
        return run

    for split in ("trainA", "trainB"):
        yield from (train(split, i) for i in range(n_train))
    for split in ("testA", "testB"):
        yield from (test(split, i) for i in range(n_test))


def _edges2landscape_jobs(out: Path, n_train: int, n_test: int, size: int, seed: int) -> Iterator[Job]:
    def job(split: str, index: int) -> Job:
        def run() -> None:
            _write_png(out / split / _file_name(index), _side_by_side(*edges2landscape_pair(seed, split, index, size)))
        return run

    for split, count in (("train", n_train), ("val", n_test), ("test", n_test)):
        yield from (job(split, i) for i in range(count))


def _daytime_jobs(
    out: Path, n_train: int, n_test: int, size: int, seed: int, metadata: list[dict]
) -> Iterator[Job]:
    def job(split: str, index: int) -> Job:
        def run() -> None:
            daylight, timed, label, caption = daytime_item(seed, split, index, size)
            file_name = f"{split}/{_file_name(index)}"
            _write_png(out / file_name, _side_by_side(daylight, timed))
            metadata.append({"file_name": file_name, "label": label, "text": caption})
        return run

    for split, count in (("train", n_train), ("test", n_test)):
        yield from (job(split, i) for i in range(count))


def _split_counts(spec: SyntheticSpec, n_train: int, n_test: int) -> dict[str, int]:
    return {split: n_train if split.startswith("train") else n_test for split in spec.splits}


def _checked_count(value: int | None, default: int, what: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise UsageError(f"{what} must be a whole number >= 0, got {value!r}")
    return int(value)


_PARTIAL = ".synth-partial"  # present while a set is being written; synth.json replaces it at the end


def _prepare(out: Path, spec: SyntheticSpec) -> None:
    """Make `out` ready: created if missing; a previous (complete or interrupted) synthetic set there is
    replaced; a folder holding anything else is refused and left alone."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder; give a folder for the synthetic set")
    if out.is_dir() and any(out.iterdir()):
        if not ((out / "synth.json").is_file() or (out / _PARTIAL).is_file()):
            raise UsageError(f"{out} is not empty and holds no synthetic set; give an empty or new folder")
        # The folder was written here: remove what we wrote, nothing else.
        for split in {s for other in SYNTHETIC_SETS.values() for s in other.splits}:
            if (out / split).is_dir():
                shutil.rmtree(out / split)
        for file in ("metadata.jsonl", "synth.json"):
            (out / file).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / _PARTIAL).touch()
    for split in spec.splits:
        (out / split).mkdir()


def write_synthetic(
    name: str,
    out_dir: str | Path,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    size: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Path:
    """Generate the built-in synthetic set `name` into `out_dir`, in the reference layout; return its path.

    Defaults for `n_train`, `n_test` and `size` come from `SYNTHETIC_SETS[name]`. Aligned sets write
    2 size x size A|B images; an unaligned set writes size x size images. `synth.json` (name, seed,
    counts, size, format version) is written last, so its presence means the set is complete.
    """
    spec = SYNTHETIC_SETS.get(name)
    if spec is None:
        raise UsageError(f"unknown synthetic set {name!r}; choose one of: {', '.join(SYNTHETIC_SETS)}")
    n_train = _checked_count(n_train, spec.n_train, "n_train")
    n_test = _checked_count(n_test, spec.n_test, "n_test")
    size = _checked_count(size, spec.size, "size")
    if size < MIN_SIZE:
        raise UsageError(f"size must be at least {MIN_SIZE} pixels, got {size}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise UsageError(f"seed must be a whole number, got {seed!r}")
    seed = int(seed)
    out = Path(out_dir)
    _prepare(out, spec)

    metadata: list[dict] = []
    if spec is PHOTO2VANGOGH:
        jobs = list(_photo2vangogh_jobs(out, n_train, n_test, size, seed))
    elif spec is EDGES2LANDSCAPE:
        jobs = list(_edges2landscape_jobs(out, n_train, n_test, size, seed))
    else:
        jobs = list(_daytime_jobs(out, n_train, n_test, size, seed, metadata))

    from tqdm import tqdm

    for job in tqdm(jobs, desc=name, unit="item", disable=not progress, file=sys.stderr, leave=False):
        job()

    if spec.conditioned:
        lines = "".join(json.dumps(entry) + "\n" for entry in metadata)
        (out / "metadata.jsonl").write_text(lines, encoding="utf-8")
    record = {
        "format_version": FORMAT_VERSION,
        "name": spec.name,
        "kind": spec.kind,
        "conditioned": spec.conditioned,
        "seed": seed,
        "n_train": n_train,
        "n_test": n_test,
        "size": size,
        "splits": _split_counts(spec, n_train, n_test),
        "labels": list(spec.labels),
        "description": spec.description,
    }
    (out / "synth.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (out / _PARTIAL).unlink()
    return out
