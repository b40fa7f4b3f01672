"""The built-in synthetic data sets: layouts, determinism, ground truth, and that they show what they claim."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from translate.data.synthetic import FORMAT_VERSION, SYNTHETIC_SETS, TIMES_OF_DAY, labels_in_caption, write_synthetic
from translate.data.synthetic.captions import TIME_ADJECTIVES, TIME_PHRASES
from translate.data.synthetic.edges import CANNY_HIGH, CANNY_KERNEL, CANNY_LOW, CANNY_SIGMA, canny_edges
from translate.data.synthetic.painting import PALETTE, render_painting
from translate.data.synthetic.scene import make_light, relight, render_photo, sample_scene
from translate.data.synthetic.sets import daytime_item, photo2vangogh_pair, photo2vangogh_scene
from translate.errors import UsageError

SMALL = 64


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """Each set written once, small, shared by the layout tests."""
    root = tmp_path_factory.mktemp("synthetic")
    return {name: write_synthetic(name, root / name, n_train=3, n_test=2, size=SMALL, seed=7)
            for name in SYNTHETIC_SETS}


# --- API and errors ------------------------------------------------------------------------------------


def test_specs_publish_defaults_and_layout():
    for name, spec in SYNTHETIC_SETS.items():
        assert spec.name == name
        assert spec.kind in ("unaligned", "aligned")
        assert spec.n_train > 0 and spec.n_test > 0 and spec.size >= 128 and spec.description
    assert SYNTHETIC_SETS["synth-photo2vangogh"].kind == "unaligned"
    assert SYNTHETIC_SETS["synth-edges2landscape"].kind == "aligned"
    assert SYNTHETIC_SETS["synth-daytime"].conditioned and SYNTHETIC_SETS["synth-daytime"].labels == TIMES_OF_DAY


def test_unknown_name_is_a_usage_error_listing_the_valid_names(tmp_path):
    with pytest.raises(UsageError) as caught:
        write_synthetic("synth-nope", tmp_path / "x")
    for name in SYNTHETIC_SETS:
        assert name in str(caught.value)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("bad", [dict(n_train=-1), dict(n_test=1.5), dict(size=8), dict(seed="1"),
                                 dict(n_train=True)])
def test_bad_arguments_are_usage_errors(tmp_path, bad):
    with pytest.raises(UsageError):
        write_synthetic("synth-daytime", tmp_path / "x", **bad)


def test_refuses_a_non_empty_folder_that_holds_no_synthetic_set(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(UsageError):
        write_synthetic("synth-daytime", tmp_path, n_train=1, n_test=1, size=SMALL)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_an_interrupted_set_has_no_synth_json_and_is_replaced_next_time(tmp_path, monkeypatch):
    from translate.data.synthetic import sets

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sets, "daytime_item", fail)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic("synth-daytime", tmp_path, n_train=1, n_test=1, size=32)
    assert not (tmp_path / "synth.json").exists()
    monkeypatch.undo()
    write_synthetic("synth-daytime", tmp_path, n_train=1, n_test=1, size=32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metadata.jsonl", "synth.json", "test", "train"]


def test_a_half_written_set_is_refused_by_path_and_a_complete_one_is_used_by_name(tmp_path, monkeypatch):
    from translate.data import resolve_dataset
    from translate.data.synthetic import sets

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sets, "photo2vangogh_pair", fail)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic("synth-photo2vangogh", tmp_path / "half", n_train=2, n_test=1, size=32)
    monkeypatch.undo()
    with pytest.raises(UsageError, match="writing was interrupted"):
        resolve_dataset(str(tmp_path / "half"))
    # A set written with write_synthetic (the Python API) where the command line keeps its sets is used
    # as it is, not refused for lacking the command line's own marker.
    root = tmp_path / "datasets"
    written = write_synthetic("synth-photo2vangogh", root / "synth-photo2vangogh", n_train=2, n_test=1, size=32)
    before = file_hashes(written)
    assert resolve_dataset("synth-photo2vangogh", root=root).path == written
    assert file_hashes(written) == before


def test_rewriting_replaces_the_previous_set(tmp_path):
    write_synthetic("synth-photo2vangogh", tmp_path, n_train=3, n_test=1, size=SMALL)
    write_synthetic("synth-photo2vangogh", tmp_path, n_train=1, n_test=1, size=SMALL)
    assert sorted(p.name for p in (tmp_path / "trainA").iterdir()) == ["00000.png"]
    assert json.loads((tmp_path / "synth.json").read_text())["n_train"] == 1


# --- Layouts -------------------------------------------------------------------------------------------


def test_photo2vangogh_layout_counts_and_sizes(written):
    root = written["synth-photo2vangogh"]
    counts = {"trainA": 3, "trainB": 3, "testA": 2, "testB": 2, "testA_truth": 2, "testB_truth": 2}
    for split, count in counts.items():
        files = sorted((root / split).iterdir())
        assert [f.name for f in files] == [f"{i:05d}.png" for i in range(count)]
        for f in files:
            assert read_rgb(f).shape == (SMALL, SMALL, 3)
    record = json.loads((root / "synth.json").read_text())
    assert record["format_version"] == FORMAT_VERSION == 2
    assert (record["name"], record["seed"], record["n_train"], record["n_test"], record["size"]) == (
        "synth-photo2vangogh", 7, 3, 2, SMALL)
    assert record["splits"] == counts


@pytest.mark.parametrize("name, splits", [("synth-edges2landscape", {"train": 3, "val": 2, "test": 2}),
                                          ("synth-daytime", {"train": 3, "test": 2})])
def test_aligned_sets_are_side_by_side_pairs(written, name, splits):
    root = written[name]
    for split, count in splits.items():
        files = sorted((root / split).iterdir())
        assert len(files) == count
        for f in files:
            assert read_rgb(f).shape == (SMALL, 2 * SMALL, 3)  # A | B, each SMALL x SMALL
    assert json.loads((root / "synth.json").read_text())["splits"] == splits


def test_daytime_metadata_labels_and_captions(tmp_path):
    root = write_synthetic("synth-daytime", tmp_path / "d", n_train=24, n_test=8, size=32)
    lines = (root / "metadata.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert sorted(e["file_name"] for e in entries) == sorted(
        str(p.relative_to(root)) for p in root.rglob("*.png"))
    for entry in entries:
        assert set(entry) == {"file_name", "label", "text"}
        assert entry["label"] in TIMES_OF_DAY
        # The caption names its time of day, and no other one.
        assert labels_in_caption(entry["text"]) == {entry["label"]}, entry
    train_labels = [e["label"] for e in entries if e["file_name"].startswith("train/")]
    assert all(train_labels.count(label) == 6 for label in TIMES_OF_DAY)  # balanced
    assert len({e["text"] for e in entries}) >= 0.8 * len(entries)  # worded in many ways


def test_time_of_day_phrases_never_name_another_time():
    for label in TIMES_OF_DAY:
        for phrase in TIME_PHRASES[label] + TIME_ADJECTIVES[label]:
            assert labels_in_caption(phrase) == {label}, phrase


# --- Determinism ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SYNTHETIC_SETS))
def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path, name):
    first = file_hashes(write_synthetic(name, tmp_path / "a", n_train=2, n_test=1, size=SMALL, seed=3))
    again = file_hashes(write_synthetic(name, tmp_path / "b", n_train=2, n_test=1, size=SMALL, seed=3))
    other = file_hashes(write_synthetic(name, tmp_path / "c", n_train=2, n_test=1, size=SMALL, seed=4))
    assert first == again
    pictures = [k for k in first if k.endswith(".png")]
    assert all(first[k] != other[k] for k in pictures)


def test_more_training_pictures_leave_the_existing_ones_unchanged(tmp_path):
    few = file_hashes(write_synthetic("synth-photo2vangogh", tmp_path / "few", n_train=1, n_test=1, size=SMALL))
    more = file_hashes(write_synthetic("synth-photo2vangogh", tmp_path / "more", n_train=3, n_test=2, size=SMALL))
    for key, digest in few.items():
        if key.endswith(".png"):
            assert more[key] == digest, key


def test_generation_leaves_the_global_random_state_alone(tmp_path):
    np_state, py_state = np.random.get_state(), random.getstate()
    write_synthetic("synth-daytime", tmp_path, n_train=1, n_test=1, size=32)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b for a, b in zip(np_state, after))


# --- Ground truth --------------------------------------------------------------------------------------


def test_photo2vangogh_truth_is_the_painting_of_the_same_scene(written):
    root = written["synth-photo2vangogh"]
    for index in range(2):
        name = f"{index:05d}.png"
        photo, painting = photo2vangogh_pair(7, "testA", index, SMALL)  # the scene re-rendered from its seed
        assert np.array_equal(read_rgb(root / "testA" / name), photo)
        assert np.array_equal(read_rgb(root / "testA_truth" / name), painting)
        photo, painting = photo2vangogh_pair(7, "testB", index, SMALL)
        assert np.array_equal(read_rgb(root / "testB" / name), painting)
        assert np.array_equal(read_rgb(root / "testB_truth" / name), photo)
        # The painting is a function of the photo file alone.
        assert np.array_equal(render_painting(read_rgb(root / "testA" / name)), read_rgb(root / "testA_truth" / name))


def test_photo2vangogh_domains_are_drawn_from_different_scenes(written):
    root = written["synth-photo2vangogh"]
    assert photo2vangogh_scene(7, "trainA", 0) != photo2vangogh_scene(7, "trainB", 0)
    painting_of_a = render_painting(read_rgb(root / "trainA" / "00000.png"))
    assert not np.array_equal(painting_of_a, read_rgb(root / "trainB" / "00000.png"))


def test_edges_are_kornia_canny_of_the_landscape(written):
    import kornia
    import torch

    root = written["synth-edges2landscape"]
    for path in sorted(root.rglob("*.png")):
        pair = read_rgb(path)
        edges, photo = pair[:, :SMALL], pair[:, SMALL:]
        assert set(np.unique(edges)) <= {0, 255} and (edges == edges[..., :1]).all()  # black on white
        tensor = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0
        _, expected = kornia.filters.canny(tensor, CANNY_LOW, CANNY_HIGH, (CANNY_KERNEL,) * 2, (CANNY_SIGMA,) * 2)
        expected = expected[0, 0].numpy() == 1
        assert np.array_equal(edges[..., 0] == 0, expected), path
        assert 0.005 < expected.mean() < 0.25  # real structure, not empty, not noise


def test_one_pass_hysteresis_matches_kornias_iteration_on_hard_cases():
    import kornia
    import torch

    rng = np.random.default_rng(0)
    for trial in range(4):
        # Smoothed noise makes long, branching weak chains between strong pixels.
        noise = cv2.GaussianBlur(rng.random((80, 80, 3)).astype(np.float32), (0, 0), 1.0 + trial)
        photo = np.clip((noise - noise.min()) / np.ptp(noise) * 255.0, 0, 255).astype(np.uint8)
        tensor = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0
        _, expected = kornia.filters.canny(tensor, CANNY_LOW, CANNY_HIGH, (CANNY_KERNEL,) * 2, (CANNY_SIGMA,) * 2)
        assert np.array_equal(canny_edges(photo), expected[0, 0].numpy() == 1)


# --- The pictures show what they claim -----------------------------------------------------------------


def _pairs(count: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [photo2vangogh_pair(11, "testA", i, size) for i in range(count)]


def _stroke_coherence(image: np.ndarray) -> float:
    """Mean coherence of the structure tensor at a fine scale: 1 where all texture runs one way (brush
    strokes), about 0 for isotropic grain and smooth gradients."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gx, gy = cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    jxx, jyy, jxy = (cv2.GaussianBlur(g, (0, 0), 2.0) for g in (gx * gx, gy * gy, gx * gy))
    return float(np.mean(np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy + 1e-4)))


