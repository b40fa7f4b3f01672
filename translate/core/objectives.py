"""GAN objectives on the discriminator's raw logits.

Every objective splits the discriminator's loss into a term on real samples and a term on generated
samples, plus the generator's loss on generated samples. The terms are means over all elements, so
they work for one logit per image and for PatchGAN maps alike; a list of logit tensors (a multi-scale
discriminator) gives the mean of the per-tensor losses.

| name        | D loss (real term + fake term)      | G loss            | source                          |
|-------------|-------------------------------------|-------------------|---------------------------------|
| minimax     | -log D(x) - log(1 - D(G))           | log(1 - D(G))     | Goodfellow et al. 2014, eq. 1   |
| nsgan       | same as minimax                     | -log D(G)         | Goodfellow et al. 2014, sec. 3  |
| lsgan       | (D(x) - 1)^2 + D(G)^2               | (D(G) - 1)^2      | Mao et al. 2017 (a=0, b=c=1)    |
| hinge       | relu(1 - D(x)) + relu(1 + D(G))     | -D(G)             | Lim & Ye 2017; Miyato et al.    |
| wgan        | D(G) - D(x)                         | -D(G)             | Arjovsky et al. 2017            |
| wgan-gp     | as wgan, plus the gradient penalty  | -D(G)             | Gulrajani et al. 2017           |

D(.) in the first two rows is sigmoid(logit); the losses are written with softplus so that they never
take the log of a rounded-off probability: -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) =
softplus(l). The minimax generator loss log(1 - D(G)) = -softplus(l) is the one that saturates: its
gradient with respect to l is -sigmoid(l), which vanishes as D grows confident that G's samples are
fake (seed 002). The non-saturating loss softplus(-l) has gradient -sigmoid(-l) there instead.

The discriminator's loss is the plain sum of its two terms. Image models halve it, as the reference
CycleGAN/pix2pix code does (it also makes the least-squares loss the 1/2-weighted form of Mao et al.).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

from translate.errors import UsageError

Logits = Union[torch.Tensor, Sequence[torch.Tensor]]

OBJECTIVE_NAMES = ("minimax", "nsgan", "lsgan", "hinge", "wgan", "wgan-gp")
ALIASES = {"vanilla": "nsgan", "gan": "nsgan", "mmgan": "minimax", "ls": "lsgan", "wgangp": "wgan-gp"}


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    # Losses are computed in float32 even when the network ran under autocast: a bf16 mean over a
    # 30x30 PatchGAN map loses most of its digits. float64 logits stay float64.
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _mean_over(logits: Logits, term: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    if isinstance(logits, torch.Tensor):
        return term(_at_least_float32(logits)).mean()
    parts = [term(_at_least_float32(t)).mean() for t in logits]
    if not parts:
        raise ValueError("empty list of logits")
    return torch.stack(parts).mean()


def _real_log_loss(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(-x)  # -log sigmoid(x)


def _fake_log_loss(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(x)  # -log(1 - sigmoid(x))


_TERMS: dict[str, tuple[Callable, Callable, Callable]] = {
    # name: (real term of D, fake term of D, G term), each mapping logits to elementwise losses
    "minimax": (_real_log_loss, _fake_log_loss, lambda x: -F.softplus(x)),
    "nsgan": (_real_log_loss, _fake_log_loss, _real_log_loss),
    "lsgan": (lambda x: (x - 1.0) ** 2, lambda x: x**2, lambda x: (x - 1.0) ** 2),
    "hinge": (lambda x: F.relu(1.0 - x), lambda x: F.relu(1.0 + x), lambda x: -x),
    "wgan": (lambda x: -x, lambda x: x, lambda x: -x),
    "wgan-gp": (lambda x: -x, lambda x: x, lambda x: -x),
}


@dataclass(frozen=True)
class Objective:
    """One GAN objective: the discriminator's two loss terms, the generator's loss, and what the
    objective asks of training (a gradient penalty, weight clipping, an optimizer)."""

    name: str
    gradient_penalty_weight: float = 0.0  # lambda of WGAN-GP (Gulrajani et al.: 10)
    clip_value: float | None = None  # c of WGAN (Arjovsky et al.: 0.01)

    @property
    def is_wasserstein(self) -> bool:
        return self.name in ("wgan", "wgan-gp")

    @property
    def recommended_optimizer(self) -> str:
        """WGAN with clipping was unstable with momentum (Arjovsky et al., sec. 3): RMSProp there.
        WGAN-GP was designed for Adam."""
        return "rmsprop" if self.name == "wgan" else "adam"

    def d_real(self, logits: Logits) -> torch.Tensor:
        return _mean_over(logits, _TERMS[self.name][0])

    def d_fake(self, logits: Logits) -> torch.Tensor:
        return _mean_over(logits, _TERMS[self.name][1])

    def d_loss(self, real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
        """D's loss without any gradient penalty (see `gradient_penalty`)."""
        return self.d_real(real_logits) + self.d_fake(fake_logits)

    def g_loss(self, fake_logits: Logits) -> torch.Tensor:
        return _mean_over(fake_logits, _TERMS[self.name][2])


def canonical_objective_name(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in OBJECTIVE_NAMES:
        raise UsageError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVE_NAMES)}")
    return key


def get_objective(name: str, *, gp_weight: float = 10.0, clip_value: float = 0.01) -> Objective:
    """The objective called `name` (aliases: vanilla = gan = nsgan, mmgan = minimax)."""
    key = canonical_objective_name(name)
    return Objective(
        name=key,
        gradient_penalty_weight=gp_weight if key == "wgan-gp" else 0.0,
        clip_value=clip_value if key == "wgan" else None,
    )


@torch.no_grad()
def clip_weights_(module: torch.nn.Module, clip_value: float) -> None:
    """WGAN's weight clipping to [-c, c], applied to every parameter of the critic after its step.

    Normalization layers' affine parameters are clipped too, as in Arjovsky et al.'s code: the critic
    must be a family of functions with bounded Lipschitz constant, whatever its layers are."""
    for p in module.parameters():
        p.clamp_(-clip_value, clip_value)
