"""translate-train {pix2pix,cyclegan,discogan} --data DATA [options]

Trains a model into checkpoints/RUN/ (config.json, metrics.jsonl, samples/, tensorboard/, state.pt
for --resume, and the exported generators as .safetensors). Runs unchanged under torchrun.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import posixpath
import re
import signal
import sys
from pathlib import Path
from shlex import quote

from translate.cli.common import OneLineParser, cli_entry, domain_names, info, user_os_error
from translate.errors import UsageError

PROG = "translate-train"


def build_parser() -> argparse.ArgumentParser:
    from translate.models import MODEL_NAMES, available_models
    from translate.train.config import add_config_arguments

    parser = OneLineParser(
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


def check_run_name(name: str) -> None:
    """A run's name is a folder inside --checkpoints: '.', '..' or an absolute path would put its files
    in the checkpoints folder itself (which then reads as one run) or outside it."""
    from pathlib import PureWindowsPath

    posix = name.replace("\\", "/")
    normal = posixpath.normpath(posix) if name.strip() else ""
    # ('run/', './run' and 'a//b' are the folders they name; 'C:run' is on a drive of its own on Windows)
    if (not normal or posix.startswith("/") or PureWindowsPath(name).drive or normal in (".", "..")
            or normal.startswith("../")):
        raise UsageError(f"--name {name!r} is not a folder name inside --checkpoints; give a plain name such as "
                         "'my-run' (a/b nests it), and --checkpoints for where runs go")


def resolve_config(spec, given: dict):
    """Published defaults <- a --preset <- a resumed run's saved config <- a --config file <- flags given now."""
    from translate.train.config import build_config, check_values, read_config_file

    file_layer = {}
    if given.get("config"):
        file_layer = check_values(spec.config_class, read_config_file(given["config"]), given["config"])
    merged = {**file_layer, **given}
    data = merged.get("data") or ""
    name = merged.get("name") or (default_run_name(spec.name, data) if data else None)
    if name is not None:
        check_run_name(str(name))
    checkpoints = Path(merged.get("checkpoints", "checkpoints"))
    saved = {}
    if merged.get("resume"):
        if not name:
            raise UsageError("--resume needs --name RUN (or the --data the run was started with)")
        saved = saved_settings(spec, checkpoints / name)
        saved.pop("resume", None)
        # The run continues where it was found: the checkpoints folder it was started with may be another
        # path now (the run moved, or was copied from another machine, or --checkpoints was relative).
        saved.pop("checkpoints", None)
    preset_name = merged.get("preset") or saved.get("preset")
    presets = spec.config_class.PRESETS
    if preset_name and preset_name not in presets:
        known = ", ".join(presets) or "none"
        raise UsageError(f"unknown --preset {preset_name!r} for {spec.name}; presets: {known}")
    preset = presets.get(preset_name, {}) if preset_name else {}
    # A run started under an earlier version of its preset resumes as it was; say so, for the settings
    # the preset set then (not those the user chose over it) that it sets differently now.
    record = recorded_preset(checkpoints / name) if saved and preset else None
    was = record["settings"] if record and record["name"] == preset_name else {}
    changed = {k: (was[k], v) for k, v in preset.items()
               if k in was and was[k] != v and saved.get(k) == was[k] and k not in merged}
    main_rank = int(os.environ.get("RANK", "0")) == 0  # (notes are printed once under torchrun)
    if changed and main_rank:
        info(f"note: {checkpoints / name} resumes with its own settings ({', '.join(f'{k} {old}' for k, (old, _) in changed.items())}); "
             f"--preset {preset_name} now means {', '.join(f'{k} {new}' for k, (_, new) in changed.items())}: "
             f"to train with those, pick another --name or remove {checkpoints / name}")
    cfg = build_config(spec.config_class, preset, saved, file_layer, given, {"name": name} if name else {})
    cfg.validate()
    if saved.get("data") and cfg.data != saved["data"] and main_rank:
        info(f"note: {checkpoints / name} trained on {saved['data']} so far and continues on {cfg.data}")
    if saved and cfg.preset != saved.get("preset"):
        # The run's saved settings sit above any preset: naming one now would change nothing but the record.
        if main_rank:
            info(f"note: --preset {cfg.preset} changes nothing on --resume ({checkpoints / name} keeps the settings it "
                 "was started with); give the settings themselves to change them")
        cfg.preset = saved.get("preset")
    return cfg


