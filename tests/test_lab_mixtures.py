"""The mixtures of PacGAN's Table 1: their modes, widths and sampling statistics."""

import itertools
import math

import pytest
import torch

from translate.lab.metrics import nearest_modes
from translate.lab.mixtures import get_mixture, grid25, ring8


def test_ring8_means_are_on_the_unit_circle_every_45_degrees():
    mixture = ring8()
    assert mixture.num_modes == 8 and mixture.std == 0.01
    angles = torch.atan2(mixture.means[:, 1], mixture.means[:, 0])
    expected = torch.tensor([2 * math.pi * k / 8 for k in range(8)], dtype=torch.float64)
    assert torch.allclose(torch.remainder(angles, 2 * math.pi), expected, atol=1e-12)
    assert torch.allclose(mixture.means.norm(dim=1), torch.ones(8, dtype=torch.float64))


def test_grid25_means_are_the_even_lattice_points_from_minus_4_to_4():
    mixture = grid25()
    assert mixture.num_modes == 25 and mixture.std == 0.05
    got = {tuple(p) for p in mixture.means.tolist()}
    assert got == set(itertools.product((-4.0, -2.0, 0.0, 2.0, 4.0), repeat=2))


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_sampling_has_uniform_mode_weights_and_the_right_spread(name):
    mixture = get_mixture(name)
    n = 50_000
    samples = mixture.sample(n, torch.Generator().manual_seed(1)).double()
    assert samples.shape == (n, 2)
    nearest, _ = nearest_modes(samples, mixture)
    counts = torch.bincount(nearest, minlength=mixture.num_modes).double()
    expected = n / mixture.num_modes
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 3 * mixture.num_modes  # df = K - 1; this bound fails only for a real imbalance
    offsets = samples - mixture.means[nearest]
    assert offsets.mean(dim=0).abs().max() < 5 * mixture.std / math.sqrt(n)
    assert offsets.std(dim=0) == pytest.approx(torch.full((2,), mixture.std, dtype=torch.float64), rel=0.02)


def test_sampling_is_a_function_of_the_generator_seed():
    mixture = grid25()
    a = mixture.sample(100, torch.Generator().manual_seed(7))
    b = mixture.sample(100, torch.Generator().manual_seed(7))
    c = mixture.sample(100, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
