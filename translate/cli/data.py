"""translate-data: list, download, generate and inspect datasets.

    translate-data list [--root datasets] [--json]
    translate-data download NAME [--root datasets] [--mirror URL] [--json]
    translate-data download-model NAME [--root checkpoints/pretrained] [--mirror URL] [--json]
    translate-data sample NAME --out DIR [--n N] [--n-test N] [--size N] [--seed S] [--json]
    translate-data info DATA [--root datasets] [--json]
    translate-data bench DATA [--size 256] [--n 200] [--json]

Human-readable text goes to stderr; --json prints one JSON object on stdout. Bad usage or bad input
exits with code 2 and a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from translate.cli.common import OneLineParser, user_os_error
from translate.errors import UsageError

PROG = "translate-data"


def _emit(args: argparse.Namespace, payload: dict, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(payload))
    for line in lines:
        print(line, file=sys.stderr)


# -- list -------------------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    from translate.data.registry import DATASET_ALIASES, DATASETS, SYNTHETIC, SYNTHETIC_ALIASES
    from translate.data.resolve import is_complete_synthetic

    root = Path(args.root)
    datasets = []
    for entry in DATASETS.values():
        datasets.append({
            "name": entry.name, "kind": entry.kind, "family": entry.family,
            "domains": [entry.domain_a, entry.domain_b], "train_images": entry.train_images or None,
            "url": entry.url, "downloadable": entry.url_path is not None,
            "on_disk": (root / entry.name).is_dir(), "path": str(root / entry.name),
            "aliases": sorted(a for a, c in DATASET_ALIASES.items() if c == entry.name),
            "description": entry.description, "note": entry.note or None,
        })
    synthetic = []
    for entry in SYNTHETIC.values():
        synthetic.append({
            "name": entry.name, "kind": "synthetic", "pairing": entry.kind,
            "domains": [entry.domain_a, entry.domain_b], "description": entry.description,
            "on_disk": is_complete_synthetic(root / entry.name), "path": str(root / entry.name),
            "aliases": sorted(a for a, c in SYNTHETIC_ALIASES.items() if c == entry.name),
        })

    def row(name: str, kind: str, size: str, disk: str, what: str) -> str:
        return f"  {name:<24} {kind:<15} {size:<13} {disk:<8} {what}"

    lines = [f"Datasets (downloaded into {root}/ on first use; 'yes' = already there)",
             row("name", "kind", "train A / B", "on disk", "description")]
    for item in datasets:
        disk = "yes" if item["on_disk"] else ("-" if item["downloadable"] else "manual")
        lines.append(row(item["name"], item["kind"], item["train_images"] or "?", disk, item["description"]))
    lines += ["", "Synthetic sets (built in, generated on first use, no download)",
              row("name", "kind", "", "on disk", "description")]
    for item in synthetic:
        lines.append(row(item["name"], f"synth/{item['pairing']}", "", "yes" if item["on_disk"] else "-",
                         item["description"]))
    lines += ["",
              "Every x2y name also works reversed: photo2vangogh is vangogh2photo with A and B swapped.",
              "facades, maps, cityscapes are the paired pix2pix sets (they serve unpaired models too); "
              "the CycleGAN archives are cyclegan-facades, cyclegan-maps.",
              "cityscapes cannot be redistributed: see its note in --json output."]
    aliases = {**DATASET_ALIASES, **SYNTHETIC_ALIASES}
    _emit(args, {"root": str(root), "datasets": datasets, "synthetic": synthetic, "aliases": aliases}, lines)
    return 0


# -- download ---------------------------------------------------------------------------------------


def _split_counts(resolved) -> dict:
    """Image counts per split and domain, as found on disk."""
    from translate.data.images import list_images

    path, counts = resolved.path, {}
    for split in resolved.splits:
        if resolved.layout == "unaligned":
            counts[split] = {side: len(list_images(path / f"{split}{side}")) for side in ("A", "B")}
        elif resolved.layout == "aligned_folders":
            base_a = path / split / "A" if (path / split / "A").is_dir() else path / "A" / split
            base_b = path / split / "B" if (path / split / "B").is_dir() else path / "B" / split
            counts[split] = {"A": len(list_images(base_a)), "B": len(list_images(base_b))}
        else:
            counts[split] = {"pairs": len(list_images(path / split))}
    return counts


def _summary_lines(resolved, counts: dict) -> list[str]:
    parts = []
    for split, per in counts.items():
        parts.append(f"{split} " + " / ".join(f"{n} {k}" for k, n in per.items()))
    conditions = f"; conditions: {', '.join(resolved.conditions)}" if resolved.conditions else ""
    swap = "; A and B swapped (reversed alias)" if resolved.swap else ""
    return [f"{resolved.path}: {resolved.kind} ({resolved.layout}); {'; '.join(parts) or 'no splits'}"
            f"{conditions}{swap}"]


def _download(args: argparse.Namespace) -> int:
    from translate.data.download import download_dataset, mirror_from_env
    from translate.data.registry import lookup_dataset, suggest
    from translate.data.resolve import resolve_dataset

    found = lookup_dataset(args.name)
    if found is None:
        raise UsageError(f"unknown dataset {args.name!r}{suggest(args.name)}; see `{PROG} list`")
    entry, swap = found
    root = Path(args.root)
    already = (root / entry.name).is_dir()
    if not already:
        url = entry.url_from(mirror_from_env(args.mirror))
        if swap:
            print(f"{args.name} is {entry.name} with A and B swapped; the data is stored once, as {entry.name}",
                  file=sys.stderr)
        if sys.stderr.isatty():  # beside the progress bar; logs get the one-line result or error only
            print(f"downloading {entry.name} from {url}", file=sys.stderr)
    path = download_dataset(entry.name, root=root, mirror=args.mirror, timeout=args.timeout)
    prefix = [f"{entry.name} was already in {path}"] if already else []
    try:
        resolved = resolve_dataset(args.name, root=root, download=False)
    except UsageError as error:  # downloaded fine, but not in a layout this toolkit trains on
        _emit(args, {"name": entry.name, "path": str(path), "layout": None, "downloaded": not already,
                     "note": str(error)}, prefix + [f"{entry.name} is in {path}; {error}"])
        return 0
    counts = _split_counts(resolved)
    _emit(args, {**resolved.describe(), "counts": counts, "downloaded": not already},
          prefix + _summary_lines(resolved, counts))
    return 0


# -- download-model ---------------------------------------------------------------------------------


def _download_model(args: argparse.Namespace) -> int:
    from translate.io.pretrained import download_pretrained

    files = download_pretrained(args.name, root=args.root, mirror=args.mirror, timeout=args.timeout)
    verb = "downloaded" if files.downloaded else "found"
    _emit(args, {"name": files.name, "family": files.family, "pth": str(files.pth),
                 "safetensors": str(files.safetensors), "url": files.url, "downloaded": files.downloaded},
          [f"{verb} {files.pth}; imported as {files.safetensors}",
           f"try: translate-infer --model {files.safetensors} --input IMAGE --output OUT"])
    return 0


# -- sample -----------------------------------------------------------------------------------------


def _sample(args: argparse.Namespace) -> int:
    from translate.data.registry import SYNTHETIC, lookup_synthetic
    from translate.data.resolve import SyntheticOptions, generate_synthetic, resolve_dataset
    from translate.data.transforms import check_side
    from translate.train.config import check_seed

    found = lookup_synthetic(args.name)
    if found is None:
        raise UsageError(f"unknown synthetic set {args.name!r}; choose one of {', '.join(SYNTHETIC)}")
    canonical, swap = found
    if swap:
        raise UsageError(
            f"{args.name} is {canonical} with A and B swapped; write {canonical} and read it with --direction b2a"
        )
    for flag, value in (("--n", args.n), ("--n-test", args.n_test), ("--size", args.size)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    check_seed(args.seed)
    check_side("--size", args.size)
    options = SyntheticOptions(n_train=args.n, n_test=args.n_test, size=args.size, seed=args.seed)
    out = generate_synthetic(canonical, Path(args.out), options)
    resolved = resolve_dataset(out, download=False)
    counts = _split_counts(resolved)
    _emit(args, {**resolved.describe(), "name": canonical, "counts": counts},
          [f"wrote {canonical}"] + _summary_lines(resolved, counts))
    return 0


# -- info -------------------------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    from translate.data.resolve import resolve_dataset

    from translate.data.datasets import build_entries
    from translate.data.layouts import PAIRED_LAYOUTS

    resolved = resolve_dataset(args.data, root=args.root, download=False)
    counts = _split_counts(resolved)
    if "train" in resolved.splits:
        # What training would refuse, now: files that do not pair up, metadata that conditions some
        # training images and not others (another split's problems only cost the sample grids, with a note).
        build_entries(resolved.path, resolved.layout, "train", swap=resolved.swap,
                      conditions=resolved.load_conditions(),
                      pairing="paired" if resolved.layout in PAIRED_LAYOUTS else "unpaired")
    _emit(args, {**resolved.describe(), "counts": counts}, _summary_lines(resolved, counts))
    return 0


# -- bench ------------------------------------------------------------------------------------------


def _bench(args: argparse.Namespace) -> int:
    import time

    import torch

    from translate.data.datasets import open_dataset
    from translate.data.resolve import resolve_dataset
    from translate.data.transforms import TransformConfig

    if args.n < 1 or args.size < 1:
        raise UsageError("--n and --size must be at least 1")
    # One thread, as in a DataLoader worker (PyTorch sets workers to one thread each).
    torch.set_num_threads(1)
    resolved = resolve_dataset(args.data, root=args.root, download=False)
    dataset = open_dataset(resolved, args.split, transform=TransformConfig(size=args.size, preprocess=args.preprocess),
                           train=True)
    count = min(args.n, len(dataset))
    dataset[0]  # warm caches and lazy imports
    start = time.perf_counter()
    for index in range(count):
        dataset[index]
    seconds = time.perf_counter() - start
    images_per_sample = 3 if dataset.has_truth else 2
    payload = {
        "data": resolved.name, "split": args.split, "size": args.size, "preprocess": args.preprocess,
        "samples": count, "seconds": round(seconds, 4), "samples_per_second": round(count / seconds, 2),
        "images_per_second": round(images_per_sample * count / seconds, 2),
    }
    lines = [f"{resolved.path} ({args.split}, {args.preprocess} at {args.size}px): "
             f"{payload['samples_per_second']} samples/s = {payload['images_per_second']} images/s "
             "in one process with one thread (about one DataLoader worker)"]
    _emit(args, payload, lines)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="List, download, generate and inspect datasets.")
    commands = parser.add_subparsers(dest="command", metavar="{list,download,download-model,sample,info,bench}")
    commands.required = True

    def common(sub: argparse.ArgumentParser, root: bool = True) -> None:
        if root:
            sub.add_argument("--root", default="datasets", help="where datasets live (default: datasets)")
        sub.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    listing = commands.add_parser("list", help="known dataset names and what is already on disk")
    common(listing)
    listing.set_defaults(handler=_list)

    download = commands.add_parser("download", help="download a registry dataset into ROOT/NAME")
    download.add_argument("name", metavar="NAME")
    download.add_argument("--mirror", metavar="URL", default=None,
                          help="base URL that replaces the official host (also $TRANSLATE_MIRROR)")
    download.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds (default 30)")
    common(download)
    download.set_defaults(handler=_download)

    download_model = commands.add_parser(
        "download-model", help="download a published CycleGAN/pix2pix generator and import it as .safetensors")
    download_model.add_argument("name", metavar="NAME", help="e.g. style_vangogh, horse2zebra, "
                                "pix2pix/facades_label2photo (see translate.data.registry.PRETRAINED)")
    download_model.add_argument("--root", default="checkpoints/pretrained",
                                help="where models go, as ROOT/FAMILY/NAME.pth (default: checkpoints/pretrained)")
    download_model.add_argument("--mirror", metavar="URL", default=None,
                                help="base URL that replaces the official host (also $TRANSLATE_MIRROR)")
    download_model.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds (default 30)")
    download_model.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    download_model.set_defaults(handler=_download_model)

    sample = commands.add_parser("sample", help="write a built-in synthetic set to a folder")
    sample.add_argument("name", metavar="NAME")
    sample.add_argument("--out", required=True, metavar="DIR", help="folder to create (must not exist or be empty)")
    sample.add_argument("--n", type=int, default=None, help="training images (default: the set's own)")
    sample.add_argument("--n-test", type=int, default=None, help="test images (default: the set's own)")
    sample.add_argument("--size", type=int, default=None, help="image side in pixels (default: the set's own)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    common(sample, root=False)
    sample.set_defaults(handler=_sample)

    info = commands.add_parser("info", help="layout, splits, image counts and conditions of DATA (no download)")
    info.add_argument("data", metavar="DATA", help="a folder, a registry name or a synth-* name")
    common(info)
    info.set_defaults(handler=_info)

    bench = commands.add_parser("bench", help="measure how fast one process loads training samples of DATA")
    bench.add_argument("data", metavar="DATA", help="a folder, a registry name or a synth-* name")
    bench.add_argument("--split", default="train")
    bench.add_argument("--size", type=int, default=256, help="crop size (default 256)")
    bench.add_argument("--preprocess", default="resize_and_crop")
    bench.add_argument("--n", type=int, default=200, help="samples to load (default 200)")
    common(bench)
    bench.set_defaults(handler=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        return args.handler(args)
    except SystemExit as exit_request:  # --help
        return int(exit_request.code or 0)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        message = user_os_error(error)
        if message is None:
            raise
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        downloading = getattr(args, "handler", None) in (_download, _download_model)
        print(f"{PROG}: interrupted" + (" (a partial download is kept as NAME.part and resumes next time)"
                                         if downloading else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
