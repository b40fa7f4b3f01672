"""translate-eval's scores: each test image once, scored against its own ground truth."""

from __future__ import annotations

import json

import pytest
import torch

from _app_helpers import tiny_generator_file
from tests._data_helpers import make_unaligned
from translate.data import TransformConfig, open_dataset
from translate.eval.evaluate import evaluate
from translate.eval.metrics import l1_per_image
from translate.io.generator_file import load_generator


def test_an_unpaired_test_set_with_more_b_than_a_scores_each_test_image_once(tmp_path):
    # An unpaired set is as long as its larger domain (an epoch); scoring must not wrap around testA.
    root = make_unaligned(tmp_path / "set", {"trainA": 1, "trainB": 1, "testA": 3, "testB": 5}, size=(32, 32),
                          truth=True)
    dataset = open_dataset(root, "test", pairing="unpaired", transform=TransformConfig(size=32), train=False)
    assert len(dataset) == 5 and len(dataset.entries) == 3
    generator = load_generator(tiny_generator_file(tmp_path / "G.safetensors"))
    result = evaluate(generator, dataset, batch_size=2)
    assert result.n == 3
    with torch.no_grad():
        samples = [dataset[i] for i in range(3)]
        A = torch.stack([s["A"] for s in samples])
        truth = torch.stack([s["B_truth"] for s in samples])
        expected = l1_per_image(generator(A), truth).mean().item()
    assert result.model["l1"] == pytest.approx(expected, rel=1e-5)