def hold_run_lock(run_dir: Path):
    """An exclusive lock on RUN/.lock for as long as the returned file stays open: a second training
    in the same run folder (another terminal, a repeated job) is refused before it writes anything.
    A POSIX record lock: it goes with the process however it ends, and the DataLoader workers it forks
    do not hold it. None where the platform or the file system has no locks (nothing is refused there)."""
    import errno

    try:
        import fcntl
    except ImportError:  # not on this platform
        return None
    handle = open(run_dir / ".lock", "a+")
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None  # a file system without locks (Lustre without -o flock, some NFS): train unguarded
        raise UsageError(f"another translate-train{f' (process {holder})' if holder else ''} is training in {run_dir}; "
                         "wait for it to finish, or pick another --name") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def refuse_if_training(run_dir: Path) -> None:
    """Refuses at once when another process holds `run_dir`'s lock, before the checks whose advice
    (add --resume, pick another --name) would be wrong while it trains. Rank 0 only: under torchrun
    the other ranks start beside it and would find its lock."""
    if int(os.environ.get("RANK", "0")) == 0 and (run_dir / ".lock").is_file():
        lock = hold_run_lock(run_dir)  # refuses when held; taken and let go at once otherwise
        if lock is not None:
            lock.close()


def saved_settings(spec, run_dir: Path) -> dict:
    """The settings of the run to resume in `run_dir`: its config.json, or the copy in its state.pt when
    config.json is missing or damaged (config.json is written anew once the run continues)."""
    import json

    from translate.train.checkpoint import read_state
    from translate.train.config import check_values
    from translate.train.loop import STATE_FILE

    config_path, state_path = run_dir / "config.json", run_dir / STATE_FILE
    if not config_path.exists() and not state_path.exists():
        raise UsageError(f"nothing to resume: {config_path} does not exist; start the run without --resume")
    try:
        trained = json.loads((run_dir / "run.json").read_text())["model"]
    except (OSError, ValueError, TypeError, KeyError):
        trained = None  # no run.json to tell: the saved settings will show a mismatch as unknown settings
    if isinstance(trained, str) and trained != spec.name:
        raise UsageError(f"{run_dir} was trained with {trained}, not {spec.name}; continue it with: "
                         f"{PROG} {trained} --name {quote(run_dir.name)} --checkpoints {quote(str(run_dir.parent))} --resume")
    try:
        saved = json.loads(config_path.read_text())
        problem = None if isinstance(saved, dict) else f"it holds a {type(saved).__name__}, not settings"
    except FileNotFoundError:
        problem = "it is missing"
    except (OSError, ValueError) as e:
        problem = " ".join(str(e).split()) or type(e).__name__
    if problem is None:
        return _as_started(spec, check_values(spec.config_class, saved, str(config_path)))
    if not state_path.exists():
        raise UsageError(f"{config_path} cannot be read ({problem}) and there is no {STATE_FILE} beside it to resume; "
                         "start a new run with another --name")
    saved = read_state(state_path).get("config")
    if not isinstance(saved, dict):
        raise UsageError(f"{config_path} cannot be read ({problem}), and {state_path} holds no copy of the settings; "
                         "start a new run with another --name")
    info(f"note: {config_path} cannot be read ({problem}); resuming with the settings saved in {state_path}")
    return _as_started(spec, check_values(spec.config_class, saved, f"the settings in {state_path}"))


def _as_started(spec, saved: dict) -> dict:
    """Saved settings completed with the values of settings added since the run was started (e.g. an
    older caption run had no word dropout), so that it resumes as it trained."""
    return {**spec.config_class.SETTINGS_ADDED_LATER, **saved}


