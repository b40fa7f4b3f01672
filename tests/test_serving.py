"""What the app stands on: the model catalogue, safe paths, the LRU of loaded models, upload checks."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from _app_helpers import tiny_generator_file
from translate.errors import UsageError
from translate.io.generator_file import ConditionSpec
from translate.serving import ModelCache, TranslationService, fit_within, inside, read_upload, scan_models


def card(role, translates, source, target, run="r"):
    return {"model": "cyclegan", "role": role, "translates": translates, "source": source, "target": target,
            "run": run, "steps": 10, "dataset": "synth-photo2vangogh"}


@pytest.fixture
def models(tmp_path):
    root = tmp_path / "checkpoints"
    tiny_generator_file(root / "cyclegan_run" / "G_A.safetensors", card=card("G_A", "a2b", "photo", "vangogh"), seed=1)
    tiny_generator_file(root / "cyclegan_run" / "G_B.safetensors", card=card("G_B", "b2a", "vangogh", "photo"), seed=2)
    tiny_generator_file(root / "pix2pix_run" / "G.safetensors", seed=3)
    tiny_generator_file(root / "pretrained" / "cyclegan" / "style_monet.safetensors", seed=4)
    labels = ConditionSpec("label", label_names=["dawn", "dusk"], encoder={"num_labels": 2})
    tiny_generator_file(root / "daytime" / "G.safetensors", condition=labels, seed=5)
    tiny_generator_file(root / ".hidden" / "G.safetensors", seed=6)
    (root / "pix2pix_run" / "notes.txt").write_text("not a model")
    return root


@pytest.mark.parametrize("card_json", ["null", '{"role": ["G_A"]}', '{"origin": "http://x"}'])
def test_scan_skips_a_file_whose_description_is_damaged_and_lists_the_rest(models, card_json):
    # A card field of the wrong type (a list as role, text as origin) stopped the app from starting.
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    source = models / "pix2pix_run" / "G.safetensors"
    with safe_open(str(source), framework="pt") as f:
        metadata = {**f.metadata(), "card": card_json}
    save_file(load_file(str(source)), str(models / "edited.safetensors"), metadata=metadata)
    skipped = []
    found = {m.name for m in scan_models(models, log=skipped.append)}
    assert "edited" not in found and "pix2pix_run" in found
    assert len(skipped) == 1 and "edited.safetensors" in skipped[0]


def test_a_run_folder_and_a_file_of_the_same_name_are_both_listed(models):
    tiny_generator_file(models / "pix2pix_run.safetensors", seed=7)
    tiny_generator_file(models / "cyclegan_run.safetensors", seed=8)
    found = {m.name: m for m in scan_models(models)}
    assert {"pix2pix_run", "pix2pix_run/G", "cyclegan_run", "cyclegan_run/G_A+cyclegan_run/G_B"} <= set(found)
    assert found["pix2pix_run"].files["a2b"].name == "pix2pix_run.safetensors"
    assert found["cyclegan_run/G_A+cyclegan_run/G_B"].two_way


def test_scan_names_models_by_folder_and_pairs_a_two_way_run(models):
    found = {m.name: m for m in scan_models(models)}
    assert sorted(found) == ["cyclegan_run", "daytime", "pix2pix_run", "pretrained/cyclegan/style_monet"]
    two_way = found["cyclegan_run"]
    assert two_way.two_way and two_way.directions == ["a2b", "b2a"]
    assert two_way.direction_label("a2b") == "photo \u2192 vangogh" and two_way.direction_label("b2a") == "vangogh \u2192 photo"
    assert two_way.files["b2a"].name == "G_B.safetensors"
    assert not found["pix2pix_run"].two_way and found["daytime"].condition["label_names"] == ["dawn", "dusk"]
    text = "\n".join(two_way.describe())
    assert "and back: vangogh \u2192 photo" in text and "10 steps on synth-photo2vangogh" in text


def test_paths_that_leave_the_models_folder_are_refused(models, tmp_path):
    outside = tiny_generator_file(tmp_path / "elsewhere" / "G.safetensors", seed=7)
    (models / "escape").mkdir()
    os.symlink(outside, models / "escape" / "G.safetensors")
    os.symlink(tmp_path / "elsewhere", models / "linked_folder")
    assert "escape" not in {m.name for m in scan_models(models)}
    for bad in ("../elsewhere/G.safetensors", "escape/G.safetensors", str(outside), "linked_folder/G.safetensors"):
        with pytest.raises(UsageError, match="outside the models folder"):
            inside(models, bad)
    assert inside(models, "pix2pix_run/../pix2pix_run/G.safetensors") == (models / "pix2pix_run" / "G.safetensors").resolve()


def test_service_refuses_names_it_did_not_list(models):
    service = TranslationService(models)
    for name in ("../elsewhere", "pix2pix_run/G.safetensors", "nothing"):
        with pytest.raises(UsageError, match="no model named"):
            service.model(name)


def test_unknown_names_rescan_the_folder_at_most_every_few_seconds(models, monkeypatch):
    import translate.serving as serving

    clock = [1000.0]
    monkeypatch.setattr(serving.time, "monotonic", lambda: clock[0])
    scans = []
    real_scan = serving.scan_models
    monkeypatch.setattr(serving, "scan_models", lambda *a, **k: scans.append(1) or real_scan(*a, **k))
    service = TranslationService(models)
    for _ in range(5):  # a stream of made-up names: not one folder read each
        with pytest.raises(UsageError, match="no model named"):
            service.model("made-up")
    assert len(scans) == 1
    shutil.copytree(models / "pix2pix_run", models / "added_later")
    clock[0] += serving.UNKNOWN_NAME_RESCAN_S
    assert service.model("added_later").name == "added_later"  # a model added since is still found
    assert len(scans) == 2


def test_a_model_removed_after_the_scan_is_a_message_to_rescan(models):
    service = TranslationService(models)
    (models / "pix2pix_run" / "G.safetensors").unlink()
    image = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(UsageError, match="'pix2pix_run' are no longer in the models folder; press Rescan"):
        service.translate("pix2pix_run", image)


def test_a_model_damaged_after_the_scan_is_named_without_the_servers_paths(models):
    service = TranslationService(models)
    (models / "pix2pix_run" / "G.safetensors").write_bytes(b"overwritten")
    with pytest.raises(UsageError) as refused:
        service.translate("pix2pix_run", np.zeros((16, 16, 3), np.uint8))
    assert "G.safetensors is not a safetensors file" in str(refused.value)
    assert str(models) not in str(refused.value)


def test_a_label_may_be_given_by_its_index(models):
    # An API caller's natural choice: 1 for the second label (it was a TypeError inside the model).
    service = TranslationService(models)
    image = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    assert np.array_equal(service.translate("daytime", image, condition=1),
                          service.translate("daytime", image, condition="dusk"))
    with pytest.raises(UsageError, match="label index 2 is out of range; this model knows 2 labels"):
        service.translate("daytime", image, condition=2)


def test_cache_keeps_one_model_per_file_and_drops_the_least_recently_used(models):
    cache = ModelCache(capacity=2)
    a, b, c = (models / "pix2pix_run" / "G.safetensors", models / "daytime" / "G.safetensors",
               models / "pretrained" / "cyclegan" / "style_monet.safetensors")
    first = cache.get(a)
    assert cache.get(a) is first and cache.loads == 1
    cache.get(b)
    cache.get(a)  # a is now the most recently used
    cache.get(c)  # evicts b
    assert a in cache and c in cache and b not in cache and len(cache) == 2 and cache.loads == 3
    os.utime(a, (1, 1))  # the file changed on disk: loaded again
    assert cache.get(a) is not first and cache.loads == 4


def write_png(path, width, height, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def test_large_uploads_are_downscaled_with_a_notice(tmp_path):
    image, notice = read_upload(write_png(tmp_path / "big.png", 300, 200), max_pixels=100 * 100)
    assert image.shape[0] * image.shape[1] <= 100 * 100 and abs(image.shape[1] / image.shape[0] - 1.5) < 0.03
    assert notice.startswith("The image was downscaled from 300\u00d7200")
    small, none = read_upload(write_png(tmp_path / "small.png", 50, 40), max_pixels=100 * 100)
    assert small.shape == (40, 50, 3) and none is None


def test_a_rotated_phone_photo_is_downscaled_upright(tmp_path):
    # Stored 300x150 with EXIF orientation 6 (turn a quarter): a 150x300 portrait once upright.
    stored = Image.fromarray(np.random.default_rng(0).integers(0, 256, (150, 300, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "phone.jpg", exif=exif)
    image, notice = read_upload(tmp_path / "phone.jpg", max_pixels=100 * 100)
    assert image.shape[0] > image.shape[1] and abs(image.shape[0] / image.shape[1] - 2) < 0.05
    assert image.shape[0] * image.shape[1] <= 100 * 100
    assert notice.startswith("The image was downscaled from 150\u00d7300")


@pytest.mark.parametrize("content", [b"hello, I am text", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b""])
def test_uploads_that_are_not_images_are_refused_with_a_message(tmp_path, content):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="upload.png is not an image"):
        read_upload(path)


def test_a_cut_short_jpeg_or_a_too_large_image_is_refused_without_the_servers_path(tmp_path, monkeypatch):
    import translate.data.images as images

    whole = tmp_path / "photo.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(whole, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    with pytest.raises(UsageError) as info:
        read_upload(cut)
    assert str(info.value).startswith("cut.jpg is damaged or cut short") and str(tmp_path) not in str(info.value)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100 * 100)  # the toolkit's limit, below PIL's
    with pytest.raises(UsageError) as info:
        read_upload(whole)
    assert str(info.value).startswith("photo.jpg is too large to open safely") and str(tmp_path) not in str(info.value)
    assert "scale it down below 10,000 pixels" in str(info.value)  # (it said: upload a PNG, JPEG, ...)


@pytest.mark.parametrize("w,h,limit", [(1920, 1080, 1024 * 1024), (7, 5000, 999), (100, 100, 10_000), (3, 3, 4)])
def test_fit_within_keeps_the_aspect_and_the_limit(w, h, limit):
    fw, fh = fit_within(w, h, limit)
    assert fw * fh <= limit and fw >= 1 and fh >= 1
    if w * h <= limit:
        assert (fw, fh) == (w, h)


def test_service_translates_with_the_condition_a_model_needs(models):
    service = TranslationService(models, max_pixels=64 * 64)
    image = np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)
    with pytest.raises(UsageError, match="needs a condition"):
        service.translate("daytime", image)
    dawn, dusk = service.translate("daytime", image, condition="dawn"), service.translate("daytime", image, condition="dusk")
    assert dawn.shape == image.shape and not np.array_equal(dawn, dusk)
    with pytest.raises(UsageError, match="a2b or b2a, not 'sideways'"):
        service.translate("cyclegan_run", image, "sideways")
    there = service.translate("cyclegan_run", image, "a2b")
    back = service.translate("cyclegan_run", image, "b2a")
    assert not np.array_equal(there, back) and service.cache.loads == 3


def test_a_unet_paints_at_its_training_size_and_is_scaled_back_up(tmp_path):
    from translate.data.transforms import resize_image

    root = tmp_path / "checkpoints"
    tiny_generator_file(root / "unet" / "G.safetensors", name="unet_128", norm="instance", seed=1,
                        card={**card("G", "a2b", "photo", "vangogh"), "size": 32})
    tiny_generator_file(root / "resnet" / "G.safetensors", seed=2, card=card("G", "a2b", "photo", "vangogh"))
    service = TranslationService(root)
    unet, resnet = service.model("unet"), service.model("resnet")
    assert unet.training_size() == 32 and unet.paints_best_at_training_size
    assert resnet.training_size() is None and not resnet.paints_best_at_training_size
    image = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    assert service.painting_size("unet", image.shape) == (53, 32)  # the shorter side at 32, aspect kept
    assert service.painting_size("unet", image[:32, :40].shape) is None  # not larger: painted as it is
    assert service.painting_size("resnet", image.shape) is None  # no size on the card

    out = service.translate("unet", image, at_training_size=True)
    expected = resize_image(service.translate("unet", resize_image(image, 53, 32)), 80, 48)
    assert out.shape == image.shape and np.array_equal(out, expected)
    assert not np.array_equal(out, service.translate("unet", image))  # a different painting than at 48x80
    assert np.array_equal(service.translate("resnet", image, at_training_size=True), service.translate("resnet", image))


def test_a_caption_models_unknown_words_are_named(tmp_path):
    from translate.nets.conditions import Vocabulary

    vocabulary = Vocabulary.build(["a snowy village at night", "a green valley at noon"])
    spec = ConditionSpec("text", vocabulary=vocabulary.to_list(), encoder={"vocab_size": len(vocabulary)})
    root = tmp_path / "checkpoints"
    tiny_generator_file(root / "captions" / "G.safetensors", condition=spec)
    tiny_generator_file(root / "plain" / "G.safetensors")
    service = TranslationService(root)
    assert service.model("captions").unknown_words("A snowy hamlet at Night, a hamlet!") == ["hamlet"]
    assert service.model("captions").unknown_words("a green valley") == []
    assert service.model("plain").unknown_words("anything") == []


def test_translations_of_one_service_never_overlap(models, monkeypatch):
    # Tiled inference sets instance-norm statistics on the shared cached generator during a call, so
    # calls from several threads (a library user; the app queues them) must not interleave.
    import threading

    import translate.infer

    active, most = [0], [0]
    guard = threading.Lock()
    arrived = threading.Event()  # set when a second translation runs beside the first
    real = translate.infer.translate_image

    def counting(*args, **kwargs):
        with guard:
            active[0] += 1
            most[0] = max(most[0], active[0])
            if active[0] > 1:
                arrived.set()
        try:
            arrived.wait(0.5)  # without the lock another thread gets in here (and ends the wait at once)
            return real(*args, **kwargs)
        finally:
            with guard:
                active[0] -= 1

    monkeypatch.setattr(translate.infer, "translate_image", counting)
    service = TranslationService(models)
    image = np.zeros((16, 16, 3), np.uint8)
    threads = [threading.Thread(target=service.translate, args=("pix2pix_run", image)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1
