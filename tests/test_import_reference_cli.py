"""translate-export --from-reference and translate-data download-model: published .pth generators in."""

from __future__ import annotations

import io
import json
import os

import pytest
import torch

from _data_helpers import FileServer
from test_reference_import import ReferenceResnetGenerator, ReferenceUnetGenerator, randomize_
from translate.cli.data import main as data_main
from translate.cli.export import main as export_main
from translate.data.registry import OFFICIAL_HOST, lookup_pretrained
from translate.io.export import file_sha256
from translate.io.generator_file import load_generator, read_metadata


def reference_pth(path, kind="resnet", seed=1):
    """A .pth in the reference implementation's key layout (model.N...), and the network that made it."""
    if kind == "resnet":
        net = randomize_(ReferenceResnetGenerator(3, 3, 4, "instance", 9), seed=seed).eval()
    else:
        net = randomize_(ReferenceUnetGenerator(3, 3, 8, 2, "batch"), seed=seed).eval()
    torch.save(net.state_dict(), path)
    return path, net


def test_import_cli_writes_a_safetensors_file_with_the_reference_outputs(tmp_path, capsys):
    pth, reference = reference_pth(tmp_path / "latest_net_G.pth")
    out = tmp_path / "vangogh.safetensors"
    rc = export_main(["--from-reference", str(pth), "--netG", "resnet_9blocks", "--norm", "instance",
                      "--out", str(out), "--source", "photo", "--target", "vangogh", "--json"])
    assert rc == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["out"] == str(out) and payload["generator"]["name"] == "resnet_9blocks"
    meta = read_metadata(out)
    origin = meta["card"]["origin"]
    assert origin["kind"] == "reference-pth" and origin["file"] == "latest_net_G.pth"
    assert origin["sha256"] == file_sha256(pth)
    assert (meta["card"]["source"], meta["card"]["target"]) == ("photo", "vangogh")
    x = torch.rand(1, 3, 40, 36) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(load_generator(out)(x), reference(x), atol=1e-5, rtol=0)


def test_import_cli_into_a_folder_names_the_file_after_the_pth(tmp_path):
    pth, _ = reference_pth(tmp_path / "facades_label2photo.pth", kind="unet")
    (tmp_path / "models").mkdir()
    assert export_main(["--from-reference", str(pth), "--netG", "unet_256", "--out", str(tmp_path / "models")]) == 0
    meta = read_metadata(tmp_path / "models" / "facades_label2photo.safetensors")
    assert meta["generator"]["norm"] == "batch" and meta["generator"]["dropout"] is True


def test_import_cli_never_replaces_a_file_unasked(tmp_path, capsys):
    pth, _ = reference_pth(tmp_path / "latest_net_G.pth")
    out = tmp_path / "mine.safetensors"
    out.write_bytes(b"a model of the user's")
    argv = ["--from-reference", str(pth), "--netG", "resnet_9blocks", "--out", str(out)]
    assert export_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "--force" in err
    assert out.read_bytes() == b"a model of the user's"
    assert export_main(argv + ["--force"]) == 0
    assert read_metadata(out)["card"]["origin"]["sha256"] == file_sha256(pth)


