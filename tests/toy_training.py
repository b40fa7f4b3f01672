"""A toy translation model and dataset for testing the training loop quickly (also run as a script
under torchrun by the distributed tests)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch
import torch.nn as nn

from translate.core.objectives import get_objective
from translate.models.base import Adversary, StepContext, TranslationModel


class ToyPairs(torch.utils.data.Dataset):
    """Pairs (A, B = -A flipped) of 8x8 images whose random flip depends on (seed, epoch, index)."""

    def __init__(self, n: int = 12, seed: int = 0, interrupt_at: int | None = None, terminate_group_at: int | None = None):
        g = torch.Generator().manual_seed(1234)
        self.images = torch.rand(n, 3, 8, 8, generator=g) * 2 - 1
        self.seed, self.epoch = seed, 0
        # Loading the interrupt_at-th sample (counting from 1, in this process) sends this process
        # SIGINT, as a user's Ctrl-C would.
        self.interrupt_at, self.loads = interrupt_at, 0
        # Loading the terminate_group_at-th sample sends SIGTERM to this process's whole group (the
        # DataLoader workers included), as `timeout`, SLURM or systemd would.
        self.terminate_group_at = terminate_group_at

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return len(self.images)

    def __getitem__(self, key):
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        g = torch.Generator().manual_seed(hash((self.seed, epoch, i)) % (2**31))
        self.loads += 1
        if self.loads == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        if self.loads == self.terminate_group_at:
            os.killpg(os.getpgrp(), signal.SIGTERM)
            os.killpg(os.getpgrp(), signal.SIGTERM)  # twice, as a wrapper that forwards it might
        a = self.images[i]
        if torch.rand((), generator=g) < 0.5:
            a = a.flip(-1)
        return {"A": a, "B": -a.flip(-2)}


class ToyModel(TranslationModel):
    generator_names = ("G",)
    discriminator_names = ("D",)

    def __init__(self, objective: str = "lsgan", norm: str = "instance", fail_at_step: int | None = None):
        super().__init__(get_objective(objective))
        self.fail_at_step = fail_at_step  # raise an unexpected error in that step's D loss (a bug, say)
        g_norm = nn.InstanceNorm2d(8, affine=True) if norm == "instance" else nn.BatchNorm2d(8)
        # No bias before a norm layer: its true gradient is zero, and Adam would turn rounding noise
        # in it into full-size steps of random sign.
        self.G = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), g_norm, nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1), nn.Tanh())
        self.D = nn.Sequential(nn.Conv2d(6, 8, 4, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 3, padding=1))
        self.adversary = Adversary(self.objective)

    def generate(self, batch):
        return {"fake_B": self.G(batch["A"])}

    def _critic(self, batch):
        return lambda image: self.D(torch.cat([batch["A"], image], dim=1))

    def d_loss(self, batch, out, ctx: StepContext):
        if ctx.step == self.fail_at_step:
            raise RuntimeError(f"a failure at step {ctx.step}")
        loss, logs = self.adversary.d_loss(self._critic(batch), batch["B"], out["fake_B"], ctx)
        return 0.5 * loss, {f"D_{k}": v for k, v in logs.items()}

    def g_loss(self, batch, out, ctx):
        adv = self.adversary.g_loss(self._critic(batch), out["fake_B"], ctx)
        l1 = (out["fake_B"] - batch["B"]).abs().mean()
        return adv + 10.0 * l1, {"G_adv": adv.detach(), "G_L1": l1.detach()}

    def visuals(self, batch, out):
        return [("input", batch["A"]), ("output", out["fake_B"]), ("target", batch["B"])]


def flat_parameters(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])


def main(argv=None) -> int:
    """Run fit() on the toy problem with settings given as JSON; rank 0 saves the final parameters."""
    from translate.train import distributed as ddp
    from translate.train.config import TrainConfig
    from translate.train.loop import fit
    from translate.train.precision import resolve_precision

    args = json.loads((argv or sys.argv[1:])[0])
    out = Path(args.pop("out"))
    objective = args.pop("objective", "lsgan")
    norm = args.pop("norm", "instance")
    interrupt_at = args.pop("interrupt_at", None)
    interrupt_rank = args.pop("interrupt_rank", 0)
    terminate_group_at = args.pop("terminate_group_at", None)
    fail_at_step = args.pop("fail_at_step", None)
    cfg = TrainConfig(data="toy", objective=objective, **args)
    ctx = ddp.init_distributed("cpu")
    torch.manual_seed(cfg.seed)
    model = ToyModel(objective, norm, fail_at_step)
    initial = flat_parameters(model)
    if ctx.enabled and norm == "batch":
        model = ddp.convert_batch_norm(model)
    torch.use_deterministic_algorithms(True)
    data = ToyPairs(interrupt_at=interrupt_at if ctx.rank == interrupt_rank else None,
                    terminate_group_at=terminate_group_at)
    result = fit(model, data, cfg, out, precision=resolve_precision(cfg.amp, torch.device("cpu")), dist=ctx, log=lambda *a: None)
    params = flat_parameters(model)
    gathered = ddp.all_gather_objects(params)
    if ctx.is_main:
        torch.save({"params": params, "initial": initial, "all_ranks": gathered, "step": result.step,
                    "stopped_early": result.stopped_early}, out / "final.pt")
    ddp.shutdown_distributed()
    if ctx.enabled:
        ddp.leave_process(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
