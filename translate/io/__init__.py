"""Models leaving and coming back: generator files (safetensors + JSON description), exports of runs,
ONNX, and imports of the reference implementation's published `.pth` generators.

    export_run("checkpoints/RUN", "exported/")                    # ROLE.safetensors per generator
    model = load_generator("exported/G.safetensors")               # no pickle, no code from the file
    export_onnx(model, "exported/G.onnx")                          # checked with onnxruntime
    import_reference("latest_net_G.pth", "resnet_9blocks", "vangogh.safetensors")
    download_pretrained("style_vangogh", root="checkpoints/pretrained")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Public names and the module that defines each, imported on first use (torch is not needed for --help).
_EXPORTS = {
    "ConditionSpec": "generator_file",
    "TranslationGenerator": "generator_file",
    "find_generators": "generator_file",
    "load_generator": "generator_file",
    "metadata_of": "generator_file",
    "pick_generator": "generator_file",
    "read_metadata": "generator_file",
    "save_generator": "generator_file",
    "describe": "cards",
    "ExportedGenerator": "export",
    "export_run": "export",
    "generators_from_state": "export",
    "import_reference": "export",
    "OnnxMismatchError": "onnx_export",
    "OnnxReport": "onnx_export",
    "export_onnx": "onnx_export",
    "read_onnx_metadata": "onnx_export",
    "download_pretrained": "pretrained",
    "load_reference_generator": "reference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'translate.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"translate.io.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from translate.io.cards import describe  # noqa: F401
    from translate.io.export import ExportedGenerator, export_run, generators_from_state, import_reference  # noqa: F401
    from translate.io.generator_file import (  # noqa: F401
        ConditionSpec, TranslationGenerator, find_generators, load_generator, metadata_of, pick_generator,
        read_metadata, save_generator,
    )
    from translate.io.onnx_export import OnnxMismatchError, OnnxReport, export_onnx, read_onnx_metadata  # noqa: F401
    from translate.io.pretrained import download_pretrained  # noqa: F401
    from translate.io.reference import load_reference_generator  # noqa: F401
