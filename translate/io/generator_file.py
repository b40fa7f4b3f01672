"""Exported generators: one safetensors file per generator, its description as JSON in the metadata.

A file holds the generator's weights (and, for conditioned models, its condition encoder's weights
under `condition_encoder.`), and in the safetensors header's string metadata:

| key                 | value (JSON)                                                             |
|---------------------|--------------------------------------------------------------------------|
| `translate.format`  | "generator/1"                                                            |
| `generator`         | the architecture: name, channels, ngf, norm, dropout, condition_dim ...  |
| `condition`         | {"kind": "none" | "label" | "text", "label_names": [...], "vocabulary": [...], "encoder": {...}} |
| `card`              | model, role (G, G_A...), direction, source/target domain names, dataset, |
|                     | steps, image size, toolkit version, a description                       |

Loading needs no pickle and runs no code from the file: safetensors stores raw tensors, the metadata
is parsed as JSON, and the architecture is rebuilt by our own factory from the description.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn

from translate.errors import UsageError

FORMAT = "generator/1"
CONDITION_KINDS = ("none", "label", "text")
_ENCODER_PREFIX = "condition_encoder."


@dataclass
class ConditionSpec:
    """How a generator is conditioned: nothing, a class label, or a caption."""

    kind: str = "none"  # none | label | text
    label_names: list[str] = field(default_factory=list)
    vocabulary: list[str] = field(default_factory=list)
    encoder: dict = field(default_factory=dict)  # kwargs of the encoder's constructor

    def to_dict(self) -> dict:
        return {"kind": self.kind, "label_names": self.label_names, "vocabulary": self.vocabulary, "encoder": self.encoder}

    @classmethod
    def from_dict(cls, d: dict) -> "ConditionSpec":
        return cls(d.get("kind", "none"), list(d.get("label_names", [])), list(d.get("vocabulary", [])), dict(d.get("encoder", {})))


def build_condition_encoder(spec: ConditionSpec) -> nn.Module | None:
    from translate.nets.conditions import LabelEmbedding, TextEncoder

    if spec.kind == "label":
        return LabelEmbedding(**spec.encoder)
    if spec.kind == "text":
        return TextEncoder(**spec.encoder)
    return None


class TranslationGenerator(nn.Module):
    """A generator ready to use: `forward(images, condition=None)` where images are (N, 3, H, W) in
    [-1, 1] and `condition` is, for conditioned models, a list of label names or captions (or a
    tensor of label indices). Loaded generators are in eval mode."""

    def __init__(self, generator: nn.Module, condition: ConditionSpec | None = None, card: dict | None = None):
        super().__init__()
        self.generator = generator
        self.condition = condition or ConditionSpec()
        self.condition_encoder = build_condition_encoder(self.condition)
        self.card = dict(card or {})
        self.vocabulary = None
        if self.condition.kind == "text":
            from translate.nets.conditions import Vocabulary

            self.vocabulary = Vocabulary.from_list(self.condition.vocabulary)

    @property
    def architecture(self) -> dict:
        return self.generator.config.to_dict()

    @property
    def conditioned(self) -> bool:
        return self.condition.kind != "none"

    def encode_condition(self, condition, batch: int, device) -> torch.Tensor | None:
        if not self.conditioned:
            return None
        if condition is None:
            raise UsageError(
                f"this model needs a condition ({self.condition_hint()}); pass --condition"
            )
        if isinstance(condition, (str, int)):  # one for the whole batch (an int: a label's index)
            condition = [condition] * batch
        if self.condition.kind == "label":
            if isinstance(condition, torch.Tensor):
                labels = condition.to(device)
            elif all(isinstance(c, int) and not isinstance(c, bool) for c in condition):
                names = self.condition.label_names
                outside = [c for c in condition if not 0 <= c < len(names)]
                if outside:
                    raise UsageError(f"label index {outside[0]} is out of range; this model knows {len(names)} labels "
                                     f"(0 to {len(names) - 1}: {', '.join(names)})")
                labels = torch.tensor(list(condition), device=device)
            else:
                names = self.condition.label_names
                unknown = [c for c in condition if c not in names]
                if unknown:
                    raise UsageError(f"unknown label {unknown[0]!r}; this model knows {', '.join(names)}")
                labels = torch.tensor([names.index(c) for c in condition], device=device)
            return self.condition_encoder(labels)
        # a caption, or token ids already encoded (training passes them with word dropout applied)
        ids = condition if isinstance(condition, torch.Tensor) else self.vocabulary.encode(list(condition))
        return self.condition_encoder(ids.to(device))

    def condition_hint(self) -> str:
        if self.condition.kind == "label":
            return "one of " + ", ".join(self.condition.label_names)
        return "a caption"

    def forward(self, images: torch.Tensor, condition=None) -> torch.Tensor:
        c = self.encode_condition(condition, images.shape[0], images.device)
        return self.generator(images) if c is None else self.generator(images, c)


def _json_metadata(generator: nn.Module, condition: ConditionSpec, card: dict) -> dict[str, str]:
    from translate import __version__

    card = {"toolkit_version": __version__, **card}
    return {
        "translate.format": FORMAT,
        "generator": json.dumps(generator.config.to_dict()),
        "condition": json.dumps(condition.to_dict()),
        "card": json.dumps(card),
    }


def metadata_of(model: TranslationGenerator) -> dict[str, str]:
    """The string metadata a generator file (or an ONNX export of it) carries: JSON descriptions."""
    return _json_metadata(model.generator, model.condition, model.card)


def _not_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The first floating-point tensor holding NaN or inf, by name; None when all are finite."""
    return next((k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)


def save_generator(path: str | os.PathLike, model: TranslationGenerator) -> Path:
    """Write `model` (weights + description) to `path` atomically."""
    from safetensors.torch import save as serialize

    from translate.train.checkpoint import atomic_write_bytes

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.generator.state_dict().items()}
    if model.condition_encoder is not None:
        for k, v in model.condition_encoder.state_dict().items():
            tensors[_ENCODER_PREFIX + k] = v.detach().to("cpu").contiguous()
    bad = _not_finite(tensors)
    if bad is not None:  # it would translate every image to NaN (a black picture) without a word
        raise UsageError(f"not writing {path}: the generator's {bad} holds NaN or inf (the run diverged); "
                         "export an earlier checkpoint or train again with a lower --lr")
    # Serialized in memory, then written atomically: a crash never leaves half a model file.
    data = serialize(tensors, metadata=_json_metadata(model.generator, model.condition, model.card))
    path = Path(path)
    atomic_write_bytes(data, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed description of an exported generator, without loading its weights."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():  # (the command-line tools take a run folder; this reads one file)
        inside = sorted(p.name for p in path.glob("*.safetensors"))
        raise UsageError(f"{path} is a folder; pass one of its generator files: {', '.join(inside)} (pick_generator "
                         "chooses one for a direction)" if inside else
                         f"{path} is a folder without exported generators; pass an exported .safetensors file")
    if not path.is_file():
        raise UsageError(f"{path} not found; pass an exported .safetensors file or a run folder")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for bad headers
        if path.suffix.lower() == ".onnx":  # translate-export --onnx writes it beside the safetensors file
            beside = path.with_suffix(".safetensors")
            raise UsageError(f"{path} is an ONNX file, which is for onnxruntime; pass "
                             + (f"{beside}, the same model," if beside.is_file() else "the .safetensors file exported with it")
                             + " instead") from None
        if path.suffix.lower() in (".pth", ".pt"):  # PyTorch pickles: a run's state or a reference generator
            if (path.parent / "config.json").is_file() and (path.parent / "run.json").is_file():
                raise UsageError(f"{path} is a run's training state; pass its run folder, {path.parent}") from None
            raise UsageError(f"{path} is a PyTorch file, not a safetensors one; a generator of the reference "
                             f"implementation is imported with translate-export --from-reference {path} --netG NAME "
                             f"--out {path.with_suffix('.safetensors').name}") from None
        raise UsageError(f"{path} is not a safetensors file ({e}); export one with translate-export") from None
    if raw.get("translate.format") != FORMAT:
        raise UsageError(
            f"{path} is a safetensors file without a translate generator description; "
            "export models with translate-export (or import reference .pth files with --from-reference)"
        )
    try:
        meta = {key: json.loads(raw[key]) for key in ("generator", "condition", "card")}
    except (KeyError, json.JSONDecodeError) as e:
        raise UsageError(f"{path} has a damaged description ({e}); export it again") from None
    for key, value in meta.items():
        if not isinstance(value, dict):
            raise UsageError(f"{path} has a damaged description ({key} is a {type(value).__name__}, not an object); "
                             "export it again")
    problem = (_card_problem(meta["card"]) or _condition_problem(meta["condition"])
               or channels_problem(meta["generator"]))
    if problem:  # a file anyone may drop into a models folder: its description is read, never trusted
        raise UsageError(f"{path} has a damaged description ({problem}); export it again")
    # A card field given as null is one not given (readers fall back to their defaults, not "None").
    meta["card"] = {key: value for key, value in meta["card"].items() if value is not None}
    return meta


#: card fields read as text, and those read as objects (the rest are only shown)
_CARD_TEXT = ("model", "role", "translates", "source", "target", "dataset", "run", "description", "toolkit_version")
_CARD_OBJECTS = ("origin",)


def _card_problem(card: dict) -> str | None:
    """What is wrong with the types of a card's fields, in words; None when nothing is."""
    for key in _CARD_TEXT:
        if card.get(key) is not None and not isinstance(card[key], str):
            return f"the card's {key} is a {type(card[key]).__name__}, not text"
    for key in _CARD_OBJECTS:
        if card.get(key) is not None and not isinstance(card[key], dict):
            return f"the card's {key} is a {type(card[key]).__name__}, not an object"
    if isinstance(card.get("origin"), dict):
        for key in ("url", "file", "sha256"):
            if card["origin"].get(key) is not None and not isinstance(card["origin"][key], str):
                return f"the card's origin {key} is a {type(card['origin'][key]).__name__}, not text"
    return None


def _condition_problem(condition: dict) -> str | None:
    """What is wrong with the types of a condition description, in words; None when nothing is."""
    if not isinstance(condition.get("kind", "none"), str):
        return "the condition's kind is not text"
    if condition.get("kind", "none") not in CONDITION_KINDS:  # it would be asked for a condition it cannot read
        return f"the condition's kind is {condition['kind']!r}, not one of {', '.join(CONDITION_KINDS)}"
    for key in ("label_names", "vocabulary"):
        value = condition.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return f"the condition's {key} is not a list of words"
    encoder = condition.get("encoder")
    if encoder is not None and not isinstance(encoder, dict):
        return "the condition's encoder is not an object"
    # The names index the encoder's rows: a name twice, or a count other than the rows, translates with
    # another condition than the one asked for (or fails inside the embedding).
    for key, size_key in (("label_names", "num_labels"), ("vocabulary", "vocab_size")):
        words, size = condition.get(key) or [], (encoder or {}).get(size_key)
        if len(set(words)) != len(words):
            return f"the condition's {key} names {next(w for w in words if words.count(w) > 1)!r} twice"
        if words and size is not None and size != len(words):
            return f"the condition's {key} has {len(words)} entries for an encoder of {size}"
    return None


def channels_problem(generator: dict) -> str | None:
    """What is wrong with a generator's channels for translating pictures, in words: it is fed RGB
    images (3 channels) and gives RGB or gray ones (3 or 1); None when nothing is."""
    given, gives = generator.get("in_channels", 3), generator.get("out_channels", 3)
    if given != 3 or gives not in (1, 3):
        return (f"it translates {given}-channel images into {gives}-channel ones; translate feeds its generators "
                "RGB images (3 channels) and shows RGB or gray results (3 or 1)")
    return None


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> TranslationGenerator:
    """The generator stored in `path`, in eval mode on `device`."""
    from safetensors.torch import load_file

    from translate.nets.factory import build_generator_from_config

    meta = read_metadata(path)

    def build():
        try:
            generator = build_generator_from_config(meta["generator"])
            return TranslationGenerator(generator, ConditionSpec.from_dict(meta["condition"]), meta["card"])
        except (TypeError, KeyError, AttributeError, ValueError) as e:  # a description edited by hand, or foreign
            if isinstance(e, UsageError):
                raise
            raise UsageError(f"{path} has a description this toolkit cannot build a network from "
                             f"({type(e).__name__}: {' '.join(str(e).split())}); export it again with translate-export") from None

    # The description is checked against the stored tensors' shapes on the meta device (no memory)
    # first: an edited ngf of 200000 would otherwise ask for terabytes before the weights said no.
    with torch.device("meta"):
        blueprint = build()
    _check_shapes(path, blueprint)
    model = build()
    tensors = load_file(str(path), device="cpu")
    bad = _not_finite(tensors)
    if bad is not None:  # its translations would be NaN, shown as black pictures
        raise UsageError(f"{path} holds weights that are not finite numbers (NaN or inf, in {bad}): it was exported from "
                         "a diverged run or is damaged; export it again from a good checkpoint or train again")
    gen_state = {k: v for k, v in tensors.items() if not k.startswith(_ENCODER_PREFIX)}
    enc_state = {k[len(_ENCODER_PREFIX):]: v for k, v in tensors.items() if k.startswith(_ENCODER_PREFIX)}
    try:
        model.generator.load_state_dict(gen_state, strict=True)
        if model.condition_encoder is not None:
            model.condition_encoder.load_state_dict(enc_state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise UsageError(f"{path}: weights do not fit the described architecture ({first})") from None
    return model.eval().to(device)


def _check_shapes(path, model: TranslationGenerator) -> None:
    """UsageError when the tensors stored in `path` are not those `model`'s architecture holds."""
    from safetensors import safe_open

    expected = {k: tuple(v.shape) for k, v in model.generator.state_dict().items()}
    if model.condition_encoder is not None:
        expected.update({_ENCODER_PREFIX + k: tuple(v.shape) for k, v in model.condition_encoder.state_dict().items()})
    with safe_open(str(path), framework="pt") as f:
        stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    for key in sorted(expected.keys() | stored.keys()):
        if expected.get(key) != stored.get(key):
            what = (f"{key} is missing" if key not in stored else f"{key} is not part of it" if key not in expected
                    else f"{key} holds {list(stored[key])}, the description asks for {list(expected[key])}")
            raise UsageError(f"{path}: weights do not fit the described architecture ({what}); export it again")


def find_generators(model: str | os.PathLike) -> list[Path]:
    """The exported generators a MODEL argument names: a .safetensors file, or a run folder's."""
    p = Path(model)
    if p.is_file():
        return [p]
    if p.is_dir():
        found = sorted(p.glob("*.safetensors"))
        if found:
            return found
        if (p / "state.pt").exists():
            raise UsageError(f"{p} holds a run without exported generators; run translate-export {p} --out {p}")
        raise UsageError(f"{p} is not a run folder (no exported .safetensors generators in it)")
    raise UsageError(f"model {model} not found: pass an exported .safetensors file or a run folder")


def pick_generator(model: str | os.PathLike, direction: str | None = None) -> Path:
    """The generator of `model` that translates in `direction` (a2b or b2a); a single-generator
    model ignores the direction unless it contradicts the file's card, which is then a UsageError."""
    files = find_generators(model)
    if len(files) == 1:
        # A card without `translates` (a file written by another tool) has nothing to contradict.
        translates = read_metadata(files[0])["card"].get("translates") if direction else None
        if translates is not None and translates != direction:
            raise UsageError(f"{files[0]} translates {translates}, not {direction}; drop --direction, "
                             f"or pick the generator file that translates {direction}")
        return files[0]
    cards = {f: read_metadata(f)["card"] for f in files}
    wanted = direction or "a2b"
    matches = [f for f, card in cards.items() if card.get("translates") == wanted]
    if len(matches) != 1:
        names: Sequence[str] = [f.name for f in files]
        raise UsageError(f"{model} holds several generators ({', '.join(names)}); name one file or pass --direction a2b|b2a")
    return matches[0]
