"""Training-step speed of a model in several precisions, measured against plain fp32 in the same run.

    python -m translate.train.benchmark cyclegan size=128 ngf=32 ndf=32 netG=resnet_6blocks
    python -m translate.train.benchmark pix2pix size=128 netG=unet_128 dropout=false --precisions fp32,bf16 --json

It runs the loop's own `train_step` (G forward, D update, G update, optimizers included) on a fixed
random batch, without data loading, alternating the precisions round by round so that a busy machine
slows them alike, and reports median seconds per step and the ratio to fp32. Absolute times on shared
machines are noisy; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from translate.cli.common import cli_entry, info
from translate.errors import UsageError

PROG = "python -m translate.train.benchmark"


class _NoConditions:
    has_labels = False
    has_texts = False


def _batch(cfg, spec, batch_size: int) -> dict:
    g = torch.Generator().manual_seed(0)
    shape = (batch_size, 3, cfg.size, cfg.size)
    return {"A": torch.rand(shape, generator=g) * 2 - 1, "B": torch.rand(shape, generator=g) * 2 - 1}


def measure(model_name: str, overrides: dict, precisions: list[str], *, steps: int, rounds: int, warmup: int,
            channels_last: bool = False) -> dict:
    from translate.models import model_spec
    from translate.models.base import StepContext
    from translate.train.loop import make_optimizations, train_step
    from translate.train.precision import Precision

    spec = model_spec(model_name)
    cfg = spec.config_class(data="benchmark", **overrides)
    cfg.validate()
    names = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    setups = {}
    for p in precisions:
        if p not in names:
            raise UsageError(f"unknown precision {p!r}; use fp32, bf16, fp16")
        torch.manual_seed(0)
        model = spec.build(cfg, _NoConditions()).train()
        precision = Precision(torch.device("cpu"), names[p], p == "fp16")
        if channels_last:
            model.to(memory_format=torch.channels_last)
        d_opt, g_opt = make_optimizations(model, cfg, precision, total_steps=10**6)
        setups[p] = (model, precision, d_opt, g_opt, StepContext(d_scaler=d_opt.scaler))
    batch = _batch(cfg, spec, cfg.batch_size)
    if channels_last:
        batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    times = {p: [] for p in precisions}
    for p in precisions:
        model, precision, d_opt, g_opt, ctx = setups[p]
        for _ in range(warmup):
            train_step(model, batch, d_opt, g_opt, precision, ctx, True)
    for _ in range(rounds):
        for p in precisions:
            model, precision, d_opt, g_opt, ctx = setups[p]
            start = time.perf_counter()
            for _ in range(steps):
                train_step(model, batch, d_opt, g_opt, precision, ctx, True)
            times[p].append((time.perf_counter() - start) / steps)
    base = statistics.median(times[precisions[0]])
    return {
        "model": model_name,
        "settings": overrides,
        "threads": torch.get_num_threads(),
        "sec_per_step": {p: round(statistics.median(t), 4) for p, t in times.items()},
        "speedup_vs_" + precisions[0]: {p: round(base / statistics.median(t), 2) for p, t in times.items()},
    }


def _parse_overrides(model_name: str, pairs: list[str]) -> dict:
    """KEY=VALUE settings, each VALUE read as a JSON scalar where it is one (true, 128, 2e-4, null) and as
    text otherwise, then checked against the model's config fields (dropout=false is False, not the
    truthy text 'false'; dropout=no is refused)."""
    from translate.models import model_spec
    from translate.train.config import check_values

    values = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"settings are KEY=VALUE, got {pair!r}")
        key, text = pair.split("=", 1)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        values[key] = text if isinstance(value, (list, dict)) else value
    return check_values(model_spec(model_name).config_class, values, "the KEY=VALUE settings")


@cli_entry(PROG)
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("model", choices=("pix2pix", "cyclegan", "discogan"))
    p.add_argument("settings", nargs="*", help="config settings as KEY=VALUE, e.g. size=128 netG=unet_128")
    p.add_argument("--precisions", default="fp32,bf16", help="comma-separated; the first is the baseline")
    p.add_argument("--steps", type=int, default=5, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = measure(args.model, _parse_overrides(args.model, args.settings), args.precisions.split(","), steps=args.steps,
                     rounds=args.rounds, warmup=args.warmup, channels_last=args.channels_last)
    if args.json:
        print(json.dumps(result))
    else:
        for prec, sec in result["sec_per_step"].items():
            ratio = list(result.values())[-1][prec]
            info(f"{args.model} {prec}: {sec:.3f} s/step  ({ratio:.2f}x {args.precisions.split(',')[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
