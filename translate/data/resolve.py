"""From the `--data` argument to a dataset folder on disk.

`resolve_dataset(DATA)` accepts, in this order:

1. a path to a dataset folder (any of the layouts in `translate.data.layouts`);
2. a built-in synthetic name (`synth-photo2vangogh`, ...; reversed aliases too), generated once into
   `root/synth-NAME` (with a suffix for non-default sizes) and marked complete by a marker file;
3. a registry name or reversed alias (`horse2zebra`, `zebra2horse`), downloaded into `root/NAME` when
   absent and `download` is allowed (a folder already there is used as it is);
4. the name of any other folder under `root` (`datasets/myset`).

The result says where the data is, how it is laid out, whether A and B are swapped (a reversed alias),
and whether it carries conditions.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from translate.data.download import OFFLINE_HINT, check_dataset_place, download_dataset, folder_lock
from translate.data.layouts import (
    PAIRED_LAYOUTS,
    Conditions,
    available_splits,
    detect_layout,
    load_conditions,
)
from translate.data.registry import lookup_dataset, lookup_synthetic, suggest
from translate.errors import UsageError

SYNTHETIC_MARKER = ".translate-synthetic.json"
OFFLINE_FALLBACK = "train on the built-in --data synth-photo2vangogh"


@dataclass(frozen=True)
class SyntheticOptions:
    """Sizes of a generated synthetic set; None keeps the set's own default."""

    n_train: int | None = None
    n_test: int | None = None
    size: int | None = None
    seed: int = 0

    def folder_suffix(self) -> str:
        parts = []
        if self.n_train is not None:
            parts.append(f"train{self.n_train}")
        if self.n_test is not None:
            parts.append(f"test{self.n_test}")
        if self.size is not None:
            parts.append(f"size{self.size}")
        if self.seed:
            parts.append(f"seed{self.seed}")
        return "".join(f"-{p}" for p in parts)


@dataclass(frozen=True)
class ResolvedDataset:
    """A dataset folder on disk and how to read it."""

    name: str  # what the user asked for
    path: Path  # the dataset folder
    layout: str  # unaligned | aligned | aligned_folders | colorization
    source: str  # path | registry | synthetic
    swap: bool = False  # A and B swapped: the name is a reversed alias
    canonical: str | None = None  # the registry or synthetic name the data is stored under
    splits: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()  # "label" and/or "text" when metadata gives them
    label_names: tuple[str, ...] | None = None

    @property
    def paired(self) -> bool:
        return self.layout in PAIRED_LAYOUTS

    @property
    def kind(self) -> str:
        return "paired" if self.paired else "unpaired"

    @property
    def conditioned(self) -> bool:
        return bool(self.conditions)

    def effective_direction(self, direction: str = "a2b") -> str:
        """The direction on disk: the requested one, reversed once more for an alias."""
        if direction not in ("a2b", "b2a"):
            raise UsageError(f"unknown direction {direction!r}; choose a2b or b2a")
        return direction if not self.swap else ("b2a" if direction == "a2b" else "a2b")

    def load_conditions(self) -> Conditions | None:
        return load_conditions(self.path)

    def describe(self) -> dict:
        """A JSON-ready summary (for run configs and `translate-data info`)."""
        return {
            "name": self.name, "path": str(self.path), "layout": self.layout, "kind": self.kind,
            "source": self.source, "swap": self.swap, "canonical": self.canonical,
            "splits": list(self.splits), "conditions": list(self.conditions),
            "label_names": None if self.label_names is None else list(self.label_names),
        }


def _describe_folder(name: str, path: Path, source: str, *, swap: bool = False, canonical: str | None = None,
                     layout: str | None = None) -> ResolvedDataset:
    layout = layout or detect_layout(path)
    conditions = load_conditions(path)
    return ResolvedDataset(
        name=name, path=path, layout=layout, source=source, swap=swap, canonical=canonical,
        splits=available_splits(path, layout),
        conditions=conditions.fields() if conditions else (),
        label_names=conditions.label_names if conditions else None,
    )


# -- synthetic sets ---------------------------------------------------------------------------------