def recorded_preset(run_dir: Path) -> dict | None:
    """{"name", "settings"}: the preset a run was started with, as it was then (run.json)."""
    import json

    try:
        record = json.loads((run_dir / "run.json").read_text()).get("preset")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(record, dict) and isinstance(record.get("name"), str) and isinstance(record.get("settings"), dict):
        return record
    return None


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

    from translate.data import (SyntheticOptions, TransformConfig, check_batchable, check_dataset, open_dataset,
                                resolve_dataset)
    from translate.io.generator_file import save_generator
    from translate.models import model_spec
    from translate.nets.factory import required_multiple
    from translate.train import distributed as ddp
    from translate.train.checkpoint import atomic_write_json, read_state, remove_leftover_temporaries
    from translate.train.config import config_to_dict, given_values, read_config_file
    from translate.train.loop import STATE_FILE, fit
    from translate.train.precision import resolve_device, resolve_precision

    spec = model_spec(args.model)
    cfg = resolve_config(spec, given_values(args, spec.config_class))
    run_dir = Path(cfg.checkpoints) / cfg.name
    refuse_if_training(run_dir)
    if (run_dir / STATE_FILE).exists() and not cfg.resume:
        raise UsageError(f"{run_dir} already holds a run; add --resume to continue it, or pick another --name")
    exported = sorted(p.name for p in run_dir.glob("*.safetensors")) if not (run_dir / STATE_FILE).exists() else []
    if exported:  # a finished run whose state.pt was removed to save space: its generators stay
        raise UsageError(f"{run_dir} holds the exported generators {', '.join(exported)} of a run that cannot be resumed "
                         f"(no {STATE_FILE}); pick another --name, or move them away to train a new run there")
    if cfg.resume and not (run_dir / STATE_FILE).exists():
        raise UsageError(f"nothing to resume in {run_dir} (no {STATE_FILE}); start it without --resume")
    state = read_state(run_dir / STATE_FILE) if cfg.resume else None  # a damaged one stops here, before any work

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
            try:
                resolved = resolve_dataset(cfg.data, root=cfg.datasets_root, download=True,
                                           synthetic=SyntheticOptions(seed=0))
            except UsageError as error:
                if not (cfg.resume and _relative_data_of_the_run(cfg, run_dir)):
                    raise
                # A run's config keeps --data as it was typed: relative to the folder it was started in.
                raise UsageError(f"{error}; {run_dir} was trained on {cfg.data!r} as given where it was started: "
                                 "resume from that folder, or add --data with the dataset's path") from None
        ddp.barrier()
        if not dist.is_main:
            resolved = resolve_dataset(cfg.data, root=cfg.datasets_root, download=False)
        if spec.paired and not resolved.paired:
            raise UsageError(f"{args.model} needs paired data, and {cfg.data} is unpaired; use cyclegan or discogan")
        transform = TransformConfig(size=cfg.size, load_size=cfg.load_size, preprocess=cfg.preprocess, flip=cfg.flip,
                                    multiple=multiple)
        train_set = open_dataset(resolved, "train", direction=cfg.direction, transform=transform, seed=cfg.seed,
                                 pairing="paired" if spec.paired else "unpaired")

        def open_previews(split):
            return open_dataset(resolved, split, direction=cfg.direction, transform=transform, train=False,
                                seed=cfg.seed, pairing="paired" if spec.paired else "unpaired")

        def first_previews(dataset):
            previews = [dataset[i] for i in range(min(4, len(dataset)))]
            # A truth folder may cover only some test images: the grids show what every preview has.
            shared = set.intersection(*(set(p) for p in previews)) if previews else set()
            previews = [{k: v for k, v in p.items() if k in shared} for p in previews]
            # With --preprocess none the preview images keep their sizes: the grid shows those of the first's.
            return previews, _collate([p for p in previews if p["A"].shape == previews[0]["A"].shape])

        preview_split = "test" if "test" in resolved.splits else "val" if "val" in resolved.splits else "train"
        try:
            preview_set = open_previews(preview_split)
        except UsageError as error:  # (test inputs without their targets, say): only the grids need it
            if preview_split == "train":
                raise
            log(f"note: the sample grids show training images, since the {preview_split} split cannot be read as "
                f"{'pairs' if spec.paired else 'two domains'} ({error})")
            preview_split, preview_set = "train", open_previews("train")
        for dataset, split in ((train_set, "train"), (preview_set, preview_split)):
            check_dataset(dataset, skip_bad=cfg.skip_bad_images, what=f"{resolved.name}'s {split} split", log=log)
        check_batchable(train_set, cfg.batch_size, what=f"{resolved.name}'s train split")
        previews, sample_batch = first_previews(preview_set)

        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        model = spec.build(cfg, train_set)
        if cfg.objective == "wgan-gp" and getattr(cfg, "norm", None) == "batch":
            log("note: under wgan-gp the discriminators use layer norm where --norm batch asks for batch norm "
                "(the gradient penalty is per sample, and batch norm ties samples together); the generators keep batch norm")
        condition = model.condition_record()
        if condition is not None and any(condition["kind"] not in p for p in previews):
            # the condition is the training split's; a test split without it would stop the run at
            # its first sample grid
            log(f"note: the sample grids show training images, since the {preview_split} split has no "
                f"{condition['kind']} conditions")
            previews, sample_batch = first_previews(open_previews("train"))
        _check_discriminator_sizes(model, tuple(train_set[0]["A"].shape[-2:]))
        if dist.enabled:  # batch norm anywhere in the model then covers the global batch
            model = ddp.convert_batch_norm(model)
        if state is not None:
            chosen = set(given_values(args, spec.config_class))  # settings given now, not read from config.json
            if cfg.config:
                chosen |= {key.replace("-", "_") for key in read_config_file(cfg.config)}
            changes = _check_resume(state, model, cfg, precision, dist, run_dir, len(train_set), chosen)
            if changes:
                log(f"note: {run_dir} continues with {', '.join(f'{k} {new} (was {old})' for k, old, new in changes)}; "
                    f"its first {state['step']} steps were trained with the old settings")
            state = None  # fit() reads it again; no need to hold two copies while training
        source, target = domain_names(resolved.name)
        if cfg.direction == "b2a":
            source, target = target, source
        run_dir.mkdir(parents=True, exist_ok=True)
        if dist.is_main:
            lock = hold_run_lock(run_dir)  # noqa: F841 - held (open) until this process ends
            remove_leftover_temporaries(run_dir)  # of a process killed mid-write: never read, only in the way
            resolved_cfg = config_to_dict(cfg)
            atomic_write_json(resolved_cfg, run_dir / "config.json")
            run_info = {"model": args.model, "dataset": resolved.describe(), "precision": precision.name,
                        "device": str(device), "world_size": dist.world_size, "torch": torch.__version__}
            if model.condition_record() is not None:
                run_info["condition"] = model.condition_record()  # what label and word ids mean
            started_with = recorded_preset(run_dir) if cfg.resume else None
            if started_with is None and cfg.preset and not cfg.resume:
                started_with = {"name": cfg.preset, "settings": spec.config_class.PRESETS[cfg.preset]}
            if started_with is not None:
                run_info["preset"] = started_with  # as the preset was when the run began
            atomic_write_json(run_info, run_dir / "run.json")
            log(f"{args.model} on {resolved.name} ({len(train_set)} training samples, {source} -> {target}); "
                f"{precision.name} on {device}{f' x{dist.world_size} processes' if dist.enabled else ''}; run folder {run_dir}")
        monitors = _spectral_monitors(model)
        hint = None
        if device.type == "cpu" and "quick" in spec.config_class.PRESETS and cfg.preset != "quick":
            hint = (f"on a CPU, try the quick preset first (a smaller model, minutes to train): {PROG} {args.model} "
                    f"--data {quote(cfg.data)} --preset quick --name {quote(cfg.name + '-quick')}; Ctrl-C stops this run, "
                    "--resume continues it")
        resume_command = (f"{PROG} {args.model} --name {quote(cfg.name)} --checkpoints {quote(str(cfg.checkpoints))} "
                          "--resume")
        with _full_disk_resumes(run_dir, resume_command):
            result = fit(model, train_set, cfg, run_dir, precision=precision, dist=dist, sample_batch=sample_batch,
                         spectral_monitors=monitors, log=log, long_run_hint=hint)
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
                with _full_disk_resumes(run_dir, resume_command):
                    path = save_generator(run_dir / f"{name}.safetensors", generator)
                log(f"exported {path}")
        if result.stopped_early:
            log(f"stopped at step {result.step}/{result.total_steps}; continue with: {resume_command}")
            # The shell's convention, as if the signal had ended the process: 130 for Ctrl-C, 143 for
            # SIGTERM (timeout, SLURM, systemd), so that a job script can tell one from the other.
            code = 128 + (result.stop_signal or signal.SIGINT)
        else:
            if dist.is_main:
                log(f"done: {result.step} steps in {result.seconds / 60:.1f} min; samples in {run_dir / 'samples'}; "
                    f"try: translate-infer --model {quote(str(run_dir))} --input IMAGE_OR_FOLDER --output OUT")
            code = 0
    except BaseException:
        ddp.shutdown_distributed(synchronize=False)  # the other ranks may never reach a barrier
        raise
    ddp.shutdown_distributed()  # a clean exit: all ranks meet at a barrier, then leave
    if dist.enabled:
        ddp.leave_process(code)  # skips gloo's teardown at interpreter exit (see there)
    return code


