"""translate-infer never loses a file: inputs are never overwritten, outputs never overwrite each other,
and bad input (a file, a flag) is refused with one line before anything is written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _app_helpers import tiny_generator_file
from translate.cli.infer import main as infer_main


def write(path, width=24, height=20, seed=0, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, format=fmt)
    return path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("translate-infer: "), err
    return err[0]


@pytest.fixture
def model(tmp_path):
    return str(tiny_generator_file(tmp_path / "g.safetensors", name="resnet_2blocks", ngf=4))


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", ["file into its folder", "folder into itself", "dot"])
def test_an_output_folder_holding_the_inputs_is_refused_before_anything_is_written(tmp_path, model, capsys,
                                                                                  monkeypatch, case):
    folder = tmp_path / "single"
    write(folder / "photo.png")
    before = snapshot(folder)
    if case == "file into its folder":
        argv = ["--input", str(folder / "photo.png"), "--output", str(folder)]
    elif case == "folder into itself":
        argv = ["--input", str(folder), "--output", str(folder)]
    else:
        monkeypatch.chdir(folder)
        argv = ["--input", "photo.png", "--output", "."]
    assert infer_main(["--model", model, *argv]) == 2
    assert "--output" in one_line_error(capsys)
    assert snapshot(folder) == before  # no translation, no images/, no index.html


def test_an_output_that_would_land_on_another_input_is_refused(tmp_path, model, capsys):
    # in/sub/x.png is written to out/sub/x.png: with --output above the input folder, that is in/x.png
    # when the input folder is out/sub.
    inputs = tmp_path / "out" / "sub"
    write(inputs / "x.png", seed=1)
    write(inputs / "sub" / "x.png", seed=2)
    before = snapshot(tmp_path / "out")
    assert infer_main(["--model", model, "--input", str(inputs), "--output", str(tmp_path / "out")]) == 2
    assert "would overwrite the input" in one_line_error(capsys)
    assert snapshot(tmp_path / "out") == before


def test_an_output_folder_inside_the_input_folder_is_not_read_again(tmp_path, model, capsys):
    nest = tmp_path / "nest"
    write(nest / "a.png", seed=1)
    write(nest / "deeper" / "b.png", seed=2)
    out = nest / "out"
    for _ in range(2):
        assert infer_main(["--model", model, "--input", str(nest), "--output", str(out)]) == 0
        assert "wrote 2 image(s)" in capsys.readouterr().err
    assert sorted(snapshot(out)) == [".translate-infer.json", "a.png", "deeper/b.png", "images/input_a.png",
                                     "images/input_deeper_b.png", "index.html"]
    # Nor is it read by a run into another folder: its translations were translated again (4 images).
    assert infer_main(["--model", model, "--input", str(nest), "--output", str(nest / "out2")]) == 0
    assert "wrote 2 image(s)" in capsys.readouterr().err
    assert sorted(p.relative_to(nest).as_posix() for p in (nest / "out2").rglob("*.png")) == [
        "out2/a.png", "out2/deeper/b.png", "out2/images/input_a.png", "out2/images/input_deeper_b.png"]
    # A file of the user's put into a results folder is still an input; the folder itself can be one.
    write(out / "mine.png", seed=3)
    assert infer_main(["--model", model, "--input", str(nest), "--output", str(nest / "out2")]) == 0
    assert "wrote 3 image(s)" in capsys.readouterr().err
    assert infer_main(["--model", model, "--input", str(out), "--output", str(tmp_path / "back")]) == 0
    assert "wrote 3 image(s)" in capsys.readouterr().err


def test_an_output_folder_that_holds_photos_of_its_own_does_not_hide_them(tmp_path, model, capsys):
    # --output naming a subfolder of the input folder left the photos already in it out, without a word.
    photos = tmp_path / "photos"
    write(photos / "a.png", seed=1)
    write(photos / "sub" / "b.png", seed=2)
    kept = snapshot(photos)
    for _ in range(2):
        assert infer_main(["--model", model, "--input", str(photos), "--output", str(photos / "sub")]) == 0
        assert "wrote 2 image(s)" in capsys.readouterr().err
    assert {k: v for k, v in snapshot(photos).items() if k in kept} == kept
    assert {"sub/a.png", "sub/sub/b.png"} <= set(snapshot(photos))


def test_inputs_that_differ_only_in_extension_get_outputs_and_index_rows_of_their_own(tmp_path, model, capsys):
    folder = tmp_path / "in"
    write(folder / "photo.png", seed=1)
    write(folder / "photo.jpg", seed=2, fmt="JPEG")
    out = tmp_path / "out"
    assert infer_main(["--model", model, "--input", str(folder), "--output", str(out)]) == 0
    assert "wrote 2 image(s)" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.png")) == ["photo.jpg.png", "photo.png"]
    alone = tmp_path / "alone"
    assert infer_main(["--model", model, "--input", str(folder / "photo.png"), "--output", str(alone)]) == 0
    assert snapshot(alone)["photo.png"] == snapshot(out)["photo.png"]  # photo.png's translation, not photo.jpg's
    sources = re.findall(r'src="([^"]+)"', (out / "index.html").read_text())
    assert len(sources) == 4 and len(set(sources)) == 4
    assert all((out / src).is_file() for src in sources)


def test_two_outputs_that_would_be_one_file_are_refused_with_the_reason(tmp_path):
    from translate.errors import UsageError
    from translate.infer import output_names

    with pytest.raises(UsageError, match=r"^A.png and a.png differ only in case, and on a case-blind disk .*rename one"):
        output_names([Path("A.png"), Path("a.png")])
    with pytest.raises(UsageError, match=r"^x.jpg.png and x.jpg would both be written to x.jpg.png; rename one"):
        output_names([Path("x.jpg.png"), Path("x.jpg"), Path("x.png")])
    with pytest.raises(UsageError, match=r"^x.JPG.png and x.jpg would be written to x.JPG.png and x.jpg.png, which "
                                         r"differ only in case"):
        output_names([Path("x.JPG.png"), Path("x.jpg"), Path("x.png")])
    assert output_names([Path("x.jpg"), Path("x.png")]) == [Path("x.jpg.png"), Path("x.png")]


def test_hidden_files_and_macos_resource_forks_are_left_out_as_in_training(tmp_path, model, capsys):
    folder = tmp_path / "mac"
    write(folder / "rgb.png")
    (folder / "._rgb.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (folder / "__MACOSX").mkdir()
    (folder / "__MACOSX" / "._rgb.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    out = tmp_path / "out"
    assert infer_main(["--model", model, "--input", str(folder), "--output", str(out)]) == 0
    assert "wrote 1 image(s)" in capsys.readouterr().err
    assert sorted(snapshot(out)) == [".translate-infer.json", "images/input_rgb.png", "index.html", "rgb.png"]


def test_a_size_beyond_the_pixel_limit_is_refused_before_resizing(tmp_path, model, capsys, monkeypatch):
    # The real limit is ~89 megapixels; a smaller one keeps the test from allocating anything large.
    monkeypatch.setattr("translate.data.images.MAX_IMAGE_PIXELS", 10_000)
    image = write(tmp_path / "in.png", 40, 50)
    out = tmp_path / "out"
    assert infer_main(["--model", model, "--input", str(image), "--output", str(out), "--size", "200"]) == 2
    err = one_line_error(capsys)
    assert "--size 200" in err and "200x250" in err and "10,000" in err
    assert not out.exists()
    assert infer_main(["--model", model, "--input", str(image), "--output", str(out), "--size", "80"]) == 0
    assert Image.open(out / "in.png").size == (80, 100)


def test_a_bad_image_stops_the_run_before_anything_is_written_unless_skipped(tmp_path, model, capsys):
    folder = tmp_path / "in"
    for i, name in enumerate(["a.png", "b.png", "d.png"]):
        write(folder / name, seed=i)
    (folder / "c.png").write_bytes(write(tmp_path / "whole.png").read_bytes()[:60])  # truncated
    out = tmp_path / "out"
    assert infer_main(["--model", model, "--input", str(folder), "--output", str(out)]) == 2
    err = one_line_error(capsys)
    assert "c.png" in err and "--skip-bad-images" in err
    assert not out.exists()
    assert infer_main(["--model", model, "--input", str(folder), "--output", str(out), "--skip-bad-images"]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 bad image file(s)" in err and "c.png" in err
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png", "d.png"]
    assert (out / "index.html").is_file()


def test_files_of_the_users_in_the_output_folder_are_never_replaced(tmp_path, model, capsys):
    photos = tmp_path / "photos"
    for i, name in enumerate(["a.png", "b.png"]):
        write(photos / name, seed=i)
    kept = snapshot(photos)
    # Translate into a folder inside, then translate those back into the photos folder itself: the
    # second run would write photos/a.png over the user's photo.
    assert infer_main(["--model", model, "--input", str(photos), "--output", str(photos / "translated")]) == 0
    capsys.readouterr()
    assert infer_main(["--model", model, "--input", str(photos / "translated"), "--output", str(photos)]) == 2
    err = one_line_error(capsys)
    assert "a.png" in err and "not recorded as written by translate-infer" in err
    assert {k: v for k, v in snapshot(photos).items() if not k.startswith("translated/")} == kept
    # Its own earlier results a run may replace (make demo writes its results page again each time),
    # also in a folder written before the record existed; the page's copies are not read as inputs.
    assert infer_main(["--model", model, "--input", str(photos), "--output", str(photos / "translated")]) == 0
    assert "wrote 2 image(s)" in capsys.readouterr().err
    (photos / "translated" / ".translate-infer.json").unlink()
    assert infer_main(["--model", model, "--input", str(photos), "--output", str(photos / "translated")]) == 0
    out = tmp_path / "again"
    assert infer_main(["--model", model, "--input", str(photos / "translated"), "--output", str(out)]) == 0
    assert "wrote 2 image(s)" in capsys.readouterr().err  # a.png and b.png, not the page's copies
    # ... unless the copies folder itself is the input.
    assert infer_main(["--model", model, "--input", str(photos / "translated" / "images"), "--output",
                       str(tmp_path / "copies")]) == 0
    assert "wrote 2 image(s)" in capsys.readouterr().err


def test_an_output_folder_whose_images_is_a_file_is_refused_naming_it(tmp_path, model, capsys):
    write(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "images").write_text("the user's notes")
    assert infer_main(["--model", model, "--input", str(tmp_path / "in"), "--output", str(out)]) == 2
    err = one_line_error(capsys)
    assert f"cannot write to {out / 'images'}: File exists; pick another --output" in err
    assert (out / "images").read_text() == "the user's notes"


def test_the_results_page_links_names_with_url_characters(tmp_path, model):
    folder = tmp_path / "in"
    write(folder / "50% #1?.png")
    out = tmp_path / "out"
    assert infer_main(["--model", model, "--input", str(folder), "--output", str(out)]) == 0
    from urllib.parse import unquote

    sources = re.findall(r'src="([^"]+)"', (out / "index.html").read_text())
    assert sources and all("#" not in src and "?" not in src for src in sources)
    assert all((out / unquote(src)).is_file() for src in sources)


def test_the_results_page_links_a_name_that_is_not_utf8(tmp_path, model):
    # An old zip's or a Windows copy's name (Python holds its bytes as surrogates): index.html could not
    # be written, a UnicodeEncodeError traceback on every run.
    import os
    from urllib.parse import unquote

    folder = tmp_path / "in"
    write(folder / "ok.png")
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1, not UTF-8
    write(folder / name)
    out = tmp_path / "out"
    assert infer_main(["--model", model, "--input", str(folder), "--output", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 4 and "caf\ufffd.png" in page
    assert all((out / unquote(src, errors="surrogateescape")).is_file() for src in sources)
    assert infer_main(["--model", model, "--input", str(folder), "--output", str(out)]) == 0  # its own files again
