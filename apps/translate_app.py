"""The Gradio app: pick a model from the models folder, read its card, translate a picture, download it.

    translate-app [--models checkpoints] [--host 127.0.0.1] [--port 7860] [--share]
    python -m apps.translate_app ...   (the same, from a source checkout)

What it guarantees (see docs/app.md):
- only `.safetensors` generators inside the models folder are offered and loaded (paths resolved,
  `..` and symbolic links that lead out refused), and Gradio is told never to serve that folder;
- at most `--cache-size` models are held in memory, one per file, the least recently used dropped;
- uploads that are not images are refused with a message, and images above `--max-pixels` are
  downscaled first, with a notice;
- it listens on 127.0.0.1 unless `--host` says otherwise, opens no share link unless `--share` is
  given, and sends no analytics (GRADIO_ANALYTICS_ENABLED=False, set by `translate/__init__.py`, and
  analytics_enabled=False here); fonts come from the local theme, not from a font service.

The page's event `translate` is also an API endpoint (`gradio_client`): inputs (model, direction,
label, caption, image file, and optionally whether to paint at the model's training size), outputs
(image, PNG file, notice). Models whose card gives a training size get a box that paints a larger
image at that size and scales the painting back up; it is ticked for U-Nets, whose bottleneck sees
the whole picture (they repaint less on larger images).
"""

from __future__ import annotations

import atexit
import html
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import translate  # noqa: F401  (sets GRADIO_ANALYTICS_ENABLED=False before gradio is imported)

import gradio as gr
import numpy as np

from translate.errors import UsageError
from translate.serving import DEFAULT_CACHE_SIZE, DEFAULT_MAX_PIXELS, TranslationService, read_upload

EXAMPLE_KINDS = ("photo", "painting", "edges")
MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # far above any photo; uploads beyond it are refused by Gradio
TITLE = "translate: image-to-image translation"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "translate" / "app-examples"


def ensure_examples(folder: Path, kinds=EXAMPLE_KINDS, count: int = 2, size: int = 256) -> list[tuple[Path, str]]:
    """Example inputs from the synthetic sets: landscape photos, paintings and edge maps, rendered into
    `folder` on first use (a few seconds) and reused afterwards. Returns (file, label) pairs."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    examples = []
    for kind in kinds:
        for i in range(count):
            path = folder / f"{kind}_{i}.png"
            if not path.is_file():
                Image.fromarray(_render_example(kind, seed=101 + i, size=size)).save(path)
            examples.append((path, f"{kind} {i + 1}"))
    return examples


def _render_example(kind: str, seed: int, size: int) -> np.ndarray:
    from translate.data.synthetic.scene import relight, render_photo, sample_scene

    photo = render_photo(relight(sample_scene(seed), "daylight"), size)
    if kind == "photo":
        return photo
    if kind == "painting":
        from translate.data.synthetic.painting import render_painting

        return render_painting(photo)
    if kind == "edges":
        from translate.data.synthetic.edges import canny_edges, edge_image

        return edge_image(canny_edges(photo))
    raise UsageError(f"unknown example kind {kind!r}; choose from {', '.join(EXAMPLE_KINDS)}")


# Emphasis, code, links and strikethrough; the rest cannot start anything mid-line, and an escape
# inside a bare URL would be shown (the renderer links URLs before it reads escapes).
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]~])")


def _plain(text: str) -> str:
    """`text` shown as written, on one line, inside Markdown: HTML and Markdown syntax from a model card
    (any file dropped into the models folder) must neither format the page nor make it fetch anything.
    Line breaks become spaces (a new line could start a heading or a list); the card's Markdown
    component renders no LaTeX."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(" ".join(str(text).split()), quote=False))


def uploaded_path(upload) -> str:
    """The path of a file Gradio received as an upload (or copied there from the examples).

    The event runs with preprocess=False, so Gradio checks only file payloads that say they are files;
    a bare {"path": ...} sent to the API would otherwise open any image the server can read."""
    import gradio.utils

    path = upload.get("path") if isinstance(upload, dict) else upload
    if not path:
        raise UsageError("upload an image first (or click an example)")
    folder = Path(gradio.utils.get_upload_folder()).resolve()
    resolved = Path(path).resolve()
    if folder not in resolved.parents:
        raise UsageError("this app translates uploaded images only: upload the file (gradio_client: handle_file)")
    return str(resolved)


