"""The folder layouts of the reference CycleGAN/pix2pix code, and the optional condition metadata.

- `unaligned` (unpaired): `DIR/trainA, trainB, testA, testB` (and valA/valB).
- `aligned` (paired): `DIR/train, val, test` of side-by-side A|B images.
- `aligned_folders` (paired): `DIR/train/A` + `DIR/train/B` whose files match by name without the
  extension; also the reference's pre-combine form `DIR/A/train` + `DIR/B/train`.
- `colorization` (paired): `DIR/train, test` of colour images, A being their gray version (the
  registry's `mini_colorization`; chosen by the registry, as on disk it looks like `aligned`).

Image folders are read recursively; see `images.IMAGE_EXTENSIONS`. Unpaired synthetic sets may carry
ground truth: `testA_truth/NAME` is the true B image for `testA/NAME` (and `testB_truth/` the true A for
each test B).

Conditions: `DIR/metadata.jsonl` (one JSON object per line) or `DIR/metadata.csv` (a header row), with
`file_name` relative to DIR (e.g. `train/0001.png`) and `label` and/or `text`. A metadata file inside a
split folder (`DIR/train/metadata.jsonl`) names files relative to that folder. Labels are integers
(used as given) or names; names become indices through their sorted vocabulary (`label_names`), built
over all metadata files of the set so that every split shares it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from translate.data.images import IMAGE_EXTENSIONS, describe_folder, is_image_file, list_images
from translate.errors import UsageError

LAYOUTS = ("unaligned", "aligned", "aligned_folders", "colorization")
PAIRED_LAYOUTS = ("aligned", "aligned_folders", "colorization")
SPLITS = ("train", "val", "test")
METADATA_NAMES = ("metadata.jsonl", "metadata.csv")

_UNALIGNED_FOLDER = re.compile(r"^(train|val|test)[AB]$")
#: what a caption model reads as a word (translate.nets.conditions.tokenize), without importing torch here
_WORD = re.compile(r"\w+")

_EXPECTED = (
    "expected trainA/ and trainB/ (unpaired), train/ of side-by-side A|B images (paired), "
    "or train/A/ and train/B/ with matching file names (paired)"
)


def _subdirs(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def _holds_images(folder: Path) -> bool:
    """Whether `folder` itself (not a subfolder) holds an image file."""
    return any(entry.is_file() and not entry.name.startswith(".") and is_image_file(entry.name)
               for entry in os.scandir(folder))


def detect_layout(root: str | os.PathLike) -> str:
    """Which layout a dataset folder uses ('unaligned', 'aligned' or 'aligned_folders').

    Raises UsageError naming what was found when the folder matches none of them.
    """
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"dataset folder {root} does not exist; {_EXPECTED}")
    names = _subdirs(root)
    if any(_UNALIGNED_FOLDER.match(n) for n in names):
        return "unaligned"
    if any((root / s / "A").is_dir() and (root / s / "B").is_dir() for s in SPLITS):
        return "aligned_folders"
    # The reference's combine_A_and_B.py writes the combined A|B images to DIR/train beside its
    # inputs DIR/A/train and DIR/B/train: the combined images are what the reference reads.
    if any(s in SPLITS and _holds_images(root / s) for s in names):
        return "aligned"
    if (root / "A").is_dir() and (root / "B").is_dir():
        return "aligned_folders"
    if any(s in SPLITS for s in names):
        return "aligned"
    raise UsageError(f"no dataset layout in {root}: found {describe_folder(root)}; {_EXPECTED}")


def available_splits(root: str | os.PathLike, layout: str) -> tuple[str, ...]:
    """The splits present on disk, in train/val/test order."""
    root = Path(root)
    if layout == "unaligned":
        return tuple(s for s in SPLITS if (root / f"{s}A").is_dir() or (root / f"{s}B").is_dir())
    if layout == "aligned_folders":
        return tuple(
            s for s in SPLITS if (root / s / "A").is_dir() or (root / "A" / s).is_dir()
        )
    return tuple(s for s in SPLITS if (root / s).is_dir())


# -- file lists per split -----------------------------------------------------------------------------


def _images_or_error(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise UsageError(f"{folder} is missing ({what}); the dataset folder holds {describe_folder(folder.parent)}")
    images = list_images(folder)
    if not images:
        raise UsageError(
            f"{folder} has no images (looked for {' '.join(IMAGE_EXTENSIONS)}, any letter case); "
            f"it holds {describe_folder(folder)}"
        )
    return images


def unaligned_files(root: Path, split: str) -> tuple[list[Path], list[Path]]:
    """The A and B image lists of an unaligned split (DIR/{split}A, DIR/{split}B)."""
    return (
        _images_or_error(root / f"{split}A", f"the {split} images of domain A"),
        _images_or_error(root / f"{split}B", f"the {split} images of domain B"),
    )


def truth_file(root: Path, split: str, side: str, image: Path) -> Path | None:
    """The ground-truth image for `image` of DIR/{split}{side}, if DIR/{split}{side}_truth has one."""
    truth_root = root / f"{split}{side}_truth"
    if not truth_root.is_dir():
        return None
    candidate = truth_root / image.relative_to(root / f"{split}{side}")
    return candidate if candidate.is_file() else None


def aligned_files(root: Path, split: str) -> list[Path]:
    """The side-by-side A|B images of DIR/{split}."""
    return _images_or_error(root / split, f"the {split} split of A|B images")


def aligned_folder_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(A, B) file pairs of DIR/{split}/A + DIR/{split}/B (or DIR/A/{split} + DIR/B/{split}), matched
    by their path relative to the A or B folder without the extension, so a.png pairs with a.jpg."""
    if (root / split / "A").is_dir() or not (root / "A").is_dir():
        folder_a, folder_b = root / split / "A", root / split / "B"
    else:
        folder_a, folder_b = root / "A" / split, root / "B" / split
    files_a = _images_or_error(folder_a, f"the {split} images of domain A")
    files_b = _images_or_error(folder_b, f"the {split} images of domain B")

    def keyed(files: list[Path], folder: Path) -> dict[str, Path]:
        table: dict[str, Path] = {}
        for path in files:
            stem = path.relative_to(folder).with_suffix("").as_posix()
            if stem in table:
                raise UsageError(
                    f"{folder} has two images named {stem} ({table[stem].name}, {path.name}); "
                    "keep one per name so that A and B pair up"
                )
            table[stem] = path
        return table

    by_stem_a, by_stem_b = keyed(files_a, folder_a), keyed(files_b, folder_b)
    only_a = sorted(set(by_stem_a) - set(by_stem_b))
    only_b = sorted(set(by_stem_b) - set(by_stem_a))
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} in {folder_a} have no partner in {folder_b} (e.g. {only_a[0]})")
        if only_b:
            parts.append(f"{len(only_b)} in {folder_b} have no partner in {folder_a} (e.g. {only_b[0]})")
        raise UsageError(f"unmatched pairs: {'; '.join(parts)}; A and B files must share their names")
    return [(by_stem_a[s], by_stem_b[s]) for s in sorted(by_stem_a)]