def _synthetic_module():
    try:
        return importlib.import_module("translate.data.synthetic")
    except ImportError:
        raise UsageError(
            "the built-in synthetic sets are missing from this installation (translate.data.synthetic); "
            "reinstall translate or pass a dataset folder"
        ) from None


def _current_format() -> int:
    """The format version this installation's generator writes (1 for a generator without versions)."""
    return int(getattr(_synthetic_module(), "FORMAT_VERSION", 1))


#: what write_synthetic (translate.data.synthetic.sets) leaves in a set while it is being written, and
#: the record it writes at the end
SYNTHETIC_PARTIAL, SYNTHETIC_RECORD = ".synth-partial", "synth.json"


def _synthetic_marker(folder: Path) -> Path:
    """The file that says a generated set is complete: the generator's own marker, or the record of a
    set written with write_synthetic directly (the Python API)."""
    return folder / SYNTHETIC_MARKER if (folder / SYNTHETIC_MARKER).is_file() else folder / SYNTHETIC_RECORD


def synthetic_format(folder: Path) -> int:
    """The format version a complete generated set was written in (1: written before versions were kept;
    0: the marker cannot be read, which counts as out of date)."""
    try:
        return int(json.loads(_synthetic_marker(folder).read_text(encoding="utf-8")).get("format_version", 1))
    except (OSError, ValueError, AttributeError, TypeError):
        return 0


def is_complete_synthetic(folder: Path) -> bool:
    return _synthetic_marker(folder).is_file() and not (folder / SYNTHETIC_PARTIAL).exists()


