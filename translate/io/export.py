"""Generators leaving a run: safetensors files (and ONNX) that load without the code that trained them.

    export_run(run_dir, out_dir)            each generator of a run as OUT/NAME.safetensors
    generators_from_state(run_dir)          the generators rebuilt from the run's state.pt + config.json
    import_reference(pth, net_name, out)    a reference implementation .pth as a .safetensors file

A finished run already holds its exported generators (`G.safetensors`, or `G_A`/`G_B`); they are copied.
A run that stopped without exporting (killed, or trained with --no-export), or whose exported files are
older than its resume state, is exported again from `state.pt`: the model is rebuilt from the saved
config (`config.json`, `run.json`) and loaded strictly, and each generator gets the card training
would have given it. A conditioned run needs its dataset for that, because the label names and the
caption vocabulary are read from it, as in training.

The card (the `card` metadata, JSON) holds what the model is, in words a person can read:
model, role (G, G_A, G_B), translates (a2b or b2a), source and target domain names, dataset, steps,
size, run, toolkit_version, and `origin` where the weights came from elsewhere (an imported reference
`.pth`: its file name, SHA-256 and address). The architecture (name, channels, ngf, norm, dropout,
condition_dim) and the condition (kind, label names or vocabulary) have their own metadata entries;
see translate.io.generator_file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from translate.errors import UsageError
from translate.io.generator_file import TranslationGenerator, load_generator, read_metadata, save_generator

STATE_FILE = "state.pt"


@dataclass
class ExportedGenerator:
    """One generator written by an export."""

    role: str  # G, G_A, G_B
    path: Path
    how: str  # "copied", "from state.pt" or "imported"
    steps: int | None = None
    onnx: Path | None = None
    onnx_max_abs_diff: float | None = None

    def to_dict(self) -> dict:
        return {"role": self.role, "path": str(self.path), "how": self.how, "steps": self.steps,
                "onnx": str(self.onnx) if self.onnx else None, "onnx_max_abs_diff": self.onnx_max_abs_diff}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"cannot read {path} ({e}); is this a complete run folder?") from None


def _check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise UsageError(f"run folder {run_dir} not found; pass checkpoints/RUN")
    if not (run_dir / "config.json").is_file() and not list(run_dir.glob("*.safetensors")):
        raise UsageError(f"{run_dir} is not a run folder (no config.json, no exported generators); pass checkpoints/RUN")


def run_cards(model_name: str, cfg, dataset_name: str, steps: int) -> dict[str, dict]:
    """The cards training gives each generator of a run (translate.cli.train), by role."""
    from translate.cli.common import domain_names

    source, target = domain_names(dataset_name)
    if cfg.direction == "b2a":
        source, target = target, source
    reverse = {"a2b": "b2a", "b2a": "a2b"}[cfg.direction]
    cards = {}
    for role in ("G", "G_A", "G_B"):
        backwards = role.endswith("_B")  # G_B translates B back to A
        cards[role] = {
            "model": model_name,
            "role": role,
            "translates": reverse if backwards else cfg.direction,
            "source": target if backwards else source,
            "target": source if backwards else target,
            "dataset": dataset_name,
            "steps": steps,
            "size": cfg.size,
            "run": cfg.name,
        }
    return cards


class _WithoutConditions:
    """What a model builder asks of a training set, for a run that used no conditions."""

    has_labels = False
    has_texts = False
    label_names: tuple = ()
    texts: list = []
    entries: list = []


def _conditioned_state(model_state: dict) -> bool:
    return any(".condition_encoder." in k or k.startswith("condition_encoder.") for k in model_state)


def _training_set(run_dir: Path, cfg, run_info: dict, spec):
    """The run's training set (for label names and the caption vocabulary), found where training left it."""
    from translate.data.datasets import open_dataset
    from translate.data.resolve import resolve_dataset

    described = run_info.get("dataset", {}) or {}
    candidates = []
    for base in (Path.cwd(), run_dir.resolve().parent.parent):
        if described.get("path"):
            candidates.append(base / described["path"])
        candidates.append(base / cfg.datasets_root / (described.get("canonical") or cfg.data))
    for folder in candidates:
        if folder.is_dir():
            resolved = resolve_dataset(str(folder), download=False)
            pairing = "paired" if spec.paired else "unpaired"
            return open_dataset(resolved, "train", direction=cfg.direction, pairing=pairing, seed=cfg.seed)
    raise UsageError(f"{run_dir} is a conditioned run: re-exporting it needs its dataset (for the label names "
                     f"and vocabulary), which is not at {candidates[0]}; run translate-export from the folder "
                     "training ran in")


