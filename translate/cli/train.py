"""translate-train {pix2pix,cyclegan,discogan} --data DATA [options]

Trains a model into checkpoints/RUN/ (config.json, metrics.jsonl, samples/, tensorboard/, state.pt
for --resume, and the exported generators as .safetensors). Runs unchanged under torchrun.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from translate.cli.common import cli_entry, domain_names, info
from translate.errors import UsageError

PROG = "translate-train"


def build_parser() -> argparse.ArgumentParser:
    from translate.models import MODEL_NAMES, available_models
    from translate.train.config import add_config_arguments

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train an image-to-image translation model. Example: translate-train cyclegan --data synth-photo2vangogh",
    )
    sub = parser.add_subparsers(dest="model", metavar="{" + ",".join(MODEL_NAMES) + "}")
    for name, spec in available_models().items():
        presets = "".join(f" Preset {preset}: {', '.join(f'{k}={v}' for k, v in settings.items())}."
                          for preset, settings in spec.config_class.PRESETS.items())
        p = sub.add_parser(name, help=spec.summary,
                           description=f"{name}: {spec.summary}. Defaults are the published ones.{presets}")
        add_config_arguments(p, spec.config_class)
    return parser


def default_run_name(model: str, data: str) -> str:
    stem = Path(data.rstrip("/")).name or "data"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}_{stem}")


def resolve_config(spec, given: dict):
    """Published defaults <- a --preset <- a resumed run's saved config <- a --config file <- flags given now."""
    import json

    from translate.train.config import build_config, read_config_file

    file_layer = read_config_file(given["config"]) if given.get("config") else {}
    merged = {**file_layer, **given}
    data = merged.get("data") or ""
    name = merged.get("name") or (default_run_name(spec.name, data) if data else None)
    checkpoints = Path(merged.get("checkpoints", "checkpoints"))
    saved = {}
    if merged.get("resume"):
        if not name:
            raise UsageError("--resume needs --name RUN (or the --data the run was started with)")
        saved_path = checkpoints / name / "config.json"
        if not saved_path.exists():
            raise UsageError(f"nothing to resume: {saved_path} does not exist; start the run without --resume")
        saved = json.loads(saved_path.read_text())
        saved.pop("resume", None)
    preset_name = merged.get("preset") or saved.get("preset")
    presets = spec.config_class.PRESETS
    if preset_name and preset_name not in presets:
        known = ", ".join(presets) or "none"
        raise UsageError(f"unknown --preset {preset_name!r} for {spec.name}; presets: {known}")
    preset = presets.get(preset_name, {}) if preset_name else {}
    cfg = build_config(spec.config_class, preset, saved, file_layer, given, {"name": name} if name else {})
    cfg.validate()
    return cfg


@cli_entry(PROG)
def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.model is None:
        parser.print_help(sys.stderr)
        return 2
    return train(args)


