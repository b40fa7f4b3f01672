"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks"): two generators, G_A: A -> B and G_B: B -> A, each with its own discriminator, trained on
unpaired images of the two domains. The full objective (eq. 3), in the reference implementation's names:

    L = L_GAN(G_A, D_A)  +  L_GAN(G_B, D_B)                                    (eq. 1, twice)
      + lambda_A * |G_B(G_A(a)) - a|_1  +  lambda_B * |G_A(G_B(b)) - b|_1      (eq. 2, cycle consistency)
      + lambda_idt * (lambda_B * |G_A(b) - b|_1  +  lambda_A * |G_B(a) - a|_1)  (sec. 5.2, identity)

D_A judges domain B (real b against G_A's outputs), D_B judges domain A. The published choices
(sec. 4 and appendix 7): a least-squares GAN objective in place of the log-likelihood one, lambda = 10
in each direction, the identity term at 0.5 lambda (used for painting <-> photo, where it keeps the
colours of the input), D trained on a history of the 50 latest generated images (after Shrivastava et
al. 2017), and each D's loss halved, as in the reference code and in pix2pix (Isola et al. 2017,
sec. 3.3), so that D learns more slowly than G.

Logged as the reference logs them: D_A, D_B, G_A, G_B, cycle_A, cycle_B, idt_A, idt_B.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from translate.core.pool import HistoryPool
from translate.errors import UsageError
from translate.models.base import StepContext, TwoWayModel
from translate.train.config import TrainConfig, option
from translate.train.distributed import current_rank


