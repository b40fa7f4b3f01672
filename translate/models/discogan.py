"""DiscoGAN (Kim et al. 2017, "Learning to Discover Cross-Domain Relations with Generative Adversarial
Networks"): two encoder-decoder generators without skips, G_A: A -> B and G_B: B -> A, and two
discriminators, each of which also returns its intermediate features.

The paper's generator loss is, for each direction, an adversarial term plus the
reconstruction of the input after a round trip, with reconstruction measured by the squared error:

    L_G = L_GAN_B + L_CONST_A + L_GAN_A + L_CONST_B,    L_CONST_A = d(G_B(G_A(a)), a) = mean (.)^2

The authors' public code (SKTBrain/DiscoGAN, `image_translation.py`) adds feature matching to the
adversarial term and weighs the two parts with a schedule, which is what we follow:

    adversarial_B = 0.1 * L_GAN(G_A, D_A) + 0.9 * L_FM(D_A; b, G_A(a))
    L_G = sum over both directions of (1 - rate) * adversarial + rate * L_CONST,
    rate = 0.01 for the first 10000 iterations ("strong GAN loss" curriculum), 0.5 after that,

with feature matching L_FM = sum over D's feature maps of mean((E_batch f(real) - E_batch f(fake))^2)
(the code's hinge-embedding loss with target 1, which is the plain mean of its input). The
adversarial loss is binary cross-entropy (nsgan on logits here), and each D's loss is
0.5 (real term + fake term), summed over the two Ds.

Not in the paper: `--lambda-identity w` (default 0) adds CycleGAN's identity term in DiscoGAN's
squared error, w * (mean (G_A(b) - b)^2 + mean (G_B(a) - a)^2), to the reconstruction side of the mix
(weighted by `rate` like L_CONST). Without it nothing ties a translation's colours to its input's, and
on photo -> painting the published losses swap times of day (docs/unpaired.md).

Naming follows CycleGAN's reference code, as everywhere in this toolkit: G_A maps A -> B, D_A judges
domain B (real b against G_A(a)). (The public DiscoGAN code calls the A -> B generator
`generator_B`.)

Not reproduced from the public code: it updates D on one iteration in three and G on the other two
(`update_interval` 3); the toolkit's loop updates D every iteration and G every `--d-steps`-th.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from translate.errors import UsageError
from translate.models.base import StepContext, TwoWayModel
from translate.train.config import TrainConfig, option
from translate.train.distributed import global_batch_mean


@dataclass
class DiscoGANConfig(TrainConfig):
    """The published DiscoGAN defaults (Kim et al. 2017; SKTBrain/DiscoGAN's `image_translation.py`)."""

    netG: str = option("discogan", "generator architecture (DiscoGAN's encoder-decoder)", flag="--netG")
    netD: str = option("discogan", "discriminator architecture (DiscoGAN's, which also returns features)",
                       flag="--netD")
    ngf: int = option(64, "generator width (filters in the first layer)")
    ndf: int = option(64, "discriminator width")
    norm: str = option("batch", "normalization layers", choices=("instance", "batch", "none"))
    objective: str = option("nsgan", "GAN objective (DiscoGAN: binary cross-entropy)",
                            choices=("minimax", "nsgan", "vanilla", "lsgan", "hinge", "wgan", "wgan-gp"))
    size: int = option(64, "image size fed to the networks (64 in every experiment of the paper)")
    load_size: int | None = option(None, "resize images to this before cropping (default: the size itself, a "
                                   "plain resize as in DiscoGAN's code)")
    flip: bool = option(False, "flip training images horizontally at random (DiscoGAN's code does not)")
    batch_size: int = option(64, "images per step per process")
    lr: float = option(2e-4, "learning rate of G and D")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    weight_decay: float = option(1e-5, "L2 weight decay of both optimizers")
    lr_policy: str = option("constant", "lr schedule (DiscoGAN keeps the lr constant)",
                            choices=("linear", "constant", "step", "cosine"))
    epochs: int = option(5000, "epochs (DiscoGAN's code: epoch_size 5000, at a constant lr)")
    epochs_decay: int = option(0, "epochs of linear decay after those (DiscoGAN: none)")
    gan_weight: float = option(0.1, "share of the GAN loss in each adversarial term")
    fm_weight: float = option(0.9, "share of feature matching on D's features in each adversarial term")
    gan_curriculum: int = option(10000, "iterations with the starting rate (a strong GAN loss at first)")
    starting_rate: float = option(0.01, "weight of reconstruction vs adversarial terms during the curriculum")
    default_rate: float = option(0.5, "weight of reconstruction vs adversarial terms after the curriculum")
    lambda_identity: float = option(0.0, "weight of an identity term |G_A(b) - b|^2 + |G_B(a) - a|^2 beside "
                                    "the reconstruction (not in the paper: 0)")

    #: "quick": minutes on a laptop CPU (measured in docs/unpaired.md): half-width networks, batch 16,
    #: 1300 steps, and what made DiscoGAN translate photo -> painting at that budget (none of it in the
    #: paper): an identity term (without it the published losses swap times of day), resize-convolution
    #: upsampling (no checkerboard), spectral normalization of D, and reconstruction's share at 0.9 from
    #: the first step (no strong-GAN curriculum). The adversarial terms ask for brush texture that a
    #: generator without skips cannot place from its 4x4 bottleneck, so it invents some: a larger
    #: adversarial share made blotchier outputs (docs/unpaired.md has every variant's figures). With U-Net
    #: generators (`--netG unet_64 --default-rate 0.97 --max-steps 2000`, 22 min) DiscoGAN beats the
    #: identity map in L1 and SSIM both ways; the paper's generator does not in SSIM photo -> painting.
    PRESETS: ClassVar[dict[str, dict]] = {
        "quick": {
            "ngf": 32,
            "ndf": 32,
            "batch_size": 16,
            "max_steps": 1300,
            "lambda_identity": 0.5,
            "upsample": "resize",
            "d_reg": "sn",
            "default_rate": 0.9,
            "gan_curriculum": 0,
            "amp": "auto",
            "sample_every": 250,
            "checkpoint_every": 500,
            "spectral_every": 250,
        },
    }

    def __post_init__(self) -> None:
        if self.load_size is None:
            self.load_size = self.size  # DiscoGAN resizes to 64x64 and crops nothing

    def validate(self) -> None:
        super().validate()
        for name in ("gan_weight", "fm_weight", "gan_curriculum", "lambda_identity"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("starting_rate", "default_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")


class LogitsOf:
    """A DiscoGAN discriminator as the critic `Adversary` and the gradient penalty expect (images ->
    logits), keeping the features of its latest call for feature matching."""

    def __init__(self, discriminator: torch.nn.Module):
        self.discriminator = discriminator
        self.features: list[torch.Tensor] = []

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        logits, self.features = self.discriminator(images)
        return logits


def feature_matching(real_features: list[torch.Tensor], fake_features: list[torch.Tensor]) -> torch.Tensor:
    """sum over layers of mean((E_batch f(real) - E_batch f(fake))^2): G matches the batch statistics of
    D's features (Salimans et al. 2016, sec. 3.1; DiscoGAN's code), in float32. Under torchrun the
    batch is the global one (the means cover every rank's images), as for one process."""
    total = torch.zeros((), device=fake_features[0].device)
    for real, fake in zip(real_features, fake_features, strict=True):
        difference = global_batch_mean(real) - global_batch_mean(fake)
        total = total + difference.pow(2).mean()
    return total


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x.float() - y.float()).pow(2).mean()


class DiscoGAN(TwoWayModel):

    def __init__(self, cfg: DiscoGANConfig):
        super().__init__(cfg)  # G_A, G_B, D_A, D_B, their regularizer and the adversary

    def critic(self, discriminator: torch.nn.Module):
        """`discriminator` as a critic; a PatchGAN-style D (no features) passes through unchanged."""
        return LogitsOf(discriminator) if self.cfg.netD == "discogan" else discriminator

    def rate(self, step: int) -> float:
        """The weight of reconstruction against the adversarial terms at iteration `step`."""
        return self.cfg.starting_rate if step < self.cfg.gan_curriculum else self.cfg.default_rate

    # ---- the losses ------------------------------------------------------------------------------
    def generate(self, batch):
        real_A, real_B = batch["A"], batch["B"]
        fake_B = self.G_A(real_A)
        fake_A = self.G_B(real_B)
        return {"fake_B": fake_B, "rec_A": self.G_B(fake_B), "fake_A": fake_A, "rec_B": self.G_A(fake_A)}

    def d_loss(self, batch, out, ctx: StepContext):
        loss_A, logs_A = self.adversary.d_loss(self.critic(self.D_A), batch["B"], out["fake_B"], ctx)
        loss_B, logs_B = self.adversary.d_loss(self.critic(self.D_B), batch["A"], out["fake_A"], ctx)
        # Each D's loss is 0.5 (real + fake) in DiscoGAN's code: halved like CycleGAN's.
        D_A, D_B = 0.5 * loss_A, 0.5 * loss_B
        logs = {"D_A": D_A.detach(), "D_B": D_B.detach()}
        logs.update({f"D_A_{k}": v for k, v in logs_A.items()})
        logs.update({f"D_B_{k}": v for k, v in logs_B.items()})
        return D_A + D_B, logs

    def _adversarial(self, discriminator, real: torch.Tensor, fake: torch.Tensor,
                     ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """(GAN term, feature-matching term) of G's output `fake` against D's view of `real` (both seen
        with the step's instance noise, if any, as D sees them in its own step)."""
        critic = self.critic(discriminator)
        gan = self.adversary.g_loss(critic, fake, ctx)
        if self.cfg.fm_weight == 0 or not isinstance(critic, LogitsOf):
            return gan, torch.zeros_like(gan)
        fake_features = critic.features
        with torch.no_grad():  # D's view of real images is a constant for G
            critic(self.adversary.noisy(real, ctx))
        return gan, feature_matching(critic.features, fake_features)

    def g_loss(self, batch, out, ctx: StepContext):
        cfg = self.cfg
        real_A, real_B = batch["A"], batch["B"]
        G_A, fm_A = self._adversarial(self.D_A, real_B, out["fake_B"], ctx)
        G_B, fm_B = self._adversarial(self.D_B, real_A, out["fake_A"], ctx)
        rec_A = mse(out["rec_A"], real_A)  # L_CONST_A: the round trip a -> B -> A
        rec_B = mse(out["rec_B"], real_B)
        rate = self.rate(ctx.step)
        adversarial = cfg.gan_weight * (G_A + G_B) + cfg.fm_weight * (fm_A + fm_B)
        reconstruction = rec_A + rec_B
        logs = {"G_A": G_A.detach(), "G_B": G_B.detach(), "fm_A": fm_A.detach(), "fm_B": fm_B.detach(),
                "rec_A": rec_A.detach(), "rec_B": rec_B.detach(), "rate": rate}
        if cfg.lambda_identity > 0:
            idt_A = cfg.lambda_identity * mse(self.G_A(real_B), real_B)  # G_A leaves a painting a painting
            idt_B = cfg.lambda_identity * mse(self.G_B(real_A), real_A)
            reconstruction = reconstruction + idt_A + idt_B
            logs.update({"idt_A": idt_A.detach(), "idt_B": idt_B.detach()})
        loss = (1.0 - rate) * adversarial + rate * reconstruction
        return loss, logs

    def visuals(self, batch, out):
        return [("real_A", batch["A"]), ("fake_B", out["fake_B"]), ("rec_A", out["rec_A"]),
                ("real_B", batch["B"]), ("fake_A", out["fake_A"]), ("rec_B", out["rec_B"])]
