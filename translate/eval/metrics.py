"""Per-image fidelity metrics against ground truth, on images mapped from [-1, 1] to [0, 1].

- L1: mean absolute difference per pixel and channel (0 = identical, 1 = black vs white).
- PSNR: 10 log10(1 / MSE), in dB, per image, then averaged over images.
- SSIM: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), kornia's implementation, averaged
  over pixels, channels and images. Borders are handled with 'valid' windows so padding does not count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return ((x.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def l1_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (to_unit(pred) - to_unit(target)).abs().flatten(1).mean(dim=1)


def psnr_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mse = (to_unit(pred) - to_unit(target)).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


def ssim_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    from kornia.metrics import ssim

    window = 11 if min(pred.shape[-2:]) >= 11 else (min(pred.shape[-2:]) // 2) * 2 - 1
    return ssim(to_unit(pred), to_unit(target), window, padding="valid").flatten(1).mean(dim=1)


@dataclass
class MetricMeans:
    """Running means of L1, PSNR and SSIM over images."""

    sums: dict = field(default_factory=lambda: {"l1": 0.0, "psnr": 0.0, "ssim": 0.0})
    count: int = 0

    def add(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.shape != target.shape:
            target = torch.nn.functional.interpolate(target.float(), size=pred.shape[-2:], mode="bilinear", align_corners=False)
        self.sums["l1"] += float(l1_per_image(pred, target).sum())
        self.sums["psnr"] += float(psnr_per_image(pred, target).sum())
        self.sums["ssim"] += float(ssim_per_image(pred, target).sum())
        self.count += pred.shape[0]

    def result(self) -> dict[str, float]:
        if not self.count:
            return {k: math.nan for k in self.sums}
        return {k: round(v / self.count, 5) for k, v in self.sums.items()}