@dataclass
class CycleGANConfig(TrainConfig):
    """The published CycleGAN defaults (Zhu et al. 2017, sec. 4 and appendix 7; the reference
    implementation's options, which the paper's numbers match)."""

    netG: str = option("resnet_9blocks", "generator architecture (9 residual blocks for 256 px)", flag="--netG")
    netD: str = option("basic", "discriminator architecture (basic: the 70x70 PatchGAN)", flag="--netD")
    ngf: int = option(64, "generator width (filters in the first layer)")
    ndf: int = option(64, "discriminator width")
    norm: str = option("instance", "normalization layers", choices=("instance", "batch", "none"))
    dropout: bool = option(False, "dropout in the generators (CycleGAN has none)")
    objective: str = option("lsgan", "GAN objective (CycleGAN: least squares)",
                            choices=("minimax", "nsgan", "vanilla", "lsgan", "hinge", "wgan", "wgan-gp"))
    lambda_A: float = option(10.0, "weight of the cycle loss |G_B(G_A(a)) - a|", flag="--lambda-A")
    lambda_B: float = option(10.0, "weight of the cycle loss |G_A(G_B(b)) - b|", flag="--lambda-B")
    lambda_identity: float = option(0.5, "weight of the identity loss |G_A(b) - b|, as a fraction of the cycle "
                                    "weight (0 turns it off)")
    pool_size: int = option(50, "generated images kept for each D (0: D sees only the newest)")
    size: int = option(256, "crop size fed to the networks (load size 286 for 256)")
    batch_size: int = option(1, "images per step per process")
    lr: float = option(2e-4, "learning rate of G (and of D unless --lr-d)")
    beta1: float = option(0.5, "Adam beta1")
    epochs: int = option(100, "epochs at the initial learning rate")
    epochs_decay: int = option(100, "epochs of linear decay to zero after those")

    #: "quick": a small configuration that trains on synth-photo2vangogh in minutes on a laptop CPU
    #: (measured in docs/unpaired.md): 128 px, the reference's U-Net generator and 70x70 PatchGAN at
    #: half width, a fixed step budget whose second half decays the lr linearly to zero, and bf16
    #: where the CPU has it. For a fixed CPU budget the U-Net, whose skips hand the photo's detail
    #: straight to the output, keeps the scene far better than a ResNet generator (1500 steps: L1 to
    #: the true paintings 0.073 against 0.081, SSIM 0.560 against 0.483), and the identity term is worth
    #: its cost: without it the colours of the translations drift. Discriminators as wide as the
    #: generators (ndf 32, not 16) buy the most SSIM per second measured (0.573-0.582 against 0.560).
    #: Resize-convolution upsampling instead of transposed convs: no checkerboard over the outputs.
    PRESETS: ClassVar[dict[str, dict]] = {
        "quick": {
            "size": 128,
            "ngf": 32,
            "ndf": 32,
            "netG": "unet_128",
            "upsample": "resize",
            "max_steps": 1500,
            "amp": "auto",
            "sample_every": 250,
            "checkpoint_every": 500,
            "spectral_every": 250,
        },
    }

    def validate(self) -> None:
        super().validate()
        for name in ("lambda_A", "lambda_B", "lambda_identity"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.pool_size < 0:
            raise UsageError(f"--pool-size must be >= 0, got {self.pool_size}")


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference, in float32 whatever precision the networks ran in."""
    return (x.float() - y.float()).abs().mean()


def pool_seed(seed: int, pool: int, rank: int = 0) -> int:
    """The seed of history pool `pool` (1: D_A's, 2: D_B's) on process `rank`."""
    return seed * 1009 + pool + 65537 * rank


class CycleGAN(TwoWayModel):

    def __init__(self, cfg: CycleGANConfig):
        super().__init__(cfg)  # G_A, G_B, D_A, D_B, their regularizer and the adversary
        # One history per discriminator, with its own seeded stream (saved in extra_state for resume),
        # and under torchrun one per rank: each rank keeps its own images, and its keep-or-swap draws
        # are its own, as each image's are in one process with the global batch.
        rank = current_rank()
        self.fake_B_pool = HistoryPool(cfg.pool_size, generator=torch.Generator().manual_seed(pool_seed(cfg.seed, 1, rank)))
        self.fake_A_pool = HistoryPool(cfg.pool_size, generator=torch.Generator().manual_seed(pool_seed(cfg.seed, 2, rank)))

    # ---- the losses ------------------------------------------------------------------------------
    def generate(self, batch):
        real_A, real_B = batch["A"], batch["B"]
        out = {}
        if self._identity_in_generate(real_A, real_B):
            # G's training pass with an identity term: each generator translates its domain's image
            # and leaves the other's alone in one call on both (per-image norms make this the same
            # function as two calls; batch 2 keeps two cores busier in the small deep layers: about
            # 14 % less time per quick-preset step).
            fake_B, out["idt_A"] = self.G_A(torch.cat([real_A, real_B])).chunk(2)
            fake_A, out["idt_B"] = self.G_B(torch.cat([real_B, real_A])).chunk(2)
        else:
            fake_B = self.G_A(real_A)
            fake_A = self.G_B(real_B)
        out.update({"fake_B": fake_B, "rec_A": self.G_B(fake_B), "fake_A": fake_A, "rec_B": self.G_A(fake_A)})
        return out

    def _identity_in_generate(self, real_A: torch.Tensor, real_B: torch.Tensor) -> bool:
        """Whether `generate` also makes the identity terms' G_A(b) and G_B(a): only for a pass that G
        will be trained on (grad enabled), and only where a joint call cannot change a result (no batch
        norm, whose statistics would mix the two domains; the same image shapes)."""
        return (self.cfg.lambda_identity > 0 and torch.is_grad_enabled() and self.cfg.norm != "batch"
                and real_A.shape == real_B.shape)

    def d_loss(self, batch, out, ctx: StepContext):
        # Each D sees, as fakes, images drawn from the history of generated ones (sec. 4).
        fake_B = self.fake_B_pool.query(out["fake_B"])
        fake_A = self.fake_A_pool.query(out["fake_A"])
        loss_A, logs_A = self.adversary.d_loss(self.D_A, batch["B"], fake_B, ctx)
        loss_B, logs_B = self.adversary.d_loss(self.D_B, batch["A"], fake_A, ctx)
        # Halved (sec. 4): the whole of each D's loss, its gradient penalty included, so the
        # penalty keeps its published weight relative to the objective.
        D_A, D_B = 0.5 * loss_A, 0.5 * loss_B
        logs = {"D_A": D_A.detach(), "D_B": D_B.detach()}
        logs.update({f"D_A_{k}": v for k, v in logs_A.items()})
        logs.update({f"D_B_{k}": v for k, v in logs_B.items()})
        return D_A + D_B, logs

    def g_loss(self, batch, out, ctx: StepContext):
        cfg = self.cfg
        real_A, real_B = batch["A"], batch["B"]
        G_A = self.adversary.g_loss(self.D_A, out["fake_B"], ctx)  # eq. 1: G_A fools D_A
        G_B = self.adversary.g_loss(self.D_B, out["fake_A"], ctx)
        cycle_A = cfg.lambda_A * l1(out["rec_A"], real_A)  # eq. 2, forward cycle a -> G_A -> G_B -> a
        cycle_B = cfg.lambda_B * l1(out["rec_B"], real_B)  # eq. 2, backward cycle
        loss = G_A + G_B + cycle_A + cycle_B
        logs = {"G_A": G_A.detach(), "G_B": G_B.detach(), "cycle_A": cycle_A.detach(), "cycle_B": cycle_B.detach()}
        if cfg.lambda_identity > 0:
            # sec. 5.2: a generator given an image of its target domain should leave it as it is.
            same_A = out["idt_A"] if "idt_A" in out else self.G_A(real_B)  # G_A(b), made with fake_B if it could be
            same_B = out["idt_B"] if "idt_B" in out else self.G_B(real_A)
            idt_A = cfg.lambda_identity * cfg.lambda_B * l1(same_A, real_B)
            idt_B = cfg.lambda_identity * cfg.lambda_A * l1(same_B, real_A)
            loss = loss + idt_A + idt_B
            logs.update({"idt_A": idt_A.detach(), "idt_B": idt_B.detach()})
        return loss, logs

    def visuals(self, batch, out):
        return [("real_A", batch["A"]), ("fake_B", out["fake_B"]), ("rec_A", out["rec_A"]),
                ("real_B", batch["B"]), ("fake_A", out["fake_A"]), ("rec_B", out["rec_B"])]

    # ---- exact resume ----------------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {"fake_B_pool": self.fake_B_pool.state_dict(), "fake_A_pool": self.fake_A_pool.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.fake_B_pool.load_state_dict(state["fake_B_pool"])
        self.fake_A_pool.load_state_dict(state["fake_A_pool"])
