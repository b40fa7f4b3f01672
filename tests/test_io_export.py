"""Exporting a run's generators: copied or rebuilt from state.pt, loadable without the training code."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from _app_helpers import train_tiny_run
from translate.cli.export import main as export_main
from translate.errors import UsageError
from translate.io.cards import describe
from translate.io.export import export_run
from translate.io.generator_file import TranslationGenerator, load_generator, read_metadata, save_generator
from translate.nets.factory import create_generator


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("export_labelled"), labels=["day", "night"], name="labelled")


def trained_generator_by_hand(run_dir):
    """The trained G straight from state.pt and config.json, without translate.io: the reference."""
    state = torch.load(run_dir / "state.pt", map_location="cpu", weights_only=True)
    cfg = json.loads((run_dir / "config.json").read_text())
    net = create_generator(cfg["netG"], ngf=cfg["ngf"], norm=cfg["norm"], dropout=cfg["dropout"])
    prefix = "G.generator."
    net.load_state_dict({k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)})
    return net.eval()


def images(n=2, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g) * 2 - 1


def test_export_then_load_gives_the_trained_generators_outputs(run_dir, tmp_path):
    results = export_run(run_dir, tmp_path / "out")
    assert [(r.role, r.how, r.steps) for r in results] == [("G", "copied", 2)]
    loaded = load_generator(tmp_path / "out" / "G.safetensors")
    x = images()
    with torch.no_grad():
        diff = (loaded(x) - trained_generator_by_hand(run_dir)(x)).abs().max().item()
    assert diff <= 1e-6


def test_a_run_that_stopped_before_exporting_is_exported_from_its_state(run_dir, tmp_path):
    interrupted = tmp_path / "interrupted"
    shutil.copytree(run_dir, interrupted)
    (interrupted / "G.safetensors").unlink()
    results = export_run(interrupted, tmp_path / "out")
    assert [(r.role, r.how) for r in results] == [("G", "from state.pt")]
    meta = read_metadata(tmp_path / "out" / "G.safetensors")
    card = meta["card"]
    assert card["steps"] == 2 and card["model"] == "pix2pix" and card["exported_from"] == "state.pt"
    assert card["toolkit_version"] and card["translates"] == "a2b" and card["size"] == 32
    assert meta["generator"]["name"] == "resnet_6blocks" and meta["generator"]["ngf"] == 8
    x = images(seed=1)
    with torch.no_grad():
        diff = (load_generator(results[0].path)(x) - trained_generator_by_hand(run_dir)(x)).abs().max().item()
    assert diff <= 1e-6


def test_an_export_older_than_the_state_is_replaced(run_dir, tmp_path):
    stale = tmp_path / "stale"
    shutil.copytree(run_dir, stale)
    old = load_generator(stale / "G.safetensors")
    old.card = {**old.card, "steps": 1}
    save_generator(stale / "G.safetensors", old)
    (result,) = export_run(stale, tmp_path / "out")
    assert result.how == "from state.pt" and read_metadata(result.path)["card"]["steps"] == 2


def test_a_damaged_export_is_rebuilt_from_the_state(run_dir, tmp_path, capsys):
    # The message for a damaged generator says to export it again: that must work, into the run itself.
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    (damaged / "G.safetensors").write_bytes((run_dir / "G.safetensors").read_bytes()[:1000])
    assert export_main([str(damaged), "--out", str(damaged), "--force"]) == 0
    assert "G.safetensors cannot be read; exporting from state.pt" in capsys.readouterr().err
    x = images(seed=2)
    with torch.no_grad():
        diff = (load_generator(damaged / "G.safetensors")(x) - trained_generator_by_hand(run_dir)(x)).abs().max()
    assert diff <= 1e-6
    (damaged / "state.pt").unlink()  # nothing to rebuild from: the damage is reported as it is
    (damaged / "G.safetensors").write_bytes(b"nonsense")
    with pytest.raises(UsageError, match="G.safetensors"):
        export_run(damaged, tmp_path / "out")


def test_conditioned_run_keeps_its_label_names_when_rebuilt_from_state(labelled_run, tmp_path):
    copy = tmp_path / "labelled"
    shutil.copytree(labelled_run, copy)  # run.json names the dataset folder, which stays where it is
    (copy / "G.safetensors").unlink()
    (result,) = export_run(copy, tmp_path / "out")
    meta = read_metadata(result.path)
    assert meta["condition"]["kind"] == "label" and meta["condition"]["label_names"] == ["day", "night"]
    rebuilt, original = load_generator(result.path), load_generator(labelled_run / "G.safetensors")
    x = images(n=1, seed=2)
    with torch.no_grad():
        for label in ("day", "night"):
            assert torch.equal(rebuilt(x, label), original(x, label))
        assert not torch.equal(rebuilt(x, "day"), rebuilt(x, "night"))


def test_conditioned_run_without_its_dataset_says_what_is_missing(labelled_run, tmp_path):
    copy = tmp_path / "moved"
    shutil.copytree(labelled_run, copy)
    (copy / "G.safetensors").unlink()
    dataset = labelled_run.parent.parent / "data_labelled"
    hidden = dataset.with_name("hidden_while_testing")
    dataset.rename(hidden)
    try:
        with pytest.raises(UsageError, match="needs its dataset"):
            export_run(copy, tmp_path / "out")
    finally:
        hidden.rename(dataset)
    assert not (tmp_path / "out" / "G.safetensors").exists()


def test_a_run_whose_dataset_now_names_its_labels_otherwise_is_not_relabelled(labelled_run, tmp_path):
    # Rebuilt from the metadata as it is now, "dawn" would take index 0, which meant "day" in training.
    copy = tmp_path / "relabelled"
    shutil.copytree(labelled_run, copy)
    (copy / "G.safetensors").unlink()
    metadata = labelled_run.parent.parent / "data_labelled" / "metadata.jsonl"
    original = metadata.read_text()
    metadata.write_text(original.replace('"day"', '"dawn"'))
    try:
        with pytest.raises(UsageError, match=r"other conditions .*\['day', 'night'\] then, \['dawn', 'night'\] now"):
            export_run(copy, tmp_path / "out")
    finally:
        metadata.write_text(original)
    assert not (tmp_path / "out").exists()


def test_card_reads_as_words(run_dir):
    lines = describe(read_metadata(run_dir / "G.safetensors"))
    text = "\n".join(lines)
    assert lines[0].startswith("data_run: A \u2192 B (pix2pix G")  # unnamed domains: the dataset names them
    assert "resnet_6blocks, ngf 8" in text and "batch norm" in text
    assert "condition: none" in text and "trained: 2 steps" in text and "toolkit: translate" in text


def test_files_written_before_the_card_grew_still_load(tmp_path):
    net = create_generator("resnet_6blocks", ngf=4)
    path = save_generator(tmp_path / "old.safetensors", TranslationGenerator(net, card={"model": "pix2pix"}))
    model = load_generator(path)
    assert model.card["model"] == "pix2pix" and describe(read_metadata(path))[0].startswith("A \u2192 B")


def test_card_fields_given_as_null_read_as_not_given(tmp_path):
    net = create_generator("resnet_6blocks", ngf=4)
    card = {"model": "cyclegan", "role": None, "translates": None, "source": None, "target": None, "steps": None}
    path = save_generator(tmp_path / "nulls.safetensors", TranslationGenerator(net, card=card))
    assert describe(read_metadata(path))[0] == "A \u2192 B (cyclegan G, translates a2b)"  # not "None \u2192 None"
    card = load_generator(path).card
    assert {key: value for key, value in card.items() if key != "toolkit_version"} == {"model": "cyclegan"}


def test_export_cli_writes_onnx_and_reports_the_difference(run_dir, tmp_path, capsys):
    assert export_main([str(run_dir), "--out", str(tmp_path / "out"), "--onnx", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    (item,) = payload["generators"]
    assert item["role"] == "G" and (tmp_path / "out" / "G.onnx").is_file()
    assert 0 <= item["onnx_max_abs_diff"] <= 1e-3


@pytest.mark.parametrize("argv,needle", [
    (["{tmp}/nowhere", "--out", "{tmp}/o"], "not found"),
    (["{tmp}", "--out", "{tmp}/o"], "not a run folder"),
    (["--out", "{tmp}/o"], "pass a run folder"),
])
def test_export_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    rc = export_main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("translate-export: error:") and needle in err


def test_export_never_replaces_a_file_unasked(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    other = out / "G.safetensors"
    other.write_bytes(b"another model's weights")
    assert export_main([str(run_dir), "--out", str(out), "--onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "--force" in err
    assert other.read_bytes() == b"another model's weights" and not (out / "G.onnx").exists()
    assert export_main([str(run_dir), "--out", str(out), "--force"]) == 0
    assert load_generator(other).card["steps"] == 2
    # Into the run's own folder: its files are the export already, nothing to replace.
    assert export_main([str(run_dir), "--out", str(run_dir)]) == 0


def test_export_to_a_path_under_a_file_is_one_line_and_exit_2(run_dir, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert export_main([str(run_dir), "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("translate-export: error: cannot use") and "a_file" in err
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_permissions_of_any_new_file(run_dir, tmp_path, umask):
    # Atomic writes go through a private temporary file; the result must still be readable by the
    # other accounts a umask of 022 lets read (the one serving the app, say).
    import os
    import stat

    previous = os.umask(umask)
    try:
        export_run(run_dir, tmp_path / "out")
        copied = tmp_path / "out" / "G.safetensors"
        saved = save_generator(tmp_path / "saved.safetensors", load_generator(copied))
    finally:
        os.umask(previous)
    for path in (copied, saved):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("key, value", [("generator", [1, 2]), ("generator", {"name": "resnet_6blocks", "ngf": "x"}),
                                        ("condition", {"kind": "label", "encoder": {}}), ("card", None),
                                        ("card", {"role": ["G_A"]}), ("card", {"origin": "http://x"}),
                                        ("card", {"origin": {"url": 3}}), ("card", {"source": {"a": 1}}),
                                        ("condition", {"kind": "label", "label_names": "dusk"}),
                                        ("condition", {"kind": "colour"})])
def test_a_hand_edited_description_is_a_one_line_error(run_dir, tmp_path, key, value):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    source = run_dir / "G.safetensors"
    with safe_open(str(source), framework="pt") as f:
        metadata = dict(f.metadata())
    metadata[key] = json.dumps(value)
    edited = tmp_path / "edited.safetensors"
    save_file(load_file(str(source)), str(edited), metadata=metadata)
    with pytest.raises(UsageError):  # (not a TypeError from deep inside the network's constructor)
        load_generator(edited)


@pytest.mark.parametrize("names, problem", [(["dawn", "dawn"], "label_names names 'dawn' twice"),
                                            (["dawn"], "label_names has 1 entries for an encoder of 2")])
def test_label_names_that_do_not_index_the_embedding_one_to_one_are_refused(tmp_path, names, problem):
    # A hand-edited file with a name twice (the second row unreachable) or fewer names than rows loaded.
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from _app_helpers import tiny_generator_file
    from translate.io.generator_file import ConditionSpec

    spec = ConditionSpec("label", label_names=["dawn", "dusk"], encoder={"num_labels": 2, "dim": 8})
    source = tiny_generator_file(tmp_path / "labels.safetensors", condition=spec)
    assert load_generator(source).condition.label_names == ["dawn", "dusk"]
    with safe_open(str(source), framework="pt") as f:
        metadata = dict(f.metadata())
    metadata["condition"] = json.dumps({**json.loads(metadata["condition"]), "label_names": names})
    edited = tmp_path / "edited.safetensors"
    save_file(load_file(str(source)), str(edited), metadata=metadata)
    with pytest.raises(UsageError, match=problem):
        load_generator(edited)


@pytest.mark.parametrize("in_channels, out_channels", [(1, 3), (4, 3), (3, 2)])
def test_a_generator_that_does_not_take_rgb_images_is_refused_in_one_line(tmp_path, capsys, in_channels, out_channels):
    # A file with a 1-channel generator (the reference's --input_nc 1) loaded, then every translation
    # failed inside the first convolution with a RuntimeError traceback.
    from translate.cli.infer import main as infer_main
    from translate.serving import scan_models

    net = create_generator("resnet_6blocks", in_channels=in_channels, out_channels=out_channels, ngf=4)
    path = save_generator(tmp_path / "models" / "gray.safetensors",
                          TranslationGenerator(net, None, {"model": "t", "role": "G", "translates": "a2b"}))
    with pytest.raises(UsageError, match="channel"):
        load_generator(path)
    skipped = []
    assert scan_models(tmp_path / "models", log=skipped.append) == [] and len(skipped) == 1
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    assert infer_main(["--model", str(path), "--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "out")]) == 2
    assert "channel" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_resize_upsampling_generator_keeps_its_layout_through_the_file(tmp_path):
    net = create_generator("resnet_6blocks", ngf=4, upsample="resize").eval()
    path = save_generator(tmp_path / "resize.safetensors", TranslationGenerator(net, card={"model": "cyclegan"}))
    model = load_generator(path)
    assert model.generator.config.upsample == "resize"
    assert "instance norm, resize upsampling" in describe(read_metadata(path))[1]
    x = images()
    with torch.no_grad():
        assert torch.allclose(model.generator(x), net(x), atol=1e-6)


def test_weights_that_are_not_finite_are_refused_in_both_directions(run_dir, tmp_path):
    # NaN weights translate every image to NaN, which is saved as a black picture with exit code 0.
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    source = run_dir / "G.safetensors"
    with safe_open(str(source), framework="pt") as f:
        metadata = dict(f.metadata())
    tensors = load_file(str(source))
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.dim() == 4)
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[3] = float("nan")
    bad = tmp_path / "nan.safetensors"
    save_file(tensors, str(bad), metadata=metadata)
    with pytest.raises(UsageError, match=f"not finite numbers.*{name}"):
        load_generator(bad)
    model = load_generator(source)
    with torch.no_grad():
        next(model.generator.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(UsageError, match="holds NaN or inf"):
        save_generator(tmp_path / "inf.safetensors", model)
    assert not (tmp_path / "inf.safetensors").exists()


def test_a_description_edited_to_a_huge_width_is_refused_before_anything_is_allocated(run_dir, tmp_path):
    # ngf 200000 asked the allocator for terabytes (a traceback, or an app killed for memory) before
    # the weights were compared with the description.
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    source = run_dir / "G.safetensors"
    with safe_open(str(source), framework="pt") as f:
        metadata = dict(f.metadata())
    generator = json.loads(metadata["generator"])
    metadata["generator"] = json.dumps({**generator, "ngf": 200000})
    edited = tmp_path / "huge.safetensors"
    save_file(load_file(str(source)), str(edited), metadata=metadata)
    with pytest.raises(UsageError, match="weights do not fit the described architecture .*the description asks for"):
        load_generator(edited)


@pytest.mark.parametrize("from_state", [False, True])
def test_an_onnx_export_refused_for_a_gru_caption_encoder_writes_nothing(tmp_path, capsys, from_state):
    # G.safetensors was written before the refusal, and then stood in the way of the export without
    # --onnx that the error advises ("already exists; ... --force").
    from _data_helpers import make_aligned
    from _app_helpers import TINY_RUN_FLAGS
    from translate.cli.train import main as train_main

    data = make_aligned(tmp_path / "data", {"train": 2}, size=(32, 32))
    (data / "metadata.jsonl").write_text("".join(
        json.dumps({"file_name": f"train/{i:03d}.png", "text": f"a scene at {t}"}) + "\n"
        for i, t in enumerate(("dawn", "dusk"))))
    assert train_main(["pix2pix", "--data", str(data), "--name", "gru", "--checkpoints", str(tmp_path / "runs"),
                       "--condition", "text", "--text-encoder", "gru", *TINY_RUN_FLAGS]) == 0
    out = tmp_path / "out"
    capsys.readouterr()
    assert export_main([str(tmp_path / "runs" / "gru"), "--out", str(out), "--onnx"]
                       + (["--from-state"] if from_state else [])) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "GRU caption encoders" in err
    assert not out.exists() or not any(out.iterdir())
    assert export_main([str(tmp_path / "runs" / "gru"), "--out", str(out)]) == 0
    assert load_generator(out / "G.safetensors").condition.kind == "text"


@pytest.mark.parametrize("name", ["mymodel.safetensors", "G.onnx"])
def test_an_export_out_that_names_a_model_file_is_refused(run_dir, tmp_path, capsys, name):
    # It became a folder of that name holding G.safetensors.
    assert export_main([str(run_dir), "--out", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "looks like a model file" in err and f"--out {tmp_path / name.split('.')[0]}" in err
    assert not (tmp_path / name).exists()
    (tmp_path / name).mkdir()  # a folder of that name the user made: taken as the folder it is
    assert export_main([str(run_dir), "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / name / "G.safetensors").is_file()


def test_load_generator_given_a_folder_names_its_generator_files(run_dir, tmp_path):
    # It said "RUN not found; pass an exported .safetensors file or a run folder" of a run folder.
    with pytest.raises(UsageError, match=r"is a folder; pass one of its generator files: G\.safetensors"):
        load_generator(run_dir)
    with pytest.raises(UsageError, match=r"is a folder without exported generators"):
        load_generator(tmp_path)
