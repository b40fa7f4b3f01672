"""The Gradio app, driven twice: through gradio_client (its API) and in a real browser (Playwright +
Debian's chromium). It runs in this process on a free 127.0.0.1 port, with every outgoing connection
that is not to this machine recorded and refused."""

from __future__ import annotations

import os
import shutil
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from _app_helpers import free_port, tiny_generator_file
from translate.io.generator_file import ConditionSpec

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MAX_PIXELS = 96 * 96


def cyclegan_card(role, translates, source, target):
    return {"model": "cyclegan", "role": role, "translates": translates, "source": source, "target": target,
            "run": "two_way", "steps": 3, "dataset": "synth-photo2vangogh"}


class OutsideConnections:
    """Replaces socket.connect for the app's lifetime: connections to anything but loopback are recorded
    and refused, so a test can tell that nothing phoned home."""

    def __init__(self):
        self.attempts: list = []
        self._connect = socket.socket.connect
        self._connect_ex = socket.socket.connect_ex

    def _allowed(self, address) -> bool:
        if isinstance(address, tuple):
            return address[0] in ("127.0.0.1", "::1", "localhost")
        return True  # Unix sockets stay on this machine

    def __enter__(self):
        guard = self

        def connect(sock, address):
            if not guard._allowed(address):
                guard.attempts.append(address)
                raise ConnectionRefusedError(f"test: no outside connections ({address})")
            return guard._connect(sock, address)

        def connect_ex(sock, address):
            if not guard._allowed(address):
                guard.attempts.append(address)
                return 111
            return guard._connect_ex(sock, address)

        socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
        return self

    def __exit__(self, *exc):
        socket.socket.connect, socket.socket.connect_ex = self._connect, self._connect_ex


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from apps.translate_app import EXAMPLE_KINDS, launch

    root = tmp_path_factory.mktemp("app")
    models = root / "checkpoints"
    tiny_generator_file(models / "two_way" / "G_A.safetensors", card=cyclegan_card("G_A", "a2b", "photo", "vangogh"), seed=1)
    tiny_generator_file(models / "two_way" / "G_B.safetensors", card=cyclegan_card("G_B", "b2a", "vangogh", "photo"), seed=2)
    tiny_generator_file(models / "edges" / "G.safetensors", seed=3, card={"model": "pix2pix", "role": "G", "source": "edges",
                                                                         "target": "landscape", "translates": "a2b"})
    labels = ConditionSpec("label", label_names=["dawn", "noon", "dusk", "night"], encoder={"num_labels": 4})
    tiny_generator_file(models / "daytime" / "G.safetensors", condition=labels, seed=4)
    tiny_generator_file(models / "unet" / "G.safetensors", name="unet_128", norm="instance", seed=5,
                        card={**cyclegan_card("G_A", "a2b", "photo", "vangogh"), "size": 32})
    # A card that tries to put HTML and Markdown into the page (any file dropped into the folder can);
    # listed first, so the browser test opens the page on it.
    tiny_generator_file(models / "a_card" / "G.safetensors", seed=6, card={
        "model": "pix2pix", "role": "G", "translates": "a2b", "target": "**bold** [x](https://example.com/)",
        "source": '<img src="https://example.com/pixel.png">'})
    examples = root / "examples"  # already "rendered": the test does not wait for the synthetic renderer
    examples.mkdir()
    for kind in EXAMPLE_KINDS:
        for i in range(2):
            Image.fromarray(np.full((64, 64, 3), 40 * i + 60, np.uint8)).save(examples / f"{kind}_{i}.png")
    with OutsideConnections() as guard:
        demo, url = launch(models, port=free_port(), block=False, max_pixels=MAX_PIXELS, examples_dir=examples,
                           log=lambda *a: None)
        try:
            yield {"url": url, "demo": demo, "models": models, "root": root, "guard": guard}
        finally:
            demo.close()
    assert guard.attempts == [], f"the app tried to reach {guard.attempts}"


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app["url"], verbose=False)


