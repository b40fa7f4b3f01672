"""Atomic writes and the resume state.

Every file a run writes that a later process reads (resume state, config, exported weights) is written
to a temporary file in the same folder and moved into place with `os.replace`, which is atomic on POSIX
and Windows: a crash mid-write leaves the previous file intact, never half of a new one.

Resume checkpoints use `torch.save`, and are read back with `weights_only=True`: they hold only
tensors, numbers, strings and containers of those, so loading one runs no code from the file. A resume
that cannot be read (a damaged file) or that does not fit the model built now (settings that change
the networks, optimizers or pools) is refused in one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from translate.errors import UsageError


def _new_file_mode() -> int:
    """The permissions open() gives a new file: 0o666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:  # a read-only folder, say: named by the file asked for, not the hidden temporary one
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        # mkstemp makes the file private (0o600), and os.replace keeps that: a model written so could
        # not be read by the account that serves it. Files get the permissions any new file gets.
        os.fchmod(fd, _new_file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        full = _disk_full(error, path.parent) if isinstance(error, (OSError, RuntimeError)) else None
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if full is not None:  # the file the write was for, not a nameless errno or torch's zip-writer message
            raise OSError(full, os.strerror(full), str(path)) from None
        raise


def remove_leftover_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files `_atomic_write` left in `folder` when its process was killed mid-write
    (SIGKILL, a power cut: `.state.pt.XXXXXXXX.tmp`, as large as the checkpoint). Call it only while no
    other process writes there (a run holding its lock). Returns what it removed."""
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        if path.is_file() and not path.is_symlink() and re.fullmatch(r"\..+\.[a-z0-9_]{8}\.tmp", path.name):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


_FULL = (errno.ENOSPC, errno.EDQUOT)


def _disk_full(error: BaseException, folder: Path) -> int | None:
    """ENOSPC or EDQUOT when a failed write ran out of space, else None. torch.save's zip writer turns
    a failed write into a RuntimeError: the OSError it came from is its context when the file object
    raised it, and a write that only came up short is taken as a full disk with under 1 MiB left."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return seen.errno
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, OSError):
        return None
    try:
        return errno.ENOSPC if shutil.disk_usage(folder).free < 2**20 else None
    except OSError:
        return None


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    _atomic_write(Path(path), lambda f: torch.save(obj, f))


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    _atomic_write(Path(path), lambda f: f.write(data))


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    atomic_write_bytes((json.dumps(obj, indent=2, sort_keys=False) + "\n").encode(), path)


def load_state(path: str | os.PathLike) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


#: what every resume state holds (translate.train.loop writes it)
_RESUME_KEYS = frozenset({"step", "model", "g", "d", "per_rank"})


def read_state(path: str | os.PathLike) -> dict:
    """A run's resume state; one that cannot be read back (truncated, empty, not a checkpoint) is refused
    in one line, which names what of the run is still usable."""
    path = Path(path)
    try:
        state = load_state(path)
    except Exception:  # torch's messages (zip internals, unpickling advice) would not help here
        state = None
    if not isinstance(state, dict) or not _RESUME_KEYS <= state.keys():
        damage = "an empty file" if path.stat().st_size == 0 else "truncated, or not a resume checkpoint"
        exported = ", ".join(sorted(p.name for p in path.parent.glob("*.safetensors")))
        kept = f" ({exported} in {path.parent} are intact)" if exported else ""
        raise UsageError(f"{path} is damaged ({damage}), so the run cannot continue; start a new run with another "
                         f"--name{kept}")
    return state


class StateMismatch(UsageError):
    """A resume state that does not fit the model and optimizers built now: some of the settings that
    shape them differ from those it was saved with. `detail` says where it first differs."""

    def __init__(self, path: Path, detail: str):
        super().__init__(f"cannot resume: {path} does not fit the model these settings build ({detail}); resume with "
                         "the settings it was saved with, or start a new run with another --name")
        self.detail = detail


def load_resume_state(state: dict, path: Path, model: torch.nn.Module, optimizations: dict, *, rank: int,
                      world_size: int) -> None:
    """Load `state` (read from `path`) into `model`, `optimizations` ({"g": ..., "d": ...}, each with an
    `.optimizer` and a `load_state_dict` of its saved part) and, when as many processes wrote it as run
    now, the model's extra state (history pools). StateMismatch when it does not fit."""
    try:
        detail = _model_mismatch(state["model"], model.state_dict())
        for name, optimization in optimizations.items():
            detail = detail or _optimizer_mismatch(name, state[name]["optimizer"], optimization.optimizer)
        if not detail:
            model.load_state_dict(state["model"])
            for name, optimization in optimizations.items():
                optimization.load_state_dict(state[name])
            ranks = state["per_rank"]
            if len(ranks) == world_size:
                model.load_extra_state(ranks[rank]["extra"])  # e.g. a history pool of another --pool-size
    except (RuntimeError, KeyError, IndexError, TypeError, ValueError) as e:
        detail = " ".join(str(e).split())[:200] or type(e).__name__
    if detail:
        raise StateMismatch(path, detail)


def _model_mismatch(saved: dict, now: dict) -> str | None:
    """Where two state dicts differ in names or shapes (what load_state_dict would refuse), or None."""
    def shapes(state: dict) -> dict:
        return {k: tuple(v.shape) if isinstance(v, torch.Tensor) else None for k, v in state.items()}

    saved, now = shapes(saved), shapes(now)
    if missing := [k for k in now if k not in saved]:
        return f"{len(missing)} tensors of the model not saved, e.g. {missing[0]}"
    if unexpected := [k for k in saved if k not in now]:
        return f"{len(unexpected)} saved tensors not in the model, e.g. {unexpected[0]}"
    for k, shape in now.items():
        if saved[k] != shape:
            return f"{k}: {_dims(saved[k])} saved, {_dims(shape)} now"
    return None


def _dims(shape: tuple | None) -> str:
    return "x".join(map(str, shape)) if shape is not None else "not a tensor"


def _optimizer_mismatch(name: str, saved: dict, optimizer: torch.optim.Optimizer) -> str | None:
    """Why `saved` is not the state of an optimizer like `optimizer` (of its kind, over as many
    parameters), or None."""
    groups, saved_groups = optimizer.param_groups, saved["param_groups"]
    if [len(g["params"]) for g in saved_groups] != [len(g["params"]) for g in groups]:
        return f"{name.upper()}'s optimizer: saved for another set of parameters"
    # Another kind of optimizer (Adam, RMSprop) has hyperparameter names the saved ones lack and the other
    # way round; another torch version only adds names on one side.
    for saved_group, group in zip(saved_groups, groups):
        if (ours := set(group) - set(saved_group)) and (theirs := set(saved_group) - set(group)):
            return (f"{name.upper()}'s optimizer: saved with {', '.join(sorted(theirs))}, another kind than this one "
                    f"(with {', '.join(sorted(ours))})")
    return None


def capture_rng_state() -> dict:
    """The global RNG states a training step draws from (dropout, pool, interpolation weights)."""
    state = {"torch": torch.get_rng_state(), "python": _python_state_to_plain(random.getstate())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_plain_to_python_state(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_plain(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _plain_to_python_state(plain):
    version, internal, gauss = plain
    return (version, tuple(internal), gauss)
