"""The registry's names, aliases and pretrained table, and resolve_dataset for every kind of DATA."""

import json
import re
import sys

import pytest

import translate  # noqa: F401
from translate.data import TransformConfig, open_dataset, resolve_dataset
from translate.data.registry import (
    DATASET_ALIASES,
    DATASETS,
    PRETRAINED,
    SYNTHETIC,
    SYNTHETIC_ALIASES,
    lookup_dataset,
    lookup_pretrained,
    reversed_name,
)
from translate.data.resolve import SYNTHETIC_MARKER, SyntheticOptions, ensure_synthetic, synthetic_format
from translate.errors import UsageError
from tests._data_helpers import fake_synthetic_module, make_aligned, make_unaligned

CYCLEGAN_NAMES = ["apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
                  "ukiyoe2photo", "vangogh2photo", "iphone2dslr_flower", "ae_photos", "grumpifycat", "mini",
                  "mini_pix2pix", "mini_colorization", "cyclegan-facades", "cyclegan-maps", "cyclegan-cityscapes"]
PIX2PIX_NAMES = ["facades", "maps", "edges2shoes", "edges2handbags", "night2day", "cityscapes"]


def test_registry_has_the_official_names_with_their_public_urls():
    assert set(DATASETS) == set(CYCLEGAN_NAMES + PIX2PIX_NAMES)
    assert DATASETS["horse2zebra"].url == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    assert DATASETS["facades"].url == "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"
    assert DATASETS["cyclegan-facades"].url.endswith("/cyclegan/datasets/facades.zip")
    assert DATASETS["cyclegan-facades"].archive_folder == "facades"
    assert DATASETS["facades"].kind == "paired" and DATASETS["cyclegan-maps"].kind == "unpaired"
    assert DATASETS["cityscapes"].url is None and "cityscapes-dataset.com" in DATASETS["cityscapes"].note


def test_every_x2y_name_has_a_reversed_alias_that_collides_with_nothing():
    expected = {"orange2apple", "winter2summer_yosemite", "zebra2horse", "photo2monet", "photo2cezanne",
                "photo2ukiyoe", "photo2vangogh", "dslr2iphone_flower", "shoes2edges", "handbags2edges", "day2night"}
    assert set(DATASET_ALIASES) == expected
    assert set(SYNTHETIC_ALIASES) == {"synth-vangogh2photo", "synth-landscape2edges"}
    assert not set(DATASET_ALIASES) & set(DATASETS)
    assert reversed_name("mini_pix2pix") is None and reversed_name("ae_photos") is None
    assert lookup_dataset("photo2vangogh") == (DATASETS["vangogh2photo"], True)
    assert lookup_dataset("VanGogh2Photo") == (DATASETS["vangogh2photo"], False)  # names ignore case


def test_pretrained_table_lists_the_published_generators():
    cyclegan = {m.name for m in PRETRAINED.values() if m.family == "cyclegan"}
    assert cyclegan == {"apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite",
                        "horse2zebra", "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe",
                        "style_vangogh", "sat2map", "map2sat", "cityscapes_photo2label", "cityscapes_label2photo",
                        "facades_photo2label", "facades_label2photo", "iphone2dslr_flower"}
    pix2pix = {m.name for m in PRETRAINED.values() if m.family == "pix2pix"}
    assert pix2pix == {"facades_label2photo", "sat2map", "map2sat", "edges2shoes", "day2night"}
    vangogh = lookup_pretrained("style_vangogh")
    assert vangogh.url == "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/style_vangogh.pth"
    assert (vangogh.netG, vangogh.norm, vangogh.dataset, vangogh.direction) == (
        "resnet_9blocks", "instance", "vangogh2photo", "b2a")
    facades = lookup_pretrained("pix2pix/facades_label2photo")
    assert facades.url.endswith("/pix2pix/models-pytorch/facades_label2photo.pth") and facades.netG == "unet_256"
    with pytest.raises(UsageError, match="both CycleGAN and pix2pix publish sat2map"):
        lookup_pretrained("sat2map")
    for model in PRETRAINED.values():
        assert model.dataset in DATASETS and model.direction in ("a2b", "b2a")