def train(args) -> int:
    import torch

    from translate.data import SyntheticOptions, TransformConfig, check_dataset, open_dataset, resolve_dataset
    from translate.io.generator_file import save_generator
    from translate.models import model_spec
    from translate.nets.factory import required_multiple
    from translate.train import distributed as ddp
    from translate.train.checkpoint import atomic_write_json
    from translate.train.config import config_to_dict, given_values
    from translate.train.loop import STATE_FILE, fit
    from translate.train.precision import resolve_device, resolve_precision

    spec = model_spec(args.model)
    cfg = resolve_config(spec, given_values(args, spec.config_class))
    run_dir = Path(cfg.checkpoints) / cfg.name
    if (run_dir / STATE_FILE).exists() and not cfg.resume:
        raise UsageError(f"{run_dir} already holds a run; add --resume to continue it, or pick another --name")
    if cfg.resume and not (run_dir / STATE_FILE).exists():
        raise UsageError(f"nothing to resume in {run_dir} (no {STATE_FILE}); start it without --resume")

    multiple = required_multiple(cfg.netG)
    if cfg.size % multiple:
        raise UsageError(f"--size {cfg.size} does not fit --netG {cfg.netG}, which needs multiples of {multiple}; "
                         f"use --size {max(multiple, cfg.size // multiple * multiple)}")

    local_rank = int(__import__("os").environ.get("LOCAL_RANK", "0"))
    device = resolve_device(cfg.device, local_rank)
    dist = ddp.init_distributed(device.type)
    precision = resolve_precision(cfg.amp, device)
    log = info if dist.is_main else (lambda *a: None)
    try:
        # Rank 0 downloads or generates the dataset; the others wait, then read it.
        if dist.is_main:
            resolved = resolve_dataset(cfg.data, root=cfg.datasets_root, download=True, synthetic=SyntheticOptions(seed=0))
        ddp.barrier()
        if not dist.is_main:
            resolved = resolve_dataset(cfg.data, root=cfg.datasets_root, download=False)
        if spec.paired and not resolved.paired:
            raise UsageError(f"{args.model} needs paired data, and {cfg.data} is unpaired; use cyclegan or discogan")
        transform = TransformConfig(size=cfg.size, load_size=cfg.load_size, preprocess=cfg.preprocess, flip=cfg.flip,
                                    multiple=multiple)
        train_set = open_dataset(resolved, "train", direction=cfg.direction, transform=transform, seed=cfg.seed,
                                 pairing="paired" if spec.paired else "unpaired")
        preview_split = "test" if "test" in resolved.splits else "val" if "val" in resolved.splits else "train"
        preview_set = open_dataset(resolved, preview_split, direction=cfg.direction, transform=transform, train=False,
                                   seed=cfg.seed, pairing="paired" if spec.paired else "unpaired")
        for dataset, split in ((train_set, "train"), (preview_set, preview_split)):
            check_dataset(dataset, skip_bad=cfg.skip_bad_images, what=f"{resolved.name}'s {split} split", log=log)
        sample_batch = _collate([preview_set[i] for i in range(min(4, len(preview_set)))])

        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        model = spec.build(cfg, train_set)
        if dist.enabled and cfg.norm == "batch":
            model = ddp.convert_batch_norm(model, device.type)
        source, target = domain_names(resolved.name)
        if cfg.direction == "b2a":
            source, target = target, source
        run_dir.mkdir(parents=True, exist_ok=True)
        if dist.is_main:
            resolved_cfg = config_to_dict(cfg)
            atomic_write_json(resolved_cfg, run_dir / "config.json")
            atomic_write_json({"model": args.model, "dataset": resolved.describe(), "precision": precision.name,
                               "device": str(device), "world_size": dist.world_size, "torch": torch.__version__},
                              run_dir / "run.json")
            log(f"{args.model} on {resolved.name} ({len(train_set)} training samples, {source} -> {target}); "
                f"{precision.name} on {device}{f' x{dist.world_size} processes' if dist.enabled else ''}; run folder {run_dir}")
        monitors = _spectral_monitors(model)
        result = fit(model, train_set, cfg, run_dir, precision=precision, dist=dist, sample_batch=sample_batch,
                     spectral_monitors=monitors, log=log)
        if dist.is_main and cfg.export:
            for name, generator in model.exported_generators().items():
                reverse = name.endswith("_B")
                generator.card = {
                    "model": args.model,
                    "role": name,
                    "translates": ({"a2b": "b2a", "b2a": "a2b"}[cfg.direction] if reverse else cfg.direction),
                    "source": target if reverse else source,
                    "target": source if reverse else target,
                    "dataset": resolved.name,
                    "steps": result.step,
                    "size": cfg.size,
                    "run": cfg.name,
                }
                path = save_generator(run_dir / f"{name}.safetensors", generator)
                log(f"exported {path}")
        if result.stopped_early:
            log(f"stopped at step {result.step}/{result.total_steps}; continue with: "
                f"{PROG} {args.model} --name {cfg.name} --checkpoints {cfg.checkpoints} --resume")
            code = 130
        else:
            if dist.is_main:
                log(f"done: {result.step} steps in {result.seconds / 60:.1f} min; samples in {run_dir / 'samples'}; "
                    f"try: translate-infer --model {run_dir} --input IMAGE_OR_FOLDER --output OUT")
            code = 0
    except BaseException:
        ddp.shutdown_distributed(synchronize=False)  # the other ranks may never reach a barrier
        raise
    ddp.shutdown_distributed()  # a clean exit: all ranks meet at a barrier, then leave
    if dist.enabled:
        ddp.leave_process(code)  # skips gloo's teardown at interpreter exit (see there)
    return code


def _collate(samples: list[dict]) -> dict:
    from torch.utils.data import default_collate

    return default_collate(samples)


def _spectral_monitors(model) -> dict:
    try:
        from translate.core.monitor import SpectralMonitor
    except ImportError:
        return {}
    return {f"spectrum_{name}": SpectralMonitor(getattr(model, name)) for name in model.discriminator_names}


if __name__ == "__main__":
    sys.exit(main())