class Payload:
    """Unpickling this runs code: exactly what weights-only loading must refuse."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_import_cli_refuses_a_pickle_that_needs_code_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"model.1.weight": torch.zeros(1), "payload": Payload()}, tmp_path / "evil.pth")
    rc = export_main(["--from-reference", "evil.pth", "--netG", "resnet_9blocks", "--out", "evil.safetensors"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith("translate-export: error:") and "needs code to load" in err
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "evil.safetensors").exists()


def test_import_cli_says_which_architecture_the_file_holds(tmp_path, capsys):
    pth, _ = reference_pth(tmp_path / "g.pth")
    rc = export_main(["--from-reference", str(pth), "--netG", "resnet_6blocks", "--out", str(tmp_path / "g.safetensors")])
    err = capsys.readouterr().err
    assert rc == 2 and "pass --netG resnet_9blocks" in err


@pytest.fixture
def model_server():
    with FileServer() as server:
        yield server


def test_download_model_fetches_atomically_and_imports_beside_the_pth(tmp_path, capsys, model_server):
    buffer = io.BytesIO()
    _, reference = reference_pth(buffer)
    published = lookup_pretrained("style_vangogh")
    path = published.url[len(OFFICIAL_HOST):]
    model_server.files[path] = buffer.getvalue()
    model_server.cut_after[path] = 1000  # the first transfer breaks off: the next run resumes it
    root = tmp_path / "pretrained"
    argv = ["download-model", "style_vangogh", "--root", str(root), "--mirror", model_server.url, "--json"]
    assert data_main(argv) == 2
    assert "broke off" in capsys.readouterr().err
    part = root / "cyclegan" / "style_vangogh.pth.part"
    assert part.is_file() and not (root / "cyclegan" / "style_vangogh.pth").exists()

    assert data_main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["downloaded"] is True and not part.exists()
    assert model_server.requests[-1] == (path, "bytes=1000-")
    safetensors = root / "cyclegan" / "style_vangogh.safetensors"
    assert payload["safetensors"] == str(safetensors)
    card = read_metadata(safetensors)["card"]
    assert (card["source"], card["target"], card["model"]) == ("photo", "vangogh", "cyclegan")
    assert card["origin"]["url"] == model_server.url + path
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(load_generator(safetensors)(x), reference(x), atol=1e-5, rtol=0)


def test_download_model_removes_a_file_that_is_not_a_generator(tmp_path, capsys, model_server):
    published = lookup_pretrained("pix2pix/facades_label2photo")
    model_server.files[published.url[len(OFFICIAL_HOST):]] = b"<html>moved</html>"
    rc = data_main(["download-model", "pix2pix/facades_label2photo", "--root", str(tmp_path), "--mirror",
                    model_server.url])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "the file was removed" in err
    assert list((tmp_path / "pix2pix").iterdir()) == []


def test_download_model_keeps_a_file_it_found_there_that_does_not_import(tmp_path, capsys, model_server):
    folder = tmp_path / "cyclegan"
    folder.mkdir()
    pth = folder / "style_vangogh.pth"
    torch.save({"model.0.weight": torch.zeros(3, 3)}, pth)  # the user's own file, put there by hand
    mine = pth.read_bytes()
    rc = data_main(["download-model", "style_vangogh", "--root", str(tmp_path), "--mirror", model_server.url])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "was already there (not downloaded now)" in err and "move it away" in err and "removed" not in err
    assert model_server.requests == [] and pth.read_bytes() == mine


def test_download_model_unknown_name_suggests_one(tmp_path, capsys):
    assert data_main(["download-model", "style_vangog", "--root", str(tmp_path)]) == 2
    assert "did you mean style_vangogh" in capsys.readouterr().err


def test_a_published_b2a_model_is_evaluated_in_its_direction(tmp_path, capsys, model_server):
    # pix2pix's facades_label2photo translates facades' B (labels) into A (photos): its card says so,
    # and translate-eval feeds it labels and scores against photos.
    from PIL import Image

    from translate.cli.eval import main as eval_main

    buffer = io.BytesIO()
    reference_pth(buffer, kind="unet")
    published = lookup_pretrained("pix2pix/facades_label2photo")
    model_server.files[published.url[len(OFFICIAL_HOST):]] = buffer.getvalue()
    assert data_main(["download-model", "pix2pix/facades_label2photo", "--root", str(tmp_path / "models"),
                      "--mirror", model_server.url]) == 0
    model = tmp_path / "models" / "pix2pix" / "facades_label2photo.safetensors"
    card = read_metadata(model)["card"]
    assert (card["translates"], card["source"], card["target"]) == ("b2a", "label", "photo")

    g = torch.Generator().manual_seed(0)
    (tmp_path / "facades" / "test").mkdir(parents=True)
    photos, labels = torch.rand(2, 3, 256, 256, generator=g), torch.rand(2, 3, 256, 256, generator=g).round()
    for i in range(2):
        side_by_side = torch.cat([photos[i], labels[i]], dim=-1)  # A (photo) | B (label)
        Image.fromarray((side_by_side * 255).round().byte().permute(1, 2, 0).numpy()).save(tmp_path / "facades" / "test" / f"{i}.png")
    capsys.readouterr()
    assert eval_main(["--model", str(model), "--data", str(tmp_path / "facades"), "--split", "test", "--json",
                      "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["direction"] == "b2a"
    generator = load_generator(model)
    photos, labels = (photos * 255).round() / 255, (labels * 255).round() / 255  # as saved
    with torch.no_grad():
        painted = (generator(labels * 2 - 1) + 1) / 2
    assert result["model"]["l1"] == pytest.approx((painted - photos).abs().mean().item(), rel=1e-3)


def test_import_cli_names_a_web_page_and_a_plain_pickle_in_one_line(tmp_path, capsys, monkeypatch):
    # A web page saved in place of the .pth (curl without -L) was called "needs code to load"; a plain
    # pickle (not torch's zip) brought two lines of torch warnings before the error.
    import pickle

    monkeypatch.chdir(tmp_path)
    (tmp_path / "page.pth").write_text("<html><body>Moved</body></html>")
    assert export_main(["--from-reference", "page.pth", "--netG", "resnet_9blocks", "--out", "p.safetensors"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "page.pth is not a PyTorch .pth file (it starts with b'<htm'" in err
    # Bytes that are not HTML either: torch failed elsewhere than the unpickler (struct.error, a bare
    # number as the message: 'is not a readable PyTorch .pth file (174812789)')
    (tmp_path / "junk.pth").write_bytes(b"junk" * 10)
    assert export_main(["--from-reference", "junk.pth", "--netG", "resnet_9blocks", "--out", "j.safetensors"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "junk.pth is not a PyTorch .pth file (it starts with b'junk'" in err
    with open(tmp_path / "raw.pth", "wb") as handle:
        pickle.dump({"model.1.weight": Payload()}, handle, protocol=4)
    assert export_main(["--from-reference", "raw.pth", "--netG", "resnet_9blocks", "--out", "r.safetensors"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs code to load" in err, err
    assert not (tmp_path / "pwned").exists()


def test_import_cli_refuses_a_generator_for_other_than_rgb_images(tmp_path, capsys):
    # A reference model trained with --input_nc 1 imported fine, then every translation was a traceback.
    torch.save(ReferenceResnetGenerator(1, 1, 4, "instance", 9).state_dict(), tmp_path / "gray.pth")
    rc = export_main(["--from-reference", str(tmp_path / "gray.pth"), "--netG", "resnet_9blocks",
                      "--out", str(tmp_path / "gray.safetensors")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "translates 1-channel images into 1-channel ones" in err and not (tmp_path / "gray.safetensors").exists()
