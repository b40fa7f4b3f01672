"""Typed training configs. Each model's config subclasses `TrainConfig` and restates the defaults its
paper published; a run writes its resolved config as `config.json` beside its results.

Command-line flags are generated from the fields: a field's `flag` metadata names it (`--netG`), else
its name with dashes (`max_steps` -> `--max-steps`); `help` is shown by `translate-train MODEL -h`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, get_type_hints

from translate.errors import UsageError


def option(default, help: str, *, flag: str | None = None, choices: tuple | None = None):
    metadata = {"help": help}
    if flag:
        metadata["flag"] = flag
    if choices:
        metadata["choices"] = choices
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Knobs of the training loop, shared by every model."""

    data: str = option("", "dataset: a registry name, a built-in synth-* set, or a folder")
    name: str | None = option(None, "run name: the run folder is CHECKPOINTS/NAME (default: MODEL_DATA)")
    checkpoints: str = option("checkpoints", "folder that holds run folders")
    datasets_root: str = option("datasets", "folder that holds downloaded and generated datasets", flag="--datasets")
    direction: str = option("a2b", "translate A to B (a2b) or B to A (b2a)", choices=("a2b", "b2a"))
    size: int = option(256, "crop size fed to the networks (load size scales with it: 286 for 256)")
    load_size: int | None = option(None, "resize images to this before cropping (default: size * 286 / 256)")
    preprocess: str = option(
        "resize_and_crop", "how training images are sized",
        choices=("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"),
    )
    flip: bool = option(True, "flip training images horizontally at random (--no-flip to turn off)")
    batch_size: int = option(1, "images per step per process")
    epochs: int = option(100, "epochs at the initial learning rate")
    epochs_decay: int = option(100, "epochs of linear decay to zero after those")
    max_steps: int | None = option(None, "stop after this many steps (overrides the epochs' length; the lr schedule keeps its shape)")
    lr: float = option(2e-4, "learning rate of G (and of D unless --lr-d)")
    lr_d: float | None = option(None, "learning rate of D (default: --lr)")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    weight_decay: float = option(0.0, "L2 weight decay of both optimizers")
    optimizer: str = option("auto", "auto = the objective's choice (RMSProp for wgan, Adam otherwise)", choices=("auto", "adam", "rmsprop"))
    lr_policy: str = option("linear", "lr schedule", choices=("linear", "constant", "step", "cosine"))
    d_steps: int = option(1, "D updates per G update (k of Goodfellow et al.'s Algorithm 1)")
    objective: str = option("lsgan", "GAN objective", choices=("minimax", "nsgan", "vanilla", "lsgan", "hinge", "wgan", "wgan-gp"))
    d_reg: str = option("none", "discriminator regularizer", choices=("none", "sn", "sr-static", "sr-dynamic"))
    sr_rank: int = option(2, "i of static spectral compensation: the top i singular values are raised to s1")
    sr_refresh: int = option(5, "recompute the SVD of D's weights every this many D steps (Liu et al.'s code: 5)")
    instance_noise: float = option(0.0, "std of Gaussian noise added to D's inputs, annealed to 0 over the run")
    netG: str = option("resnet_9blocks", "generator architecture", flag="--netG")
    netD: str = option("basic", "discriminator architecture", flag="--netD")
    ngf: int = option(64, "generator width (filters in the first layer)")
    ndf: int = option(64, "discriminator width")
    n_layers_D: int = option(3, "PatchGAN depth when --netD n_layers", flag="--n-layers-D")
    norm: str = option("instance", "normalization layers", choices=("instance", "batch", "none"))
    dropout: bool = option(False, "dropout in the generator")
    bn_refresh_batches: int = option(200, "at the end, recompute the generators' batch-norm statistics over "
                                     "this many training batches (0: keep the moving averages)")
    upsample: str = option("transpose", "how the generator doubles resolution: transposed convs (the "
                           "reference's) or nearest x2 + 3x3 conv (no checkerboard)", choices=("transpose", "resize"))
    amp: str = option("auto", "mixed precision", choices=("auto", "off", "bf16", "fp16"))
    device: str = option("auto", "auto, cpu or cuda")
    channels_last: str = option("auto", "memory format for convolutions (auto = on for CUDA)", choices=("auto", "on", "off"))
    seed: int = option(0, "seed of everything random")
    workers: int = option(2, "data-loading worker processes")
    skip_bad_images: bool = option(False, "leave out unreadable, truncated, oversized or odd-width images "
                                   "(listed in a warning) instead of stopping at the first")
    log_every: int = option(25, "steps between metrics.jsonl lines")
    sample_every: int = option(500, "steps between sample grids")
    checkpoint_every: int = option(1000, "steps between resume checkpoints")
    spectral_every: int = option(250, "steps between spectral-monitor readings of D")
    tensorboard: bool = option(True, "write TensorBoard events")
    export: bool = option(True, "export the generators as safetensors at the end")
    resume: bool = option(False, "continue the run in CHECKPOINTS/NAME from its last checkpoint")
    config: str | None = option(None, "a TOML or JSON file of settings (flags given on the command line win)")
    preset: str | None = option(None, "a named bundle of settings, e.g. quick (see the model's --help)")

    #: named bundles of settings a model offers (e.g. "quick": a small, fast CPU configuration)
    PRESETS: ClassVar[dict[str, dict]] = {}
    #: settings introduced after runs were already being made, with the value that reproduces how those
    #: runs trained: a resumed run whose saved settings lack one continues as it started
    SETTINGS_ADDED_LATER: ClassVar[dict[str, object]] = {}

    def validate(self) -> None:
        for f in fields(self):  # nan and inf parse as floats, and pass every comparison below or crash later
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UsageError(f"{flag_name(f)} must be a finite number, got {value}")
        check_seed(self.seed)
        for name in ("batch_size", "size", "d_steps", "log_every", "sample_every", "checkpoint_every", "spectral_every",
                     "ngf", "ndf"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        from translate.data.transforms import check_side

        check_side("--size", self.size)
        check_side("--load-size", self.load_size)
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UsageError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if self.instance_noise < 0:
            raise UsageError(f"--instance-noise must be >= 0, got {self.instance_noise}")
        if self.bn_refresh_batches < 0:
            raise UsageError(f"--bn-refresh-batches must be >= 0, got {self.bn_refresh_batches}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise UsageError(f"--max-steps must be positive, got {self.max_steps}")
        if self.epochs < 0 or self.epochs_decay < 0 or self.epochs + self.epochs_decay == 0:
            raise UsageError("--epochs and --epochs-decay must be >= 0 and not both 0")
        if self.lr <= 0 or (self.lr_d is not None and self.lr_d <= 0):
            raise UsageError("learning rates must be positive")
        if self.weight_decay < 0:
            raise UsageError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.workers < 0:
            raise UsageError("--workers must be >= 0")
        if not self.data:
            raise UsageError("--data is required (a registry name, synth-photo2vangogh, or a folder)")


#: Settings that steer a run (its length, logs, files, hardware) and not what it trains. --resume may
#: change any setting as long as state.pt still loads; when it does not, these are left out of the
#: settings the refusal names as changed.
RUN_CONTROLS = frozenset({
    "name", "checkpoints", "datasets_root", "max_steps", "amp", "device", "channels_last", "workers", "skip_bad_images",
    "log_every", "sample_every", "checkpoint_every", "spectral_every", "tensorboard", "export", "resume", "config",
    "bn_refresh_batches",
})


#: seeds from 0 below this (a run seeds torch's 64-bit generator with seed * 7919 + 1 + rank)
SEED_LIMIT = 2**48


def check_seed(seed: int) -> None:
    if not 0 <= seed < SEED_LIMIT:
        raise UsageError(f"--seed must be between 0 and {SEED_LIMIT - 1}, got {seed}")


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_config_arguments(parser, config_class) -> None:
    """One argparse option per config field; defaults are left as None so that we can tell which flags
    the user gave (they override a --config file and a resumed run's saved config)."""
    hints = get_type_hints(config_class)
    for f in fields(config_class):
        kind = hints[f.name]
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": f.metadata.get("help", "")}
        if kind is bool:
            import argparse

            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _scalar_type(kind)
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
            kwargs["metavar"] = f.name.upper() if "choices" not in f.metadata else None
        if f.default is not None and f.default != "":
            kwargs["help"] += f" (default: {f.default})"
        parser.add_argument(flag_name(f), **kwargs)


def _scalar_type(kind):
    base = _base_type(kind)
    return base if base in (int, float, str) else str


def given_values(namespace, config_class) -> dict:
    return {f.name: getattr(namespace, f.name) for f in fields(config_class) if getattr(namespace, f.name, None) is not None}


def read_config_file(path: str) -> dict:
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"config file {path} is a folder; pass a .json or .toml file (a run's config.json will do)")
    if not p.is_file():
        raise UsageError(f"config file {path} not found")
    if p.suffix.lower() in (".yaml", ".yml"):
        raise UsageError(f"config file {path}: YAML is not read; write the same keys as JSON (.json) or TOML (.toml)")
    try:
        if p.suffix == ".toml":
            return tomllib.loads(p.read_text())
        return json.loads(p.read_text())
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"config file {path} is not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: {e}") from None


