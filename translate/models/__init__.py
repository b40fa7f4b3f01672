"""Translation models: each says how its losses add up; translate.train trains them all.

`MODELS` maps a model name to its config class and a builder `(config, train_dataset) -> model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ModelSpec:
    name: str
    summary: str
    config_class: type
    build: Callable  # (config, train_dataset) -> TranslationModel
    paired: bool
    generators: tuple[str, ...] = ("G_A", "G_B")  # the roles it exports, ROLE.safetensors


def _pix2pix() -> ModelSpec:
    from translate.models.pix2pix import Pix2Pix, Pix2PixConfig, condition_spec_for

    def build(cfg, dataset):
        spec = condition_spec_for(cfg, dataset)
        captions, labels, present = [], None, None
        if spec.kind == "text":
            # Every caption with its label (when the set has both), to draw mismatched captions from.
            captions = [e.condition.text for e in dataset.entries]
            if dataset.has_labels:
                labels = [int(e.condition.label) for e in dataset.entries]
        if spec.kind == "label":  # the labels the training images have, to draw wrong ones among
            present = [int(e.condition.label) for e in dataset.entries]
        return Pix2Pix(cfg, spec, captions=captions, caption_labels=labels, labels_present=present)

    return ModelSpec("pix2pix", "paired translation: conditional GAN + L1 (Isola et al. 2017)", Pix2PixConfig, build, True,
                     Pix2Pix.generator_names)


def _cyclegan() -> ModelSpec:
    from translate.models.cyclegan import CycleGAN, CycleGANConfig

    return ModelSpec("cyclegan", "unpaired translation with cycle consistency (Zhu et al. 2017)", CycleGANConfig,
                     lambda cfg, dataset: CycleGAN(cfg), False, CycleGAN.generator_names)


def _discogan() -> ModelSpec:
    from translate.models.discogan import DiscoGAN, DiscoGANConfig

    return ModelSpec("discogan", "unpaired translation with reconstruction + feature matching (Kim et al. 2017)",
                     DiscoGANConfig, lambda cfg, dataset: DiscoGAN(cfg), False, DiscoGAN.generator_names)


_LOADERS = {"pix2pix": _pix2pix, "cyclegan": _cyclegan, "discogan": _discogan}
MODEL_NAMES = tuple(_LOADERS)


def model_spec(name: str) -> ModelSpec:
    from translate.errors import UsageError

    if name not in _LOADERS:
        raise UsageError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return _LOADERS[name]()


def available_models() -> dict[str, ModelSpec]:
    """The models whose modules are present (all three once CycleGAN and DiscoGAN have landed)."""
    out = {}
    for name, loader in _LOADERS.items():
        try:
            out[name] = loader()
        except ImportError:
            continue
    return out
