"""A screenshot of the app translating a landscape, for the docs.

    python -m apps.screenshot --model checkpoints/RUN --out docs/images/app.png [--label dusk] [--input IMAGE]

MODEL is a run folder or an exported .safetensors file; its generator files are copied into a
temporary models folder, the app is started on a free 127.0.0.1 port, and Debian's chromium (driven by
Playwright) uploads the picture (default: a synthetic landscape photo), picks the label or direction,
presses Translate and photographs the page. The PNG is reduced to a 256-colour palette to stay small.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _landscape(path: Path, size: int, seed: int) -> Path:
    from PIL import Image

    from translate.data.synthetic.scene import relight, render_photo, sample_scene

    Image.fromarray(render_photo(relight(sample_scene(seed), "daylight"), size)).save(path)
    return path


def take(model: Path, out: Path, *, label: str | None = None, direction: str | None = None,
         input_image: Path | None = None, size: int = 256, seed: int = 11, chromium: str = "/usr/bin/chromium",
         width: int = 1200, height: int = 1000) -> Path:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from apps.translate_app import launch

    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "checkpoints"
        name = model.stem if model.is_file() else model.name
        (models / name).mkdir(parents=True)
        files = [model] if model.is_file() else sorted(model.glob("*.safetensors"))
        if not files:
            raise SystemExit(f"{model} holds no exported .safetensors generators; run translate-export first")
        for f in files:
            shutil.copyfile(f, models / name / f.name)
        picture = input_image or _landscape(Path(tmp) / "landscape.png", size, seed)
        demo, url = launch(models, port=_free_port(), block=False, log=lambda *a: None)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(url, wait_until="domcontentloaded")
                page.locator("#card").get_by_text("\u2192").first.wait_for(timeout=60_000)
                if label:
                    page.locator("#label input").click()
                    page.get_by_role("option", name=label).click()
                if direction:
                    page.locator("#direction").get_by_text(direction).click()
                page.locator("#input-image input[type=file]").set_input_files(str(picture))
                page.locator("#input-image img").wait_for(state="visible", timeout=30_000)
                page.locator("#translate-button").click()
                page.wait_for_function("() => { const i = document.querySelector('#output-image img');"
                                       " return i && i.complete && i.naturalWidth > 0; }", timeout=120_000)
                page.wait_for_timeout(500)
                raw = Path(tmp) / "page.png"
                page.screenshot(path=str(raw), full_page=True)
                browser.close()
        finally:
            demo.close()
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.open(raw).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m apps.screenshot", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, type=Path, help="run folder or .safetensors file")
    p.add_argument("--out", default=Path("docs/images/app.png"), type=Path)
    p.add_argument("--label", default=None, help="label to pick, for label-conditioned models")
    p.add_argument("--direction", default=None, help="direction label to click, for two-way models (e.g. 'photo')")
    p.add_argument("--input", default=None, type=Path, help="picture to translate (default: a synthetic landscape)")
    p.add_argument("--size", type=int, default=256, help="side of the synthetic landscape (default 256)")
    p.add_argument("--seed", type=int, default=11, help="which synthetic landscape (default 11)")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args(argv)
    out = take(args.model, args.out, label=args.label, direction=args.direction, input_image=args.input,
               size=args.size, seed=args.seed, chromium=args.chromium)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