def _palette_distance(image: np.ndarray) -> float:
    """Median CIELAB distance of a pixel to the nearest colour of Van Gogh's palette."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 1, 3)
    palette = cv2.cvtColor(np.float32([list(PALETTE.values())]), cv2.COLOR_RGB2Lab).reshape(1, -1, 3)
    return float(np.median(np.sqrt(((lab - palette) ** 2).sum(-1)).min(1)))


def _layout(image: np.ndarray) -> np.ndarray:
    """Coarse colour layout: 8 x 8 CIELAB means, each channel centred and normalised."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    small = cv2.resize(lab, (8, 8), interpolation=cv2.INTER_AREA).reshape(-1, 3)
    small -= small.mean(0)
    return (small / (np.linalg.norm(small, axis=0) + 1e-6)).T.ravel() / np.sqrt(3)


def test_paintings_differ_from_photos_in_strokes_and_palette():
    pairs = _pairs(8, 128)
    for photo, painting in pairs:
        assert _stroke_coherence(painting) > _stroke_coherence(photo) + 0.05  # oriented brush strokes
    photo_distance = np.mean([_palette_distance(photo) for photo, _ in pairs])
    painting_distance = np.mean([_palette_distance(painting) for _, painting in pairs])
    assert painting_distance < photo_distance - 2.0  # colours moved to Van Gogh's pigments


