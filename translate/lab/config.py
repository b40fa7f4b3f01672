"""The lab's run configuration: a typed dataclass whose defaults are the tuned ones (docs/lab.md).

This module imports no torch, so that `translate-lab --help` is quick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from translate.errors import UsageError

# The names of translate.core.objectives.OBJECTIVE_NAMES (a test keeps the two equal).
OBJECTIVE_CHOICES = ("minimax", "nsgan", "lsgan", "hinge", "wgan", "wgan-gp")
D_REGULARIZERS = ("none", "sn", "sr-static", "sr-dynamic")
MIXTURE_NAMES = ("ring8", "grid25")
EVAL_SAMPLES = 2500  # PacGAN evaluates 2,500 samples


@dataclass
class LabConfig:
    """One run of the lab. The defaults are the tuned ones of docs/lab.md."""

    objective: str = "wgan-gp"
    d_reg: str = "none"  # none | sn | sr-static | sr-dynamic (translate.core.spectral)
    mixture: str = "ring8"
    seed: int = 0
    steps: int = 5000  # generator updates
    d_steps: int = 3  # discriminator updates per generator update
    batch_size: int = 128
    z_dim: int = 2  # G's latent: N(0, I)
    g_width: int = 128
    g_depth: int = 4  # hidden layers
    g_skip: float = 0.5  # G(z) = MLP(z) + g_skip * z[:, :2]
    d_width: int = 64
    d_depth: int = 3
    d_fourier_features: int = 64  # random Fourier features of D's input; 0: a plain MLP on (x, y)
    d_fourier_sigma: float = 1.5  # std of their frequencies, cycles per training-coordinate unit
    negative_slope: float = 0.0  # 0: ReLU; > 0: LeakyReLU, in both networks
    lr_g: float = 2e-3
    lr_d: float = 2e-3
    beta1: float = 0.5
    beta2: float = 0.9
    rmsprop_lr: float = 5e-5  # WGAN with clipping uses RMSProp (Arjovsky et al. 2017, Algorithm 1)
    lr_decay_from: float = 0.75  # fraction of `steps` after which both lrs decay linearly to lr_floor
    lr_floor: float = 0.0  # as a fraction of the initial lr
    gp_weight: float = 1.0  # WGAN-GP lambda (Gulrajani et al. use 10 for images, 0.1 for their toys)
    clip_value: float = 0.01  # WGAN's c (Arjovsky et al. 2017)
    instance_noise: float = 0.0  # std (training coordinates) of Gaussian noise on D's inputs (seed 002)
    instance_noise_until: float = 0.75  # fraction of `steps` over which that std anneals linearly to 0
    sr_static_rank: int = 2  # i of static spectral regularization (translate.core default)
    sr_refresh_every: int = 5  # D steps between SVD refreshes (Liu et al.'s released code: 5)
    eval_samples: int = EVAL_SAMPLES
    precision: str = "fp32"  # or "bf16": CPU autocast for the training passes (evaluation stays fp32)

    def validate(self) -> "LabConfig":
        """Normalise names and check values; raises UsageError with a one-line reason."""
        from translate.core.objectives import OBJECTIVE_NAMES, canonical_objective_name

        try:
            self.objective = canonical_objective_name(self.objective)
        except ValueError:
            raise UsageError(
                f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVE_NAMES)}"
            ) from None
        self.d_reg = self.d_reg.strip().lower()
        if self.d_reg not in D_REGULARIZERS:
            raise UsageError(f"unknown D regularizer {self.d_reg!r}; choose one of {', '.join(D_REGULARIZERS)}")
        self.mixture = self.mixture.strip().lower()
        if self.mixture not in MIXTURE_NAMES:
            raise UsageError(f"unknown mixture {self.mixture!r}; choose one of {', '.join(MIXTURE_NAMES)}")
        if self.precision not in ("fp32", "bf16"):
            raise UsageError(f"unknown precision {self.precision!r}; choose fp32 or bf16")
        if self.steps < 0:
            raise UsageError(f"--steps must be >= 0, got {self.steps}")
        from translate.train.config import check_seed

        check_seed(self.seed)  # (torch takes 64-bit seeds; the lab derives more from it)
        for name in ("d_steps", "batch_size", "z_dim", "g_width", "d_width", "eval_samples", "sr_static_rank",
                     "sr_refresh_every"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("g_depth", "d_depth", "d_fourier_features"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        # (the sweep's --set reaches every field: a NaN learning rate failed inside torch's Adam)
        for name, low, high in (("lr_g", 0, None), ("lr_d", 0, None), ("rmsprop_lr", 0, None), ("gp_weight", 0, None),
                                ("clip_value", 0, None), ("instance_noise", 0, None), ("negative_slope", 0, None),
                                ("d_fourier_sigma", 0, None), ("lr_floor", 0, None), ("g_skip", None, None),
                                ("lr_decay_from", 0, 1), ("instance_noise_until", 0, 1)):
            value = getattr(self, name)
            if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
                bounds = (f"between {low} and {high}" if high is not None else f">= {low}" if low is not None
                          else "a finite number")
                raise UsageError(f"--{name.replace('_', '-')} must be {bounds}, got {value}")
        for name in ("beta1", "beta2"):  # Adam's
            if not 0 <= getattr(self, name) < 1:
                raise UsageError(f"--{name} must be >= 0 and below 1, got {getattr(self, name)}")
        return self