def check_values(config_class, values, source: str) -> dict:
    """Settings read from `source` (a --config file, a run's config.json) checked against the fields'
    types and choices, with their keys in field form. JSON and TOML carry types, so a mistyped value
    ("false" for a bool) is refused rather than taken at its truthiness."""
    if not isinstance(values, dict):
        raise UsageError(f"{source} must hold a table of settings (key = value), not a {type(values).__name__}")
    hints = get_type_hints(config_class)
    by_name = {f.name: f for f in fields(config_class)}
    checked = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in by_name:
            raise UsageError(f"unknown setting {key!r} in {source} for {config_class.__name__}; see translate-train MODEL --help")
        kind = hints[name]
        optional = kind != _base_type(kind)
        kind = _base_type(kind)
        if not (value is None and optional or _is_a(value, kind)):
            expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(kind, kind.__name__)
            raise UsageError(f"setting {key!r} in {source} must be {expected}{' or null' if optional else ''}, got {value!r}")
        choices = by_name[name].metadata.get("choices")
        if choices and value not in choices:
            raise UsageError(f"setting {key!r} in {source} must be one of {', '.join(choices)}, got {value!r}")
        checked[name] = float(value) if kind is float and value is not None else value
    return checked


def _base_type(kind):
    """X for X | None, else the type itself."""
    args = [a for a in getattr(kind, "__args__", ()) if a is not type(None)]
    return args[0] if len(args) == 1 else kind


def _is_a(value, kind) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)  # bool is an int in Python
    return isinstance(value, kind)


def build_config(config_class, *layers: dict):
    """The config with later layers overriding earlier ones; unknown keys are refused."""
    names = {f.name for f in fields(config_class)}
    merged: dict = {}
    for layer in layers:
        for key, value in layer.items():
            key = key.replace("-", "_")
            if key not in names:
                raise UsageError(f"unknown setting {key!r} for {config_class.__name__}; see translate-train MODEL --help")
            merged[key] = value
    return config_class(**merged)


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)
