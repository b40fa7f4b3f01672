"""Measure tiled inference against whole-image inference: peak memory, and how close the outputs are.

    python -m apps.tiling_report --model FILE.safetensors [--size 2048] [--tile 512] [--overlap 64] [--json]
        [--figure strip.png] [--ablation]

Peak memory is the growth of the process's peak resident set size (VmHWM; see `peak_rss_mb`)
during one translation, each case in a fresh Python process with the model already loaded, a first
small translation done (thread pools, kernel caches) and the input already read (a uint8 .npy file made beforehand, in another process), so that the number is what
the translation itself adds. The input is a synthetic landscape photo rendered at SIZE x SIZE. Differences are in output units ([-1, 1] images), split into
pixels that one tile alone produced ("interior") and pixels blended from overlapping tiles ("seams").
`--figure` writes a strip: input | untiled | each tiled mode. `--ablation` (instance-norm models) also
compares, in float, tiles normalised with statistics from copies of the image shrunk to several sizes.
The numbers in docs/app.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def landscape(size: int, seed: int = 5):
    from translate.data.synthetic.scene import render_photo, sample_scene

    return render_photo(sample_scene(seed), size)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB: VmHWM on Linux, which starts afresh at exec
    (ru_maxrss does not: a child spawned by a large process inherits the parent's peak), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_child(model: str, image_file: str, tile: int | None, overlap: int, out: str | None,
                statistics: str = "image") -> dict:
    """Runs in a fresh process: model loaded and input made first, then one translation."""
    import numpy as np
    import torch

    from translate.infer import translate_image
    from translate.io.generator_file import load_generator

    torch.set_num_threads(max(1, torch.get_num_threads()))
    generator = load_generator(model)
    image = np.load(image_file)
    condition = _condition_of(generator)
    # A first small translation: thread pools and kernel caches are set up once per process, not per image.
    translate_image(generator, image[:64, :64], condition, tile=None)
    before = peak_rss_mb()
    result = translate_image(generator, image, condition, tile=tile, overlap=overlap, statistics=statistics)
    after = peak_rss_mb()
    if out:
        np.save(out, result)
    return {"tile": tile, "statistics": statistics if tile else None, "peak_rss_growth_mb": after - before,
            "peak_rss_mb": after}


def peak_memory(model: str, image_file: str, tile: int | None, overlap: int, out: str | None = None,
                statistics: str = "image") -> dict:
    """Peak RSS growth of one translation of the (H, W, 3) uint8 image in `image_file` (.npy), measured
    in a fresh process."""
    code = ("import json, sys; from apps.tiling_report import _peak_child; "
            f"print(json.dumps(_peak_child({str(model)!r}, {str(image_file)!r}, {tile!r}, {overlap}, {out!r}, "
            f"{statistics!r})))")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"measurement failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(untiled, tiled, mask) -> dict:
    import numpy as np

    diff = np.abs(untiled.astype(np.float32) - tiled.astype(np.float32)) / 127.5  # uint8 -> [-1, 1] units
    per_pixel = diff.max(axis=2)
    inner, seams = per_pixel[~mask], per_pixel[mask]
    return {
        "interior_mean_abs": float(inner.mean()) if inner.size else None,
        "interior_p99_abs": float(np.quantile(inner, 0.99)) if inner.size else None,
        "interior_max_abs": float(inner.max()) if inner.size else None,
        "seam_mean_abs": float(seams.mean()) if seams.size else None,
        "seam_max_abs": float(seams.max()) if seams.size else None,
        "interior_fraction": float((~mask).mean()),
    }


def _condition_of(generator):
    if not generator.conditioned:
        return None
    return generator.condition.label_names[0] if generator.condition.kind == "label" else "a landscape"


def statistics_ablation(model: str, image, tile: int, overlap: int,
                        pixels=(None, 1024 * 1024, 512 * 512, 256 * 256)) -> dict:
    """Float differences from untiled inference when the tiles use whole-image statistics measured on
    a copy of at most `pixels` pixels (None: full size), and with each tile's own statistics."""
    import torch

    from translate.infer import blended_mask, to_tensor, translate_tensor, translate_tiled
    from translate.io.generator_file import load_generator

    generator = load_generator(model)
    condition = _condition_of(generator)
    x = to_tensor(image)
    whole = translate_tensor(generator, x, condition)
    mask = torch.from_numpy(blended_mask(x.shape[-2], x.shape[-1], tile, overlap, 4))
    runs = [("image", p) for p in pixels] + [("tile", None)]
    out = {}
    for mode, px in runs:
        tiled = translate_tiled(generator, x, condition, tile=tile, overlap=overlap, statistics=mode,
                                statistics_pixels=px)
        diff = (tiled - whole).abs().amax(dim=1)[0]
        inner = diff[~mask]
        key = "tile statistics" if mode == "tile" else f"image statistics at {'full size' if px is None else f'{px} px'}"
        out[key] = {"interior_mean_abs": inner.mean().item(),
                    "interior_p99_abs": torch.quantile(inner[:: max(1, inner.numel() // 1_000_000)], 0.99).item(),
                    "seam_mean_abs": diff[mask].mean().item(), "max_abs": diff.max().item()}
    return out


def figure(path: str, image, outputs: list[tuple[str, object]], side: int = 320) -> None:
    """A labelled strip of the input and the outputs, each shrunk to side x side, as a palette PNG."""
    import numpy as np
    from PIL import Image, ImageDraw

    panels = [("input", image)] + outputs
    strip = Image.new("RGB", (side * len(panels), side + 24), "white")
    draw = ImageDraw.Draw(strip)
    for i, (title, array) in enumerate(panels):
        strip.paste(Image.fromarray(np.asarray(array)).resize((side, side), Image.LANCZOS), (i * side, 24))
        draw.text((i * side + 6, 5), title, fill="black")
    strip.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main(argv=None) -> int:
    import tempfile

    import numpy as np

    from translate.infer import blended_mask
    from translate.io.generator_file import read_metadata
    from translate.nets.factory import required_multiple

    p = argparse.ArgumentParser(prog="python -m apps.tiling_report", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="an exported .safetensors generator")
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument("--json", action="store_true")
    p.add_argument("--figure", default=None, help="write a strip input | untiled | tiled modes to this PNG")
    p.add_argument("--ablation", action="store_true", help="also compare statistics measured at several sizes")
    args = p.parse_args(argv)
    meta = read_metadata(args.model)
    mask = blended_mask(args.size, args.size, args.tile, args.overlap, required_multiple(meta["generator"]["name"]))
    report = {"model": args.model, "generator": meta["generator"], "size": args.size, "tile": args.tile,
              "overlap": args.overlap}
    image = landscape(args.size)
    panels = []
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/input.npy", image)
        report["untiled"] = peak_memory(args.model, f"{tmp}/input.npy", None, args.overlap, f"{tmp}/whole.npy")
        whole = np.load(f"{tmp}/whole.npy")
        panels.append(("untiled", whole))
        instance = meta["generator"]["norm"] == "instance"
        for mode in ("image", "tile") if instance else ("image",):
            key = f"tiled_{mode}_statistics" if instance else "tiled"
            report[key] = peak_memory(args.model, f"{tmp}/input.npy", args.tile, args.overlap, f"{tmp}/tiled.npy", mode)
            tiled = np.load(f"{tmp}/tiled.npy")
            report[key]["difference"] = compare(whole, tiled, mask)
            panels.append((f"tiled, {mode} statistics" if instance else "tiled", tiled))
    if args.ablation and meta["generator"]["norm"] == "instance":
        report["statistics_ablation"] = statistics_ablation(args.model, image, args.tile, args.overlap)
    if args.figure:
        figure(args.figure, image, panels)
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
