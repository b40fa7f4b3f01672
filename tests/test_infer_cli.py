"""translate-infer on exported and imported models: any size, tiles, conditions."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from _app_helpers import tiny_generator_file
from translate.cli.infer import main as infer_main
from translate.io.generator_file import ConditionSpec


def write(path, width, height, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def test_a_folder_is_translated_at_each_images_own_size_tiled_or_not(tmp_path):
    model = tiny_generator_file(tmp_path / "g.safetensors", ngf=4)
    write(tmp_path / "in" / "wide.png", 150, 70, 0)
    write(tmp_path / "in" / "sub" / "tall.png", 45, 130, 1)
    assert infer_main(["--model", str(model), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "whole"),
                       "--tile", "off"]) == 0
    assert infer_main(["--model", str(model), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "tiled"),
                       "--tile", "64", "--overlap", "16"]) == 0
    for name, size in (("wide.png", (150, 70)), ("sub/tall.png", (45, 130))):
        whole = Image.open(tmp_path / "whole" / name)
        tiled = Image.open(tmp_path / "tiled" / name)
        assert whole.size == tiled.size == size
    assert (tmp_path / "tiled" / "index.html").is_file()


def test_conditioned_model_takes_condition_and_refuses_unknown_labels(tmp_path, capsys):
    spec = ConditionSpec("label", label_names=["dawn", "night"], encoder={"num_labels": 2})
    model = tiny_generator_file(tmp_path / "c.safetensors", condition=spec, ngf=4)
    image = write(tmp_path / "in.png", 40, 36, 2)
    outs = []
    for label in ("dawn", "night"):
        assert infer_main(["--model", str(model), "--input", str(image), "--output", str(tmp_path / label),
                           "--condition", label, "--no-html"]) == 0
        outs.append(np.asarray(Image.open(tmp_path / label / "in.png")))
    assert not np.array_equal(*outs)
    assert infer_main(["--model", str(model), "--input", str(image), "--output", str(tmp_path / "x"),
                       "--condition", "noon"]) == 2
    assert "unknown label 'noon'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before the output folder was made
    assert infer_main(["--model", str(model), "--input", str(image), "--output", str(tmp_path / "y"),
                       "--condition", "  "]) == 2  # an empty condition is none
    assert "is conditioned; pass --condition" in capsys.readouterr().err


@pytest.mark.parametrize("tile,overlap,needle", [("huge", "8", "tile must be"), ("64", "-1", "--overlap"),
                                                  ("32", "64", "--overlap 64 must be smaller than the tile (32 px)")])
def test_bad_tiling_flags_are_one_line_errors(tmp_path, capsys, tile, overlap, needle):
    model = tiny_generator_file(tmp_path / "g.safetensors", ngf=4)
    image = write(tmp_path / "in.png", 20, 20, 3)
    rc = infer_main(["--model", str(model), "--input", str(image), "--output", str(tmp_path / "o"),
                     "--tile", tile, "--overlap", overlap])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err
    assert not (tmp_path / "o").exists()


def test_direction_that_contradicts_a_single_files_card_is_refused(tmp_path, capsys):
    one_way = tiny_generator_file(tmp_path / "G_A.safetensors", ngf=4)  # its card: translates a2b
    image = write(tmp_path / "in.png", 20, 20, 4)
    rc = infer_main(["--model", str(one_way), "--input", str(image), "--output", str(tmp_path / "o"),
                     "--direction", "b2a"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "translates a2b, not b2a" in err
    assert not (tmp_path / "o").exists()
    assert infer_main(["--model", str(one_way), "--input", str(image), "--output", str(tmp_path / "a2b"),
                       "--direction", "a2b"]) == 0
    # A card that does not say which way its file translates has nothing to contradict.
    unsaid = tiny_generator_file(tmp_path / "other.safetensors", ngf=4, card={"model": "test", "role": "G"})
    assert infer_main(["--model", str(unsaid), "--input", str(image), "--output", str(tmp_path / "b2a"),
                       "--direction", "b2a"]) == 0


def test_an_output_named_like_an_image_is_refused(tmp_path, capsys):
    model = tiny_generator_file(tmp_path / "g.safetensors", ngf=4)
    image = write(tmp_path / "in.png", 20, 20, 3)
    assert infer_main(["--model", str(model), "--input", str(image), "--output", str(tmp_path / "result.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "writes a folder" in err and f"--output {tmp_path / 'result'}" in err
    assert not (tmp_path / "result.png").exists()


def test_an_overlap_larger_than_the_automatic_tile_is_fine_for_an_image_that_is_not_tiled(tmp_path):
    model = tiny_generator_file(tmp_path / "g.safetensors", ngf=4)
    image = write(tmp_path / "in.png", 32, 32, 3)
    assert infer_main(["--model", str(model), "--input", str(image), "--output", str(tmp_path / "o"),
                       "--overlap", "600"]) == 0


@pytest.mark.parametrize("one_file", [False, True])
@pytest.mark.parametrize("translates", ["a2b", "b2a"])
def test_a_split_of_side_by_side_pairs_translates_one_half_beside_the_other_as_truth(tmp_path, capsys, translates,
                                                                                     one_file):
    # facades/test holds A|B images: the whole pair went through the generator, and the page had no truth.
    # One image of it (facades/test/000.png) is a pair as well: the whole pair went through, twice as wide.
    import torch

    from tests._data_helpers import make_aligned
    from translate.infer import translate_image
    from translate.io.generator_file import load_generator

    data = make_aligned(tmp_path / "facades", {"train": 2, "test": 2}, size=(32, 32))
    model = tiny_generator_file(tmp_path / "g.safetensors", ngf=4, card={"translates": translates})
    given_input = data / "test" / "000.png" if one_file else data / "test"
    assert infer_main(["--model", str(model), "--input", str(given_input), "--output", str(tmp_path / "out")]) == 0
    assert f"translating its {'B' if translates == 'b2a' else 'A'} half" in capsys.readouterr().err
    pair = np.asarray(Image.open(data / "test" / "000.png").convert("RGB"))
    given, other = (pair[:, 32:], pair[:, :32]) if translates == "b2a" else (pair[:, :32], pair[:, 32:])
    out = np.asarray(Image.open(tmp_path / "out" / "000.png"))
    with torch.no_grad():
        expected = translate_image(load_generator(model), np.ascontiguousarray(given))
    assert out.shape == (32, 32, 3) and np.array_equal(out, expected)
    page = (tmp_path / "out" / "index.html").read_text()
    assert "truth_000.png" in page
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "images" / "truth_000.png")), other)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "images" / "input_000.png")), given)


def test_one_photo_in_a_folder_called_test_is_not_cut_in_half(tmp_path, capsys):
    # ~/stuff/test/me.png looks like one image of an aligned split; only a 2:1 image is taken for a pair.
    photo = write(tmp_path / "stuff" / "test" / "me.png", 64, 48, 0)
    model = tiny_generator_file(tmp_path / "g.safetensors", ngf=4)
    assert infer_main(["--model", str(model), "--input", str(photo), "--output", str(tmp_path / "out")]) == 0
    assert "A|B pair" not in capsys.readouterr().err
    assert Image.open(tmp_path / "out" / "me.png").size == (64, 48)


def test_a_folder_of_photos_called_test_is_not_cut_in_half(tmp_path, capsys):
    # ~/holiday/test/ beside ~/holiday/train/ looks like a split of an aligned dataset; its photos were
    # cut in half and half of each was shown as "ground truth". Pairs are all twice as wide as high.
    for split in ("train", "test"):
        write(tmp_path / "holiday" / split / "a.png", 64, 48, 0)
        write(tmp_path / "holiday" / split / "b.png", 64, 32, 1)  # one 2:1 photo among them
    model = tiny_generator_file(tmp_path / "g.safetensors", ngf=4)
    assert infer_main(["--model", str(model), "--input", str(tmp_path / "holiday" / "test"),
                       "--output", str(tmp_path / "out")]) == 0
    assert "A|B pair" not in capsys.readouterr().err
    assert Image.open(tmp_path / "out" / "a.png").size == (64, 48)
    assert Image.open(tmp_path / "out" / "b.png").size == (64, 32)
    assert "truth_" not in (tmp_path / "out" / "index.html").read_text()


@pytest.mark.parametrize("style", ["split_first", "domain_first"])
@pytest.mark.parametrize("side", ["A", "B"])
def test_one_side_of_a_paired_folder_shows_the_other_side_as_truth(tmp_path, capsys, style, side):
    # test/A of the train/A + train/B layout (or A/test, the reference's form) had no truth on the page.
    from tests._data_helpers import make_aligned_folders

    data = make_aligned_folders(tmp_path / "pairs", {"train": 1, "test": 2}, style=style)
    other = "B" if side == "A" else "A"
    given = data / "test" / side if style == "split_first" else data / side / "test"
    truth_dir = data / "test" / other if style == "split_first" else data / other / "test"
    model = tiny_generator_file(tmp_path / "g.safetensors", ngf=4, card={"translates": "a2b" if side == "A" else "b2a"})
    for name in ("000.png", "001.png") if side == "A" else ("000.BMP",):
        shutil.rmtree(tmp_path / "out", ignore_errors=True)
        source = given if name == "001.png" else given / name  # the folder, or one file of it
        assert infer_main(["--model", str(model), "--input", str(source), "--output", str(tmp_path / "out")]) == 0
        page = (tmp_path / "out" / "index.html").read_text()
        truth = next(truth_dir.glob(name.split(".")[0] + ".*"))
        shown = tmp_path / "out" / "images" / f"truth_{name.split('.')[0]}{truth.suffix}"
        assert shown.name in page and shown.read_bytes() == truth.read_bytes()
    # A folder named A beside a B in no dataset layout: no truth is guessed.
    lone = tmp_path / "lone" / "A"
    write(lone / "x.png", 16, 16, 0)
    write(tmp_path / "lone" / "B" / "x.png", 16, 16, 1)
    assert infer_main(["--model", str(model), "--input", str(lone), "--output", str(tmp_path / "lone_out")]) == 0
    assert "truth_" not in (tmp_path / "lone_out" / "index.html").read_text()


@pytest.mark.parametrize("caption", ["🌙", "...", " - "])
def test_a_caption_without_words_is_refused_as_a_blank_one_is(tmp_path, capsys, caption):
    # A blank --condition is refused; one of emoji or punctuation went through as one unknown word, unsaid.
    from translate.io.generator_file import ConditionSpec
    from translate.nets.conditions import Vocabulary

    vocabulary = Vocabulary.build(["a snowy village at night", "a green valley at noon"])
    spec = ConditionSpec("text", vocabulary=vocabulary.to_list(), encoder={"vocab_size": len(vocabulary), "kind": "mean"})
    model = tiny_generator_file(tmp_path / "t.safetensors", condition=spec)
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    assert infer_main(["--model", str(model), "--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "out"),
                       "--condition", caption]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no words" in err and not (tmp_path / "out").exists()
    assert infer_main(["--model", str(model), "--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "out"),
                       "--condition", f"a snowy night {caption}"]) == 0


def test_the_other_side_of_a_paired_folder_is_listed_once_not_once_per_input(tmp_path, monkeypatch):
    # Each input's truth listed the other side's folder again: a test/A of thousands took minutes
    # (2000 inputs: 18 s) before the first translation.
    from pathlib import Path

    from tests._data_helpers import make_aligned_folders
    from translate.infer import list_inputs, plan_jobs

    data = make_aligned_folders(tmp_path / "pairs", {"train": 1, "test": 12}, size=(8, 8))
    listed = []
    real_iterdir = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: listed.append(self) or real_iterdir(self))
    files = list_inputs(data / "test" / "A")
    listed.clear()
    jobs = plan_jobs(files, data / "test" / "A", tmp_path / "out")
    assert listed.count(data / "test" / "B") == 1
    assert [job.truth for job in jobs] == sorted((data / "test" / "B").glob("*.BMP")) and len(jobs) == 12
