"""Atomic writes and the resume state.

Every file a run writes that a later process reads (resume state, config, exported weights) is written
to a temporary file in the same folder and moved into place with `os.replace`, which is atomic on POSIX
and Windows: a crash mid-write leaves the previous file intact, never half of a new one.

Resume checkpoints use `torch.save`, and are read back with `weights_only=True`: they hold only
tensors, numbers, strings and containers of those, so loading one runs no code from the file.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import torch


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    _atomic_write(Path(path), lambda f: torch.save(obj, f))


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    _atomic_write(Path(path), lambda f: f.write(data))


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    atomic_write_bytes((json.dumps(obj, indent=2, sort_keys=False) + "\n").encode(), path)


def load_state(path: str | os.PathLike) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


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
