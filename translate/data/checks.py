"""Checking every image of a dataset before training reads it, and leaving out the bad ones on request.

A bad file found in the middle of a run surfaces inside a DataLoader worker, hours in, as a multi-line
traceback. `check_dataset` decodes every image a dataset refers to once, up front (JPEGs at the reduced
scale training will read them at, on two threads: decoding releases the GIL), and then either stops
with one line that names the first bad file and what to do, or, with `skip_bad=True`, drops every
sample that needs a bad file and reports them all in one warning.

Bad means: unreadable (zero bytes, not an image, corrupt or truncated data), larger than
`images.MAX_IMAGE_PIXELS` (a decompression bomb), or, for the side-by-side A|B layout, of odd width (its
two halves cannot be equal).
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from translate.data.datasets import SIDE_BY_SIDE_PARTS, read_ref
from translate.data.images import ImageReadError, upright_size
from translate.errors import UsageError


@dataclass(frozen=True)
class BadImage:
    path: str
    why: str  # one line that ends with what to do

    @property
    def message(self) -> str:
        return f"cannot use image {self.path}: {self.why}"


def find_bad_images(dataset, *, threads: int = 2) -> list[BadImage]:
    """Every file `dataset` (a TranslationDataset) reads that cannot be used, in path order."""
    used = [r for e in dataset.entries for r in (e.a, e.b, e.b_truth) if r is not None] + list(dataset.b_pool or ())
    refs = {}  # path -> the ref to read it through (a side-by-side ref when any use is one)
    for ref in used:
        if ref.path not in refs or ref.part in SIDE_BY_SIDE_PARTS:
            refs[ref.path] = ref
    decode = dataset.transform.decode_size()

    def check(path: str) -> BadImage | None:
        try:
            read_ref(refs[path], decode)
        except ImageReadError as error:
            return BadImage(path, error.why)
        return None

    return [bad for bad in decode_each(check, sorted(refs), threads) if bad is not None]


def decode_each(function, items: list, threads: int = 2) -> list:
    """`function` over `items` on `threads` threads (image decoding releases the GIL), in order."""
    # load_rgb refuses oversized images itself; PIL's own warning about them would only repeat it.
    # (The filter is set once here, not per thread: catch_warnings is not thread-safe.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            return list(pool.map(function, items))


def report_bad_images(bad: list[BadImage], *, skip_bad: bool, nothing_left: bool, what: str, log=None) -> None:
    """Without `skip_bad`, a UsageError naming the first bad file; with it, a UsageError when nothing
    usable is left, else one warning (to `log`) listing them all."""
    if not skip_bad:
        more = f" ({len(bad)} bad files in all)" if len(bad) > 1 else ""
        raise UsageError(f"{bad[0].message}{more}; or pass --skip-bad-images to leave such files out")
    if nothing_left:
        raise UsageError(f"no usable sample is left in {what} without its {len(bad)} bad image file(s) "
                         f"(first: {bad[0].message})")
    if log is not None:
        log(f"warning: skipped {len(bad)} bad image file(s) of {what}: "
            + "; ".join(f"{b.path} ({b.why.split(';')[0]})" for b in bad))


def check_dataset(dataset, *, skip_bad: bool = False, what: str = "the dataset", log=None, threads: int = 2):
    """Decode every image of `dataset` once. Without `skip_bad`, a bad file is a UsageError (one line
    naming it); with it, the samples that need a bad file are removed from `dataset` (in place) and
    `log` gets one warning listing the files. Returns the list of bad files."""
    started = time.perf_counter()
    bad = find_bad_images(dataset, threads=threads)
    seconds = time.perf_counter() - started
    if log is not None and seconds >= 1.0:
        log(f"checked the images of {what} in {seconds:.1f} s")
    if not bad:
        return bad
    bad_paths = {b.path for b in bad}

    def usable(ref) -> bool:
        return ref is None or ref.path not in bad_paths

    entries = [e for e in dataset.entries if usable(e.a) and usable(e.b) and usable(e.b_truth)]
    pool = None if dataset.b_pool is None else [ref for ref in dataset.b_pool if usable(ref)]
    report_bad_images(bad, skip_bad=skip_bad, nothing_left=not entries or (pool is not None and not pool),
                      what=what, log=log)
    dataset.entries[:] = entries
    if pool is not None:
        dataset.b_pool[:] = pool
    return bad


def check_batchable(dataset, batch_size: int, what: str = "the dataset") -> None:
    """UsageError when `dataset`'s samples would come out at different sizes and a batch holds more than
    one (`--preprocess none` keeps each image's size, `scale_width` its aspect ratio): stacking them
    would fail inside the training loop. Reads only image headers: of each sample's first image (a
    pair's other images are resized to it) and of an unpaired set's B images (transformed on their own)."""
    if batch_size <= 1 or dataset.transform.config.preprocess not in ("none", "scale_width"):
        return
    refs = [e.a for e in dataset.entries] + list(dataset.b_pool or ())
    first: tuple[tuple[int, int], str] | None = None
    for ref in refs:
        width, height = _upright_size(ref.path)
        if ref.part in SIDE_BY_SIDE_PARTS:
            width //= 2
        size = dataset.transform.target_size(width, height)
        if first is None:
            first = (size, ref.path)
        elif size != first[0]:
            raise UsageError(
                f"with --preprocess {dataset.transform.config.preprocess} the images of {what} keep their own "
                f"sizes ({first[1]}: {first[0][0]}x{first[0][1]}, {ref.path}: {size[0]}x{size[1]}), which "
                f"cannot share a batch of {batch_size}; use --batch-size 1, or a --preprocess that crops "
                "(resize_and_crop, crop, scale_width_and_crop)")


def _upright_size(path: str) -> tuple[int, int]:
    with Image.open(path) as image:
        return upright_size(image)
