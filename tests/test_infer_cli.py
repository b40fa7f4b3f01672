"""translate-infer on exported and imported models: any size, tiles, conditions."""

from __future__ import annotations

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


@pytest.mark.parametrize("tile,overlap,needle", [("huge", "8", "tile must be"), ("64", "-1", "--overlap")])
def test_bad_tiling_flags_are_one_line_errors(tmp_path, capsys, tile, overlap, needle):
    model = tiny_generator_file(tmp_path / "g.safetensors", ngf=4)
    image = write(tmp_path / "in.png", 20, 20, 3)
    rc = infer_main(["--model", str(model), "--input", str(image), "--output", str(tmp_path / "o"),
                     "--tile", tile, "--overlap", overlap])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err
