"""translate-eval --model MODEL --data DATA [--split test] [--json]

Scores a generator against ground truth (paired targets, or the synthetic sets' true renderings):
L1, PSNR and SSIM, beside the identity and mean-target baselines, the shuffled-condition control for
conditioned models, and the cycle reconstruction for two-way models.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from translate.cli.common import OneLineParser, cli_entry, info
from translate.errors import UsageError

PROG = "translate-eval"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Score a generator against ground truth.")
    p.add_argument("--model", required=True, help="exported .safetensors file or run folder")
    p.add_argument("--data", required=True, help="dataset: registry name, synth-* set or folder")
    p.add_argument("--split", default="test", help="split to score (default: test)")
    p.add_argument("--direction", choices=("a2b", "b2a"), default=None, help="for two-way models: which generator")
    p.add_argument("--size", type=int, default=None, help="evaluation size (default: the size the model was trained at)")
    p.add_argument("--limit", type=int, default=None, help="score at most this many images")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--skip-bad-images", action="store_true",
                   help="leave out unreadable or odd-width images (listed in a warning) instead of stopping")
    p.add_argument("--datasets", default="datasets", help="datasets folder")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="off", choices=("auto", "off", "bf16", "fp16"))
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


@cli_entry(PROG)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from translate.data import TransformConfig, check_dataset, open_dataset, resolve_dataset
    from translate.eval.evaluate import (conditions_of, discriminator_matching, evaluate, load_trained_model,
                                         target_key)
    from translate.infer import generator_multiple
    from translate.io.generator_file import find_generators, load_generator, pick_generator, read_metadata
    from translate.train.precision import resolve_device, resolve_precision

    for flag, value in (("--limit", args.limit), ("--batch-size", args.batch_size), ("--size", args.size)):
        if value is not None and value <= 0:
            raise UsageError(f"{flag} must be positive, got {value}")
    device = resolve_device(args.device)
    precision = resolve_precision(args.amp, device)
    # `translates` and --direction are relative to the name the model was trained under: a model trained
    # on synth-vangogh2photo a2b paints photos from paintings, which is b2a of synth-photo2vangogh.
    resolved = resolve_dataset(args.data, root=args.datasets, download=False)
    trained_name = str(read_metadata(find_generators(args.model)[0])["card"].get("dataset", ""))
    trained_on = _stored_as(trained_name)
    data_as = (resolved.canonical, resolved.swap) if resolved.canonical else _stored_as(resolved.path.name)
    swapped = trained_on is not None and data_as is not None and data_as[0] == trained_on[0] and data_as[1] != trained_on[1]
    flip = {"a2b": "b2a", "b2a": "a2b"}
    try:
        path = pick_generator(args.model, flip[args.direction] if swapped and args.direction else args.direction)
    except UsageError:
        if not swapped:
            raise
        # Said in the terms of the data given here, not of the name the model was trained under.
        raise UsageError(f"{args.model} does not translate {args.direction} on {args.data} (it was trained on "
                         f"{trained_name}, with A and B the other way round); drop --direction") from None
    generator = load_generator(path, device)
    card = generator.card
    direction = card.get("translates", "a2b")
    reverse = None
    others = [f for f in find_generators(args.model) if f != path]
    if others:
        back = [f for f in others if read_metadata(f)["card"].get("translates") != direction]
        if back:
            reverse = load_generator(back[0], device)
    trained_at = card.get("size", 256)
    if args.size is None and not (isinstance(trained_at, int) and not isinstance(trained_at, bool) and trained_at > 0):
        raise UsageError(f"{path.name}'s card gives its training size as {trained_at!r}, not a number of pixels; "
                         "pass --size")
    size = args.size or trained_at
    multiple = generator_multiple(generator)
    smallest = _smallest_size(generator.architecture["name"], multiple)
    if size % multiple or size < smallest:
        fit = max(smallest, size // multiple * multiple)
        raise UsageError(f"--size {size} does not fit {generator.architecture['name']} (multiples of {multiple}, at "
                         f"least {smallest}); use --size {fit}")
    if swapped:
        info(f"note: {path.name} was trained on {trained_name}, which is {args.data} with A and B swapped: "
             f"its {direction} is {flip[direction]} here")
        direction = flip[direction]
    pairing = "paired" if resolved.paired else "unpaired"
    dataset = open_dataset(resolved, args.split, direction=direction, pairing=pairing,
                           transform=TransformConfig(size=size, multiple=multiple), train=False, limit=args.limit)
    check_dataset(dataset, skip_bad=args.skip_bad_images, what=f"{resolved.name}'s {args.split} split", log=info)
    conditions_of(generator, dataset)  # a conditioned model on data without conditions: refused here
    target_key(dataset)  # and data without targets or with some missing
    info(f"scoring {path.name} on {len(dataset.entries)} {args.split} images of {resolved.name} at {size} px")
    result = evaluate(generator, dataset, reverse=reverse, batch_size=args.batch_size, device=device,
                      autocast=precision.autocast).to_dict()
    run_dir = Path(args.model)
    if generator.conditioned and run_dir.is_dir() and (run_dir / "state.pt").exists() and card.get("model") == "pix2pix":
        model = load_trained_model(run_dir, path)
        try:
            result["discriminator"] = discriminator_matching(model, dataset, batch_size=args.batch_size, device=device)
        except UsageError as why:  # images of one condition only: the scores above stand on their own
            info(f"note: no discriminator matching ({why})")
    result = {"model_file": str(path), "data": args.data, "split": args.split, "size": size, "direction": direction, **result}
    if args.json:
        print(json.dumps(result))
    else:
        _print_table(result)
    return 0


def _stored_as(name: str) -> tuple[str, bool] | None:
    """(the name a registry or synthetic set is stored under, whether `name` swaps its A and B)."""
    from translate.data.registry import lookup_dataset, lookup_synthetic

    if not name:
        return None
    synthetic = lookup_synthetic(name)
    if synthetic is not None:
        return synthetic
    found = lookup_dataset(name)
    return None if found is None else (found[0].name, found[1])


def _print_table(result: dict) -> None:
    rows = [("model", result["model"])] + [(f"baseline: {k.replace('_', ' ')}", v) for k, v in result["baselines"].items()]
    if "shuffled_condition" in result:
        rows.append(("model, wrong conditions", result["shuffled_condition"]))  # (the key predates the name)
    if "cycle" in result:
        rows.append(("cycle reconstruction vs input", result["cycle"]))
    if "discriminator" in result:
        d = result["discriminator"]
        print(f"D's mean logit on real pairs: {d['matched_logit']:.3f} with their own condition, "
              f"{d['mismatched_logit']:.3f} with a wrong one (matched scored higher for {100 * d['matched_higher']:.0f}%)")
    print(f"{result['n']} images of {result['data']} ({result['split']}), {result['size']} px")
    print(f"{'':34s} {'L1':>8s} {'PSNR':>8s} {'SSIM':>8s}")
    for name, m in rows:
        print(f"{name:34s} {m['l1']:8.4f} {m['psnr']:8.2f} {m['ssim']:8.4f}")


def _smallest_size(name: str, multiple: int) -> int:
    from translate.nets.generators import size_rule

    try:
        return max(multiple, size_rule(name)[1])
    except UsageError:  # a name the rule does not know: the multiple alone
        return multiple


if __name__ == "__main__":
    sys.exit(main())