# -- conditions -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """The condition of one image or pair: a label index and/or a caption."""

    label: int | None = None
    text: str | None = None


@dataclass(frozen=True)
class Conditions:
    """Conditions by file path relative to the dataset folder (posix), with the label vocabulary."""

    by_file: dict[str, Condition] = field(default_factory=dict)
    label_names: tuple[str, ...] | None = None  # None when labels are given as integers
    sources: tuple[str, ...] = ()  # the metadata files read

    @property
    def has_labels(self) -> bool:
        return any(c.label is not None for c in self.by_file.values())

    @property
    def has_texts(self) -> bool:
        return any(c.text is not None for c in self.by_file.values())

    @property
    def num_labels(self) -> int:
        if self.label_names is not None:
            return len(self.label_names)
        labels = [c.label for c in self.by_file.values() if c.label is not None]
        return max(labels) + 1 if labels else 0

    def fields(self) -> tuple[str, ...]:
        return tuple(name for name, present in (("label", self.has_labels), ("text", self.has_texts)) if present)

    def lookup(self, candidates: list[str]) -> Condition | None:
        for key in candidates:
            found = self.by_file.get(key)
            if found is not None:
                return found
        return None


def _normalized_name(raw: str, prefix: str, where: str) -> str:
    name = raw.strip().replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UsageError(f"{where}: file_name {raw!r} is absolute; give it relative to the dataset folder")
    joined = posixpath.normpath(posixpath.join(prefix, name)) if prefix else posixpath.normpath(name)
    if joined == ".." or joined.startswith("../"):
        raise UsageError(f"{where}: file_name {raw!r} leaves the dataset folder")
    return joined


def _metadata_text(path: Path) -> str:
    """A metadata file's text: UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8" writes
    one), or UTF-16 with one (Notepad's "Unicode"); anything else is refused in one line."""
    data = path.read_bytes()
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UsageError(f"{path} line {line} is not UTF-8 text (byte {data[error.start]:#04x}); save the file as "
                         "UTF-8 (Excel: CSV UTF-8)") from None


