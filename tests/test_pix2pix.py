"""pix2pix: published defaults, the loss equations, conditioning, and the train/infer/eval commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from translate.data.synthetic import write_synthetic
from translate.io.generator_file import ConditionSpec
from translate.models.base import StepContext
from translate.models.pix2pix import Pix2Pix, Pix2PixConfig


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_synthetic("synth-edges2landscape", root / "edges", n_train=6, n_test=3, size=64, seed=0)
    write_synthetic("synth-daytime", root / "day", n_train=8, n_test=4, size=64, seed=0)
    return root


def tiny_config(**overrides) -> Pix2PixConfig:
    return Pix2PixConfig(data="x", netG="unet_32", ngf=8, ndf=8, size=32, **overrides)


def test_defaults_are_the_published_ones():
    cfg = Pix2PixConfig()
    assert (cfg.netG, cfg.netD, cfg.norm, cfg.dropout, cfg.upsample) == ("unet_256", "basic", "batch", True, "transpose")
    assert cfg.objective == "nsgan" and cfg.lambda_L1 == 100.0
    assert (cfg.lr, cfg.beta1, cfg.beta2, cfg.batch_size) == (2e-4, 0.5, 0.999, 1)
    assert (cfg.epochs, cfg.epochs_decay, cfg.size, cfg.lr_policy) == (100, 100, 256, "linear")
    assert cfg.preprocess == "resize_and_crop" and cfg.flip


class ConstantCritic(torch.nn.Module):
    """A 'discriminator' whose logit map is a fixed function of its input, so losses can be computed by hand."""

    def forward(self, x, condition=None):
        logits = x[:, 3:].mean(dim=1, keepdim=True)  # the judged image's channel mean
        if condition is not None:
            logits = logits + condition.sum(dim=1).view(-1, 1, 1, 1)
        return logits


def test_g_loss_is_adversarial_plus_lambda_times_l1():
    model = Pix2Pix(tiny_config())
    model.D = ConstantCritic()
    A, B = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    fake = torch.rand(2, 3, 32, 32) * 2 - 1
    loss, logs = model.g_loss({"A": A, "B": B}, {"fake_B": fake}, StepContext())
    logits = fake.mean(dim=1, keepdim=True)
    adversarial = torch.nn.functional.softplus(-logits).mean()  # nsgan: -log sigmoid(D(x, G(x)))
    l1 = (fake - B).abs().mean()
    assert loss.item() == pytest.approx((adversarial + 100.0 * l1).item(), rel=1e-5)
    assert logs["G_L1"].item() == pytest.approx(l1.item(), rel=1e-5)


def test_d_loss_is_halved_and_matching_aware_with_a_condition():
    names = ["dawn", "dusk", "night", "noon"]
    spec = ConditionSpec("label", label_names=names, encoder={"num_labels": 4, "dim": 8})
    model = Pix2Pix(tiny_config(objective="lsgan"), spec)
    model.D = ConstantCritic()
    A, B, fake = (torch.rand(3, 3, 32, 32) * 2 - 1 for _ in range(3))
    labels = torch.tensor([0, 2, 3])
    torch.manual_seed(5)
    loss, logs = model.d_loss({"A": A, "B": B, "label": labels}, {"fake_B": fake}, StepContext())
    torch.manual_seed(5)
    wrong = model.mismatched_condition({"label": labels})
    c, c_wrong = model.D_condition(labels), model.D_condition(wrong)
    d = lambda img, cond: img.mean(dim=1, keepdim=True) + cond.sum(dim=1).view(-1, 1, 1, 1)
    real_term = ((d(B, c) - 1) ** 2).mean()
    fake_term = (d(fake, c) ** 2).mean()
    wrong_term = (d(B, c_wrong) ** 2).mean()
    expected = 0.5 * (real_term + 0.5 * fake_term + 0.5 * wrong_term)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logs["D_mismatch"].item() == pytest.approx(wrong_term.item(), rel=1e-5)


def test_mismatched_conditions_always_differ():
    spec = ConditionSpec("label", label_names=list("abcde"), encoder={"num_labels": 5, "dim": 4})
    model = Pix2Pix(tiny_config(), spec)
    labels = torch.randint(0, 5, (500,))
    assert (model.mismatched_condition({"label": labels}) != labels).all()
    captions = ["a scene at dawn", "sunrise hills", "the night sky", "night over a lake"]
    text_spec = ConditionSpec("text", vocabulary=["<pad>", "<unk>", "a", "night"], encoder={"vocab_size": 4, "dim": 4})
    model = Pix2Pix(tiny_config(), text_spec, captions=captions, caption_labels=[0, 0, 1, 1])
    wrong = model.mismatched_condition({"text": ["sunrise hills", "the night sky"], "label": torch.tensor([0, 1])})
    assert wrong[0] in captions[2:] and wrong[1] in captions[:2], "a wrong caption must come from another label"


def test_the_condition_reaches_the_generator():
    spec = ConditionSpec("label", label_names=["day", "night"], encoder={"num_labels": 2, "dim": 8})
    torch.manual_seed(0)
    model = Pix2Pix(tiny_config(dropout=False), spec).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        day, night = model.G(x, ["day"]), model.G(x, ["night"])
    assert (day - night).abs().mean() > 1e-3


# ---- the commands --------------------------------------------------------------------------------

def train_cli(*args) -> int:
    from translate.cli.train import main

    return main(["pix2pix", *map(str, args)])


SMALL = ["--size", 32, "--netG", "unet_32", "--ngf", 8, "--ndf", 8, "--workers", 0, "--log-every", 1,
         "--sample-every", 2, "--amp", "off", "--no-tensorboard"]


def test_train_infer_eval_end_to_end(datasets, tmp_path, capsys):
    from translate.cli.eval import main as eval_main
    from translate.cli.infer import main as infer_main

    ckpt = tmp_path / "ckpt"
    assert train_cli("--data", datasets / "edges", "--checkpoints", ckpt, "--name", "run", "--max-steps", 3, *SMALL) == 0
    run = ckpt / "run"
    for name in ("config.json", "run.json", "metrics.jsonl", "state.pt", "G.safetensors", "samples/latest.png"):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["lambda_L1"] == 100.0 and config["max_steps"] == 3
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3] and all("G_L1" in m and "loss_D" in m for m in metrics)

    # A 40x56 input: not a multiple of 32, so it is padded for the network and cropped back.
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (56, 40), (200, 30, 30)).save(src / "red.png")
    out = tmp_path / "out"
    assert infer_main(["--model", str(run), "--input", str(src), "--output", str(out), "--device", "cpu"]) == 0
    assert Image.open(out / "red.png").size == (56, 40)
    assert "red.png" in (out / "index.html").read_text()

    capsys.readouterr()
    assert eval_main(["--model", str(run), "--data", str(datasets / "edges"), "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 3 and {"l1", "psnr", "ssim"} <= set(result["model"])
    assert {"identity", "mean_target"} <= set(result["baselines"])


@pytest.mark.parametrize("condition", ["label", "text"])
def test_conditioned_training_exports_a_generator_that_takes_the_condition(datasets, tmp_path, condition, capsys):
    from translate.io.generator_file import load_generator

    ckpt = tmp_path / "ckpt"
    assert train_cli("--data", datasets / "day", "--checkpoints", ckpt, "--name", "c", "--max-steps", 2,
                     "--condition", condition, *SMALL) == 0
    G = load_generator(ckpt / "c" / "G.safetensors")
    assert G.condition.kind == condition
    x = torch.zeros(1, 3, 32, 32)
    cond = "dusk" if condition == "label" else "a landscape at dusk"
    assert G(x, cond).shape == (1, 3, 32, 32)

    from translate.cli.eval import main as eval_main

    capsys.readouterr()
    assert eval_main(["--model", str(ckpt / "c"), "--data", str(datasets / "day"), "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"l1", "psnr", "ssim"} <= set(result["shuffled_condition"])
    assert {"matched_logit", "mismatched_logit", "matched_higher"} <= set(result["discriminator"])
    # Without --json: the same numbers as a table a person reads
    assert eval_main(["--model", str(ckpt / "c"), "--data", str(datasets / "day"), "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    for row in ("model ", "baseline: identity", "baseline: mean target", "model, wrong conditions"):
        assert row in table, table
    model_row = next(line for line in table.splitlines() if line.startswith("model "))
    assert model_row.split()[1:] == [f"{result['model']['l1']:.4f}", f"{result['model']['psnr']:.2f}",
                                     f"{result['model']['ssim']:.4f}"]
    assert f"matched scored higher for {100 * result['discriminator']['matched_higher']:.0f}%" in table
    # One test image (one condition): the scores, and a note instead of D's matching (it was exit 2)
    assert eval_main(["--model", str(ckpt / "c"), "--data", str(datasets / "day"), "--json", "--limit", "1"]) == 0
    captured = capsys.readouterr()
    assert "l1" in json.loads(captured.out)["model"] and "discriminator" not in json.loads(captured.out)
    assert "note: no discriminator matching" in captured.err
    # Scored on data that gives no condition: one line that says so, not a traceback.
    assert eval_main(["--model", str(ckpt / "c"), "--data", str(datasets / "edges"), "--device", "cpu"]) == 2
    assert f"conditioned on a {condition} per image" in _one_line_error(capsys)
    assert eval_main(["--model", str(ckpt / "c"), "--data", str(datasets / "day"), "--batch-size", "0"]) == 2
    assert "--batch-size must be positive" in _one_line_error(capsys)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("translate-"), err
    return err[0]


def test_bad_input_gives_one_line_errors_and_exit_2(datasets, tmp_path, capsys):
    from translate.cli.infer import main as infer_main

    ckpt = tmp_path / "ckpt"
    assert train_cli("--data", datasets / "edges", "--checkpoints", ckpt, "--size", 100, "--netG", "unet_256",
                     "--max-steps", 1) == 2
    assert "multiples of 256" in _one_line_error(capsys)
    assert train_cli("--data", tmp_path / "missing", "--checkpoints", ckpt, "--max-steps", 1, *SMALL) == 2
    _one_line_error(capsys)
    assert train_cli("--data", datasets / "edges", "--checkpoints", ckpt, "--name", "none", "--resume", *SMALL) == 2
    assert "nothing to resume" in _one_line_error(capsys)
    assert train_cli("--data", datasets / "edges", "--checkpoints", ckpt, "--max-steps", 0, *SMALL) == 2
    _one_line_error(capsys)
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    assert infer_main(["--model", str(not_a_run), "--input", str(datasets / "edges"), "--output", str(tmp_path / "o")]) == 2
    assert "not a run folder" in _one_line_error(capsys)
    # A mistyped value is one line too (argparse would print its whole usage text first).
    assert train_cli("--data", datasets / "edges", "--objective", "sigmoid") == 2
    assert "invalid choice: 'sigmoid'" in _one_line_error(capsys)


def test_an_existing_run_is_never_overwritten(datasets, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert train_cli("--data", datasets / "edges", "--checkpoints", ckpt, "--name", "r", "--max-steps", 1, *SMALL) == 0
    before = (ckpt / "r" / "G.safetensors").read_bytes()
    capsys.readouterr()
    assert train_cli("--data", datasets / "edges", "--checkpoints", ckpt, "--name", "r", "--max-steps", 1, *SMALL) == 2
    assert "--resume" in _one_line_error(capsys)
    assert (ckpt / "r" / "G.safetensors").read_bytes() == before
    # --resume with a larger budget continues from the checkpoint and keeps the saved settings.
    assert train_cli("--checkpoints", ckpt, "--name", "r", "--resume", "--max-steps", 2) == 0
    config = json.loads((ckpt / "r" / "config.json").read_text())
    assert config["max_steps"] == 2 and config["ngf"] == 8


def test_d_regularizer_and_instance_noise_reach_the_discriminator_only():
    from translate.core.noise import InstanceNoise

    spec = ConditionSpec("label", label_names=list("abc"), encoder={"num_labels": 3, "dim": 4})
    plain = Pix2Pix(tiny_config(), spec)
    assert plain.d_regularizers == [] and plain.adversary.instance_noise is None
    model = Pix2Pix(tiny_config(d_reg="sn", instance_noise=0.1, max_steps=20), spec)
    # One regularizer, on D: the condition encoder's embedding is not a layer to normalize.
    assert len(model.d_regularizers) == 1
    assert any("parametrizations" in name for name, _ in model.D.named_modules())
    assert not any("parametrizations" in name for name, _ in model.D_condition.named_modules())
    assert isinstance(model.adversary.instance_noise, InstanceNoise)


@pytest.mark.slow
def test_a_label_conditioned_model_learns_to_use_its_label(tmp_path, capsys):
    """A small label-conditioned pix2pix, 200 steps on synth-daytime at 32 px: given each test image's own
    label it is much closer to the truth than given the shuffled labels, and its D scores real pairs
    under their own label above the same pairs under a wrong one (the issue's conditioning check, small)."""
    from translate.cli.eval import main as eval_main

    data = tmp_path / "day"
    write_synthetic("synth-daytime", data, n_train=32, n_test=16, size=32, seed=0)
    ckpt = tmp_path / "ckpt"
    assert train_cli("--data", data, "--checkpoints", ckpt, "--name", "c", "--max-steps", 200, "--batch-size", 4,
                     "--condition", "label", "--seed", 0, *SMALL[:10], "--sample-every", 1000, "--log-every", 50,
                     "--amp", "off", "--no-tensorboard") == 0
    capsys.readouterr()
    assert eval_main(["--model", str(ckpt / "c"), "--data", str(data), "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    right, shuffled, d = result["model"], result["shuffled_condition"], result["discriminator"]
    assert right["l1"] < 0.7 * shuffled["l1"] and right["psnr"] > shuffled["psnr"] + 2.0
    assert right["l1"] < result["baselines"]["identity"]["l1"] and right["l1"] < result["baselines"]["mean_target"]["l1"]
    assert d["matched_logit"] > d["mismatched_logit"] and d["matched_higher"] > 0.5


# ---- conditions the data gives in other forms ---------------------------------------------------------

def _conditioned_set(root: Path, rows: list[dict]) -> "object":
    from tests._data_helpers import make_aligned
    from translate.data import TransformConfig, open_dataset

    make_aligned(root, {"train": len(rows)})
    with open(root / "metadata.jsonl", "w") as handle:
        for i, row in enumerate(rows):
            handle.write(json.dumps({"file_name": f"train/{i:03d}.png", **row}) + "\n")
    return open_dataset(root, "train", transform=TransformConfig(size=32))


def test_integer_labels_are_named_by_their_numbers(tmp_path):
    from translate.models.pix2pix import condition_spec_for

    dataset = _conditioned_set(tmp_path, [{"label": 2}, {"label": 0}, {"label": 1}])
    spec = condition_spec_for(tiny_config(condition="label"), dataset)
    assert spec.label_names == ["0", "1", "2"] and spec.encoder["num_labels"] == 3


def test_a_single_label_or_caption_leaves_no_wrong_condition_for_d(tmp_path):
    from translate.errors import UsageError
    from translate.models.pix2pix import condition_spec_for

    one_label = _conditioned_set(tmp_path / "l", [{"label": "only"}, {"label": "only"}])
    with pytest.raises(UsageError, match="--no-mismatch"):
        condition_spec_for(tiny_config(condition="label"), one_label)
    assert condition_spec_for(tiny_config(condition="label", mismatch=False), one_label).label_names == ["only"]
    same_words = _conditioned_set(tmp_path / "t", [{"text": "A dusk scene."}, {"text": "a dusk scene"}])
    with pytest.raises(UsageError, match="--no-mismatch"):
        condition_spec_for(tiny_config(condition="text"), same_words)


def test_a_wrong_caption_differs_in_its_words_not_only_its_spelling():
    captions = ["A dusk scene.", "a dusk scene", "a DUSK scene!", "night over the hills"]
    spec = ConditionSpec("text", vocabulary=["<pad>", "<unk>", "a", "dusk", "scene", "night", "over", "the", "hills"],
                         encoder={"vocab_size": 9, "dim": 4})
    model = Pix2Pix(tiny_config(), spec, captions=captions)
    torch.manual_seed(0)
    wrong = model.mismatched_condition({"text": ["a dusk scene"] * 200})
    assert set(wrong) == {"night over the hills"}


@pytest.mark.parametrize("word_dropout", [0.0, 0.5])
def test_word_dropout_gives_the_unknown_word_a_trained_meaning(word_dropout):
    # The vocabulary holds the training captions' words only: without word dropout `<unk>` (what a
    # caption's unseen word becomes at inference) never receives a gradient, in G's encoder or D's.
    words = ["<pad>", "<unk>", "a", "dusk", "scene", "night", "over", "the", "hills"]
    spec = ConditionSpec("text", vocabulary=words, encoder={"vocab_size": len(words), "dim": 4})
    captions = ["a dusk scene", "night over the hills"]
    model = Pix2Pix(tiny_config(word_dropout=word_dropout), spec, captions=captions).train()
    torch.manual_seed(0)
    batch = {"A": torch.rand(4, 3, 32, 32) * 2 - 1, "B": torch.rand(4, 3, 32, 32) * 2 - 1, "text": captions * 2}
    out = model.generate(batch)
    seen_by_d = []
    d_condition = model.d_condition
    model.d_condition = lambda condition, *rest: seen_by_d.append(condition) or d_condition(condition, *rest)
    loss, _ = model.g_loss(batch, out, StepContext())
    model.d_condition = d_condition
    loss.backward()
    # D judges the fake under the caption G painted from, with the same words dropped
    assert seen_by_d[0] is out["condition"]
    unk = 1
    for encoder in (model.G.condition_encoder, model.D_condition):
        grad = encoder.embedding.weight.grad
        assert grad[2:].abs().sum() > 0
        assert (grad[unk].abs().sum() > 0) == (word_dropout > 0)
    model.eval()  # inference and evaluation read every word
    assert model._condition_of(batch) == batch["text"]
    vocabulary = model.G.vocabulary
    assert vocabulary.unknown_words("A starry night, a starry sky") == ["starry", "sky"]


def test_word_dropout_is_a_share():
    from translate.errors import UsageError

    with pytest.raises(UsageError, match="--word-dropout must be in"):
        tiny_config(word_dropout=1.0).validate()


def test_wrong_labels_are_drawn_among_the_labels_the_training_images_have(tmp_path):
    # Integer labels 0 and 7 make eight label slots; a wrong label from the six no image has is a
    # negative D learns to reject without looking at the pair.
    from translate.models import model_spec

    dataset = _conditioned_set(tmp_path, [{"label": 0}, {"label": 7}, {"label": 7}, {"label": 0}])
    cfg = tiny_config(condition="label")
    model = model_spec("pix2pix").build(cfg, dataset)
    assert model.D_condition.num_labels == 8
    labels = torch.tensor([0, 7] * 200)
    wrong = model.mismatched_condition({"label": labels})
    assert torch.equal(wrong, 7 - labels)
    # with every label present the draw is the one it always was (documented runs train as before)
    spec = ConditionSpec("label", label_names=list("abcd"), encoder={"num_labels": 4, "dim": 4})
    full = Pix2Pix(tiny_config(), spec, labels_present=[0, 1, 2, 3, 3])
    bare = Pix2Pix(tiny_config(), spec)
    labels = torch.randint(0, 4, (300,))
    torch.manual_seed(5)
    first = full.mismatched_condition({"label": labels})
    torch.manual_seed(5)
    assert torch.equal(first, bare.mismatched_condition({"label": labels}))


@pytest.mark.parametrize("rows, needle", [
    ([{"file_name": "000.png", "label": "a"}, {"file_name": "001.png", "label": "b"}],
     "names '000.png', which is no image's path; names are relative to the dataset folder and match case and "
     "extension, e.g. 'train/000.png'"),
    # Written where case does not matter, or before the images became JPEGs: trained unconditioned, unsaid.
    ([{"file_name": "train/000.PNG", "label": "a"}, {"file_name": "train/001.PNG", "label": "b"}],
     "names 'train/000.PNG', which is no image's path; names are relative to the dataset folder and match case and "
     "extension, e.g. 'train/000.png'"),
    ([{"file_name": "Train/000.jpg", "label": "a"}, {"file_name": "Train/001.jpg", "label": "b"}],
     "names 'Train/000.jpg', which is no image's path"),
    ([{"file_name": "train/000.png", "label": "a"}, {"file_name": "train/001.png", "label": None}],
     "gives a label for 1 of 2 train images, not for train/001.png (a blank or null label)"),
])
def test_metadata_that_would_leave_the_model_unconditioned_is_refused(tmp_path, rows, needle):
    # Names without their folder, or one blank label, used to train an unconditioned model (or one
    # conditioned on captions instead of labels) without a word.
    from tests._data_helpers import make_aligned
    from translate.data import TransformConfig, open_dataset
    from translate.errors import UsageError

    make_aligned(tmp_path, {"train": 2})
    with open(tmp_path / "metadata.jsonl", "w") as handle:
        for row in rows:
            handle.write(json.dumps({**row, "text": "a scene"} if "blank" in needle else row) + "\n")
    with pytest.raises(UsageError) as refused:
        open_dataset(tmp_path, "train", transform=TransformConfig(size=32))
    assert needle in str(refused.value)


def test_names_without_their_folder_are_refused_also_when_another_split_has_images_of_those_names(tmp_path):
    # test/000.png exists and is named correctly: the bare '000.png' of the train rows was taken for it,
    # and training went unconditioned with a note instead of the refusal.
    from tests._data_helpers import make_aligned
    from translate.data import TransformConfig, open_dataset
    from translate.errors import UsageError

    make_aligned(tmp_path, {"train": 2, "test": 2})
    rows = [("000.png", "a"), ("001.png", "b"), ("test/000.png", "a"), ("test/001.png", "b")]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps({"file_name": n, "label": l}) + "\n" for n, l in rows))
    with pytest.raises(UsageError, match="names '000.png', which is no image's path; .* e.g. 'train/000.png'"):
        open_dataset(tmp_path, "train", transform=TransformConfig(size=32))


def test_a_test_split_without_the_condition_shows_training_images_in_the_grids(tmp_path, capsys):
    # Labels for the training images only: the first sample grid asked the test images for theirs
    # and the run died there with a KeyError, losing its steps.
    from tests._data_helpers import make_aligned

    data = make_aligned(tmp_path / "data", {"train": 4, "test": 2}, size=(32, 32))
    with open(data / "metadata.jsonl", "w") as handle:
        for i in range(4):
            handle.write(json.dumps({"file_name": f"train/{i:03d}.png", "label": "ab"[i % 2]}) + "\n")
    assert train_cli("--data", data, "--checkpoints", tmp_path / "ck", "--name", "r", "--max-steps", 3,
                     "--condition", "label", *SMALL) == 0
    err = capsys.readouterr().err
    assert "the sample grids show training images, since the test split has no label conditions" in err
    assert (tmp_path / "ck" / "r" / "state.pt").is_file()


def test_a_test_split_without_targets_does_not_stop_training(tmp_path, capsys):
    # test/A alone (photos to translate later) refused training, which reads the test split only
    # for its sample grids.
    import shutil

    from tests._data_helpers import make_aligned_folders

    data = make_aligned_folders(tmp_path / "data", {"train": 4, "test": 2})
    shutil.rmtree(data / "test" / "B")
    assert train_cli("--data", data, "--checkpoints", tmp_path / "ck", "--name", "r", "--max-steps", 2, *SMALL) == 0
    assert "the sample grids show training images, since the test split cannot be read as pairs" in capsys.readouterr().err


def test_the_data_pipelines_notes_reach_the_user(tmp_path, capsys):
    # Pairs whose B differs in size from its A are resized to match, "noted once" said the docs; the
    # note went to a logger nobody had given a handler, and Python drops such INFO records.
    from tests._data_helpers import make_aligned_folders, pattern, write_image

    data = make_aligned_folders(tmp_path / "data", {"train": 4, "test": 2})
    for path in (data / "train" / "B").iterdir():
        write_image(path, pattern(48, 40, seed=1))
    assert train_cli("--data", data, "--checkpoints", tmp_path / "ck", "--name", "r", "--max-steps", 1, *SMALL) == 0
    err = capsys.readouterr().err
    assert "translate-train: note: B images that differ in size from their A (e.g. 40x48 vs 32x32) are resized" in err


def test_a_label_without_training_images_is_noted_when_the_model_is_built(tmp_path, caplog):
    # Labels only the test images have: the model took them as names it knows, and translating with one
    # gave an untrained result without a word.
    import logging

    from tests._data_helpers import make_aligned
    from translate.data import TransformConfig, open_dataset
    from translate.models.pix2pix import condition_spec_for

    make_aligned(tmp_path, {"train": 2, "test": 1})
    with open(tmp_path / "metadata.jsonl", "w") as handle:
        for name, label in (("train/000.png", "dawn"), ("train/001.png", "dusk"), ("test/000.png", "night")):
            handle.write(json.dumps({"file_name": name, "label": label}) + "\n")
    dataset = open_dataset(tmp_path, "train", transform=TransformConfig(size=32))
    with caplog.at_level(logging.INFO, logger="translate"):
        spec = condition_spec_for(tiny_config(), dataset)
    assert spec.label_names == ["dawn", "dusk", "night"]
    assert "label night (named in the metadata) has no training image" in caplog.text
    caplog.clear()
    (tmp_path / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": n, "label": l}) + "\n"
        for n, l in (("train/000.png", "dawn"), ("train/001.png", "dusk"), ("test/000.png", "dusk"))))
    with caplog.at_level(logging.INFO, logger="translate"):
        condition_spec_for(tiny_config(), open_dataset(tmp_path, "train", transform=TransformConfig(size=32)))
    assert "no training image" not in caplog.text
    # Integer labels with a gap: the missing one is named by no record.
    (tmp_path / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": n, "label": l}) + "\n"
        for n, l in (("train/000.png", 0), ("train/001.png", 2), ("test/000.png", 0))))
    with caplog.at_level(logging.INFO, logger="translate"):
        condition_spec_for(tiny_config(), open_dataset(tmp_path, "train", transform=TransformConfig(size=32)))
    assert "label 1 (below the largest integer label) has no training image" in caplog.text


def test_labels_for_other_splits_only_are_noted_when_training_goes_unconditioned(tmp_path, caplog):
    import logging

    from tests._data_helpers import make_aligned
    from translate.data import TransformConfig, open_dataset
    from translate.models.pix2pix import condition_spec_for

    make_aligned(tmp_path, {"train": 2, "test": 2})
    (tmp_path / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": f"test/{i:03d}.png", "label": label}) + "\n" for i, label in enumerate("ab")))
    with caplog.at_level(logging.INFO, logger="translate"):
        spec = condition_spec_for(tiny_config(), open_dataset(tmp_path, "train", transform=TransformConfig(size=32)))
    assert spec.kind == "none" and "labels none of the training images (only other files): the model is trained without conditions" in caplog.text