def generators_from_state(run_dir: str | os.PathLike) -> dict[str, TranslationGenerator]:
    """The generators of a run rebuilt from its resume state (state.pt, loaded weights-only) and saved
    config, each with the card training gives it plus `exported_from: state.pt`."""
    import torch

    from translate.models import model_spec
    from translate.train.checkpoint import load_state
    from translate.train.config import build_config

    run_dir = Path(run_dir)
    state_path = run_dir / STATE_FILE
    if not state_path.is_file():
        raise UsageError(f"{run_dir} has no {STATE_FILE} to export from; train it (or --resume it) first")
    run_info = _read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
    model_name = run_info.get("model")
    if not model_name:
        raise UsageError(f"{run_dir}/run.json does not say which model was trained; cannot rebuild it")
    try:
        state = load_state(state_path)
    except Exception:  # weights_only refuses anything but tensors and plain containers; torch's advice
        # (to load it with weights_only=False, which runs whatever code the file holds) is not passed on
        raise UsageError(f"cannot read {state_path}: it is damaged, or holds objects other than tensors, which are "
                         "not loaded (loading them could run code); export the generators the run wrote itself") from None
    try:
        spec = model_spec(model_name)
    except ImportError:
        raise UsageError(f"{run_dir} is a {model_name} run, which this version of translate cannot rebuild; "
                         "update translate, or export with the version that trained it") from None
    saved = state.get("config") or _read_json(run_dir / "config.json")
    cfg = build_config(spec.config_class, {k: v for k, v in saved.items() if k != "resume"})
    dataset = _training_set(run_dir, cfg, run_info, spec) if _conditioned_state(state["model"]) else _WithoutConditions()
    torch.manual_seed(cfg.seed)
    model = spec.build(cfg, dataset)
    from translate.models.base import check_same_conditions

    check_same_conditions(model, run_info.get("condition"), run_dir)
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as e:
        first = " ".join(str(e).split())[:300]
        raise UsageError(f"{state_path} does not fit the model its config describes ({first})") from None
    dataset_name = (run_info.get("dataset") or {}).get("name") or cfg.data
    cards = run_cards(model_name, cfg, dataset_name, int(state["step"]))
    generators = model.exported_generators()
    for role, generator in generators.items():
        generator.card = {**cards.get(role, {"role": role}), "exported_from": STATE_FILE}
        generator.eval()
    return generators


def _atomic_copy(source: Path, target: Path) -> None:
    from translate.train.checkpoint import atomic_write_bytes

    atomic_write_bytes(source.read_bytes(), target)  # generator files are tens of MB: one read is fine


def refuse_to_replace(targets: list[Path], force: bool) -> None:
    """UsageError, before anything is written, when a file to write is already there and `force` is
    off: an export never replaces another model's file unasked."""
    taken = [t for t in targets if t.exists()]
    if taken and not force:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise UsageError(f"{taken[0]} already exists{more}; choose another --out, or pass --force to replace it")


def _run_roles(run_dir: Path) -> tuple[str, ...]:
    """The generators the run's model exports (G, or G_A and G_B), from its run.json; () when unknown."""
    from translate.models import model_spec

    try:
        return model_spec(_read_json(run_dir / "run.json").get("model")).generators
    except (UsageError, OSError, ValueError, AttributeError, ImportError):
        return ()


def _state_step(run_dir: Path) -> int | None:
    """The step of the run's resume state, read without the weights where possible."""
    if not (run_dir / STATE_FILE).is_file():
        return None
    from translate.train.checkpoint import load_state

    try:
        return int(load_state(run_dir / STATE_FILE)["step"])
    except Exception:
        return None


def _check_onnx_exportable(generators) -> None:
    """A generator ONNX cannot take (a GRU caption encoder) is refused before any file is written: the
    safetensors files written first stood in the way of the export without --onnx that the error advises."""
    from translate.io.onnx_export import check_exportable

    for generator in generators:
        check_exportable(generator)