def generate_synthetic(name: str, out_dir: str | os.PathLike, options: SyntheticOptions | None = None) -> Path:
    """Write synthetic set `name` (a canonical synth-* name) into `out_dir`, atomically.

    The set is written into a temporary folder beside `out_dir`, marked complete, then renamed, so
    `out_dir` never holds half a set. `out_dir` must not exist or be empty.
    """
    options = options or SyntheticOptions()
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(f"{out_dir} already exists and is not empty; choose a new folder or remove it")
    module = _synthetic_module()
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=parent))
    except OSError as error:  # (it names the hidden scratch folder, which the user never chose)
        raise UsageError(f"cannot write {out_dir}: {error.strerror} in {parent}; choose a place you can write to") \
            from None
    try:
        written = Path(module.write_synthetic(
            name, scratch / out_dir.name, n_train=options.n_train, n_test=options.n_test,
            size=options.size, seed=options.seed,
        ))
        marker = {"name": name, "n_train": options.n_train, "n_test": options.n_test, "size": options.size,
                  "seed": options.seed, "format_version": _current_format()}
        (written / SYNTHETIC_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        if out_dir.is_dir():
            out_dir.rmdir()  # empty, checked above; os.rename needs the name free on every platform
        os.rename(written, out_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out_dir


def ensure_synthetic(name: str, root: str | os.PathLike = "datasets", options: SyntheticOptions | None = None) -> Path:
    """The folder of synthetic set `name` under `root`, generated on first use (once, under a lock).

    A set written by an older format of the generator (its pictures are not what this version draws,
    so scores against its truth would not match the documented ones) is generated again and replaced.
    """
    options = options or SyntheticOptions()
    root = Path(root)
    final = root / f"{name}{options.folder_suffix()}"
    current = _current_format()
    if is_complete_synthetic(final) and synthetic_format(final) == current:
        return final
    if not is_complete_synthetic(final) and final.exists() and not (final.is_dir() and not any(final.iterdir())):
        raise UsageError(
            f"{final} exists but is not a complete generated set (no {SYNTHETIC_MARKER}); "
            "remove it and run again to regenerate it"
        )
    root.mkdir(parents=True, exist_ok=True)
    with folder_lock(root):  # another process may have written it while we waited: look again
        if not is_complete_synthetic(final):
            generate_synthetic(name, final, options)
        elif synthetic_format(final) != current:
            _replace_synthetic(name, final, options, current)
    return final


def _replace_synthetic(name: str, final: Path, options: SyntheticOptions, current: int) -> None:
    """Generate `final` again beside it, then swap: an interruption leaves the old set in place."""
    print(f"{final} was generated in format {synthetic_format(final)} of the synthetic sets; this version "
          f"writes format {current}: generating it again", file=sys.stderr)
    fresh = final.with_name(f".{final.name}-format{current}")
    old = final.with_name(f".{final.name}-old")
    for leftover in (fresh, old):
        shutil.rmtree(leftover, ignore_errors=True)
    generate_synthetic(name, fresh, options)
    os.rename(final, old)
    os.rename(fresh, final)
    shutil.rmtree(old, ignore_errors=True)


# -- resolution -------------------------------------------------------------------------------------


def _looks_like_path(data: str) -> bool:
    return any(sep in data for sep in ("/", "\\", os.sep)) or data.startswith((".", "~"))


def _registry_layout(folder: Path) -> str | None:
    """The colorization layout for a folder named like a registry colorization set (its train/ of colour
    photos looks exactly like side-by-side pairs); None: detect the layout from the folder."""
    found = lookup_dataset(folder.resolve().name)
    return "colorization" if found is not None and found[0].kind == "colorization" else None


def resolve_dataset(
    data: str | os.PathLike,
    *,
    root: str | os.PathLike = "datasets",
    download: bool = True,
    mirror: str | None = None,
    progress: bool = True,
    synthetic: SyntheticOptions | None = None,
) -> ResolvedDataset:
    """Turn DATA (a path, a synth-* name, a folder under root, or a registry name) into a dataset folder.

    download: fetch registry sets that are not under `root` yet; when False (or offline) a missing set
    raises UsageError naming `translate-data download NAME` and the built-in synthetic data.
    synthetic: sizes for a synth-* set (None: the set's defaults).
    """
    text = os.fspath(data)
    root = Path(root)
    direct = Path(text).expanduser()
    if direct.is_dir():
        if (direct / SYNTHETIC_PARTIAL).exists():
            raise UsageError(f"{direct} holds a synthetic set whose writing was interrupted (it has {SYNTHETIC_PARTIAL}); "
                             "write it again (translate-data sample NAME --out DIR) or pass another folder")
        return _describe_folder(direct.name or text, direct, "path", layout=_registry_layout(direct))

    synth = lookup_synthetic(text)
    if synth is not None:
        canonical, swap = synth
        folder = ensure_synthetic(canonical, root, synthetic)
        return _describe_folder(text, folder, "synthetic", swap=swap, canonical=canonical)

    found = None if _looks_like_path(text) else lookup_dataset(text)
    if found is not None:
        entry, swap = found
        layout = "colorization" if entry.kind == "colorization" else None
        folder = root / entry.name
        if not folder.is_dir():
            if entry.url_path is None:
                raise UsageError(f"{entry.name} is not in {root}/ and cannot be downloaded: {entry.note}")
            check_dataset_place(folder, entry.name)  # not a download to retry online
            if not download:
                raise UsageError(
                    f"{entry.name} is not in {root}/; run `translate-data download {entry.name}` "
                    f"(needs internet) or {OFFLINE_FALLBACK}"
                )
            root_existed = root.exists()
            try:
                folder = download_dataset(entry.name, root=root, mirror=mirror, progress=progress)
            except UsageError as error:
                if not root_existed:  # leave no trace of the attempt: the (empty) root it created goes too
                    with contextlib.suppress(OSError):
                        root.rmdir()
                # The download's own advice names flags of translate-data; here we say which command to run.
                reason = str(error).removesuffix(f"; {OFFLINE_HINT}")
                raise UsageError(
                    f"{entry.name} is not in {root}/ and could not be downloaded ({reason}); run "
                    f"`translate-data download {entry.name}` when online (or with --mirror URL), or {OFFLINE_FALLBACK}"
                ) from None
        return _describe_folder(text, folder, "registry", swap=swap, canonical=entry.name, layout=layout)

    if not _looks_like_path(text) and (root / text).is_dir():
        return _describe_folder(text, root / text, "path", layout=_registry_layout(root / text))
    if _looks_like_path(text):
        raise UsageError(f"no folder {text}; pass an existing dataset folder, a registry name or a synth-* name")
    raise UsageError(
        f"unknown dataset {text!r}{suggest(text)}: not a folder, a registry name or a synth-* name; "
        "see `translate-data list`"
    )
