"""Data: dataset layouts, paired transforms, the dataset registry with safe downloads, synthetic sets.

Typical use (what the training loop does):

    resolved = resolve_dataset("horse2zebra", root="datasets")          # downloads once if needed
    dataset = open_dataset(resolved, "train", transform=TransformConfig(size=256), seed=0)
    sampler = EpochSampler(len(dataset), seed=0, rank=rank, world_size=world_size)
    loader = DataLoader(dataset, batch_size=1, sampler=sampler, num_workers=2, persistent_workers=True)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)      # the keys carry the epoch to every worker
        for batch in loader: ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Public names and the module that defines each. They are imported on first use, so that
# `translate-data list` and `--help` do not pay for torch and albumentations.
_EXPORTS = {
    "DIRECTIONS": "datasets",
    "PAIRINGS": "datasets",
    "EpochSampler": "datasets",
    "TranslationDataset": "datasets",
    "build_entries": "datasets",
    "open_dataset": "datasets",
    "sample_seed": "datasets",
    "download_dataset": "download",
    "download_file": "download",
    "extract_archive": "download",
    "check_dataset": "checks",
    "check_batchable": "checks",
    "find_bad_images": "checks",
    "ImageReadError": "images",
    "IMAGE_EXTENSIONS": "images",
    "list_images": "images",
    "load_rgb": "images",
    "to_rgb_array": "images",
    "LAYOUTS": "layouts",
    "Conditions": "layouts",
    "detect_layout": "layouts",
    "load_conditions": "layouts",
    "DATASETS": "registry",
    "PRETRAINED": "registry",
    "SYNTHETIC": "registry",
    "DatasetEntry": "registry",
    "PretrainedModel": "registry",
    "lookup_dataset": "registry",
    "lookup_pretrained": "registry",
    "reversed_name": "registry",
    "ResolvedDataset": "resolve",
    "SyntheticOptions": "resolve",
    "ensure_synthetic": "resolve",
    "generate_synthetic": "resolve",
    "resolve_dataset": "resolve",
    "PREPROCESS_MODES": "transforms",
    "PairTransform": "transforms",
    "TransformConfig": "transforms",
    "build_transform": "transforms",
    "default_load_size": "transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'translate.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"translate.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from translate.data.datasets import (  # noqa: F401
        DIRECTIONS, PAIRINGS, EpochSampler, TranslationDataset, build_entries, open_dataset, sample_seed,
    )
    from translate.data.download import download_dataset, download_file, extract_archive  # noqa: F401
    from translate.data.images import IMAGE_EXTENSIONS, list_images, load_rgb, to_rgb_array  # noqa: F401
    from translate.data.layouts import LAYOUTS, Conditions, detect_layout, load_conditions  # noqa: F401
    from translate.data.registry import (  # noqa: F401
        DATASETS, PRETRAINED, SYNTHETIC, DatasetEntry, PretrainedModel, lookup_dataset, lookup_pretrained,
        reversed_name,
    )
    from translate.data.resolve import (  # noqa: F401
        ResolvedDataset, SyntheticOptions, ensure_synthetic, generate_synthetic, resolve_dataset,
    )
    from translate.data.transforms import (  # noqa: F401
        PREPROCESS_MODES, PairTransform, TransformConfig, build_transform, default_load_size,
    )