def export_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *, onnx: bool = False,
               from_state: bool = False, force: bool = False,
               log: Callable[[str], None] | None = None) -> list[ExportedGenerator]:
    """Write every generator of the run in `run_dir` to `out_dir` as ROLE.safetensors (and ROLE.onnx).

    The run's exported files are copied when they are as recent as its resume state; otherwise (or with
    `from_state`) the generators are rebuilt from state.pt. With `onnx`, each is also exported to ONNX
    and checked against PyTorch with onnxruntime (see translate.io.onnx_export). Files already in
    `out_dir` are replaced only with `force` (UsageError before anything is written otherwise)."""
    log = log or (lambda message: None)
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    _check_run_dir(run_dir)
    existing = {p.stem: p for p in sorted(run_dir.glob("*.safetensors"))}
    state_step = _state_step(run_dir)
    cards, damaged = {}, []
    for role, path in existing.items():
        try:
            cards[role] = read_metadata(path)["card"]
        except UsageError:
            if state_step is None:
                raise  # nothing to rebuild it from
            damaged.append(role)  # truncated, overwritten: rebuilt from state.pt below
    stale = damaged + [role for role, card in cards.items() if state_step is not None and card.get("steps") != state_step]
    missing = [role for role in _run_roles(run_dir) if role not in existing] if state_step is not None else []
    results: list[ExportedGenerator] = []
    if existing and not from_state and not stale and not missing:
        targets = {role: out_dir / path.name for role, path in existing.items()}
        # A run exported into its own folder keeps its files: nothing is copied or replaced there.
        to_copy = [role for role, target in targets.items()
                   if not (target.exists() and target.resolve() == existing[role].resolve())]
        refuse_to_replace([targets[role] for role in to_copy]
                          + ([out_dir / f"{role}.onnx" for role in existing] if onnx else []), force)
        if onnx:
            _check_onnx_exportable(load_generator(path) for path in existing.values())
        for role, path in existing.items():
            if role in to_copy:
                _atomic_copy(path, targets[role])
            results.append(ExportedGenerator(role, targets[role], "copied", cards[role].get("steps")))
    else:
        if damaged and not from_state:
            log(f"{', '.join(existing[role].name for role in damaged)} cannot be read; exporting from {STATE_FILE}")
        elif missing and existing and not from_state:  # a run stopped between writing G_A and G_B
            log(f"{', '.join(f'{role}.safetensors' for role in missing)} missing from {run_dir}; exporting from {STATE_FILE}")
        elif stale and not from_state:
            log(f"{', '.join(p.name for p in existing.values())} older than {STATE_FILE} (step {state_step}); "
                f"exporting from {STATE_FILE}")
        generators = generators_from_state(run_dir)
        refuse_to_replace([out_dir / f"{role}.{ext}" for role in generators
                           for ext in (("safetensors", "onnx") if onnx else ("safetensors",))], force)
        if onnx:
            _check_onnx_exportable(generators.values())
        for role, generator in generators.items():
            path = save_generator(out_dir / f"{role}.safetensors", generator)
            results.append(ExportedGenerator(role, path, "from state.pt", generator.card.get("steps")))
    if onnx:
        from translate.io.onnx_export import export_onnx

        for item in results:
            report = export_onnx(load_generator(item.path), item.path.with_suffix(".onnx"))
            item.onnx, item.onnx_max_abs_diff = report.path, report.max_abs_diff
    return results


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_reference(pth: str | os.PathLike, net_name: str, out: str | os.PathLike, *, norm: str | None = None,
                     card: dict | None = None, force: bool = False,
                     onnx: bool = False) -> tuple[Path, TranslationGenerator]:
    """Convert a reference implementation generator (`.pth`, read weights-only) into a .safetensors file.

    `out` is the file to write, or a folder (then PTH_STEM.safetensors in it). The card records where
    the weights came from (`origin`: the file name and its SHA-256, plus what `card` adds, e.g. a URL);
    source/target domain names default to A and B. An existing file there (or its .onnx beside it, when
    `onnx` says one will be written) is replaced only with `force`. Returns the written path and the
    model."""
    from translate.io.reference import load_reference_generator

    pth = Path(pth)
    generator = load_reference_generator(pth, net_name, norm=norm)
    out = Path(out)
    if out.is_dir() or (not out.suffix and not out.exists()):
        out = out / (pth.stem + ".safetensors")
    elif out.suffix != ".safetensors":
        raise UsageError(f"--out {out} should end in .safetensors (or name a folder)")
    refuse_to_replace([out] + ([out.with_suffix(".onnx")] if onnx else []), force)
    extra = dict(card or {})
    origin = {"kind": "reference-pth", "file": pth.name, "sha256": file_sha256(pth), **extra.pop("origin", {})}
    arch = generator.config
    description = (f"imported from the reference implementation's {pth.name} "
                   f"({arch.name}, {arch.norm} norm)")
    full_card = {"model": "reference", "role": "G", "translates": "a2b", "source": "A", "target": "B",
                 "description": description, **extra, "origin": origin}
    model = TranslationGenerator(generator, card=full_card).eval()
    return save_generator(out, model), model
