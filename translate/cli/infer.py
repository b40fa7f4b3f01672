"""translate-infer --model MODEL --input FILE_OR_DIR --output DIR [--direction a2b|b2a] [--condition C]
    [--size N] [--tile auto|off|N] [--overlap M] [--skip-bad-images]

MODEL is an exported .safetensors generator or a run folder (for two-way models --direction picks the
generator). Writes one PNG per input, at the input's own size, and an index.html showing input,
output and, where the dataset has one, the ground truth (a split folder of an aligned dataset, such as
facades/test, holds A|B pairs: one half is translated, the other is the truth; test/A of paired folders has
its truth in test/B). Images above a pixel budget are translated
in overlapping, blended tiles so that memory stays bounded (--tile auto, the default; see
translate.infer and docs/app.md).

A folder's images are found as training finds them (hidden files and __MACOSX/ left out), and each is
named after its input with the extension .png (sub/photo.jpg -> DIR/sub/photo.png); inputs that differ
only in extension keep theirs (photo.jpg -> photo.jpg.png beside photo.png). Before anything is
written, every input is decoded once, and the command refuses an output path that is an input file
or any other file it did not write itself (the output folder's .translate-infer.json records what
earlier runs wrote there, which a new run may replace); what it wrote into a folder inside the input
folder (any run's --output), and the images/ copies of a results page, are not read as input.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from translate.cli.common import OneLineParser, cli_entry, info
from translate.errors import UsageError

if TYPE_CHECKING:
    from translate.infer import Job

PROG = "translate-infer"


def build_parser() -> argparse.ArgumentParser:
    from translate.infer import AUTO_TILE_PIXELS, DEFAULT_OVERLAP, DEFAULT_TILE

    p = OneLineParser(prog=PROG, description="Translate images with a trained or imported generator.")
    p.add_argument("--model", required=True, help="exported .safetensors file or run folder")
    p.add_argument("--input", required=True,
                   help="an image, or a folder of images (hidden files and __MACOSX/ left out)")
    p.add_argument("--output", required=True,
                   help="folder for the translated images and index.html, apart from the inputs; each input "
                        "becomes NAME.png (photo.jpg.png where photo.png is an input too)")
    p.add_argument("--direction", choices=("a2b", "b2a"), default=None, help="for two-way models: which way to translate")
    p.add_argument("--condition", default=None, help="label name or caption, for conditioned models")
    p.add_argument("--size", type=int, default=None, help="resize inputs so the shorter side is SIZE first (default: keep size)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--amp", default="off", choices=("auto", "off", "bf16", "fp16"), help="mixed precision for inference")
    p.add_argument("--tile", default="auto", metavar="auto|off|N",
                   help="translate in N x N tiles blended over their overlap; auto (default): "
                        f"{DEFAULT_TILE}-pixel tiles for images above {AUTO_TILE_PIXELS:,} pixels")
    p.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, help=f"pixels of overlap between tiles (default {DEFAULT_OVERLAP})")
    p.add_argument("--no-html", action="store_true", help="do not write index.html")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="leave out unreadable or oversized input images (with a warning) instead of stopping")
    return p


@cli_entry(PROG)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import numpy as np
    from PIL import Image
    import torch
    from tqdm import tqdm

    from translate.data import load_rgb
    from translate.data.images import IMAGE_EXTENSIONS, MAX_IMAGE_PIXELS
    from translate.data.images import split_halves
    from translate.infer import (generator_multiple, list_inputs, plan_jobs, record_writes, refuse_foreign_files,
                                 refuse_overwriting, relative_src, resolve_tile, side_by_side_split, translate_image,
                                 write_index)
    from translate.io.generator_file import load_generator, pick_generator
    from translate.nets.conditions import tokenize
    from translate.train.precision import resolve_device, resolve_precision

    if args.size is not None and args.size <= 0:
        raise UsageError(f"--size must be positive, got {args.size}")
    resolve_tile(args.tile, 1, 1)  # a bad --tile fails before any work
    if args.overlap < 0:
        raise UsageError(f"--overlap must be >= 0, got {args.overlap}")
    inputs_root = Path(args.input)
    out_dir = Path(args.output)
    if out_dir.suffix.lower() in IMAGE_EXTENSIONS and not out_dir.is_dir():
        raise UsageError(f"--output {out_dir} looks like an image file; translate-infer writes a folder (the "
                         f"translation keeps its input's name in it): pass e.g. --output {out_dir.with_suffix('')}")
    if inputs_root.is_dir() and out_dir.resolve() == inputs_root.resolve():
        raise UsageError(f"--output {out_dir} is the input folder; write to a folder of its own, "
                         f"e.g. --output {out_dir / 'translated'}")
    files = list_inputs(inputs_root)
    halves = side_by_side_split(inputs_root, files)  # an aligned dataset's split: A|B pairs
    jobs = plan_jobs(files, inputs_root, out_dir, halves=halves)
    # Checked before anything is written: an input overwritten by a translation is lost.
    refuse_overwriting([out_dir / "index.html"] + [p for job in jobs for p in job.writes],
                       files + [job.truth for job in jobs if job.truth is not None])
    # ... and so is a file of the user's that happens to be in the output folder.
    refuse_foreign_files([out_dir / "index.html"] + [p for job in jobs for p in job.writes], out_dir)
    device = resolve_device(args.device)
    precision = resolve_precision(args.amp, device)
    path = pick_generator(args.model, args.direction)
    generator = load_generator(path, device)
    if generator.conditioned and (args.condition is None or not args.condition.strip()):
        raise UsageError(f"{path.name} is conditioned; pass --condition ({generator.condition_hint()})")
    if generator.conditioned:
        if generator.vocabulary is not None and not tokenize(args.condition):
            # As blank as an empty caption, which is refused: the model would get one unknown word, unsaid.
            raise UsageError(f"--condition {args.condition!r} has no words (letters or digits) for {path.name} to "
                             "read; pass a caption in words")
        with torch.no_grad():
            generator.encode_condition(args.condition, 1, device)  # an unknown label: refused before writing
    elif args.condition is not None:
        info(f"note: {path.name} takes no condition; --condition is ignored")
    tile = resolve_tile(args.tile, 2**31, 2**31) if args.tile not in ("auto", "off") else None
    if tile is not None:  # a tile size given: checked against --overlap before anything is written
        multiple = generator_multiple(generator)
        tile = max(multiple, -(-tile // multiple) * multiple)
        if args.overlap >= tile:
            raise UsageError(f"--overlap {args.overlap} must be smaller than the tile ({tile} px); pass a smaller "
                             f"--overlap or a larger --tile")
    if generator.vocabulary is not None:
        unknown = generator.vocabulary.unknown_words(args.condition)
        if unknown:
            info(f"note: {path.name} never saw {', '.join(map(repr, unknown))} in its training captions; "
                 "it reads them as unknown words")
    translates = generator.card.get("translates", "a2b")
    if halves:
        what = (f"the {inputs_root.name} split of an aligned dataset: each image is an A|B pair" if inputs_root.is_dir()
                else f"an A|B pair of the {inputs_root.parent.name} split of an aligned dataset")
        info(f"note: {inputs_root} is {what}; translating its {'B' if translates == 'b2a' else 'A'} half, "
             "the other half is the ground truth")
    jobs = _usable(jobs, args.size, MAX_IMAGE_PIXELS, args.skip_bad_images, halves)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "images").mkdir(exist_ok=True)
        record_writes([out_dir / "index.html"] + [p for job in jobs for p in job.writes], out_dir)
    except OSError as e:
        where = e.filename or out_dir  # (the results page's images/ may be a file of the user's)
        raise UsageError(f"cannot write to {where}: {e.strerror}; pick another --output") from None
    card = generator.card
    info(f"{path.name}: {card.get('source', 'A')} -> {card.get('target', 'B')} ({generator.architecture['name']}, "
         f"{card.get('steps', '?')} steps); {len(jobs)} image(s) on {device}")
    rows = []
    for job in tqdm(jobs, unit="img", file=sys.stderr, disable=len(jobs) < 2):
        image, truth_image = load_rgb(job.source), None
        if halves:
            a, b = split_halves(image, job.source)
            image, truth_image = (b, a) if translates == "b2a" else (a, b)
        if args.size:
            image = _resize_shorter(image, args.size)
        out = translate_image(generator, image, args.condition, device=device, autocast=precision.autocast,
                              max_pixels=MAX_IMAGE_PIXELS, tile=args.tile, overlap=args.overlap)
        job.output.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(out)).save(job.output)
        Image.fromarray(image).save(job.shown_input)
        row = {"name": job.name, "output": relative_src(job.output, out_dir),
               "input": relative_src(job.shown_input, out_dir)}
        if truth_image is not None:
            Image.fromarray(np.ascontiguousarray(truth_image)).save(job.shown_truth)
            row["truth"] = relative_src(job.shown_truth, out_dir)
        elif job.truth is not None:
            shutil.copyfile(job.truth, job.shown_truth)
            row["truth"] = relative_src(job.shown_truth, out_dir)
        rows.append(row)
    if not args.no_html:
        page = write_index(out_dir, rows, f"{card.get('source', 'A')} -> {card.get('target', 'B')}: {path.name}")
        info(f"wrote {len(rows)} image(s) and {page}")
    else:
        info(f"wrote {len(rows)} image(s) to {out_dir}")
    return 0


def _usable(jobs: list[Job], size: int | None, max_pixels: int, skip_bad: bool, halves: bool = False) -> list[Job]:
    """The jobs whose input can be translated, each input decoded once before anything is written, so
    that a bad file found half-way does not leave a half-written output folder. A bad file is a
    UsageError, or with `skip_bad` is left out with a warning (as translate-train's); a --size that
    makes an image larger than `max_pixels` is always refused (the resize alone could exhaust memory)."""
    from translate.data.checks import BadImage, decode_each, report_bad_images
    from translate.data.images import ImageReadError, load_rgb, split_halves

    def check(job: Job) -> BadImage | None:
        try:
            image = load_rgb(job.source)
            height, width = (split_halves(image, job.source)[0] if halves else image).shape[:2]
        except ImageReadError as error:
            return BadImage(str(job.source), error.why)
        if size is not None:
            width, height = _shorter_side_to(width, height, size)
            if width * height > max_pixels:
                raise UsageError(f"--size {size} makes {job.source} {width}x{height} pixels, more than the limit of "
                                 f"{max_pixels:,}; pass a smaller --size")
        return None

    found = decode_each(check, jobs)
    bad = [b for b in found if b is not None]
    if bad:
        report_bad_images(bad, skip_bad=skip_bad, nothing_left=len(bad) == len(jobs), what="the inputs", log=info)
    return [job for job, b in zip(jobs, found) if b is None]


def _shorter_side_to(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) scaled so that the shorter side is `size`."""
    scale = size / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resize_shorter(image, size: int):
    from PIL import Image
    import numpy as np

    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize(_shorter_side_to(w, h, size), Image.BICUBIC))


if __name__ == "__main__":
    sys.exit(main())