@contextlib.contextmanager
def _full_disk_resumes(run_dir: Path, resume_command: str):
    """A disk that fills during training or export, once the run has a checkpoint: the one line says to
    continue with --resume (the general advice, to run the command again, then met "already holds a run")."""
    from translate.train.loop import STATE_FILE

    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT) or not (run_dir / STATE_FILE).exists():
            raise
        said = user_os_error(e).rsplit("; ", 1)[0]
        raise UsageError(f"{said}; free some disk space and continue with: {resume_command}") from None


def _check_resume(state: dict, model, cfg, precision, dist, run_dir: Path, train_size: int,
                  chosen: set[str] = frozenset()) -> list[tuple]:
    """Refuse, before config.json is rewritten, a resume that fit() could not carry out: settings that
    change what state.pt holds (found by a trial load, so no list of such settings is kept) or a run
    length it has already passed. A refused resume leaves the run as it was, resumable.

    `chosen`: the settings given now (flags, --config); the others came from the run's config.json.
    Returns the (name, saved, now) settings that the resume changes and that it can carry out (a size,
    a batch size, a learning rate), for the note that says so."""
    import json
    from dataclasses import fields

    from translate.models.base import check_same_conditions
    from translate.train.checkpoint import StateMismatch, load_resume_state
    from translate.train.config import RUN_CONTROLS
    from translate.train.loop import (STATE_FILE, batches_per_epoch, epoch_sampler, make_optimizations,
                                      total_steps_for)

    try:
        recorded = json.loads((run_dir / "run.json").read_text()).get("condition")
    except (OSError, ValueError, AttributeError):
        recorded = None
    saved = state.get("config") if isinstance(state.get("config"), dict) else {}
    now = model.condition_record()
    if (recorded is not None and now is not None and now.get("kind") != recorded.get("kind")
            and saved.get("condition") not in (None, cfg.condition)):
        # The flag changed, not the metadata: "put the metadata back" was the wrong advice.
        raise UsageError(f"cannot resume {run_dir} with --condition {cfg.condition}: it was trained with --condition "
                         f"{saved['condition']} (conditioned on {recorded.get('kind')}s); resume without --condition, "
                         "or start a new run with another --name")
    check_same_conditions(model, recorded, run_dir)
    if saved.get("direction") not in (None, cfg.direction):  # the weights fit, and would learn the reverse
        raise UsageError(f"cannot resume {run_dir} with --direction {cfg.direction}: it was trained "
                         f"{saved['direction']}; resume without --direction, or start a new run with another --name")
    d_opt, g_opt = make_optimizations(model, cfg, precision, 1)  # throwaway: fit() makes its own
    try:
        # Into the model itself: fit() loads the same state again.
        load_resume_state(state, run_dir / STATE_FILE, model, {"g": g_opt, "d": d_opt}, rank=dist.rank,
                          world_size=dist.world_size)
    except StateMismatch as e:
        saved = state.get("config") if isinstance(state.get("config"), dict) else {}
        changed = [f for f in fields(cfg)
                   if f.name in saved and f.name not in RUN_CONTROLS and saved[f.name] != getattr(cfg, f.name)]
        if not changed:
            raise
        recorded = [f for f in changed if f.name not in chosen]
        if recorded:  # config.json edited by hand, or copied from another run: no flag to leave out
            says = ", ".join(f"{f.name} {getattr(cfg, f.name)}" for f in recorded)
            had = ", ".join(f"{f.name} {saved[f.name]}" for f in recorded)
            raise UsageError(f"cannot resume {run_dir}: its config.json says {says}, but its {STATE_FILE} was saved "
                             f"with {had} and does not fit that ({e.detail}); set config.json back to the values of "
                             f"{STATE_FILE} (or remove config.json to resume with them), or start a new run with "
                             "another --name") from None
        given = " ".join(_as_flag(f, getattr(cfg, f.name)) for f in changed)
        had = ", ".join(f"{f.name} {saved[f.name]}" for f in changed)
        raise UsageError(f"cannot resume {run_dir} with {given}: its {STATE_FILE} was saved with {had}, and does not "
                         f"fit these settings ({e.detail}); resume without changing them, or start a new run with "
                         "another --name") from None
    # The run's length as fit() counts it.
    total = total_steps_for(cfg, batches_per_epoch(cfg, epoch_sampler(cfg, train_size, dist)))
    step = int(state["step"])
    if step > total:
        raise UsageError(f"cannot resume {run_dir} for {total} steps: it is already at step {step}; give a "
                         f"--max-steps above {step} to train on (translate-export exports it as it is)")
    return [(f.name, saved[f.name], getattr(cfg, f.name)) for f in fields(cfg)
            if f.name in saved and f.name not in RUN_CONTROLS | {"data", "preset"}
            and json.loads(json.dumps(saved[f.name])) != json.loads(json.dumps(getattr(cfg, f.name)))]


