"""Dataset layouts, directions, ground truth and condition metadata, read through open_dataset."""

import json

import numpy as np
import pytest
import torch

import translate  # noqa: F401
from translate.data import TransformConfig, detect_layout, load_conditions, open_dataset, resolve_dataset
from translate.errors import UsageError
from tests._data_helpers import (
    make_aligned,
    make_aligned_folders,
    make_unaligned,
    pattern,
    write_image,
)

# No resizing, no flips: what comes out is the file's pixels, so values can be compared exactly.
EXACT = TransformConfig(size=32, preprocess="none", flip=False)


def _pixels(tensor: torch.Tensor) -> np.ndarray:
    return np.rint((tensor.permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)


def test_unaligned_layout_reads_a_and_random_b(tmp_path):
    make_unaligned(tmp_path, {"trainA": 3, "trainB": 5, "testA": 2, "testB": 2})
    assert detect_layout(tmp_path) == "unaligned"
    dataset = open_dataset(tmp_path, "train", transform=EXACT)
    assert dataset.pairing == "unpaired"
    assert len(dataset) == 5  # the larger domain, as the reference
    sample = dataset[4]
    assert set(sample) == {"A", "B", "A_path", "B_path"}
    assert "trainA" in sample["A_path"] and sample["A_path"].endswith("001.png")  # 4 % 3
    assert "trainB" in sample["B_path"]
    assert sample["A"].shape == (3, 40, 48) and sample["A"].dtype == torch.float32
    b_indices = {dataset[i % 5]["B_path"] for i in range(5)}
    assert len(b_indices) > 1


def test_unpaired_b_is_a_function_of_seed_epoch_and_index(tmp_path):
    make_unaligned(tmp_path, {"trainA": 4, "trainB": 50})
    dataset = open_dataset(tmp_path, "train", transform=TransformConfig(size=16), seed=3)
    first = [dataset[i]["B_path"] for i in range(50)]
    assert first == [dataset[i]["B_path"] for i in reversed(range(50))][::-1]  # order of reads irrelevant
    again = open_dataset(tmp_path, "train", transform=TransformConfig(size=16), seed=3)
    assert first == [again[i]["B_path"] for i in range(50)]
    dataset.set_epoch(1)
    assert first != [dataset[i]["B_path"] for i in range(50)]
    assert first == [dataset[(0, i)]["B_path"] for i in range(50)]  # an (epoch, index) key wins
    other_seed = open_dataset(tmp_path, "train", transform=TransformConfig(size=16), seed=4)
    assert first != [other_seed[i]["B_path"] for i in range(50)]


def test_serial_unpaired_reading_walks_b_in_order(tmp_path):
    make_unaligned(tmp_path, {"testA": 3, "testB": 3})
    dataset = open_dataset(tmp_path, "test", transform=EXACT)  # test split: serial by default
    assert [dataset[i]["B_path"][-7:] for i in range(3)] == ["000.png", "001.png", "002.png"]


def test_direction_b2a_swaps_domains(tmp_path):
    make_unaligned(tmp_path, {"trainA": 2, "trainB": 3})
    dataset = open_dataset(tmp_path, "train", direction="b2a", transform=EXACT)
    assert "trainB" in dataset[0]["A_path"] and "trainA" in dataset[0]["B_path"]
    assert len(dataset) == 3


def test_ground_truth_is_given_for_each_test_a_with_the_same_geometry(tmp_path):
    make_unaligned(tmp_path, {"trainA": 2, "trainB": 2, "testA": 3, "testB": 2}, size=(40, 40), truth=True)
    dataset = open_dataset(tmp_path, "test", transform=TransformConfig(size=32), train=True)  # random crops
    for i in range(3):
        sample = dataset[i]
        assert sample["B_truth_path"].endswith(f"testA_truth/{i:03d}.png")
        # the helper's truth is 255 - A: after the shared crop/flip the truth is still -A
        torch.testing.assert_close(sample["B_truth"], -sample["A"], atol=1 / 127.5 + 1e-6, rtol=0)
    reverse = open_dataset(tmp_path, "test", direction="b2a", transform=EXACT)
    assert reverse[0]["B_truth_path"].endswith("testB_truth/000.png")
    assert "B_truth" not in open_dataset(tmp_path, "train", transform=EXACT)[0]


def test_aligned_side_by_side_images_split_into_a_left_and_b_right(tmp_path):
    make_aligned(tmp_path, {"train": 3, "val": 1, "test": 2}, size=(32, 32))  # train is 2nd in sorted order
    assert detect_layout(tmp_path) == "aligned"
    dataset = open_dataset(tmp_path, "train", transform=EXACT)
    assert dataset.pairing == "paired" and len(dataset) == 3
    sample = dataset[1]
    assert sample["A_path"] == sample["B_path"]
    np.testing.assert_array_equal(_pixels(sample["A"]), pattern(32, 32, seed=500 * 1 + 1))
    np.testing.assert_array_equal(_pixels(sample["B"]), 255 - pattern(32, 32, seed=500 * 1 + 1))
    swapped = open_dataset(tmp_path, "train", direction="b2a", transform=EXACT)[1]
    assert torch.equal(swapped["A"], sample["B"]) and torch.equal(swapped["B"], sample["A"])


@pytest.mark.parametrize("style", ["split_first", "domain_first"])
def test_aligned_folders_pair_files_by_name(tmp_path, style):
    make_aligned_folders(tmp_path, {"train": 3, "test": 1}, style=style)
    assert detect_layout(tmp_path) == "aligned_folders"
    dataset = open_dataset(tmp_path, "train", transform=TransformConfig(size=16), seed=1)
    for i in range(3):
        sample = dataset[i]
        assert sample["A_path"].endswith(f"{i:03d}.png") and sample["B_path"].endswith(f"{i:03d}.BMP")
        torch.testing.assert_close(sample["B"], -sample["A"], atol=1 / 127.5 + 1e-6, rtol=0)


def test_a_folder_combined_as_the_reference_readme_says_reads_the_combined_images(tmp_path):
    # combine_A_and_B.py --fold_A DIR/A --fold_B DIR/B --fold_AB DIR: the inputs stay beside the
    # combined DIR/train, and may not pair by name (it skips an A without a B; --use_AB names them
    # 0000_A / 0000_B). The reference trains on DIR/train.
    make_aligned_folders(tmp_path, {"train": 2}, style="domain_first")
    write_image(tmp_path / "A" / "train" / "unpaired.png", pattern(8, 8, 0))
    make_aligned(tmp_path, {"train": 2}, size=(32, 32))
    assert detect_layout(tmp_path) == "aligned"
    assert len(open_dataset(tmp_path, "train", transform=EXACT)) == 2


def test_aligned_folders_with_unmatched_names_say_which(tmp_path):
    make_aligned_folders(tmp_path, {"train": 2})
    write_image(tmp_path / "train" / "A" / "extra.png", pattern(8, 8, 0))
    with pytest.raises(UsageError, match=r"1 in .*train/A have no partner .*extra"):
        open_dataset(tmp_path, "train", transform=EXACT)


def test_paired_data_can_be_read_unpaired(tmp_path):
    make_aligned(tmp_path, {"train": 6})
    dataset = open_dataset(tmp_path, "train", pairing="unpaired", transform=EXACT, seed=0)
    assert dataset.pairing == "unpaired" and len(dataset) == 6
    partners = [dataset[i]["B_path"] == dataset[i]["A_path"] for i in range(6)]
    assert not all(partners)  # B drawn at random, not the partner


def test_unpaired_data_cannot_be_read_paired(tmp_path):
    make_unaligned(tmp_path, {"trainA": 1, "trainB": 1})
    with pytest.raises(UsageError, match="unpaired"):
        open_dataset(tmp_path, "train", pairing="paired")


@pytest.mark.parametrize("given", ["name", "path"])
def test_colorization_layout_gives_gray_a(tmp_path, monkeypatch, given):
    write_image(tmp_path / "datasets" / "mini_colorization" / "train" / "0.png", pattern(16, 16, 1))
    data = "mini_colorization" if given == "name" else str(tmp_path / "datasets" / "mini_colorization")
    resolved = resolve_dataset(data, root=tmp_path / "datasets", download=False)
    assert resolved.layout == "colorization" and resolved.paired  # not side-by-side pairs, by path too
    sample = open_dataset(resolved, "train", transform=EXACT)[0]
    gray = _pixels(sample["A"])
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    np.testing.assert_array_equal(_pixels(sample["B"]), pattern(16, 16, 1))


def test_missing_and_empty_folders_say_what_was_found(tmp_path):
    make_unaligned(tmp_path, {"trainA": 1, "testA": 1})
    with pytest.raises(UsageError) as missing:
        open_dataset(tmp_path, "train")
    assert "trainB is missing" in str(missing.value) and "trainA" in str(missing.value)
    (tmp_path / "trainB").mkdir()
    (tmp_path / "trainB" / "readme.txt").write_text("x")
    with pytest.raises(UsageError) as empty:
        open_dataset(tmp_path, "train")
    assert "trainB has no images" in str(empty.value) and "readme.txt" in str(empty.value)
    assert "\n" not in str(empty.value)


def test_folder_without_a_layout_is_explained(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(UsageError, match=r"no dataset layout .*photos.*expected trainA"):
        detect_layout(tmp_path)


def test_missing_split_names_the_available_ones(tmp_path):
    make_aligned(tmp_path, {"train": 1, "val": 1})
    with pytest.raises(UsageError, match=r"no test split \(found: train, val\)"):
        open_dataset(tmp_path, "test")


def test_limit_caps_both_domains(tmp_path):
    make_unaligned(tmp_path, {"trainA": 5, "trainB": 7})
    assert len(open_dataset(tmp_path, "train", limit=2)) == 2


# -- metadata ---------------------------------------------------------------------------------------


def test_jsonl_string_labels_map_through_a_sorted_vocabulary(tmp_path):
    make_aligned(tmp_path, {"train": 3, "test": 1})
    labels = {"train/000.png": "noon", "train/001.png": "dawn", "train/002.png": "night", "test/000.png": "dusk"}
    with open(tmp_path / "metadata.jsonl", "w") as handle:
        for name, label in labels.items():
            handle.write(json.dumps({"file_name": name, "label": label, "text": f"at {label}"}) + "\n")
    dataset = open_dataset(tmp_path, "train", transform=EXACT)
    assert dataset.label_names == ("dawn", "dusk", "night", "noon")  # all splits share the vocabulary
    assert dataset.num_labels == 4
    assert [dataset[i]["label"] for i in range(3)] == [3, 0, 2]
    assert dataset[1]["text"] == "at dawn" and dataset.texts == ["at noon", "at dawn", "at night"]
    assert open_dataset(tmp_path, "test", transform=EXACT)[0]["label"] == 1
    resolved = resolve_dataset(tmp_path)
    assert resolved.conditioned and resolved.conditions == ("label", "text")


def test_csv_integer_labels_are_used_as_given(tmp_path):
    make_aligned(tmp_path, {"train": 2})
    (tmp_path / "metadata.csv").write_text("file_name,label\ntrain/000.png,4\ntrain/001.png,0\n")
    dataset = open_dataset(tmp_path, "train", transform=EXACT)
    assert dataset.label_names is None and dataset.num_labels == 5
    assert [dataset[i]["label"] for i in range(2)] == [4, 0]
    assert "text" not in dataset[0]


@pytest.mark.parametrize("name, content", [
    ("metadata.csv", "file_name,label\ntrain/000.png,4\ntrain/001.png,0\n"),
    ("metadata.jsonl", '{"file_name": "train/000.png", "label": 4}\n{"file_name": "train/001.png", "label": 0}\n'),
])
def test_metadata_with_a_byte_order_mark_reads_as_without(tmp_path, name, content):
    make_aligned(tmp_path, {"train": 2})
    (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + content.encode())  # as Excel's "CSV UTF-8" writes
    dataset = open_dataset(tmp_path, "train", transform=EXACT)
    assert [dataset[i]["label"] for i in range(2)] == [4, 0]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_metadata_with_a_byte_order_mark_is_read(tmp_path, encoding):
    make_aligned(tmp_path, {"train": 2})
    content = "file_name,label\r\ntrain/000.png,café\r\ntrain/001.png,thé\r\n"  # as Notepad saves "Unicode"
    data = content.encode(encoding)
    (tmp_path / "metadata.csv").write_bytes(data if encoding == "utf-16" else b"\xfe\xff" + data)
    dataset = open_dataset(tmp_path, "train", transform=EXACT)
    assert sorted(dataset.label_names) == ["café", "thé"]


def test_metadata_in_another_encoding_is_a_one_line_error_naming_the_line(tmp_path):
    make_aligned(tmp_path, {"train": 2})
    (tmp_path / "metadata.csv").write_bytes("file_name,label\ntrain/000.png,cafe\ntrain/001.png,café\n".encode("latin-1"))
    with pytest.raises(UsageError, match=r"metadata.csv line 3 is not UTF-8 text \(byte 0xe9\); save the file as UTF-8"):
        resolve_dataset(tmp_path)


def test_per_split_metadata_names_files_relative_to_the_split(tmp_path):
    make_aligned(tmp_path, {"train": 2})
    (tmp_path / "train" / "metadata.jsonl").write_text(
        '{"file_name": "000.png", "text": "first"}\n{"file_name": "001.png", "text": "second"}\n'
    )
    dataset = open_dataset(tmp_path, "train", transform=EXACT)
    assert [dataset[i]["text"] for i in range(2)] == ["first", "second"]


def test_metadata_for_unaligned_and_folder_layouts(tmp_path):
    make_unaligned(tmp_path / "u", {"trainA": 2, "trainB": 2})
    (tmp_path / "u" / "metadata.jsonl").write_text(
        '{"file_name": "trainA/000.png", "label": 1}\n{"file_name": "trainA/001.png", "label": 0}\n'
    )
    assert [open_dataset(tmp_path / "u", "train")[i]["label"] for i in range(2)] == [1, 0]
    make_aligned_folders(tmp_path / "f", {"train": 2})
    (tmp_path / "f" / "metadata.jsonl").write_text(
        '{"file_name": "train/000.png", "label": "b"}\n{"file_name": "train/001.png", "label": "a"}\n'
    )
    assert [open_dataset(tmp_path / "f", "train")[i]["label"] for i in range(2)] == [1, 0]


@pytest.mark.parametrize("name, content", [
    ("metadata.jsonl", '{"file_name": "train/000.png", "label": "cat", "text": "a"}\n'
                       '{"file_name": "train/001.png", "label": " ", "text": "b"}\n'),
    ("metadata.jsonl", '{"file_name": "train/000.png", "label": "cat", "text": "a"}\n'
                       '{"file_name": "train/001.png", "label": "dog", "text": "   "}\n'),
    ("metadata.csv", "file_name,label,text\ntrain/000.png,cat,a\ntrain/001.png,dog,  \n"),
])
def test_a_blank_label_or_caption_for_some_images_is_refused_in_either_format(tmp_path, name, content):
    # In JSONL a label "" became a label named "" and a caption of spaces a caption; in a CSV a caption of
    # spaces did: the every-image-or-none check let them through.
    make_aligned(tmp_path, {"train": 2})
    (tmp_path / name).write_text(content)
    with pytest.raises(UsageError, match=r"for 1 of 2 train images, not for train/001.png \(a blank or null"):
        open_dataset(tmp_path, "train")


def test_a_caption_without_any_word_is_refused_naming_its_line(tmp_path):
    # A caption of emoji or punctuation trained as one unknown word, unsaid; translate-infer refuses it.
    make_aligned(tmp_path, {"train": 2})
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "train/000.png", "text": "a night sky"}\n'
                                             '{"file_name": "train/001.png", "text": "\U0001f319 !!"}\n')
    with pytest.raises(UsageError, match=r"metadata.jsonl.*line 2.*has no words \(letters or digits\)"):
        open_dataset(tmp_path, "train")
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "train/000.png", "text": "a night sky"}\n'
                                             '{"file_name": "train/001.png", "text": "\u00e9t\u00e9 \U0001f319"}\n')
    assert open_dataset(tmp_path, "train")[1]["text"] == "\u00e9t\u00e9 \U0001f319"  # a word beside it: read
    from translate.data import layouts
    from translate.nets import conditions

    assert layouts._WORD.pattern == conditions._WORD.pattern  # one rule for what a word is