def _card_markdown(service: TranslationService, name: str | None) -> str:
    if not name:
        return (f"No models found in `{service.root}`. Train one (`translate-train ...`), export one "
                "(`translate-export`), or fetch a published one (`translate-data download-model style_vangogh "
                f"--root {service.root}/pretrained`), then press *Rescan*.")
    entry = service.model(name)
    lines = [_plain(line) for line in entry.describe()]
    return f"**{lines[0]}**\n\n" + "\n".join(f"- {line}" for line in lines[1:])


def _training_size_update(service: TranslationService, name: str | None):
    """The "paint at the training size" box: shown when the card gives a size, ticked for U-Nets."""
    entry = service.model(name) if name else None
    size = entry.training_size() if entry else None
    if size is None:
        return gr.update(value=False, visible=False)
    return gr.update(label=f"Paint at the model's training size ({size} px), then scale back up",
                     value=entry.paints_best_at_training_size, visible=True)


def _controls(service: TranslationService, name: str | None):
    """Updates of (card, direction, label, caption, training size) for model `name`."""
    if not name:
        return (_card_markdown(service, None), gr.update(choices=[("a2b", "a2b"), ("b2a", "b2a")], value="a2b",
                                                         visible=False),
                gr.update(choices=[], value=None, visible=False), gr.update(visible=False),
                _training_size_update(service, None))
    entry = service.model(name)
    condition = entry.condition
    kind = condition.get("kind", "none")
    # Both values are always among the choices (the API checks values against them); the labels name
    # the model's domains.
    choices = [(entry.direction_label(d) if d in entry.files else d, d) for d in ("a2b", "b2a")]
    direction = gr.update(choices=choices, value=entry.directions[0], visible=entry.two_way)
    names = list(condition.get("label_names", []))
    label = gr.update(choices=names, value=names[0] if names else None, visible=kind == "label")
    caption = gr.update(visible=kind == "text")
    return _card_markdown(service, name), direction, label, caption, _training_size_update(service, name)


RESULT_LIFETIME_S = 3600


