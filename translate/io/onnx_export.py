"""ONNX export of a generator, checked against PyTorch with onnxruntime before it is kept.

The graph's inputs and outputs (float32, images in [-1, 1], NCHW):

| name     | shape                       | when                                                         |
|----------|-----------------------------|--------------------------------------------------------------|
| `image`  | (batch, 3, height, width)   | always; height and width multiples of `required_multiple`    |
| `label`  | (batch,) int64              | label-conditioned models: index into `label_names`           |
| `tokens` | (batch, length) int64       | caption-conditioned models: word ids, right-padded with 0    |
| `output` | (batch, 3, height, width)   |                                                              |

Batch, height, width (and length) are dynamic. The generator pads nothing itself: pad the image to a
multiple of `required_multiple` (4 for the ResNet generators, 256 for unet_256, ...) and crop the output
back, as translate.infer does. Token ids come from the vocabulary in the metadata: lowercase the
caption, split it into runs of letters/digits/underscores, look each word up (unknown words are 1,
`<unk>`), pad with 0 (`<pad>`).

The ONNX file's `metadata_props` carry the same JSON descriptions as the safetensors file
(`translate.format`, `generator`, `condition`, `card`) and `required_multiple`, so the file explains
itself.

After export the file is run with onnxruntime at two image sizes (and batch sizes 1 and 2) and
compared with the PyTorch generator; the largest absolute difference is reported, and a file that
differs by more than `tolerance` is not written.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from translate.errors import UsageError

DEFAULT_TOLERANCE = 1e-3
OPSET = 17


class OnnxMismatchError(RuntimeError):
    """The exported graph computes something other than the PyTorch generator."""


@dataclass
class OnnxReport:
    path: Path
    max_abs_diff: float
    checked_sizes: list[tuple[int, int, int]]  # (batch, height, width)
    inputs: list[str]


class _ImageToImage(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.generator = model.generator

    def forward(self, image):
        return self.generator(image)


class _WithLabel(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.generator = model.generator
        # The embedding table itself: LabelEmbedding's range check reads values, which a trace cannot keep.
        self.embedding = model.condition_encoder.embedding

    def forward(self, image, label):
        return self.generator(image, self.embedding(label))


class _WithTokens(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.generator = model.generator
        self.encoder = model.condition_encoder

    def forward(self, image, tokens):
        return self.generator(image, self.encoder(tokens))


def _graph_for(model) -> tuple[nn.Module, list[str]]:
    kind = model.condition.kind
    if kind == "label":
        return _WithLabel(model).eval(), ["image", "label"]
    if kind == "text":
        if getattr(model.condition_encoder, "gru", None) is not None:
            raise UsageError("ONNX export of GRU caption encoders is not supported; export the safetensors "
                             "file only, or train with --text-encoder mean")
        return _WithTokens(model).eval(), ["image", "tokens"]
    return _ImageToImage(model).eval(), ["image"]


def check_exportable(model) -> None:
    """UsageError when `model` (a TranslationGenerator) cannot be exported to ONNX: called before an
    export writes any file, so that a refused --onnx leaves nothing behind."""
    _graph_for(model)


def check_sizes(multiple: int) -> list[tuple[int, int, int]]:
    """Two different (batch, height, width) to compare at: a square and a wider, non-square one."""
    base = max(multiple, (64 + multiple - 1) // multiple * multiple)
    return [(1, base, base), (2, base, base + multiple)]


def _inputs_for(model, names: list[str], batch: int, height: int, width: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    inputs = {"image": torch.rand(batch, 3, height, width, generator=g) * 2 - 1}
    if "label" in names:
        inputs["label"] = torch.arange(batch) % model.condition_encoder.num_labels
    if "tokens" in names:
        words = [w for w in model.vocabulary.tokens[2:6]] or ["x"]
        captions = [" ".join(words[: i + 1]) for i in range(batch)]  # different lengths: padding is exercised
        inputs["tokens"] = model.vocabulary.encode(captions)
    return inputs


def export_onnx(model, path: str | os.PathLike, *, tolerance: float = DEFAULT_TOLERANCE,
                sizes: list[tuple[int, int, int]] | None = None) -> OnnxReport:
    """Export a TranslationGenerator (eval mode) to ONNX at `path`, check it, and report the difference.

    Raises OnnxMismatchError (and writes nothing) when onnxruntime's output differs from PyTorch's by
    more than `tolerance` at any checked size."""
    import onnx
    import onnxruntime as ort

    from translate.nets.factory import required_multiple
    from translate.train.checkpoint import atomic_write_bytes

    model = model.eval().to("cpu")
    graph, names = _graph_for(model)
    multiple = required_multiple(model.architecture["name"])
    sizes = sizes or check_sizes(multiple)
    example = _inputs_for(model, names, *sizes[0], seed=0)
    dynamic = {"image": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "height", 3: "width"},
               "label": {0: "batch"}, "tokens": {0: "batch", 1: "length"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.14 warns that this (TorchScript-based) exporter is deprecated; the torch.export-based
        # one needs the onnxscript package, which this project does not depend on.
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, tuple(example[n] for n in names), buffer, dynamo=False, input_names=names,
                          output_names=["output"], dynamic_axes={k: v for k, v in dynamic.items() if k in names + ["output"]},
                          opset_version=OPSET, do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    from translate.io.generator_file import metadata_of

    meta = {**metadata_of(model), "required_multiple": str(multiple),
            "inputs": json.dumps(names)}
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    data = proto.SerializeToString()

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    worst = 0.0
    for i, (batch, height, width) in enumerate(sizes):
        inputs = _inputs_for(model, names, batch, height, width, seed=i)
        with torch.no_grad():
            expected = graph(*(inputs[n] for n in names)).numpy()
        got = session.run(["output"], {n: inputs[n].numpy() for n in names})[0]
        if got.shape != expected.shape:
            raise OnnxMismatchError(f"ONNX output has shape {got.shape}, PyTorch {expected.shape}")
        if not np.isfinite(got).all() or not np.isfinite(expected).all():  # max(0.0, nan) would be 0.0
            which = "PyTorch's" if not np.isfinite(expected).all() else "the ONNX graph's"
            raise OnnxMismatchError(f"{which} output holds NaN or inf at {batch}x{height}x{width}; not writing {path}")
        worst = max(worst, float(np.abs(got - expected).max()))
    if not worst <= tolerance:
        raise OnnxMismatchError(f"the ONNX graph differs from PyTorch by up to {worst:.3g} (> {tolerance:g}); "
                                f"not writing {path}")
    path = Path(path)
    atomic_write_bytes(data, path)
    return OnnxReport(path, worst, sizes, names)


def read_onnx_metadata(path: str | os.PathLike) -> dict:
    """The descriptions stored in an exported ONNX file's metadata_props, JSON values parsed."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    raw = {p.key: p.value for p in proto.metadata_props}
    out = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
