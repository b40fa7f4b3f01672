"""translate-lab: the 2-D mode-collapse lab.

    translate-lab mog --objective wgan-gp --modes ring8 --seed 0 --json --plot ring8.png

trains a small GAN on a mixture of Gaussians (PacGAN's ring8 or grid25) and reports PacGAN's
Table 1 metrics: modes captured, high-quality samples, reverse KL of the mode histogram.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from translate.errors import UsageError

PROG = "translate-lab"


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument gives the one-line error of every translate CLI (exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    # Names and defaults come from the lab's modules, imported here without torch.
    from translate.lab.config import D_REGULARIZERS, MIXTURE_NAMES, OBJECTIVE_CHOICES, LabConfig

    defaults = LabConfig()

    parser = _OneLineParser(prog=PROG, description="The 2-D mode-collapse lab.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mog = commands.add_parser(
        "mog",
        help="train a GAN on a 2-D mixture of Gaussians and measure mode collapse",
        description="Train a small MLP GAN on a 2-D mixture of Gaussians and report PacGAN's Table 1 metrics.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    mog.add_argument("--objective", required=True, help=f"GAN objective: {', '.join(OBJECTIVE_CHOICES)}")
    mog.add_argument("--d-reg", default="none", help=f"D regularizer: {', '.join(D_REGULARIZERS)}")
    mog.add_argument("--modes", default=defaults.mixture, help=f"mixture: {', '.join(MIXTURE_NAMES)}")
    mog.add_argument("--steps", type=_non_negative_int, default=defaults.steps, help="generator steps")
    mog.add_argument("--d-steps", type=_positive_int, default=defaults.d_steps, help="D steps per G step")
    mog.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size, help="samples per batch")
    mog.add_argument("--lr-g", type=_non_negative_float, default=defaults.lr_g, help="Adam lr of G")
    mog.add_argument("--lr-d", type=_non_negative_float, default=defaults.lr_d, help="Adam lr of D")
    mog.add_argument(
        "--instance-noise",
        type=_non_negative_float,
        default=defaults.instance_noise,
        help="std of Gaussian noise on D's inputs (training coordinates), annealed to 0",
    )
    mog.add_argument("--gp-weight", type=_non_negative_float, default=defaults.gp_weight, help="WGAN-GP lambda")
    mog.add_argument("--precision", choices=("fp32", "bf16"), default=defaults.precision, help="training precision")
    mog.add_argument("--seed", type=_non_negative_int, default=0, help="seed of everything random")
    mog.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="torch CPU threads; networks this small gain nothing from more, and on a busy machine "
        "extra threads spin waiting on each other (40 steps: 5 s on 1 thread, 89 s on 2)",
    )
    mog.add_argument("--json", action="store_true", help="print one JSON object of metrics on stdout")
    mog.add_argument("--plot", metavar="FILE.png", help="draw G's samples over D's landscape during training")
    return parser


def check_plot_path(path: str, flag: str = "--plot") -> None:
    """Fail before training, not after, when the picture could not be written."""
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a directory; give a file name ending in .png")
    if not path.lower().endswith(".png"):
        raise UsageError(f"{flag} {path!r}: the picture is a PNG; give a file name ending in .png")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{flag} {path!r}: folder {parent} does not exist; create it or pick another path")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {path!r} is not writable; pick a path you can write to")


def _summary(result: dict) -> str:
    rkl = "n/a (no high-quality sample)" if result["reverse_kl"] is None else f"{result['reverse_kl']:.3f}"
    return (
        f"{result['mixture']} {result['objective']} d-reg={result['d_reg']} seed={result['seed']}: "
        f"modes {result['modes']}/{result['num_modes']} (>= 20 samples: {result['strict_modes']}), "
        f"high quality {100 * result['high_quality_fraction']:.1f}%, reverse KL {rkl}, "
        + (f"{result['steps']} steps in {result['seconds']:.1f} s" if result.get("diverged_at") is None else
           f"diverged at step {result['diverged_at']} (its losses were not finite numbers; try a lower --lr-g/--lr-d), "
           f"{result['seconds']:.1f} s")
    )


def run_mog(args: argparse.Namespace) -> int:
    from translate.lab.train import LabConfig

    config = LabConfig(
        objective=args.objective,
        d_reg=args.d_reg,
        mixture=args.modes,
        seed=args.seed,
        steps=args.steps,
        d_steps=args.d_steps,
        batch_size=args.batch_size,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        instance_noise=args.instance_noise,
        gp_weight=args.gp_weight,
        precision=args.precision,
    ).validate()
    if args.plot:
        check_plot_path(args.plot)

    import torch

    from translate.lab.train import train_mog

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    def progress(step: int, steps: int, d_loss: float, g_loss: float) -> None:
        print(
            f"{PROG}: step {step}/{steps} ({100 * step // max(1, steps)}%)  D loss {d_loss:.4f}  "
            f"G loss {g_loss:.4f}  {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    snapshot_steps = ()
    if args.plot:
        snapshot_steps = tuple(sorted({round(config.steps * f) for f in (0.0, 0.1, 0.25, 0.5, 1.0)}))
    print(f"{PROG}: training {config.objective} (d-reg {config.d_reg}) on {config.mixture}, seed {config.seed}", file=sys.stderr)
    try:
        result = train_mog(
            config,
            snapshot_steps=snapshot_steps,
            progress=progress,
            progress_every=max(1, config.steps // 10),
        )
    finally:
        torch.set_num_threads(previous_threads)  # main() may run inside a bigger program (tests)
    out = result.to_dict()
    if args.plot:
        from translate.lab.mixtures import get_mixture
        from translate.lab.plot import plot_snapshots

        plot_snapshots(
            result.snapshots,
            get_mixture(config.mixture),
            args.plot,
            title=f"{config.mixture}: {config.objective}, d-reg {config.d_reg}, seed {config.seed}",
        )
        out["plot"] = args.plot
        print(f"{PROG}: wrote {args.plot}", file=sys.stderr)
    if args.json:
        print(_summary(out), file=sys.stderr)
        print(json.dumps(out))
    else:
        print(_summary(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a bad argument (2, one line already printed)
        return int(stop.code or 0)
    try:
        if args.command == "mog":
            return run_mog(args)
        parser.error(f"unknown command {args.command!r}")
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - a one-line reason instead of a traceback
        print(f"{PROG}: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