def _relative_data_of_the_run(cfg, run_dir: Path) -> bool:
    """Whether --data is the run's own, a relative folder path as typed where it was started, that does
    not exist from here (not a registry or synthetic name, nor a --data typed now that differs)."""
    import json

    from translate.data.registry import lookup_dataset, lookup_synthetic

    try:
        recorded = json.loads((run_dir / "config.json").read_text()).get("data")
    except (OSError, ValueError, AttributeError):
        return False
    data = Path(cfg.data)
    return (recorded == cfg.data and not data.is_absolute() and not data.exists()
            and lookup_dataset(cfg.data) is None and lookup_synthetic(cfg.data) is None)


def _as_flag(f, value) -> str:
    from translate.train.config import flag_name

    if isinstance(value, bool):
        return flag_name(f) if value else "--no-" + flag_name(f)[2:]
    return f"{flag_name(f)} {value}"


def _check_discriminator_sizes(model, image_size: tuple[int, int]) -> None:
    """Refuse, before the run folder is made, images too small for a discriminator's layers (each
    stride-2 layer halves them: the first forward pass would fail after config.json is written)."""
    height, width = image_size
    for D in model.d_modules():
        smallest = getattr(D, "min_size", 1)
        if height < smallest or width < smallest:
            shallower = " --netD n_layers with a smaller --n-layers-D," if D.config.name != "pixel" else ""
            raise UsageError(f"--netD {D.config.name} needs training images of at least {smallest}x{smallest} "
                             f"(these are {height}x{width}); use --size {smallest} or more, or{shallower} "
                             "--netD pixel")


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