def picture(path, width, height, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
    Image.fromarray(coarse).resize((width, height), Image.BILINEAR).save(path)
    return path


def translate(client, path, model="edges", direction="a2b", label=None, caption="", *more):
    from gradio_client import handle_file

    image, download, notice = client.predict(model, direction, label, caption, handle_file(str(path)), *more,
                                             api_name="/translate")
    return np.asarray(Image.open(image).convert("RGB")), download, notice


def test_a_unet_paints_at_its_training_size_when_asked_and_says_so(app, client, tmp_path):
    from apps.translate_app import _training_size_update
    from translate.serving import TranslationService

    service = TranslationService(app["models"])
    box = _training_size_update(service, "unet")
    assert box["visible"] and box["value"] and "32 px" in box["label"]  # ticked for a U-Net with a size
    assert _training_size_update(service, "edges")["visible"] is False  # no size on its card
    source = picture(tmp_path / "in.png", 80, 48)
    painted, _, notice = translate(client, source, "unet", "a2b", None, "", True)
    plain, _, plain_notice = translate(client, source, "unet", "a2b", None, "", False)
    assert painted.shape == plain.shape == (48, 80, 3)
    assert "painted at 53\u00d732 and scaled up" in notice and "painted at" not in plain_notice
    expected = service.translate("unet", np.asarray(Image.open(source).convert("RGB")), at_training_size=True)
    assert np.abs(painted.astype(int) - expected.astype(int)).max() <= 1 and not np.array_equal(painted, plain)


def test_app_listens_on_loopback_without_share_link_or_analytics(app):
    demo = app["demo"]
    assert app["url"].startswith("http://127.0.0.1:")
    assert demo.share_url is None and demo.analytics_enabled is False
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_client_translates_an_image_at_its_own_size(app, client, tmp_path):
    source = picture(tmp_path / "in.png", 72, 56)
    out, download, notice = translate(client, source)
    original = np.asarray(Image.open(source).convert("RGB"))
    assert out.shape == original.shape
    assert np.abs(out.astype(int) - original.astype(int)).mean() > 5  # translated, not echoed
    assert download.endswith(".png") and Image.open(download).format == "PNG"
    assert "72\u00d756" in notice


def test_client_direction_switch_uses_the_other_generator(client, tmp_path):
    source = picture(tmp_path / "in.png", 64, 48, seed=1)
    there, _, _ = translate(client, source, model="two_way", direction="a2b")
    back, _, _ = translate(client, source, model="two_way", direction="b2a")
    assert not np.array_equal(there, back)


def test_client_label_reaches_a_conditioned_model(client, tmp_path):
    source = picture(tmp_path / "in.png", 48, 48, seed=2)
    dawn, _, _ = translate(client, source, model="daytime", label="dawn")
    night, _, _ = translate(client, source, model="daytime", label="night")
    assert not np.array_equal(dawn, night)


def test_large_uploads_are_downscaled_with_a_notice(client, tmp_path):
    out, _, notice = translate(client, picture(tmp_path / "big.png", 300, 150, seed=3))
    assert out.shape[0] * out.shape[1] <= MAX_PIXELS and "downscaled from 300\u00d7150" in notice
    assert ".." not in notice and notice.endswith(".")  # sentences, each ended once


def test_non_image_uploads_are_refused_with_a_message(client, tmp_path):
    from gradio_client.exceptions import AppError

    fake = tmp_path / "notes.png"
    fake.write_text("this is not a picture")
    with pytest.raises(AppError, match="notes.png is not an image"):
        translate(client, fake)


def test_models_outside_the_list_cannot_be_loaded(client, tmp_path):
    source = picture(tmp_path / "in.png", 32, 32)
    with pytest.raises(Exception) as refused:
        translate(client, source, model="../two_way")
    assert "no model named" in str(refused.value)


def _raw_api_call(url: str, data: list) -> str:
    """The /translate endpoint called over plain HTTP, as any client could; returns the event stream."""
    import json

    base = url.rstrip("/") + "/gradio_api/call/translate"
    request = urllib.request.Request(base, data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        event = json.loads(answer.read())["event_id"]
    with urllib.request.urlopen(f"{base}/{event}", timeout=120) as answer:
        return answer.read().decode()


def test_the_api_reads_no_file_but_uploads(app, tmp_path):
    # Without Gradio's file marker a payload is a plain dict, which the event (preprocess=False) would
    # hand over as is: a path to any image on the server must not be translated and sent back.
    secret = picture(tmp_path / "private.png", 40, 40, seed=5)
    stream = _raw_api_call(app["url"], ["edges", "a2b", None, "", {"path": str(secret)}, False])
    assert "event: error" in stream and "uploaded images only" in stream and "private" not in stream


def test_card_text_is_shown_as_text_not_as_html_or_markdown(app):
    from apps.translate_app import _card_markdown
    from translate.serving import TranslationService

    card = _card_markdown(TranslationService(app["models"]), "a_card")
    assert "<img" not in card and "&lt;img" in card
    from apps.translate_app import _plain

    assert _plain("x\n\n# heading\n\n1. list") == "x # heading 1. list"  # one line: no block can start
    assert "\\*\\*bold\\*\\*" in card and "\\[x\\](https" in card


def test_result_files_older_than_their_lifetime_are_removed(tmp_path):
    from apps.translate_app import remove_old_results

    old, new = tmp_path / "old.png", tmp_path / "new.png"
    old.write_bytes(b"png")
    new.write_bytes(b"png")
    os.utime(old, (1, 1))
    remove_old_results(tmp_path, lifetime_s=60)
    assert not old.exists() and new.exists()


def test_model_files_are_never_served(app):
    target = app["models"] / "edges" / "G.safetensors"
    for path in (f"gradio_api/file={target}", f"file={target}"):
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(app["url"] + path, timeout=10)
        assert answer.value.code in (403, 404)


def test_cli_refuses_a_missing_models_folder(tmp_path, capsys):
    from translate.cli.app import main

    assert main(["--models", str(tmp_path / "nowhere")]) == 2
    assert "models folder" in capsys.readouterr().err
    model = tiny_generator_file(tmp_path / "run" / "G.safetensors")
    assert main(["--models", str(model)]) == 2  # a model file, not a folder of them
    err = capsys.readouterr().err
    assert f"is a file; pass a folder of models, e.g. the one that holds it: --models {model.parent}" in err


def test_cli_refuses_a_port_in_use_a_foreign_host_or_an_unknown_device_in_one_line(tmp_path, capsys):
    from translate.cli.app import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--models", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {port}" in err and "--port" in err
    assert main(["--models", str(tmp_path), "--host", "192.0.2.1"]) == 2  # TEST-NET-1: no machine's own
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--host" in err
    assert main(["--models", str(tmp_path), "--port", str(port), "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown device 'gpu'" in err


def _browser_or_explain():
    """Playwright's sync API, or a skip (locally) / failure (CI) that says what to install."""
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        missing.append("the playwright package (pip install playwright; it is in the dev extra)")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


@pytest.mark.slow
def test_browser_uploads_an_image_translates_it_and_shows_the_result(app, tmp_path):
    sync_playwright = _browser_or_explain()
    source = picture(tmp_path / "landscape.png", 80, 60, seed=4)
    base = app["url"].rstrip("/")
    outside = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: outside.append(r.url)
                    if not r.url.startswith((base, "data:", "blob:")) else None)
            page.goto(app["url"], wait_until="domcontentloaded")
            page.locator("#card").get_by_text("\u2192").first.wait_for(timeout=60_000)
            first_card = page.locator("#card").inner_text()  # the hostile card of a_card, shown as text
            card_images = page.locator("#card img").count()
            choose = page.locator("#model input")
            choose.click()
            page.get_by_role("option", name="edges").click()
            page.locator("#card").get_by_text("edges \u2192 landscape").wait_for(timeout=30_000)
            page.locator("#input-image input[type=file]").set_input_files(str(source))
            page.locator("#input-image img").wait_for(state="visible", timeout=30_000)
            page.locator("#translate-button").click()
            result = page.locator("#output-image img")
            result.wait_for(state="visible", timeout=60_000)
            page.wait_for_function("() => { const i = document.querySelector('#output-image img');"
                                   " return i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
            size = page.evaluate("() => { const i = document.querySelector('#output-image img');"
                                 " return [i.naturalWidth, i.naturalHeight]; }")
            notice = page.locator("#notice").inner_text()
            # An example, clicked: Gradio copies it into its upload folder, the only place the app reads.
            # The copy is a round trip to the server: Translate clicked before the input shows the example
            # translates the previous picture (the race CI met once), so wait for the input to change.
            before = page.evaluate("() => document.querySelector('#input-image img').src")
            page.locator(".gallery-item").first.click()
            page.wait_for_function("(b) => { const i = document.querySelector('#input-image img');"
                                   " return i && i.src !== b && i.complete && i.naturalWidth > 0; }",
                                   arg=before, timeout=60_000)
            page.locator("#translate-button").click()
            page.wait_for_function("() => document.querySelector('#notice').innerText.includes('64\u00d764')",
                                   timeout=60_000)
        finally:
            browser.close()
    assert '<img src="https://example.com/pixel.png">' in first_card and "**bold** [x](https://example.com/)" in first_card
    assert card_images == 0
    assert size == [80, 60]
    assert "80\u00d760" in notice
    assert outside == [], f"the page requested {outside[:5]}"


def test_rescan_of_a_models_folder_removed_meanwhile_is_a_message_in_the_page(tmp_path):
    # The handler let the service's UsageError through, a traceback in the server's log and a generic
    # error in the page.
    import shutil

    import gradio as gr

    from apps.translate_app import build_app
    from translate.serving import TranslationService

    models = tmp_path / "models"
    tiny_generator_file(models / "edges" / "G.safetensors", seed=3)
    demo = build_app(TranslationService(models), output_dir=tmp_path / "out")
    on_rescan = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_rescan")
    shutil.rmtree(models)
    with pytest.raises(gr.Error, match="models folder .* not found"):
        on_rescan("edges")


def test_a_model_name_is_shown_in_the_notice_as_text(tmp_path):
    # A folder name with a backtick closed the notice's code span, and the Markdown and HTML after it
    # (an image the page would fetch) were rendered.
    import uuid
    from pathlib import Path

    import gradio.utils
    from PIL import Image

    from apps.translate_app import build_app
    from translate.serving import TranslationService

    name = "run` ![x](pic.png) <img src=pic.png> `"
    tiny_generator_file(tmp_path / "models" / name / "G.safetensors", seed=3)
    demo = build_app(TranslationService(tmp_path / "models"), output_dir=tmp_path / "out")
    on_translate = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_translate")
    upload = Path(gradio.utils.get_upload_folder()) / uuid.uuid4().hex / "photo.png"
    upload.parent.mkdir(parents=True)
    try:
        Image.new("RGB", (8, 8)).save(upload)
        _, _, notice = on_translate(name, "a2b", None, "", {"path": str(upload)})
    finally:
        shutil.rmtree(upload.parent)
    assert "<img" not in notice and "&lt;img" in notice and "!\\[x\\](pic.png)" in notice and "\\`" in notice
