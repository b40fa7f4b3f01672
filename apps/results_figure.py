"""A results figure for the docs: rows of input | translation | ground truth, from a translate-infer folder.

    python -m apps.results_figure --inputs datasets/synth-photo2vangogh/testA \\
        --outputs checkpoints/demo/results --truth datasets/synth-photo2vangogh/testA_truth \\
        --out docs/images/demo-photo2vangogh.png [--names 00000 00003 ...] [--columns 2]

Images are matched by file stem; each panel is shown at --side pixels. The PNG is reduced to a
256-colour palette to stay small.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from translate.errors import UsageError


def _find(folder: Path, stem: str) -> Path:
    matches = sorted(p for p in folder.glob(stem + ".*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not matches:
        raise UsageError(f"no image named {stem}.* in {folder}")
    return matches[0]


def build(inputs: Path, outputs: Path, truth: Path | None, names: list[str], out: Path, *, side: int = 160,
          columns: int = 2, titles=("photo", "translation", "true painting")) -> Path:
    from PIL import Image, ImageDraw

    folders = [inputs, outputs] + ([truth] if truth else [])
    titles = titles[: len(folders)]
    group = side * len(folders) + 12  # one example: its panels side by side, then a gap
    rows = -(-len(names) // columns)
    header = 20
    sheet = Image.new("RGB", (group * columns - 12, header + rows * (side + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for c in range(min(columns, len(names))):
        for k, title in enumerate(titles):
            draw.text((c * group + k * side + 4, 4), title, fill="black")
    for i, stem in enumerate(names):
        r, c = divmod(i, columns)
        for k, folder in enumerate(folders):
            panel = Image.open(_find(folder, stem)).convert("RGB").resize((side, side), Image.LANCZOS)
            sheet.paste(panel, (c * group + k * side, header + r * (side + 4)))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m apps.results_figure", description=__doc__.splitlines()[0])
    p.add_argument("--inputs", required=True, type=Path)
    p.add_argument("--outputs", required=True, type=Path)
    p.add_argument("--truth", type=Path, default=None)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--names", nargs="+", default=None, help="file stems to show (default: the first 8 inputs)")
    p.add_argument("--side", type=int, default=160)
    p.add_argument("--columns", type=int, default=2)
    args = p.parse_args(argv)
    try:
        for folder in filter(None, (args.inputs, args.outputs, args.truth)):
            if not folder.is_dir():
                raise UsageError(f"{folder} is not a folder")
        names = args.names or sorted(q.stem for q in args.inputs.iterdir() if q.suffix.lower() == ".png")[:8]
        written = build(args.inputs, args.outputs, args.truth, names, args.out, side=args.side, columns=args.columns)
    except UsageError as error:
        print(f"{p.prog}: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