def test_a_true_painting_keeps_its_photos_layout_far_better_than_a_random_painting():
    pairs = _pairs(8, 128)
    layouts = [(_layout(photo), _layout(painting)) for photo, painting in pairs]
    own = np.mean([a @ b for a, b in layouts])  # correlation of the photo with its own painting
    others = np.mean([layouts[i][0] @ layouts[j][1] for i in range(8) for j in range(8) if i != j])
    assert own > 0.75
    assert own > others + 0.3


def test_a_scene_renders_the_same_landscape_at_any_size():
    scene = sample_scene(5)
    large = cv2.resize(render_photo(scene, 256), (64, 64), interpolation=cv2.INTER_AREA)
    small = render_photo(scene, 64)
    assert np.abs(large.astype(np.float32) - small).mean() < 6.0


def test_daytime_label_determines_b_a_label_aware_map_beats_shuffled_labels():
    """Fit one affine colour map A -> B per label on training pairs; on test pairs the map of the right
    label must be much closer to B than the map of a wrong label (the set is measurable)."""
    size = 32

    def pixels(image):
        flat = image.reshape(-1, 3).astype(np.float64) / 255.0
        return np.concatenate([flat, np.ones((len(flat), 1))], 1)

    fits = {}
    train = [daytime_item(0, "train", i, size) for i in range(16)]
    for label in TIMES_OF_DAY:
        a = np.concatenate([pixels(x[0]) for x in train if x[2] == label])
        b = np.concatenate([pixels(x[1])[:, :3] for x in train if x[2] == label])
        fits[label] = np.linalg.lstsq(a, b, rcond=None)[0]
    right, wrong = [], []
    for index in range(8):
        a, b, label, _ = daytime_item(0, "test", index, size)
        target = b.reshape(-1, 3) / 255.0
        right.append(np.abs(pixels(a) @ fits[label] - target).mean())
        shuffled = TIMES_OF_DAY[(TIMES_OF_DAY.index(label) + 1 + index % 3) % 4]
        wrong.append(np.abs(pixels(a) @ fits[shuffled] - target).mean())
    assert np.mean(right) < 0.5 * np.mean(wrong)


def test_relighting_keeps_the_scene_and_changes_only_the_light():
    scene = sample_scene(9)
    for label in TIMES_OF_DAY:
        lit = relight(scene, label)
        assert lit.light == make_light(label, scene.horizon)
        assert (lit.mountains, lit.hills, lit.trees, lit.houses) == (scene.mountains, scene.hills, scene.trees,
                                                                     scene.houses)


def test_render_painting_keeps_the_shape_of_any_photo_and_rejects_non_rgb():
    photo = render_photo(sample_scene(2), 128)
    assert render_painting(photo[:, :96]).shape == (128, 96, 3)
    with pytest.raises(ValueError):
        render_painting(photo.astype(np.float32))