def remove_old_results(folder: Path, lifetime_s: float = RESULT_LIFETIME_S) -> None:
    """Delete the app's result PNGs older than `lifetime_s` (Gradio keeps its own copy for the page)."""
    cutoff = time.time() - lifetime_s
    for path in folder.glob("*.png"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:  # removed meanwhile, or not ours to remove
            pass


def build_app(service: TranslationService, examples: list[tuple[Path, str]] | None = None,
              output_dir: Path | None = None) -> gr.Blocks:
    """The app's page over `service`; `examples` are (image file, label) pairs shown under the input."""
    own_folder = output_dir is None  # only a folder the app made itself is cleaned up
    if own_folder:
        output_dir = Path(tempfile.mkdtemp(prefix="translate-app-"))
        atexit.register(shutil.rmtree, output_dir, ignore_errors=True)
    output_dir = Path(output_dir)
    names = list(service.models)
    first = names[0] if names else None

    def on_model(name):
        try:
            return _controls(service, name)
        except UsageError as e:
            raise gr.Error(str(e), print_exception=False) from None

    def on_rescan(name):
        try:
            names_now = service.rescan()
            keep = name if name in names_now else (names_now[0] if names_now else None)
            return (gr.update(choices=names_now, value=keep), *_controls(service, keep))
        except UsageError as e:  # the models folder removed meanwhile, say
            raise gr.Error(str(e), print_exception=False) from None

    def on_translate(name, direction, label, caption, upload, at_training_size=False):
        # Inputs arrive unprocessed (preprocess=False below): gr.Image would open the upload with PIL
        # before the app could refuse a non-image with a message. Gradio has already checked that the
        # file is one of its own uploads.
        try:
            if not name:
                raise UsageError("choose a model first")
            image, notice = read_upload(uploaded_path(upload), service.max_pixels)
            entry = service.model(name)
            kind = entry.condition.get("kind", "none")
            condition = label if kind == "label" else caption if kind == "text" else None
            direction = direction or "a2b"
            painted_at = service.painting_size(name, image.shape, direction) if at_training_size else None
            out = service.translate(name, image, direction, condition, at_training_size=bool(at_training_size))
        except UsageError as e:
            raise gr.Error(str(e), print_exception=False) from None
        from PIL import Image

        output_dir.mkdir(parents=True, exist_ok=True)
        if own_folder:
            remove_old_results(output_dir)
        stem = Path(str(name)).name or "model"
        path = Path(tempfile.mkstemp(prefix=f"{stem}-", suffix=".png", dir=output_dir)[1])
        Image.fromarray(out).save(path)
        # The name is a path in the models folder, which whoever drops a file there chooses: shown as text,
        # as the card is (in a code span, a backtick in it ended the span and Markdown or HTML after it ran).
        first = f"{out.shape[1]}\u00d7{out.shape[0]} pixels with {_plain(name)}"
        if painted_at is not None:
            first += f", painted at {painted_at[0]}\u00d7{painted_at[1]} and scaled up"
        sentences = [first + "."] + ([notice] if notice else [])
        unknown = entry.unknown_words(caption or "") if kind == "text" else []
        if unknown:
            sentences.append(f"The model never saw {', '.join(_plain(w) for w in unknown)} in its training "
                             "captions and reads them as unknown words.")
        message = " ".join(sentences)
        return str(path), str(path), message

    # Results and uploads older than an hour are deleted (checked hourly), so a long-running app does
    # not fill the disk.
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(RESULT_LIFETIME_S, RESULT_LIFETIME_S)) as demo:
        gr.Markdown(f"## {TITLE}\nPick a model, upload a picture (or click an example), press **Translate**.")
        with gr.Row():
            # Custom values are let through to the service, which refuses any name its scan did not list
            # (so a model added after start works once rescanned, and nothing outside the folder loads).
            model = gr.Dropdown(choices=names, value=first, label="Model", elem_id="model", scale=4,
                                allow_custom_value=True)
            rescan = gr.Button("Rescan", size="sm", scale=1, elem_id="rescan")
        card_text, direction_update, label_update, caption_update, size_update = _controls(service, first)
        card = gr.Markdown(card_text, elem_id="card", latex_delimiters=[])  # card text is never maths
        with gr.Row():
            direction = gr.Radio(label="Direction", elem_id="direction",
                                 **{k: v for k, v in direction_update.items() if k != "__type__"})
            label = gr.Dropdown(label="Label", elem_id="label", allow_custom_value=True,
                                **{k: v for k, v in label_update.items() if k != "__type__"})
            caption = gr.Textbox(label="Caption", placeholder="e.g. a quiet village at dusk", elem_id="caption",
                                 **{k: v for k, v in caption_update.items() if k != "__type__"})
        with gr.Row():
            upload = gr.Image(type="filepath", label="Input", sources=["upload", "clipboard"],
                                 elem_id="input-image", height=360)
            result = gr.Image(type="filepath", format="png", label="Translation", interactive=False,
                              elem_id="output-image", height=360, buttons=["download", "fullscreen"])
        at_size = gr.Checkbox(elem_id="training-size",
                              **{k: v for k, v in size_update.items() if k != "__type__"})
        run = gr.Button("Translate", variant="primary", elem_id="translate-button")
        # One above the other: side by side in a row, a phone's width squeezed the notice to a letter
        # per line.
        notice = gr.Markdown(elem_id="notice", latex_delimiters=[])
        download = gr.File(label="Download PNG", elem_id="download", interactive=False)
        if examples:
            gr.Examples(examples=[[str(p)] for p, _ in examples], inputs=[upload], examples_per_page=12,
                        label="Examples (synthetic landscapes: photos, paintings, edge maps)")
        model.change(on_model, [model], [card, direction, label, caption, at_size], api_visibility="private")
        rescan.click(on_rescan, [model], [model, card, direction, label, caption, at_size], api_visibility="private")
        run.click(on_translate, [model, direction, label, caption, upload, at_size], [result, download, notice],
                  api_name="translate", preprocess=False)
    return demo


def launch(models: str | os.PathLike = "checkpoints", *, host: str = "127.0.0.1", port: int = 7860,
           share: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS, cache_size: int = DEFAULT_CACHE_SIZE,
           examples_dir: str | os.PathLike | None = None, device: str = "cpu", block: bool = True, log=print):
    """Start the app; returns (demo, local URL). With block=False it serves from a thread (tests)."""
    service = TranslationService(Path(models), max_pixels=max_pixels, cache_size=cache_size, device=device, log=log)
    folder = Path(examples_dir) if examples_dir else default_cache_dir()
    examples = ensure_examples(folder)
    demo = build_app(service, examples)
    demo.queue(default_concurrency_limit=1, max_size=32)  # one translation at a time: memory stays bounded
    _, url, _ = demo.launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=not block, quiet=not block,
        show_error=True, ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False,
        # The models folder is never served as files, whatever a request asks for.
        # Of the examples folder, only the example pictures themselves (--examples may name any folder).
        blocked_paths=[str(Path(models).resolve())], allowed_paths=[str(p.resolve()) for p, _ in examples],
        max_file_size=MAX_UPLOAD_BYTES,
        footer_links=["api"],
    )
    return demo, url


def main(argv=None) -> int:
    from translate.cli.app import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
