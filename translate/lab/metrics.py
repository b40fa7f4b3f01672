"""Mode-collapse metrics of PacGAN's Table 1 (Lin et al. 2018, sec. 4.1; VEEGAN's protocol).

On a set of generated samples (PacGAN: 2,500):

- a sample is *high quality* when it lies within 3 standard deviations of its nearest mode
  (for these isotropic mixtures: Euclidean distance < 3 * std);
- a mode is *captured* when at least one high-quality sample has it as nearest mode; we also report
  the stricter count of modes with at least 20 high-quality samples;
- the *reverse KL* is KL(p || uniform) = sum_k p_k log(K p_k), where p is the histogram of the
  high-quality samples over the modes, normalised to sum to 1. The published code (its
  `MetricLogger`) builds this histogram from the high-quality samples only, and the mixtures'
  weights are uniform; all samples at one mode give log K, an even spread gives 0.

With no high-quality sample at all the histogram does not exist and the reverse KL is reported as None.
A perfect generator is not 100% high quality: a 2-D Gaussian puts 1 - exp(-9/2) = 98.9% of its mass
within 3 std of its mean.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from translate.lab.mixtures import GaussianMixture

HIGH_QUALITY_STDS = 3.0
STRICT_MIN_SAMPLES = 20
from translate.lab.config import EVAL_SAMPLES  # noqa: E402,F401  (re-exported)


@dataclass(frozen=True)
class ModeMetrics:
    modes: int  # modes with >= 1 high-quality sample
    strict_modes: int  # modes with >= STRICT_MIN_SAMPLES high-quality samples
    num_modes: int
    high_quality_fraction: float
    reverse_kl: float | None
    counts: tuple[int, ...]  # high-quality samples per mode
    num_samples: int

    def to_dict(self) -> dict:
        out = asdict(self)
        out["counts"] = list(self.counts)
        return out


def nearest_modes(samples: torch.Tensor, mixture: GaussianMixture) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of each sample's nearest mode and its distance in units of the mixture's std."""
    points = torch.as_tensor(samples, dtype=torch.float64).reshape(-1, 2)
    distances = torch.cdist(points, mixture.means.to(torch.float64)) / mixture.std
    nearest_distance, nearest = distances.min(dim=1)
    return nearest, nearest_distance


def reverse_kl_to_uniform(counts: torch.Tensor) -> float | None:
    """KL(p || uniform over len(counts) modes) for the histogram `counts`; None when it is empty."""
    total = float(counts.sum())
    if total <= 0:
        return None
    p = counts.to(torch.float64) / total
    p = p[p > 0]
    return float((p * torch.log(p * counts.numel())).sum())


def mode_metrics(
    samples: torch.Tensor,
    mixture: GaussianMixture,
    *,
    threshold_stds: float = HIGH_QUALITY_STDS,
    strict_min_samples: int = STRICT_MIN_SAMPLES,
) -> ModeMetrics:
    """PacGAN's metrics of `samples` (N, 2) against `mixture`."""
    nearest, distance = nearest_modes(samples, mixture)
    if nearest.numel() == 0:
        raise ValueError("no samples to evaluate")
    finite = torch.isfinite(distance)
    high_quality = finite & (distance < threshold_stds)
    counts = torch.bincount(nearest[high_quality], minlength=mixture.num_modes)
    rkl = reverse_kl_to_uniform(counts)
    return ModeMetrics(
        modes=int((counts >= 1).sum()),
        strict_modes=int((counts >= strict_min_samples).sum()),
        num_modes=mixture.num_modes,
        high_quality_fraction=float(high_quality.sum()) / nearest.numel(),
        reverse_kl=None if rkl is None or math.isnan(rkl) else rkl,
        counts=tuple(int(c) for c in counts),
        num_samples=int(nearest.numel()),
    )
