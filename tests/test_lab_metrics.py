"""PacGAN's Table 1 metrics on sample sets whose answers are known by hand."""

import math

import pytest
import torch

from translate.errors import UsageError
from translate.lab.metrics import mode_metrics, reverse_kl_to_uniform
from translate.lab.mixtures import get_mixture, grid25, ring8


@pytest.mark.parametrize("mixture", [ring8(), grid25()], ids=["ring8", "grid25"])
def test_samples_at_every_mode_capture_all_with_full_quality_and_zero_reverse_kl(mixture):
    samples = mixture.means.repeat(100, 1)  # 100 samples exactly at each mode
    m = mode_metrics(samples, mixture)
    assert m.modes == m.strict_modes == mixture.num_modes
    assert m.high_quality_fraction == 1.0
    assert m.reverse_kl == pytest.approx(0.0, abs=1e-12)
    assert m.counts == (100,) * mixture.num_modes


@pytest.mark.parametrize("mixture", [ring8(), grid25()], ids=["ring8", "grid25"])
def test_samples_at_one_mode_capture_one_and_reverse_kl_is_log_k(mixture):
    samples = mixture.means[3].repeat(2500, 1) + 0.5 * mixture.std  # inside the 3-std radius
    m = mode_metrics(samples, mixture)
    assert (m.modes, m.strict_modes) == (1, 1)
    assert m.high_quality_fraction == 1.0
    assert m.reverse_kl == pytest.approx(math.log(mixture.num_modes), rel=1e-12)


def test_samples_far_from_every_mode_are_not_high_quality():
    mixture = grid25()
    samples = torch.full((2500, 2), 100.0)
    m = mode_metrics(samples, mixture)
    assert m.high_quality_fraction == 0.0
    assert m.modes == m.strict_modes == 0
    assert m.reverse_kl is None  # no histogram of high-quality samples exists


def test_samples_between_modes_are_low_quality():
    mixture = grid25()
    midpoints = (mixture.means[:-1] + mixture.means[1:]) / 2  # 1 unit = 20 std from the nearest mode
    m = mode_metrics(midpoints, mixture)
    assert m.high_quality_fraction == 0.0


def test_high_quality_radius_is_three_standard_deviations():
    mixture = ring8()
    direction = torch.tensor([[0.0, 1.0]], dtype=torch.float64)  # tangent at mode 0 = (1, 0)
    inside = mixture.means[0] + 2.99 * mixture.std * direction
    outside = mixture.means[0] + 3.01 * mixture.std * direction
    assert mode_metrics(inside, mixture).high_quality_fraction == 1.0
    assert mode_metrics(outside, mixture).high_quality_fraction == 0.0


def test_strict_count_needs_twenty_samples_per_mode():
    mixture = ring8()
    samples = torch.cat([mixture.means[0].repeat(19, 1), mixture.means[1].repeat(20, 1)])
    m = mode_metrics(samples, mixture)
    assert m.modes == 2
    assert m.strict_modes == 1


def test_reverse_kl_is_of_high_quality_histogram_against_uniform():
    mixture = ring8()
    # modes 0, 0, 1, 2 plus four low-quality samples: p = (1/2, 1/4, 1/4, 0, ...) over K = 8
    far = torch.tensor([[5.0, 5.0]], dtype=torch.float64).repeat(4, 1)
    samples = torch.cat([mixture.means[[0, 0, 1, 2]], far])
    m = mode_metrics(samples, mixture)
    expected = 0.5 * math.log(0.5 * 8) + 2 * 0.25 * math.log(0.25 * 8)
    assert m.reverse_kl == pytest.approx(expected, rel=1e-12)
    assert m.high_quality_fraction == 0.5
    assert reverse_kl_to_uniform(torch.tensor([2, 1, 1, 0, 0, 0, 0, 0])) == pytest.approx(expected, rel=1e-12)


def test_non_finite_samples_count_as_low_quality():
    mixture = ring8()
    samples = torch.cat([mixture.means, torch.tensor([[float("nan"), 0.0], [float("inf"), 1.0]], dtype=torch.float64)])
    m = mode_metrics(samples, mixture)
    assert m.modes == 8
    assert m.high_quality_fraction == pytest.approx(8 / 10)


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_real_samples_score_as_the_closed_form_says(name):
    # A 2-D Gaussian puts 1 - exp(-9/2) of its mass within 3 std: the best a generator can do by
    # matching the data (collapsing each mode to a point would score 100%).
    mixture = get_mixture(name)
    samples = mixture.sample(40_000, torch.Generator().manual_seed(0))
    m = mode_metrics(samples, mixture)
    assert m.modes == m.strict_modes == mixture.num_modes
    assert m.high_quality_fraction == pytest.approx(1 - math.exp(-4.5), abs=0.003)  # 5 standard errors
    assert m.reverse_kl < 0.005  # multinomial noise only: about (K - 1) / (2 N)


def test_unknown_mixture_is_a_usage_error():
    with pytest.raises(UsageError, match="ring8, grid25"):
        get_mixture("spiral")
