"""Forward+backward timing of the networks: fp32 vs bf16 autocast, contiguous vs channels_last.

    python -m translate.nets.benchmark [--repeats 5] [--threads N] [--clock wall|cpu] [--json FILE]

Machines are shared, so the modes are timed round-robin (one step of each mode per round, so that a
burst of outside load hits all modes alike) and the median over rounds is reported, with each mode's
ratio to plain fp32 on the same network in the same run. A step is: forward in training mode, mean of
the output in fp32, backward (what a training step does per network, without the optimizer).

`--clock cpu --threads 1` times the process's CPU seconds on one thread: on a machine that other jobs
keep busy, wall time mostly measures the other jobs, while the CPU time of a single-threaded step only
moves with cache and memory-bandwidth contention.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from translate.nets.factory import create_discriminator, create_generator

MODES = ("fp32", "fp32+cl", "bf16", "bf16+cl")  # cl: channels_last


@dataclass
class Case:
    label: str
    kind: str  # "G" or "D"
    name: str
    size: int
    width: int = 64
    batch: int = 1


DEFAULT_CASES = (
    Case("resnet_9blocks ngf64 @128", "G", "resnet_9blocks", 128),
    Case("resnet_9blocks ngf32 @128", "G", "resnet_9blocks", 128, 32),
    Case("resnet_9blocks ngf64 @256", "G", "resnet_9blocks", 256),
    Case("resnet_9blocks ngf32 @256", "G", "resnet_9blocks", 256, 32),
    Case("unet_128 ngf64 @128", "G", "unet_128", 128),
    Case("unet_256 ngf64 @256", "G", "unet_256", 256),
    Case("basic D ndf64 @128", "D", "basic", 128),
    Case("basic D ndf64 @256", "D", "basic", 256),
)


def _build(case: Case, device: str) -> torch.nn.Module:
    if case.kind == "G":
        net = create_generator(case.name, ngf=case.width)
    else:
        net = create_discriminator(case.name, ndf=case.width)
    return net.to(device).train()


def _step(net: torch.nn.Module, x: torch.Tensor, bf16: bool, device: str) -> None:
    ctx = torch.autocast(device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx:
        out = net(x)
    out.float().mean().backward()
    net.zero_grad(set_to_none=True)


def time_case(case: Case, repeats: int, device: str = "cpu", modes=MODES, clock: str = "wall") -> dict[str, float]:
    """Median seconds per forward+backward step for each mode (wall or process CPU seconds)."""
    now = time.perf_counter if clock == "wall" else time.process_time
    nets, inputs = {}, {}
    base = _build(case, device)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(case.batch, 3, case.size, case.size, generator=gen) * 2 - 1).to(device)
    for mode in modes:
        cl = mode.endswith("+cl")
        net = _build(case, device)
        net.load_state_dict(base.state_dict())
        if cl:
            net = net.to(memory_format=torch.channels_last)
        nets[mode] = net
        inputs[mode] = x.contiguous(memory_format=torch.channels_last) if cl else x
    times: dict[str, list[float]] = {m: [] for m in modes}
    for round_ in range(repeats + 1):  # round 0 warms up (allocator, kernel selection)
        for mode in modes:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = now()
            _step(nets[mode], inputs[mode], mode.startswith("bf16"), device)
            if device == "cuda":
                torch.cuda.synchronize()
            if round_ > 0:
                times[mode].append(now() - t0)
    return {m: statistics.median(v) for m, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m translate.nets.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: torch's default)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--only", default="", help="run the cases whose label contains this text")
    parser.add_argument("--json", default="", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"{args.clock} clock", file=sys.stderr)
    header = "| network (batch 1, fwd+bwd) | " + " | ".join(f"{m} s" for m in MODES) + " | " + \
        " | ".join(f"speed-up {m}" for m in MODES[1:]) + " |"
    print(header)
    print("|" + "---|" * (1 + 2 * len(MODES) - 1))
    for case in DEFAULT_CASES:
        if args.only and args.only not in case.label:
            continue
        med = time_case(case, args.repeats, args.device, clock=args.clock)
        results.append({"case": case.label, **med})
        cells = [f"{med[m]:.3f}" for m in MODES] + [f"{med['fp32'] / med[m]:.2f}x" for m in MODES[1:]]
        print(f"| {case.label} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device,
                       "clock": args.clock, "repeats": args.repeats, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