def test_reversed_alias_reads_the_canonical_folder_with_a_and_b_swapped(tmp_path):
    make_unaligned(tmp_path / "vangogh2photo", {"trainA": 2, "trainB": 3})
    resolved = resolve_dataset("photo2vangogh", root=tmp_path, download=False)
    assert resolved.path == tmp_path / "vangogh2photo" and resolved.swap and resolved.canonical == "vangogh2photo"
    sample = open_dataset(resolved, "train")[0]
    assert "trainB" in sample["A_path"] and "trainA" in sample["B_path"]
    assert resolved.effective_direction("a2b") == "b2a"
    back = open_dataset(resolved, "train", direction="b2a")[0]  # swapped twice: the canonical way
    assert "trainA" in back["A_path"]


def test_registry_folder_already_on_disk_is_used_as_it_is(tmp_path):
    make_unaligned(tmp_path / "facades", {"trainA": 1, "trainB": 1})  # as the reference CycleGAN script left it
    resolved = resolve_dataset("facades", root=tmp_path, download=False)
    assert resolved.layout == "unaligned" and resolved.source == "registry"


def test_missing_registry_set_offline_names_the_download_command_and_synthetic_data(tmp_path):
    with pytest.raises(UsageError) as error:
        resolve_dataset("horse2zebra", root=tmp_path, download=False)
    message = str(error.value)
    assert "translate-data download horse2zebra" in message and "--data synth-photo2vangogh" in message


def test_unreachable_host_during_resolve_gives_the_same_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSLATE_MIRROR", "http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(UsageError) as error:
        resolve_dataset("mini", root=tmp_path, progress=False)
    message = str(error.value)
    assert "could not reach 127.0.0.1:9" in message and "synth-photo2vangogh" in message and "--mirror" in message
    assert list(tmp_path.iterdir()) == []


def test_cityscapes_explains_how_to_get_it(tmp_path):
    with pytest.raises(UsageError, match="cityscapes-dataset.com"):
        resolve_dataset("cityscapes", root=tmp_path)


def test_unknown_names_get_a_suggestion(tmp_path):
    with pytest.raises(UsageError, match=r"did you mean horse2zebra\?"):
        resolve_dataset("hourse2zebra", root=tmp_path)
    with pytest.raises(UsageError, match="no folder ./nowhere"):
        resolve_dataset("./nowhere", root=tmp_path)


def test_paths_and_folders_under_root_resolve_directly(tmp_path):
    make_aligned(tmp_path / "mine", {"train": 1})
    by_path = resolve_dataset(tmp_path / "mine")
    by_name = resolve_dataset("mine", root=tmp_path)
    assert by_path.path == by_name.path == tmp_path / "mine"
    assert by_path.layout == "aligned" and by_path.paired and not by_path.swap and by_path.splits == ("train",)


# -- synthetic sets (a fake generator stands in for translate.data.synthetic) ------------------------


@pytest.fixture
def fake_synthetic(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "translate.data.synthetic", fake_synthetic_module(calls))
    return calls


def test_synthetic_set_is_generated_once_with_a_marker(tmp_path, fake_synthetic):
    first = resolve_dataset("synth-photo2vangogh", root=tmp_path)
    again = resolve_dataset("synth-photo2vangogh", root=tmp_path)
    assert first.path == again.path == tmp_path / "synth-photo2vangogh"
    assert len(fake_synthetic) == 1 and (first.path / SYNTHETIC_MARKER).is_file()
    assert first.source == "synthetic" and first.layout == "unaligned"
    assert [p.name for p in tmp_path.iterdir()] == ["synth-photo2vangogh"]  # no scratch folders left
    sample = open_dataset(first, "test")[0]
    assert "B_truth" in sample


