"""translate-data: list, sample and info; exit codes and one-line errors."""

import json
import sys

import pytest

import translate  # noqa: F401
from translate.cli.data import main
from translate.data.resolve import SYNTHETIC_MARKER
from tests._data_helpers import fake_synthetic_module, make_aligned, make_aligned_folders, make_unaligned


@pytest.fixture
def fake_synthetic(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "translate.data.synthetic", fake_synthetic_module(calls))
    return calls


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("translate-data: error: "), err
    return lines[0]


def test_list_json_reports_names_kinds_sizes_and_what_is_on_disk(tmp_path, capsys):
    make_unaligned(tmp_path / "horse2zebra", {"trainA": 1, "trainB": 1})
    assert main(["list", "--root", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_name = {d["name"]: d for d in out["datasets"]}
    assert by_name["horse2zebra"]["on_disk"] and not by_name["apple2orange"]["on_disk"]
    assert by_name["horse2zebra"]["kind"] == "unpaired" and by_name["facades"]["kind"] == "paired"
    assert by_name["horse2zebra"]["train_images"] == "939 / 1177"
    assert by_name["horse2zebra"]["aliases"] == ["zebra2horse"]
    assert {s["name"] for s in out["synthetic"]} == {"synth-photo2vangogh", "synth-edges2landscape", "synth-daytime"}
    assert all(s["kind"] == "synthetic" for s in out["synthetic"])
    assert out["aliases"]["photo2vangogh"] == "vangogh2photo"


def test_list_prints_a_table_to_stderr_and_nothing_to_stdout(tmp_path, capsys):
    assert main(["list", "--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "horse2zebra" in captured.err and "synth-photo2vangogh" in captured.err


def test_sample_writes_a_marked_synthetic_set(tmp_path, capsys, fake_synthetic):
    out_dir = tmp_path / "out"
    code = main(["sample", "synth-photo2vangogh", "--out", str(out_dir), "--n", "4", "--size", "16", "--seed", "3",
                 "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert fake_synthetic == [("synth-photo2vangogh", 4, None, 16, 3)]
    assert report["layout"] == "unaligned" and report["counts"]["train"] == {"A": 4, "B": 5}
    assert (out_dir / SYNTHETIC_MARKER).is_file()
    assert main(["sample", "synth-photo2vangogh", "--out", str(out_dir)]) == 2  # not empty any more
    assert "not empty" in _one_error_line(capsys.readouterr().err)


def test_sample_refuses_aliases_and_unknown_names(tmp_path, capsys, fake_synthetic):
    assert main(["sample", "synth-vangogh2photo", "--out", str(tmp_path / "x")]) == 2
    assert "--direction b2a" in _one_error_line(capsys.readouterr().err)
    assert main(["sample", "horse2zebra", "--out", str(tmp_path / "x")]) == 2
    assert "unknown synthetic set" in _one_error_line(capsys.readouterr().err)
    assert main(["sample", "synth-daytime", "--out", str(tmp_path / "x"), "--n", "0"]) == 2
    assert "--n must be at least 1" in _one_error_line(capsys.readouterr().err)
    assert main(["sample", "synth-daytime", "--out", str(tmp_path / "x"), "--size", "100000"]) == 2
    assert "--size 100000 is beyond 8192 pixels" in _one_error_line(capsys.readouterr().err)
    assert main(["sample", "synth-daytime", "--out", str(tmp_path / "x"), "--seed", str(2**70)]) == 2
    assert "--seed must be between 0 and" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "x").exists()


def test_info_describes_a_folder(tmp_path, capsys):
    make_unaligned(tmp_path / "set", {"trainA": 2, "trainB": 3, "testA": 1, "testB": 1})
    assert main(["info", str(tmp_path / "set"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "unpaired" and report["counts"] == {"train": {"A": 2, "B": 3}, "test": {"A": 1, "B": 1}}


@pytest.mark.parametrize("style", ["split_first", "domain_first"])
def test_info_counts_pairs_in_every_paired_layout(tmp_path, capsys, style):
    make_aligned_folders(tmp_path / "folders", {"train": 3, "test": 2}, style=style)
    assert main(["info", str(tmp_path / "folders"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"train": {"A": 3, "B": 3}, "test": {"A": 2, "B": 2}}
    make_aligned(tmp_path / "combined", {"train": 4, "val": 1})
    assert main(["info", str(tmp_path / "combined"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"train": {"pairs": 4}, "val": {"pairs": 1}}


def test_info_refuses_paired_folders_whose_files_do_not_pair_up_as_training_does(tmp_path, capsys):
    data = make_aligned_folders(tmp_path / "folders", {"train": 3})
    (data / "train" / "A" / "001.jpg").write_bytes((data / "train" / "A" / "001.png").read_bytes())
    assert main(["info", str(data)]) == 2  # it said "train 4 A / 3 B", and training then refused the set
    assert "has two images named 001 (001.jpg, 001.png)" in _one_error_line(capsys.readouterr().err)


def test_info_refuses_metadata_that_training_refuses(tmp_path, capsys):
    # A blank label for one training image: info described the set as labelled, training refused it.
    data = make_aligned(tmp_path / "labelled", {"train": 3, "test": 1})
    (data / "metadata.csv").write_text("file_name,label\ntrain/000.png,cat\ntrain/001.png,\n"
                                       "train/002.png,dog\ntest/000.png,cat\n")
    assert main(["info", str(data)]) == 2
    assert "gives a label for 2 of 3 train images, not for train/001.png" in _one_error_line(capsys.readouterr().err)
    (data / "metadata.csv").write_text("file_name,label\ntrain/000.png,cat\ntrain/001.png,cat\n"
                                       "train/002.png,dog\ntest/000.png,cat\n")
    assert main(["info", str(data)]) == 0
    assert "conditions: label" in capsys.readouterr().err


def test_bench_loads_the_samples_it_reports(tmp_path, capsys):
    make_unaligned(tmp_path / "set", {"trainA": 3, "trainB": 2})
    assert main(["bench", str(tmp_path / "set"), "--size", "32", "--n", "10", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # an unpaired epoch is as long as the larger domain; two images per sample (no truths)
    assert report["samples"] == 3 and report["seconds"] > 0
    assert report["images_per_second"] == pytest.approx(2 * report["samples_per_second"], rel=0.02)
    assert main(["bench", str(tmp_path / "set"), "--size", "32", "--preprocess", "squash"]) == 2
    assert "preprocess" in _one_error_line(capsys.readouterr().err)


def test_bad_usage_exits_2_with_one_line(tmp_path, capsys):
    assert main(["fetch"]) == 2
    assert "invalid choice" in _one_error_line(capsys.readouterr().err)
    assert main(["sample", "synth-daytime"]) == 2  # --out missing
    assert "--out" in _one_error_line(capsys.readouterr().err)
    assert main(["download", "hourse2zebra", "--root", str(tmp_path)]) == 2
    assert "did you mean horse2zebra?" in _one_error_line(capsys.readouterr().err)
    assert main(["info", "horse2zebra", "--root", str(tmp_path)]) == 2
    assert "translate-data download horse2zebra" in _one_error_line(capsys.readouterr().err)


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "download" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["unpartnered", "no_b"])
def test_info_counts_a_test_split_that_does_not_pair_up_as_training_reads_it(tmp_path, capsys, damage):
    # Training reads such a test split only for its sample grids (a note, then training images); info
    # refused the whole dataset, and the test inputs without targets (test/A alone) are a common layout.
    import shutil

    data = make_aligned_folders(tmp_path / "folders", {"train": 3, "test": 2})
    if damage == "no_b":
        shutil.rmtree(data / "test" / "B")
    else:
        (data / "test" / "A" / "extra.png").write_bytes((data / "test" / "A" / "000.png").read_bytes())
    assert main(["info", str(data), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert counts["train"] == {"A": 3, "B": 3} and counts["test"]["A"] == (2 if damage == "no_b" else 3)