def test_label_names_lose_their_surrounding_spaces_in_jsonl_as_in_csv(tmp_path):
    make_aligned(tmp_path, {"train": 2})
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "train/000.png", "label": "dusk "}\n'
                                             '{"file_name": "train/001.png", "label": "dusk"}\n')
    dataset = open_dataset(tmp_path, "train")
    assert dataset.label_names == ("dusk",) and [dataset[i]["label"] for i in range(2)] == [0, 0]


def test_an_image_named_twice_with_the_same_condition_is_fine(tmp_path):
    make_aligned(tmp_path, {"train": 2})
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "train/000.png", "label": 1}\n' * 2
                                             + '{"file_name": "train/001.png", "label": 0}\n')
    assert [open_dataset(tmp_path, "train")[i]["label"] for i in range(2)] == [1, 0]


def test_metadata_that_covers_only_some_images_is_refused(tmp_path):
    make_aligned(tmp_path, {"train": 3})
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "train/000.png", "label": 0}\n')
    with pytest.raises(UsageError, match=r"1 of 3 train images \(missing e.g. train/001.png\)"):
        open_dataset(tmp_path, "train")


@pytest.mark.parametrize(
    "content, message",
    [
        # Excel's "CSV" in many locales: every row seemed to lack its file_name, the header went unmentioned.
        ("file_name;label\ntrain/000.png;1\ntrain/001.png;0\n", r"no file_name column .*commas, not ';'"),
        ("file_name\tlabel\ntrain/000.png\t1\n", r"no file_name column .*commas, not '\\t'"),
        ("filename,label\ntrain/000.png,1\n", r"no file_name column \(found 'filename,label'\); name the columns"),
    ],
)
def test_a_csv_without_a_file_name_column_names_its_header(tmp_path, content, message):
    make_aligned(tmp_path, {"train": 2})
    (tmp_path / "metadata.csv").write_text(content)
    with pytest.raises(UsageError, match=message) as error:
        load_conditions(tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"file_name": "train/000.png", "label": 1}\n{"file_name": "train/001.png", "label": "cat"}\n',
         "mix integers and names"),
        ('{"label": 1}\n', "has no file_name"),
        ("not json\n", "line 1 is not valid JSON"),
        ('{"file_name": "../secret.png", "label": 1}\n', "leaves the dataset folder"),
        ('{"file_name": "train/000.png", "label": -1}\n', "negative"),
        # The same image twice with other conditions: the last one silently won.
        ('{"file_name": "train/000.png", "label": 1}\n{"file_name": "train/001.png", "label": 0}\n'
         '{"file_name": "train/000.png", "label": 0}\n',
         r"line 3 gives train/000.png another condition than .*line 1 \(label 0 against label 1\)"),
        ('{"file_name": "train/000.png", "text": "a"}\n{"file_name": "./train/000.png", "text": "b"}\n',
         r"line 2 gives train/000.png another condition .*text 'b' against text 'a'\); keep one record per image$"),
        # A bare name twice: most often two folders' images, each named without its folder.
        ('{"file_name": "000.png", "label": 1}\n{"file_name": "000.png", "label": 0}\n',
         r"keep one record per image; or, if they are images of two folders, name each by its path in the "
         r"dataset folder \(e.g. train/000.png\)$"),
    ],
)
def test_bad_metadata_is_a_one_line_usage_error(tmp_path, content, message):
    make_aligned(tmp_path, {"train": 2})
    (tmp_path / "metadata.jsonl").write_text(content)
    with pytest.raises(UsageError, match=message) as error:
        load_conditions(tmp_path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_a_pair_whose_a_and_b_files_have_different_conditions_is_refused(tmp_path, direction):
    from PIL import Image

    # The A file's label was read in a2b and the B file's in b2a.
    for side in "AB":
        (tmp_path / "train" / side).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8)).save(tmp_path / "train" / side / f"{i}.png")
    (tmp_path / "metadata.jsonl").write_text(
        '{"file_name": "train/A/0.png", "label": "day"}\n{"file_name": "train/B/0.png", "label": "night"}\n'
        '{"file_name": "train/A/1.png", "label": "day"}\n{"file_name": "train/B/1.png", "label": "day"}\n')
    with pytest.raises(UsageError, match=r"gives train/[AB]/0.png and train/[AB]/0.png of one pair different conditions"):
        open_dataset(tmp_path, "train", direction=direction)
    (tmp_path / "metadata.jsonl").write_text(  # the same condition on both files of a pair is fine
        '{"file_name": "train/A/0.png", "label": "day"}\n{"file_name": "train/B/0.png", "label": "day"}\n'
        '{"file_name": "train/A/1.png", "label": "night"}\n')
    assert [open_dataset(tmp_path, "train", direction=direction)[i]["label"] for i in range(2)] == [0, 1]
