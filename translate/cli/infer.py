"""translate-infer --model MODEL --input FILE_OR_DIR --output DIR [--direction a2b|b2a] [--condition C]
    [--tile auto|off|N] [--overlap M]

MODEL is an exported .safetensors generator or a run folder (for two-way models --direction picks the
generator). Writes one PNG per input, at the input's own size, and an index.html showing input,
output and, where the dataset has one, the ground truth. Images above a pixel budget are translated
in overlapping, blended tiles so that memory stays bounded (--tile auto, the default; see
translate.infer and docs/app.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from translate.cli.common import cli_entry, info
from translate.errors import UsageError

PROG = "translate-infer"


def build_parser() -> argparse.ArgumentParser:
    from translate.infer import AUTO_TILE_PIXELS, DEFAULT_OVERLAP, DEFAULT_TILE

    p = argparse.ArgumentParser(prog=PROG, description="Translate images with a trained or imported generator.")
    p.add_argument("--model", required=True, help="exported .safetensors file or run folder")
    p.add_argument("--input", required=True, help="an image or a folder of images")
    p.add_argument("--output", required=True, help="folder for the translated images and index.html")
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
    return p


@cli_entry(PROG)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from translate.data import load_rgb
    from translate.infer import list_inputs, relative_src, resolve_tile, translate_image, truth_for, write_index
    from translate.io.generator_file import load_generator, pick_generator
    from translate.train.precision import resolve_device, resolve_precision

    if args.size is not None and args.size <= 0:
        raise UsageError(f"--size must be positive, got {args.size}")
    resolve_tile(args.tile, 1, 1)  # a bad --tile fails before any work
    if args.overlap < 0:
        raise UsageError(f"--overlap must be >= 0, got {args.overlap}")
    inputs_root = Path(args.input)
    files = list_inputs(inputs_root)
    out_dir = Path(args.output)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "images").mkdir(exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot write to {out_dir}: {e.strerror}") from None
    device = resolve_device(args.device)
    precision = resolve_precision(args.amp, device)
    path = pick_generator(args.model, args.direction)
    generator = load_generator(path, device)
    if generator.conditioned and args.condition is None:
        raise UsageError(f"{path.name} is conditioned; pass --condition ({generator.condition_hint()})")
    card = generator.card
    info(f"{path.name}: {card.get('source', 'A')} -> {card.get('target', 'B')} ({generator.architecture['name']}, "
         f"{card.get('steps', '?')} steps); {len(files)} image(s) on {device}")
    rows = []
    for file in tqdm(files, unit="img", file=sys.stderr, disable=len(files) < 2):
        image = load_rgb(file)
        if args.size:
            image = _resize_shorter(image, args.size)
        out = translate_image(generator, image, args.condition, device=device, autocast=precision.autocast,
                              tile=args.tile, overlap=args.overlap)
        rel = file.relative_to(inputs_root) if inputs_root.is_dir() else Path(file.name)
        target = out_dir / rel.with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(out)).save(target)
        row = {"name": rel.as_posix(), "output": relative_src(target, out_dir)}
        shown_input = out_dir / "images" / ("input_" + rel.as_posix().replace("/", "_"))
        shown_input = shown_input.with_suffix(".png")
        Image.fromarray(image).save(shown_input)
        row["input"] = relative_src(shown_input, out_dir)
        truth = truth_for(file, inputs_root)
        if truth is not None:
            shown_truth = out_dir / "images" / ("truth_" + truth.name)
            shutil.copyfile(truth, shown_truth)
            row["truth"] = relative_src(shown_truth, out_dir)
        rows.append(row)
    if not args.no_html:
        page = write_index(out_dir, rows, f"{card.get('source', 'A')} -> {card.get('target', 'B')}: {path.name}")
        info(f"wrote {len(rows)} image(s) and {page}")
    else:
        info(f"wrote {len(rows)} image(s) to {out_dir}")
    return 0


def _resize_shorter(image, size: int):
    from PIL import Image
    import numpy as np

    h, w = image.shape[:2]
    scale = size / min(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(new, Image.BICUBIC))


if __name__ == "__main__":
    sys.exit(main())