def _read_records(path: Path) -> list[tuple[str, dict]]:
    """(location, record) pairs of a metadata file; location is 'file line N' for error messages."""
    records: list[tuple[str, dict]] = []
    text = _metadata_text(path)
    if path.suffix == ".jsonl":
        for number, line in enumerate(io.StringIO(text), start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise UsageError(f"{where} is not valid JSON ({error.msg}); write one object per line") from None
            if not isinstance(record, dict):
                raise UsageError(f"{where} is not a JSON object; write one object per line")
            records.append((where, record))
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [name.strip() for name in reader.fieldnames or []]
        if header and "file_name" not in header:
            # Excel in many locales saves "CSV" with semicolons; every row then seemed to lack its file_name.
            other = next((sep for sep in (";", "\t", "|") if any(sep in name for name in header)), None)
            found = ",".join(header)[:80]
            raise UsageError(f"{path} line 1 has no file_name column (found {found!r})"
                             + (f"; separate the columns with commas, not {other!r}" if other
                                else "; name the columns file_name, label and/or text"))
        for number, row in enumerate(reader, start=2):
            record = {k.strip(): v for k, v in row.items() if k is not None}
            # CSV cells are text: a label column of whole numbers is taken as integer labels.
            label = record.get("label")
            if isinstance(label, str):
                label = label.strip()
                record["label"] = int(label) if re.fullmatch(r"\d+", label) else (label or None)
            if record.get("text") == "":
                record["text"] = None
            records.append((f"{path} line {number}", record))
    return records


def _condition_text(label, text) -> str:
    parts = ([] if label is None else [f"label {label!r}"]) + ([] if text is None else [f"text {text[:40]!r}"])
    return ", ".join(parts) or "none"


def load_conditions(root: str | os.PathLike) -> Conditions | None:
    """Read DIR/metadata.{jsonl,csv} and DIR/*/metadata.{jsonl,csv}; None when there are none."""
    root = Path(root)
    files: list[tuple[Path, str]] = []
    for folder, prefix in [(root, "")] + [(root / d, d) for d in _subdirs(root)]:
        present = [folder / n for n in METADATA_NAMES if (folder / n).is_file()]
        if len(present) > 1:
            raise UsageError(f"{folder} has both metadata.jsonl and metadata.csv; keep one")
        files.extend((p, prefix) for p in present)
    if not files:
        return None

    raw: dict[str, tuple[object, object, str]] = {}
    for path, prefix in files:
        for where, record in _read_records(path):
            if "file_name" not in record or not isinstance(record["file_name"], str):
                raise UsageError(f"{where} has no file_name; every record names its image")
            name = _normalized_name(record["file_name"], prefix, where)
            label, text = record.get("label"), record.get("text")
            if isinstance(label, bool) or not (label is None or isinstance(label, (int, str))):
                raise UsageError(f"{where}: label {label!r} is neither an integer nor a name")
            if isinstance(label, int) and label < 0:
                raise UsageError(f"{where}: label {label} is negative; labels are indices from 0 or names")
            if text is not None and not isinstance(text, str):
                raise UsageError(f"{where}: text must be a string, got {text!r}")
            # Blank is no condition, as a blank CSV cell (a label named "" or a caption of spaces
            # passed the every-image-or-none check); a name's surrounding spaces are no part of it.
            if isinstance(label, str):
                label = label.strip() or None
            if text is not None and not text.strip():
                text = None
            if text is not None and not _WORD.search(text):
                # Read as one unknown word by a caption model; inference refuses such a caption.
                raise UsageError(f"{where}: the caption {text!r} has no words (letters or digits) for a model to "
                                 "read; write it in words")
            earlier = raw.get(name)
            if earlier is not None and earlier[:2] != (label, text):
                # Two metadata files concatenated, or a row edited twice: which one counts is no guess to make.
                # A bare name twice is most often two folders' images (train/0.png, test/0.png) named alike.
                folders = ("" if "/" in name else "; or, if they are images of two folders, name each by its "
                           "path in the dataset folder (e.g. train/" + name + ")")
                raise UsageError(f"{where} gives {name} another condition than {earlier[2]} "
                                 f"({_condition_text(label, text)} against {_condition_text(*earlier[:2])}); "
                                 f"keep one record per image{folders}")
            raw[name] = (label, text, where)

    labels = [label for label, _, _ in raw.values() if label is not None]
    kinds = {type(label) for label in labels}
    if len(kinds) > 1:
        example = next(where for label, _, where in raw.values() if isinstance(label, str))
        raise UsageError(
            f"labels mix integers and names (e.g. {example}); use one kind throughout the metadata"
        )
    label_names: tuple[str, ...] | None = None
    index_of: dict[object, int] = {}
    if kinds == {str}:
        label_names = tuple(sorted(set(labels)))  # type: ignore[arg-type]
        index_of = {name: i for i, name in enumerate(label_names)}
    by_file = {
        name: Condition(
            label=None if label is None else (index_of[label] if label_names else int(label)),  # type: ignore[arg-type]
            text=text,  # type: ignore[arg-type]
        )
        for name, (label, text, _) in raw.items()
    }
    return Conditions(by_file=by_file, label_names=label_names, sources=tuple(str(p) for p, _ in files))
