"""ONNX export: dynamic batch/height/width, checked with onnxruntime, refused when it disagrees."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn

from _app_helpers import tiny_generator_file
from translate.io.generator_file import ConditionSpec, TranslationGenerator, load_generator
from translate.io.onnx_export import OnnxMismatchError, export_onnx, read_onnx_metadata
from translate.nets.generators import GeneratorConfig


def run_onnx(path, **inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {k: v.numpy() for k, v in inputs.items()})[0]


@pytest.mark.parametrize("name,norm,sizes", [
    ("resnet_6blocks", "instance", [(1, 36, 52), (3, 64, 40)]),
    ("unet_128", "batch", [(1, 128, 128), (2, 256, 128)]),
])
def test_onnx_matches_pytorch_at_two_sizes(tmp_path, name, norm, sizes):
    model = load_generator(tiny_generator_file(tmp_path / "g.safetensors", name=name, norm=norm))
    report = export_onnx(model, tmp_path / "g.onnx")
    assert report.max_abs_diff <= 1e-3 and len(set(report.checked_sizes)) == 2
    for i, (n, h, w) in enumerate(sizes):  # sizes other than the export's own checks
        x = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(i)) * 2 - 1
        with torch.no_grad():
            expected = model(x).numpy()
        got = run_onnx(tmp_path / "g.onnx", image=x)
        assert got.shape == (n, 3, h, w)
        assert np.abs(got - expected).max() <= 1e-3
        assert np.abs(expected).mean() > 1e-3  # not a dead network: the comparison means something
    meta = read_onnx_metadata(tmp_path / "g.onnx")
    assert meta["generator"]["name"] == name and meta["inputs"] == ["image"]
    assert int(meta["required_multiple"]) == (4 if name.startswith("resnet") else 128)


def test_label_conditioned_model_takes_the_label_index_as_an_input(tmp_path):
    spec = ConditionSpec("label", label_names=["dawn", "noon", "dusk"], encoder={"num_labels": 3})
    model = load_generator(tiny_generator_file(tmp_path / "c.safetensors", condition=spec))
    report = export_onnx(model, tmp_path / "c.onnx")
    assert report.inputs == ["image", "label"] and report.max_abs_diff <= 1e-3
    x = torch.rand(2, 3, 32, 44) * 2 - 1
    labels = torch.tensor([2, 0])
    got = run_onnx(tmp_path / "c.onnx", image=x, label=labels)
    with torch.no_grad():
        expected = model(x, ["dusk", "dawn"]).numpy()
    assert np.abs(got - expected).max() <= 1e-3
    other = run_onnx(tmp_path / "c.onnx", image=x, label=torch.tensor([1, 1]))
    assert np.abs(other - got).max() > 1e-4  # the label reaches the output
    assert read_onnx_metadata(tmp_path / "c.onnx")["condition"]["label_names"] == ["dawn", "noon", "dusk"]


def test_caption_conditioned_model_takes_token_ids(tmp_path):
    from translate.nets.conditions import Vocabulary

    vocabulary = Vocabulary.build(["a snowy village at night", "a green valley at noon"])
    spec = ConditionSpec("text", vocabulary=vocabulary.to_list(), encoder={"vocab_size": len(vocabulary), "kind": "mean"})
    model = load_generator(tiny_generator_file(tmp_path / "t.safetensors", condition=spec))
    assert export_onnx(model, tmp_path / "t.onnx").inputs == ["image", "tokens"]
    captions = ["a snowy night", "green valley at noon"]
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    got = run_onnx(tmp_path / "t.onnx", image=x, tokens=vocabulary.encode(captions))
    with torch.no_grad():
        assert np.abs(got - model(x, captions).numpy()).max() <= 1e-3


class SizeDependent(nn.Module):
    """Branches on the input width in Python: a trace keeps only the branch it saw."""

    config = GeneratorConfig("resnet_6blocks", ngf=1)

    def forward(self, x, condition=None):
        return torch.tanh(x) if x.shape[-1] <= 64 else -torch.tanh(x)


def test_an_onnx_graph_that_disagrees_is_not_written(tmp_path):
    model = TranslationGenerator(SizeDependent()).eval()
    with pytest.raises(OnnxMismatchError, match="differs from PyTorch"):
        export_onnx(model, tmp_path / "bad.onnx", sizes=[(1, 64, 64), (1, 64, 128)])
    assert list(tmp_path.iterdir()) == []


class NotFinite(nn.Module):
    """Outputs NaN: the check compared with max(0.0, nan), which is 0.0, and wrote the file."""

    config = GeneratorConfig("resnet_6blocks", ngf=1)

    def forward(self, x, condition=None):
        return torch.log(x - 2.0)


def test_an_output_that_is_not_finite_is_not_written(tmp_path):
    model = TranslationGenerator(NotFinite()).eval()
    with pytest.raises(OnnxMismatchError, match="output holds NaN or inf"):
        export_onnx(model, tmp_path / "nan.onnx", sizes=[(1, 32, 32)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("beside", [True, False])
def test_an_onnx_file_given_as_the_model_names_the_safetensors_file_to_pass(tmp_path, capsys, beside):
    # It was "not a safetensors file (Error while deserializing header: header too large); export one with
    # translate-export", which is what had written it.
    from translate.cli.infer import main as infer_main
    from PIL import Image

    model = load_generator(tiny_generator_file(tmp_path / "G.safetensors"))
    export_onnx(model, tmp_path / "G.onnx")
    if not beside:
        (tmp_path / "G.safetensors").unlink()
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    assert infer_main(["--model", str(tmp_path / "G.onnx"), "--input", str(tmp_path / "in.png"),
                       "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is an ONNX file" in err
    assert (str(tmp_path / "G.safetensors") in err) == beside
