"""The fidelity metrics against closed forms and an independent float64 SSIM (Wang et al. 2004)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from translate.eval.metrics import MetricMeans, l1_per_image, psnr_per_image, ssim_per_image


def reference_ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM per image in float64, written from the paper: Gaussian-weighted local means, variances and
    covariance over 'valid' windows, C1 = (0.01 L)^2, C2 = (0.03 L)^2 with L = 1, averaged over
    positions and channels."""
    x, y = x.double(), y.double()
    offsets = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(offsets**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(x.shape[1], 1, window, window)

    def blur(t):
        return F.conv2d(t, kernel, groups=x.shape[1])

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(dim=1)


def images(n=3, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, size // 4, size // 4, generator=g)
    smooth = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (smooth + 0.05 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1) * 2 - 1  # [-1, 1]


def test_ssim_equals_the_papers_formula_in_float64():
    x, y = images(seed=0), images(seed=1)
    noisy = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(-1, 1)
    for a, b in ((x, y), (x, noisy), (noisy, noisy.flip(-1))):
        got = ssim_per_image(a, b).double()
        expected = reference_ssim((a + 1) / 2, (b + 1) / 2)
        torch.testing.assert_close(got, expected, rtol=0, atol=2e-5)
    assert torch.allclose(ssim_per_image(x, x), torch.ones(3), atol=1e-5)


def test_psnr_and_l1_of_a_constant_offset_are_closed_forms():
    x = torch.full((2, 3, 16, 16), -0.5)
    offset = 0.1  # in [0, 1] units: 0.2 in [-1, 1]
    y = x + 2 * offset
    assert l1_per_image(x, y).tolist() == pytest.approx([offset] * 2, rel=1e-5)
    assert psnr_per_image(x, y).tolist() == pytest.approx([-20 * math.log10(offset)] * 2, rel=1e-5)  # 20 dB


def test_metric_means_average_per_image_scores_over_batches():
    x, y = images(n=5, seed=3), images(n=5, seed=4)
    means = MetricMeans()
    means.add(x[:2], y[:2])
    means.add(x[2:], y[2:])
    result = means.result()
    assert result["l1"] == pytest.approx(float(l1_per_image(x, y).mean()), abs=1e-5)
    assert result["psnr"] == pytest.approx(float(psnr_per_image(x, y).mean()), abs=1e-4)
    assert result["ssim"] == pytest.approx(float(reference_ssim((x + 1) / 2, (y + 1) / 2).mean()), abs=2e-5)
