"""Preview grids of the synthetic sets (the pictures in docs/synthetic.md are made with this).

    python -m translate.data.synthetic.preview synth-photo2vangogh docs/images/synth-photo2vangogh.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from translate.errors import UsageError

from .scene import TIMES_OF_DAY, relight, render_photo, sample_scene
from .sets import (
    DAYTIME,
    SYNTHETIC_SETS,
    edges2landscape_pair,
    photo2vangogh_pair,
    photo2vangogh_scene,
    picture_seed,
)

_GAP = 4  # white pixels between tiles


def _grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    height, width = rows[0][0].shape[:2]
    columns = max(len(row) for row in rows)
    canvas = np.full((len(rows) * (height + _GAP) - _GAP, columns * (width + _GAP) - _GAP, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            y, x = r * (height + _GAP), c * (width + _GAP)
            canvas[y:y + height, x:x + width] = tile
    return canvas


def preview(name: str, size: int = 192, seed: int = 0) -> np.ndarray:
    """A grid of examples of set `name` as an (H, W, 3) uint8 RGB image.

    photo2vangogh: four test photos beside their true paintings, one per time of day when the first test
    scenes have them; edges2landscape: four edge map | photo pairs; daytime: two scenes in daylight and at
    each time of day.
    """
    if name == "synth-photo2vangogh":
        chosen: dict[str, int] = {}
        for index in range(200):
            light = photo2vangogh_scene(seed, "testA", index).light.name
            chosen.setdefault(light, index)
            if len(chosen) == 4:
                break
        indices = sorted(chosen.values())[:4]
        pairs = [list(photo2vangogh_pair(seed, "testA", i, size)) for i in indices]
        return _grid([pairs[0] + pairs[1], pairs[2] + pairs[3]])
    if name == "synth-edges2landscape":
        pairs = [list(edges2landscape_pair(seed, "test", i, size)) for i in range(4)]
        return _grid([pairs[0] + pairs[1], pairs[2] + pairs[3]])
    if name == "synth-daytime":
        rows = []
        for index in range(2):
            scene = sample_scene(picture_seed(DAYTIME.name, seed, "test", index))
            rows.append([render_photo(relight(scene, label), size) for label in ("daylight", *TIMES_OF_DAY)])
        return _grid(rows)
    raise UsageError(f"unknown synthetic set {name!r}; choose one of: {', '.join(SYNTHETIC_SETS)}")


def save_png(image: np.ndarray, path: str | Path, colors: int = 256) -> None:
    """Save as a palette PNG (dithered to `colors` colours): small enough for documentation."""
    from PIL import Image

    Image.fromarray(image).quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                                    dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m translate.data.synthetic.preview NAME OUT.png", file=sys.stderr)
        return 2
    try:
        save_png(preview(args[0]), args[1])
    except UsageError as error:
        print(f"preview: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