def test_a_split_with_truth_for_some_images_only_is_refused_in_one_line(tmp_path, capsys):
    from translate.cli.eval import main as eval_main

    root = make_unaligned(tmp_path / "set", {"trainA": 1, "trainB": 1, "testA": 3, "testB": 1}, size=(32, 32),
                          truth=True)
    (root / "testA_truth" / "001.png").unlink()
    model = tiny_generator_file(tmp_path / "G.safetensors")
    assert eval_main(["--model", str(model), "--data", str(root), "--size", "32", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1 of 3 images have no ground truth" in err and "001.png" in err


@pytest.mark.parametrize("direction, nested", [("a2b", False), ("b2a", False), ("a2b", True)])
def test_a_split_without_truth_names_its_own_truth_folder_and_the_other_direction(tmp_path, capsys, direction,
                                                                                 nested):
    # The message always named testA_truth/, also for --direction b2a (which reads testB_truth/); with the
    # images in a subfolder of testA/ it must still name the split's folder, not the subfolder.
    import shutil

    from translate.cli.eval import main as eval_main

    root = make_unaligned(tmp_path / "set", {"trainA": 1, "trainB": 1, "testA": 2, "testB": 2}, size=(32, 32),
                          truth=True)
    own, other = ("testA", "testB") if direction == "a2b" else ("testB", "testA")
    shutil.rmtree(root / f"{own}_truth")
    if nested:
        (root / own / "sub").mkdir()
        for image in (root / own).glob("*.png"):
            image.rename(root / own / "sub" / image.name)
    model = tiny_generator_file(tmp_path / "G.safetensors", card={"model": "test", "role": "G", "translates": direction})
    assert eval_main(["--model", str(model), "--data", str(root), "--size", "32", "--direction", direction]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"({own}_truth/ beside {own}/)" in err
    assert f"{other}_truth/ is there" in err and f"--direction {'b2a' if direction == 'a2b' else 'a2b'}" in err


def test_the_wrong_conditions_of_the_control_always_mean_something_else():
    from translate.eval.evaluate import wrong_conditions

    labels = ["dawn", "dusk", "night", "noon"] * 25  # like synth-daytime's test split
    wrong = wrong_conditions(labels, torch.Generator().manual_seed(0))
    assert all(w != own for w, own in zip(wrong, labels))
    assert len(set(wrong)) == 4  # every other label is drawn
    captions = ["at sunset", "as the sun goes down", "at noon"]
    wrong = wrong_conditions(captions, torch.Generator().manual_seed(0), meanings=["dusk", "dusk", "noon"])
    assert wrong == ["at noon", "at noon", wrong[2]] and wrong[2] in captions[:2]
    assert wrong_conditions(["dusk", "dusk"], torch.Generator().manual_seed(0)) is None


@pytest.mark.parametrize("size", ["abc", -3, True])
def test_a_hand_edited_training_size_is_one_line(tmp_path, capsys, size):
    from translate.cli.eval import main as eval_main

    root = make_unaligned(tmp_path / "set", {"trainA": 1, "trainB": 1, "testA": 1, "testB": 1}, size=(32, 32),
                          truth=True)
    model = tiny_generator_file(tmp_path / "G.safetensors", card={"size": size})
    assert eval_main(["--model", str(model), "--data", str(root), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass --size" in err
    assert eval_main(["--model", str(model), "--data", str(root), "--size", "32", "--json"]) == 0


def test_a_model_trained_under_the_reversed_name_is_scored_in_its_own_direction(tmp_path, capsys):
    # Trained on synth-vangogh2photo a2b, it paints photos from paintings: on synth-photo2vangogh that is b2a.
    from translate.cli.eval import main as eval_main
    from translate.data.resolve import SyntheticOptions, generate_synthetic

    root = tmp_path / "datasets"
    generate_synthetic("synth-photo2vangogh", root / "synth-photo2vangogh", SyntheticOptions(n_train=2, n_test=2, size=32))
    model = tiny_generator_file(tmp_path / "G.safetensors", card={"translates": "a2b", "dataset": "synth-vangogh2photo",
                                                                  "size": 32})
    results = []
    # By name, by folder, and with --direction named as on this data (b2a here is the model's own a2b).
    for extra in (["--data", "synth-photo2vangogh"], ["--data", str(root / "synth-photo2vangogh")],
                  ["--data", "synth-photo2vangogh", "--direction", "b2a"]):
        assert eval_main(["--model", str(model), "--datasets", str(root), "--json", *extra]) == 0
        out = capsys.readouterr()
        results.append(json.loads(out.out))
        assert results[-1]["direction"] == "b2a" and "with A and B swapped" in out.err
    assert eval_main(["--model", str(model), "--datasets", str(root), "--data", "synth-photo2vangogh",
                      "--direction", "a2b"]) == 2  # what the file cannot do on this data, said in its terms
    assert "does not translate a2b on synth-photo2vangogh (it was trained on synth-vangogh2photo" in \
        capsys.readouterr().err
    result = results[0]
    assert all(r["model"] == result["model"] for r in results)
    dataset = open_dataset(root / "synth-photo2vangogh", "test", direction="b2a", pairing="unpaired",
                           transform=TransformConfig(size=32), train=False)
    generator = load_generator(model)
    with torch.no_grad():
        samples = [dataset[i] for i in range(len(dataset.entries))]
        paintings = torch.stack([s["A"] for s in samples])  # b2a: A is the painting side
        truth = torch.stack([s["B_truth"] for s in samples])
        expected = l1_per_image(generator(paintings), truth).mean().item()
    assert result["model"]["l1"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("size, fit", [(4, 8), (30, 28)])
def test_a_size_the_generator_cannot_take_is_one_line_with_a_size_it_can(tmp_path, capsys, size, fit):
    # --size 4 passed the multiple check and failed in the network with Python advice
    # (translate.nets.pad_to_multiple); --size 30 named no size that fits.
    from translate.cli.eval import main as eval_main

    root = make_unaligned(tmp_path / "set", {"trainA": 1, "trainB": 1, "testA": 1, "testB": 1}, size=(32, 32),
                          truth=True)
    model = tiny_generator_file(tmp_path / "G.safetensors")  # resnet_6blocks: multiples of 4, at least 8
    assert eval_main(["--model", str(model), "--data", str(root), "--size", str(size)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"use --size {fit}" in err and "translate.nets" not in err


def test_a_generator_of_gray_images_is_scored_as_the_gray_picture_it_shows(tmp_path, capsys):
    # out_channels 1 is a valid generator (translate-infer writes its output as a gray RGB picture); it
    # stopped translate-eval with kornia's ValueError traceback (SSIM of 1 against 3 channels), and a
    # two-way model then fed the gray output to a reverse generator that takes RGB.
    from translate.cli.eval import main as eval_main
    from translate.io.generator_file import TranslationGenerator, save_generator
    from translate.nets.factory import create_generator

    root = make_unaligned(tmp_path / "set", {"trainA": 1, "trainB": 1, "testA": 2, "testB": 2}, size=(32, 32),
                          truth=True)
    run = tmp_path / "run"
    torch.manual_seed(0)
    for role, translates, channels in (("G_A", "a2b", 1), ("G_B", "b2a", 3)):
        net = create_generator("resnet_6blocks", ngf=8, norm="instance", out_channels=channels)
        save_generator(run / f"{role}.safetensors", TranslationGenerator(net, None, {
            "model": "cyclegan", "role": role, "translates": translates, "size": 32}))
    assert eval_main(["--model", str(run), "--data", str(root), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 2 and "cycle" in result
    dataset = open_dataset(root, "test", pairing="unpaired", transform=TransformConfig(size=32), train=False)
    with torch.no_grad():
        A = torch.stack([dataset[i]["A"] for i in range(2)])
        truth = torch.stack([dataset[i]["B_truth"] for i in range(2)])
        gray = load_generator(run / "G_A.safetensors")(A)
        expected = l1_per_image(gray.repeat(1, 3, 1, 1), truth).mean().item()
    assert result["model"]["l1"] == pytest.approx(expected, rel=1e-4)


def test_the_scoring_line_counts_the_images_scored(tmp_path, capsys):
    # It gave the split's length, which for an unpaired set is its larger domain: 'scoring G on 5 test
    # images' above a table of 3 when testB held more images than testA.
    from translate.cli.eval import main as eval_main

    root = make_unaligned(tmp_path / "set", {"trainA": 1, "trainB": 1, "testA": 3, "testB": 5}, size=(32, 32),
                          truth=True)
    model = tiny_generator_file(tmp_path / "G.safetensors")
    assert eval_main(["--model", str(model), "--data", str(root), "--size", "32", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["n"] == 3 and "on 3 test images" in out.err


def test_a_pytorch_file_as_the_model_names_what_to_pass_instead(tmp_path, capsys):
    # A reference .pth (or a run's state.pt) was 'not a safetensors file (... header too large); export one
    # with translate-export', and translate-export FILE.pth answers 'run folder not found'.
    from translate.cli.eval import main as eval_main

    root = make_unaligned(tmp_path / "set", {"trainA": 1, "trainB": 1, "testA": 1, "testB": 1}, size=(32, 32),
                          truth=True)
    pth = tmp_path / "latest_net_G.pth"
    torch.save({"model.1.weight": torch.zeros(8, 3, 7, 7)}, pth)
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "run.json"):
        (run / name).write_text("{}")
    torch.save({"model": {}}, run / "state.pt")
    assert eval_main(["--model", str(pth), "--data", str(root), "--size", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"translate-export --from-reference {pth}" in err
    assert eval_main(["--model", str(run / "state.pt"), "--data", str(root), "--size", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"pass its run folder, {run}" in err


def test_a_label_the_model_does_not_know_is_refused_before_scoring_naming_its_image(tmp_path, capsys):
    # The generator refused it at the first batch holding one, after the earlier batches were scored,
    # without naming the image whose metadata gives it.
    from tests._data_helpers import make_aligned
    from translate.cli.eval import main as eval_main
    from translate.io.generator_file import ConditionSpec

    root = make_aligned(tmp_path / "set", {"train": 1, "test": 3})
    labels = ["dawn", "night", "midnight"]
    (root / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": f"{split}/{i:03d}.png", "label": labels[i]}) + "\n"
        for split, n in (("train", 1), ("test", 3)) for i in range(n)))
    spec = ConditionSpec("label", label_names=["dawn", "night"], encoder={"num_labels": 2})
    model = tiny_generator_file(tmp_path / "G.safetensors", condition=spec)
    assert eval_main(["--model", str(model), "--data", str(root), "--size", "32", "--batch-size", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "test/002.png is labelled 'midnight'" in err[0] and "knows dawn, night" in err[0]


def test_ground_truth_of_another_size_is_noted_in_words_not_by_the_samples_key(tmp_path, capsys):
    # The note read "B_truth images that differ in size from their A ...", the dataset's internal key.
    from PIL import Image

    from translate.cli.eval import main as eval_main

    root = make_unaligned(tmp_path / "set", {"trainA": 1, "trainB": 1, "testA": 2, "testB": 1}, size=(32, 32),
                          truth=True)
    for path in (root / "testA_truth").iterdir():
        Image.open(path).resize((48, 48)).save(path)
    model = tiny_generator_file(tmp_path / "G.safetensors")
    assert eval_main(["--model", str(model), "--data", str(root), "--size", "32", "--json"]) == 0
    err = capsys.readouterr().err
    assert "ground-truth images that differ in size from their A (e.g. 48x48 vs 32x32)" in err
    assert "B_truth" not in err