def test_synthetic_options_get_their_own_folder(tmp_path, fake_synthetic):
    options = SyntheticOptions(n_train=4, size=24, seed=2)
    path = ensure_synthetic("synth-edges2landscape", tmp_path, options)
    assert path.name == "synth-edges2landscape-train4-size24-seed2"
    assert fake_synthetic == [("synth-edges2landscape", 4, None, 24, 2)]


def test_synthetic_alias_swaps_and_conditions_are_found(tmp_path, fake_synthetic):
    reverse = resolve_dataset("synth-vangogh2photo", root=tmp_path)
    assert reverse.swap and reverse.canonical == "synth-photo2vangogh"
    daytime = resolve_dataset("synth-daytime", root=tmp_path)
    assert daytime.paired and daytime.conditions == ("label", "text")
    assert daytime.label_names == ("dawn", "dusk", "noon")  # the fake writes 3 train + 2 test images


def test_a_set_from_an_older_generator_format_is_generated_again(tmp_path, fake_synthetic, monkeypatch, capsys):
    path = ensure_synthetic("synth-photo2vangogh", tmp_path)
    assert json.loads((path / SYNTHETIC_MARKER).read_text())["format_version"] == 1  # the fake has no version
    (path / "trainA" / "000.png").write_bytes(b"stale")
    monkeypatch.setattr(sys.modules["translate.data.synthetic"], "FORMAT_VERSION", 2, raising=False)
    assert ensure_synthetic("synth-photo2vangogh", tmp_path) == path
    assert "format 1" in capsys.readouterr().err and len(fake_synthetic) == 2
    assert json.loads((path / SYNTHETIC_MARKER).read_text())["format_version"] == 2
    assert (path / "trainA" / "000.png").read_bytes() != b"stale"
    assert [p.name for p in tmp_path.iterdir()] == ["synth-photo2vangogh"]  # nothing left beside it
    ensure_synthetic("synth-photo2vangogh", tmp_path)
    assert len(fake_synthetic) == 2  # current now: kept


def test_a_failed_regeneration_keeps_the_old_set(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "translate.data.synthetic", fake_synthetic_module())
    path = ensure_synthetic("synth-edges2landscape", tmp_path)
    before = sorted(p.relative_to(path) for p in path.rglob("*"))
    failing = fake_synthetic_module(fail=True)
    failing.FORMAT_VERSION = 2
    monkeypatch.setitem(sys.modules, "translate.data.synthetic", failing)
    with pytest.raises(RuntimeError):
        ensure_synthetic("synth-edges2landscape", tmp_path)
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before
    assert synthetic_format(path) == 1


def test_half_generated_synthetic_folder_is_never_used(tmp_path, fake_synthetic):
    (tmp_path / "synth-daytime" / "train").mkdir(parents=True)
    with pytest.raises(UsageError, match="not a complete generated set"):
        resolve_dataset("synth-daytime", root=tmp_path)
    assert fake_synthetic == []


def test_generator_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "translate.data.synthetic", fake_synthetic_module(fail=True))
    with pytest.raises(RuntimeError):
        resolve_dataset("synth-edges2landscape", root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_real_synthetic_generator_resolves_and_reads(tmp_path):
    """Needs translate.data.synthetic (written on the synth branch); skipped where it is absent."""
    synthetic = pytest.importorskip("translate.data.synthetic")
    assert set(SYNTHETIC) <= set(synthetic.SYNTHETIC_SETS)
    resolved = resolve_dataset("synth-photo2vangogh", root=tmp_path,
                               synthetic=SyntheticOptions(n_train=2, n_test=2, size=32))
    assert resolved.layout == "unaligned"
    sample = open_dataset(resolved, "test", transform=TransformConfig(size=32))[0]
    assert sample["A"].shape == sample["B_truth"].shape == (3, 32, 32)


def test_registry_names_are_plain_folder_names():
    for name in DATASETS:
        assert re.fullmatch(r"[a-z0-9_\-]+", name)
