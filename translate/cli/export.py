"""translate-export: generators out of a run, or in from the reference implementation.

    translate-export RUN_DIR --out DIR [--onnx] [--from-state] [--force] [--json]
    translate-export --from-reference FILE.pth --netG resnet_9blocks|resnet_6blocks|unet_256|unet_128
        [--norm instance|batch] --out FILE.safetensors [--source NAME --target NAME] [--onnx] [--force] [--json]

The first writes each generator of a run as DIR/ROLE.safetensors (G, or G_A and G_B), copied when the
run exported them itself, otherwise rebuilt from its state.pt (an interrupted run); --onnx adds
DIR/ROLE.onnx, checked against PyTorch with onnxruntime (the largest difference is printed; a file
that disagrees by more than 1e-3 is not written, exit code 1). The second converts a published
reference generator (.pth, read weights-only: a file that needs code to load is refused). Neither
replaces a file already at --out unless --force is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from translate.cli.common import OneLineParser, cli_entry, info
from translate.errors import UsageError

PROG = "translate-export"
MODEL_FILE_SUFFIXES = (".safetensors", ".onnx", ".pth", ".pt")
REFERENCE_NETS = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Export a run's generators (safetensors, ONNX), or import a reference "
                                       "implementation .pth generator.")
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a run folder, e.g. checkpoints/RUN")
    p.add_argument("--out", required=True, help="output folder (a run) or .safetensors file (--from-reference)")
    p.add_argument("--onnx", action="store_true", help="also write ONNX files (dynamic batch, height, width), "
                                                       "checked with onnxruntime")
    p.add_argument("--from-state", action="store_true", help="rebuild from state.pt even when exported files exist")
    p.add_argument("--from-reference", metavar="FILE.pth", help="a reference implementation generator to import")
    p.add_argument("--netG", choices=REFERENCE_NETS, help="architecture of the --from-reference file")
    p.add_argument("--norm", choices=("instance", "batch"), default=None,
                   help="its norm (default: read from the weights; CycleGAN: instance, pix2pix: batch)")
    p.add_argument("--source", default=None, help="name of what the imported model translates from (card)")
    p.add_argument("--target", default=None, help="name of what it translates into (card)")
    p.add_argument("--force", action="store_true", help="replace files already at --out (refused otherwise)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


@cli_entry(PROG)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from translate.io.onnx_export import OnnxMismatchError

    try:
        if args.from_reference:
            payload = _import(args)
        else:
            payload = _export(args)
    except OnnxMismatchError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(payload))
    return 0


def _export(args) -> dict:
    from translate.io.export import export_run

    if args.run_dir is None:
        raise UsageError("pass a run folder (translate-export checkpoints/RUN --out DIR) or --from-reference FILE.pth")
    if args.netG or args.norm or args.source or args.target:
        raise UsageError("--netG, --norm, --source and --target belong to --from-reference")
    out = Path(args.out)
    if out.suffix.lower() in MODEL_FILE_SUFFIXES and not out.is_dir():
        # It became a folder of that name that holds G.safetensors, where a file was expected.
        raise UsageError(f"--out {out} looks like a model file; a run exports into a folder (ROLE.safetensors in "
                         f"it: G, or G_A and G_B): pass e.g. --out {out.with_suffix('')}")
    results = export_run(args.run_dir, args.out, onnx=args.onnx, from_state=args.from_state, force=args.force,
                         log=info)
    for item in results:
        line = f"{item.role}: {item.path} ({item.how}, step {item.steps})"
        if item.onnx:
            line += f"; {item.onnx} (onnxruntime vs PyTorch: max abs difference {item.onnx_max_abs_diff:.2e})"
        info(line)
    return {"run": str(args.run_dir), "out": str(args.out), "generators": [r.to_dict() for r in results]}


def _import(args) -> dict:
    from translate.io.export import import_reference

    if args.run_dir is not None:
        raise UsageError("give either a RUN_DIR or --from-reference FILE.pth, not both")
    if not args.netG:
        raise UsageError("--from-reference needs --netG (resnet_9blocks for CycleGAN models, unet_256 for pix2pix)")
    card = {}
    if args.source:
        card["source"] = args.source
    if args.target:
        card["target"] = args.target
    path, model = import_reference(args.from_reference, args.netG, args.out, norm=args.norm, card=card,
                                   force=args.force, onnx=args.onnx)
    arch = model.architecture
    info(f"imported {args.from_reference} as {path} ({arch['name']}, ngf {arch['ngf']}, {arch['norm']} norm)")
    payload = {"from_reference": str(args.from_reference), "out": str(path), "generator": arch,
               "origin": model.card["origin"]}
    if args.onnx:
        from translate.io.onnx_export import export_onnx

        report = export_onnx(model, path.with_suffix(".onnx"))
        info(f"{report.path} (onnxruntime vs PyTorch: max abs difference {report.max_abs_diff:.2e})")
        payload["onnx"], payload["onnx_max_abs_diff"] = str(report.path), report.max_abs_diff
    return payload


if __name__ == "__main__":
    sys.exit(main())
