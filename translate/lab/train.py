"""Training a small GAN on a 2-D Gaussian mixture, for any objective x D regularizer x seed.

The loop is Goodfellow et al.'s Algorithm 1: `d_steps` discriminator updates, then one generator
update, repeated `steps` times (seeds 000/001: k D steps per G step). Both learning rates stay
constant, then decay linearly to `lr_floor` over the last part of training: with a constant rate the
samples keep jittering around the modes, and the decay lets them settle into them.

Everything random comes from the seed: the networks' initial weights and D's Fourier frequencies are
drawn inside a forked RNG (so the caller's global RNG is untouched), the data, latent codes, penalty
interpolates and instance noise from explicit generators. On a CPU with a fixed thread count, two runs
with the same config give the same numbers.

Both mixtures are trained in coordinates divided by the largest |mode mean| (1 for ring8, 4 for
grid25), so that one set of hyperparameters fits both; samples are scaled back before they are
measured.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from translate.core.monitor import SpectralMonitor
from translate.core.noise import InstanceNoise
from translate.core.objectives import Objective, clip_weights_, get_objective
from translate.core.penalty import gradient_penalty
from translate.core.spectral import apply_d_regularizer
from translate.lab.config import LabConfig
from translate.lab.metrics import ModeMetrics, mode_metrics
from translate.lab.mixtures import GaussianMixture, get_mixture
from translate.lab.networks import MLPDiscriminator, MLPGenerator


@dataclass
class Snapshot:
    """What the plot shows at one moment of training."""

    step: int
    samples: torch.Tensor  # (n, 2) G's samples, data coordinates
    grid_x: torch.Tensor  # (m,) coordinates of the landscape's grid, data coordinates
    landscape: torch.Tensor  # (m, m) D's logits on the grid, rows indexed by y


@dataclass
class LabResult:
    config: LabConfig
    metrics: ModeMetrics
    seconds: float  # wall time of training and evaluation
    cpu_seconds: float  # this process's CPU time for the same (less sensitive to a shared machine)
    samples: torch.Tensor  # the evaluation samples, data coordinates
    final_d_loss: float
    final_g_loss: float
    d_spectrum: dict[str, float]  # SpectralMonitor.measure() of the trained D
    generator: torch.nn.Module
    discriminator: torch.nn.Module
    snapshots: list[Snapshot] = field(default_factory=list)
    diverged_at: int | None = None  # the step whose losses were not finite; training stopped there

    def to_dict(self) -> dict:
        """The JSON object of `translate-lab mog --json`."""
        m = self.metrics
        return {
            "mixture": self.config.mixture,
            "objective": self.config.objective,
            "d_reg": self.config.d_reg,
            "seed": self.config.seed,
            "modes": m.modes,
            "strict_modes": m.strict_modes,
            "num_modes": m.num_modes,
            "high_quality_fraction": m.high_quality_fraction,
            "reverse_kl": m.reverse_kl,
            "counts": list(m.counts),
            "eval_samples": m.num_samples,
            "steps": self.config.steps if self.diverged_at is None else self.diverged_at,
            "diverged_at": self.diverged_at,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            # JSON has no NaN or Infinity: a diverged run's losses are null.
            "final_d_loss": self.final_d_loss if math.isfinite(self.final_d_loss) else None,
            "final_g_loss": self.final_g_loss if math.isfinite(self.final_g_loss) else None,
            "d_spectrum_mean": self.d_spectrum.get("spectrum/mean"),
            "config": asdict(self.config),
        }


def training_scale(mixture: GaussianMixture) -> float:
    """Data / training_scale are the coordinates G and D work in: the modes fill [-1, 1]^2."""
    return float(mixture.means.abs().max())


def lr_factor(config: LabConfig, step: int) -> float:
    """1 until lr_decay_from * steps, then linearly down to lr_floor at the last step."""
    start = int(config.lr_decay_from * config.steps)
    if step < start or config.steps <= start:
        return 1.0
    progress = (step - start) / max(1, config.steps - start)
    return 1.0 - (1.0 - config.lr_floor) * progress


def _make_optimizer(params, objective: Objective, lr: float, config: LabConfig) -> torch.optim.Optimizer:
    if objective.recommended_optimizer == "rmsprop":  # WGAN with clipping (Arjovsky et al., sec. 3)
        return torch.optim.RMSprop(params, lr=config.rmsprop_lr)
    return torch.optim.Adam(params, lr=lr, betas=(config.beta1, config.beta2))


@torch.no_grad()
def _landscape(discriminator, scale: float, extent: float, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs = torch.linspace(-extent, extent, resolution)
    yy, xx = torch.meshgrid(xs, xs, indexing="ij")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1) / scale
    return xs, discriminator(points).float().reshape(resolution, resolution)


def train_mog(
    config: LabConfig,
    *,
    snapshot_steps: tuple[int, ...] = (),
    snapshot_samples: int = 1000,
    landscape_resolution: int = 120,
    progress: Callable[[int, int, float, float], None] | None = None,
    progress_every: int = 0,
) -> LabResult:
    """Train G and D on `config.mixture` and measure G's samples with PacGAN's metrics.

    `snapshot_steps` lists generator steps (0 = before training, `steps` = the end) at which G's
    samples and D's landscape are kept for plotting; `progress(step, steps, d_loss, g_loss)` is called
    every `progress_every` steps."""
    config.validate()
    mixture = get_mixture(config.mixture)
    scale = training_scale(mixture)
    objective = get_objective(config.objective, gp_weight=config.gp_weight, clip_value=config.clip_value)
    data_rng = torch.Generator().manual_seed(2 * config.seed + 1)
    eval_rng = torch.Generator().manual_seed(2 * config.seed + 2)
    noise = InstanceNoise(config.instance_noise, anneal_steps=max(1, round(config.instance_noise_until * config.steps)))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.precision == "bf16")

    start_time, start_cpu = time.perf_counter(), time.process_time()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        generator = MLPGenerator(config.z_dim, config.g_width, config.g_depth, config.negative_slope, config.g_skip)
        discriminator = MLPDiscriminator(
            config.d_width, config.d_depth, config.negative_slope, config.d_fourier_features, config.d_fourier_sigma
        )
        # Before the optimizer is made: the regularizers re-register D's weights as parametrizations.
        regularizer = apply_d_regularizer(
            discriminator, config.d_reg, static_rank=config.sr_static_rank, refresh_every=config.sr_refresh_every
        )
    opt_g = _make_optimizer(generator.parameters(), objective, config.lr_g, config)
    opt_d = _make_optimizer(discriminator.parameters(), objective, config.lr_d, config)
    base_lrs = [(opt, [group["lr"] for group in opt.param_groups]) for opt in (opt_g, opt_d)]

    snapshots: list[Snapshot] = []
    wanted = set(snapshot_steps)
    snapshot_z = torch.randn(snapshot_samples, config.z_dim, generator=torch.Generator().manual_seed(config.seed))

    def take_snapshot(step: int) -> None:
        with torch.no_grad():
            samples = generator(snapshot_z) * scale
        xs, values = _landscape(discriminator, scale, mixture.extent, landscape_resolution)
        snapshots.append(Snapshot(step, samples, xs, values))

    batch = config.batch_size
    d_loss_value = g_loss_value = float("nan")
    diverged_at = None
    for step in range(config.steps):
        if step in wanted:
            take_snapshot(step)
        factor = lr_factor(config, step)
        for opt, lrs in base_lrs:
            for group, lr in zip(opt.param_groups, lrs):
                group["lr"] = lr * factor

        discriminator.requires_grad_(True)
        for _ in range(config.d_steps):
            real = mixture.sample(batch, data_rng) / scale
            with torch.no_grad(), autocast:
                fake = generator(torch.randn(batch, config.z_dim, generator=data_rng)).float()
            real, fake = noise(real, step, data_rng), noise(fake, step, data_rng)
            with autocast:
                d_loss = objective.d_loss(discriminator(real), discriminator(fake))
                if objective.gradient_penalty_weight > 0:
                    d_loss = d_loss + gradient_penalty(
                        discriminator, real, fake, weight=objective.gradient_penalty_weight, generator=data_rng
                    )
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            if objective.clip_value is not None:
                clip_weights_(discriminator, objective.clip_value)
            if regularizer is not None:
                regularizer.step()

        discriminator.requires_grad_(False)  # G's step needs gradients through D, not of D
        with autocast:
            fake = generator(torch.randn(batch, config.z_dim, generator=data_rng)).float()
            g_loss = objective.g_loss(discriminator(noise(fake, step, data_rng)))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        d_loss_value, g_loss_value = d_loss.item(), g_loss.item()
        if not (math.isfinite(d_loss_value) and math.isfinite(g_loss_value)):
            diverged_at = step + 1
            break  # diverged: what G makes now is the result
        if progress is not None and progress_every > 0 and (step + 1) % progress_every == 0:
            progress(step + 1, config.steps, d_loss_value, g_loss_value)

    discriminator.requires_grad_(True)
    if diverged_at is not None and wanted:
        take_snapshot(diverged_at)  # the last state, under its own step (not the run's planned end)
    elif config.steps in wanted:
        take_snapshot(config.steps)
    with torch.no_grad():
        samples = generator(torch.randn(config.eval_samples, config.z_dim, generator=eval_rng)) * scale
    seconds, cpu_seconds = time.perf_counter() - start_time, time.process_time() - start_cpu
    return LabResult(
        config=config,
        metrics=mode_metrics(samples, mixture),
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        samples=samples,
        final_d_loss=d_loss_value,
        final_g_loss=g_loss_value,
        # A diverged D (weights no longer finite) has no spectrum to measure.
        d_spectrum=SpectralMonitor(discriminator).measure()
        if all(torch.isfinite(p).all() for p in discriminator.parameters()) else {},
        generator=generator,
        discriminator=discriminator,
        snapshots=snapshots,
        diverged_at=diverged_at,
    )
