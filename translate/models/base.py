"""What every translation model gives the training loop.

A model owns its networks and says how its losses add up; the loop (translate.train.loop) owns
devices, precision, distribution, schedules, checkpoints and logging. One iteration of the loop is:

    out = model.generate(batch)                   # G's outputs, with a graph when G will be updated
                                                  # (model.generate_for_d(batch) when it will not)
    loss_D = model.d_loss(batch, detached(out))   # -> D's optimizer step, then model.after_d_step()
    loss_G = model.g_loss(batch, out)             # (every d_steps-th iteration) -> G's optimizer step

D is updated before G, as in Goodfellow et al.'s Algorithm 1, so G's step sees the D just trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from translate.core.objectives import Objective, clip_weights_, get_objective
from translate.core.penalty import gradient_penalty
from translate.nets.factory import create_discriminator, create_generator


@dataclass
class StepContext:
    """What a loss needs to know about the step it is part of."""

    step: int = 0
    d_scaler: Any = None  # D's GradScaler: the gradient penalty unscales its input-gradients by hand
    generator: torch.Generator | None = None


@dataclass
class Adversary:
    """The adversarial terms of one discriminator: an objective, its gradient penalty, instance noise.

    `critic` is a callable from images to logits (a closure that holds any condition fixed)."""

    objective: Objective
    instance_noise: Any = None  # translate.core.noise.InstanceNoise or None

    def noisy(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """`x` as D sees it at this step: with the step's instance noise, if any."""
        if self.instance_noise is None:
            return x
        return self.instance_noise(x, ctx.step)

    def d_loss(self, critic, real: torch.Tensor, fake: torch.Tensor, ctx: StepContext,
               fake_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
        """d_real + fake_weight * d_fake (+ the gradient penalty); `fake_weight` < 1 leaves room for
        other negatives (pix2pix's mismatched pairs)."""
        real_logits = critic(self.noisy(real, ctx))
        fake_logits = critic(self.noisy(fake.detach(), ctx))
        loss_real = self.objective.d_real(real_logits)
        loss_fake = self.objective.d_fake(fake_logits)
        loss = loss_real + fake_weight * loss_fake
        logs = {"real": loss_real.detach(), "fake": loss_fake.detach()}
        if self.objective.gradient_penalty_weight > 0:
            gp = gradient_penalty(
                critic,
                real,
                fake.detach(),
                weight=self.objective.gradient_penalty_weight,
                scaler=ctx.d_scaler,
                generator=ctx.generator,
            )
            loss = loss + gp
            logs["gp"] = gp.detach()
        return loss, logs

    def d_negative(self, critic, images: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """D's loss on further negatives (pix2pix's real images under a mismatched condition), seen with
        the same noise as the others: clean negatives would tell D apart from noisy ones by the noise."""
        return self.objective.d_fake(critic(self.noisy(images, ctx)))

    def g_loss(self, critic, fake: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """G's adversarial term, with D seeing `fake` as in its own step (instance noise included: G's
        gradient is the one of the smoothed game, Sønderby et al. 2016)."""
        return self.objective.g_loss(critic(self.noisy(fake, ctx)))


class TranslationModel(nn.Module):
    """Base class: subclasses build their networks in __init__ and implement the four methods below."""

    #: names of exported generators, e.g. ("G",) or ("G_A", "G_B"); each is a submodule attribute
    generator_names: tuple[str, ...] = ()
    #: names of discriminators, e.g. ("D",) or ("D_A", "D_B")
    discriminator_names: tuple[str, ...] = ()

    def __init__(self, objective: Objective):
        super().__init__()
        self.objective = objective
        self.d_regularizers: list = []
        self.adversary = Adversary(objective)  # setup_adversary adds instance noise where asked

    def setup_adversary(self, cfg) -> None:
        """Give every discriminator named in `discriminator_names` the D regularizer of `cfg.d_reg`
        (spectral normalization or regularization; translate.core.spectral), and make the adversary,
        with annealed instance noise on D's inputs when `cfg.instance_noise` > 0. Call once the
        discriminators exist."""
        from translate.core.noise import InstanceNoise
        from translate.core.spectral import apply_d_regularizer

        regularizers = (apply_d_regularizer(getattr(self, name), cfg.d_reg, static_rank=cfg.sr_rank,
                                            refresh_every=cfg.sr_refresh) for name in self.discriminator_names)
        self.d_regularizers = [r for r in regularizers if r is not None]
        noise = None
        if cfg.instance_noise > 0:
            # Annealed over the run: the loop, which knows its length in iterations, calls set_run_length.
            noise = InstanceNoise(cfg.instance_noise, anneal_steps=cfg.max_steps)
        self.adversary = Adversary(self.objective, noise)

    def set_run_length(self, total_steps: int) -> None:
        """The loop's number of iterations: instance noise reaches 0 at the end of the run, however long
        (`--max-steps`, or the epochs times the batches per epoch)."""
        if self.adversary.instance_noise is not None:
            self.adversary.instance_noise.anneal_steps = max(int(total_steps), 1)

    # ---- what the loop calls -------------------------------------------------------------------
    def g_modules(self) -> list[nn.Module]:
        """Modules trained by G's optimizer (generators, and G-side condition encoders)."""
        return [getattr(self, n) for n in self.generator_names]

    def d_modules(self) -> list[nn.Module]:
        """Modules trained by D's optimizer."""
        return [getattr(self, n) for n in self.discriminator_names]

    def g_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.g_modules() for p in m.parameters()]

    def d_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.d_modules() for p in m.parameters()]

    def condition_record(self) -> dict | None:
        """What the model's condition means (label names, caption vocabulary), or None without one.
        Training records it in run.json; rebuilt from the data on resume or export it must be the same
        (`check_same_conditions`), or the weights would be read with other meanings."""
        return None

    def generate(self, batch: dict) -> dict:
        raise NotImplementedError

    def generate_for_d(self, batch: dict) -> dict:
        """G's outputs that `d_loss` needs, for an iteration that updates D alone (`--d-steps` > 1; run
        without a graph). The default is all of `generate`; models whose `generate` also makes outputs
        only G's loss uses (cycle reconstructions) skip them here."""
        return self.generate(batch)

    def statistics_pass(self, batch: dict, update_g: bool = True) -> None:
        """Make every generator call that a training iteration on `batch` makes (`update_g`: one that
        also updates G), and no other: batch-norm statistics are recomputed from these calls at the end
        of training (translate.train.batchnorm), so they must be the calls whose statistics the layers
        were trained with and the moving averages track."""
        if update_g:
            self.generate(batch)
        else:
            self.generate_for_d(batch)

    def d_loss(self, batch: dict, out: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def g_loss(self, batch: dict, out: dict, ctx: StepContext) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def visuals(self, batch: dict, out: dict) -> list[tuple[str, torch.Tensor]]:
        """Named image batches for sample grids, e.g. [("input", A), ("output", fake_B), ("target", B)]."""
        raise NotImplementedError

    @torch.no_grad()
    def after_d_step(self) -> None:
        """WGAN's weight clipping and the spectral regularizers' bookkeeping after each D update."""
        if self.objective.clip_value is not None:
            for module in self.d_modules():
                clip_weights_(module, self.objective.clip_value)
        for regularizer in self.d_regularizers:
            regularizer.step()

    def extra_state(self) -> dict:
        """State outside the modules' state dicts that exact resume needs (e.g. history pools)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def exported_generators(self) -> dict:
        """Each generator as a TranslationGenerator (network + condition encoder + card) for export."""
        from translate.io.generator_file import TranslationGenerator

        out = {}
        for name in self.generator_names:
            net = getattr(self, name)
            out[name] = net if isinstance(net, TranslationGenerator) else TranslationGenerator(net)
        return out


def detached(out: dict) -> dict:
    return {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}


def set_requires_grad(modules, flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


def critic_norm(objective: str, norm: str) -> str:
    """The norm a discriminator is built with: `norm`, except that a WGAN-GP critic takes layer norm
    where batch norm was asked for. The gradient penalty asks each sample's critic value for a
    gradient of norm 1 in that sample; batch norm makes every critic value depend on the whole batch,
    so that gradient is not the one penalised, and Gulrajani et al. (2017, sec. 4) use layer norm as
    the drop-in replacement. Generators keep batch norm."""
    return "layer" if objective == "wgan-gp" and norm == "batch" else norm


class TwoWayModel(TranslationModel):
    """Two generators and two discriminators: G_A translates A -> B and D_A tells real B from G_A(a);
    G_B and D_B the other way (CycleGAN, DiscoGAN). Built from the config's netG/ngf/netD/ndf/norm
    settings, with the D regularizer and instance noise of `setup_adversary`."""

    generator_names = ("G_A", "G_B")
    discriminator_names = ("D_A", "D_B")

    def __init__(self, cfg):
        super().__init__(get_objective(cfg.objective))
        self.cfg = cfg
        self.G_A, self.G_B = (create_generator(cfg.netG, ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout,
                                               upsample=cfg.upsample)
                              for _ in range(2))
        self.D_A, self.D_B = (create_discriminator(cfg.netD, ndf=cfg.ndf, n_layers=cfg.n_layers_D,
                                                  norm=critic_norm(cfg.objective, cfg.norm))
                              for _ in range(2))
        self.setup_adversary(cfg)

    def generate_for_d(self, batch: dict) -> dict:
        # Each D judges only its generator's translations; the cycle reconstructions are G's business.
        return {"fake_B": self.G_A(batch["A"]), "fake_A": self.G_B(batch["B"])}

    def statistics_pass(self, batch: dict, update_g: bool = True) -> None:
        # In G's iterations G_A translates real A and G_B's fakes (the backward cycle) and, with an
        # identity term, real B (each call normalized with its own batch's statistics, the moving
        # averages tracking them all). Statistics of real A alone score far worse: measured on a U-Net
        # DiscoGAN at 64 px, SSIM 0.40 against 0.58 with these calls or the moving averages, the same
        # 0.40 as the generator in training mode on the test photos, with a speckled output.
        # Without a graph `generate` never makes the identity images (CycleGAN's joint call is for
        # instance norm only), so G's loss makes them in its own calls, as here.
        super().statistics_pass(batch, update_g)
        if update_g and self.cfg.lambda_identity > 0:
            self.G_A(batch["B"])
            self.G_B(batch["A"])


def _names_only_lost_spaces(recorded: dict, now: dict) -> bool:
    """Whether the two label conditions differ only in spaces around the recorded names, in the same
    order: label names are stripped since 2026-11-23, and a run trained before on 'dusk ' means 'dusk'."""
    names = recorded.get("label_names")
    if not (recorded.get("kind") == now.get("kind") == "label" and isinstance(names, list)):
        return False
    rest = {k: v for k, v in recorded.items() if k != "label_names"}
    return ([n.strip() if isinstance(n, str) else n for n in names] == now.get("label_names")
            and rest == {k: v for k, v in now.items() if k != "label_names"})


def check_same_conditions(model: TranslationModel, recorded: dict | None, run_dir) -> None:
    """UsageError when the conditions `model` was rebuilt with (from the dataset as it is now) differ
    from those the run was trained with (`recorded`, from its run.json; None for runs that predate it):
    label indices or word ids would silently mean other things."""
    from translate.errors import UsageError

    now = model.condition_record()
    if recorded is None or now is None or now == recorded or _names_only_lost_spaces(recorded, now):
        return
    if now.get("kind") == recorded.get("kind") == "label":
        what = f"labels {recorded.get('label_names')} then, {now.get('label_names')} now"
    else:
        what = (f"a {recorded.get('kind')} condition with {len(recorded.get('vocabulary') or [])} words then, "
                f"a {now.get('kind')} condition with {len(now.get('vocabulary') or [])} words now")
    raise UsageError(f"{run_dir} was trained with other conditions than its dataset's metadata gives now ({what}); "
                     "put the metadata back as it was in training")

