"""Translating images with a trained generator, at any size it accepts.

An image is padded to the multiple the generator needs (reflection where the image is large enough,
edge replication otherwise), translated, and cropped back to its own size, so outputs match inputs
pixel for pixel.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from translate.errors import UsageError


def generator_multiple(generator) -> int:
    from translate.nets.factory import required_multiple

    return required_multiple(generator.architecture["name"])


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).unsqueeze(0).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    if x.dim() == 4:
        x = x[0]
    return ((x.float().clamp(-1, 1) + 1.0) * 127.5 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    # Reflection needs the pad to be smaller than the image; large pads (small images into unet_256)
    # replicate the border instead.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


@torch.no_grad()
def translate_tensor(generator, x: torch.Tensor, condition=None, autocast=None) -> torch.Tensor:
    """Translate a (N, 3, H, W) batch in [-1, 1] of any H, W; returns the same size."""
    import contextlib

    padded, (h, w) = pad_to_multiple(x, generator_multiple(generator))
    with (autocast or contextlib.nullcontext)():
        out = generator(padded, condition)
    return out.float()[..., :h, :w]


def translate_image(generator, image: np.ndarray, condition=None, *, device="cpu", autocast=None,
                    max_pixels: int | None = None) -> np.ndarray:
    """Translate one (H, W, 3) uint8 RGB image; returns an image of the same size."""
    if max_pixels is not None and image.shape[0] * image.shape[1] > max_pixels:
        raise UsageError(f"the image has {image.shape[1]}x{image.shape[0]} pixels, more than the limit of {max_pixels}; "
                         "downscale it first")
    x = to_tensor(image).to(device)
    return to_uint8(translate_tensor(generator, x, condition, autocast))


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


def list_inputs(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UsageError(f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return files
    raise UsageError(f"input {path} not found")


def truth_for(input_file: Path, input_root: Path) -> Path | None:
    """The ground truth of an input, where a dataset provides one: `testA/x.png` -> `testA_truth/x.png`."""
    folder = input_root if input_root.is_dir() else input_file.parent
    truth_dir = folder.parent / (folder.name + "_truth")
    candidate = truth_dir / input_file.relative_to(folder)
    return candidate if candidate.is_file() else None


def write_index(out_dir: Path, rows: list[dict], title: str) -> Path:
    """An index.html that shows input | output | truth for each image, as the reference's results page."""
    has_truth = any(r.get("truth") for r in rows)
    head = "<tr><th>name</th><th>input</th><th>output</th>" + ("<th>ground truth</th>" if has_truth else "") + "</tr>"
    lines = []
    for r in rows:
        cells = [f"<td>{html.escape(r['name'])}</td>"]
        for key in ("input", "output") + (("truth",) if has_truth else ()):
            src = r.get(key)
            cells.append(f'<td><img src="{html.escape(src)}" width="256"></td>' if src else "<td></td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    page = (
        "<!doctype html><meta charset='utf-8'><title>{t}</title>"
        "<style>body{{font-family:sans-serif}}td,th{{padding:4px;text-align:center}}img{{image-rendering:auto}}</style>"
        "<h1>{t}</h1><table>{h}{rows}</table>"
    ).format(t=html.escape(title), h=head, rows="".join(lines))
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def relative_src(target: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(target.resolve(), out_dir.resolve())).as_posix()
