"""Instance noise (Sønderby et al. 2016; Arjovsky & Bottou 2017): Gaussian, annealed linearly to 0."""

from __future__ import annotations

import math

import pytest
import torch

from translate.core.noise import InstanceNoise


def test_std_is_annealed_linearly_to_zero():
    noise = InstanceNoise(std=0.2, anneal_steps=1000)
    assert noise.std_at(0) == 0.2
    assert noise.std_at(250) == pytest.approx(0.15)
    assert noise.std_at(500) == pytest.approx(0.1)
    assert noise.std_at(1000) == 0.0
    assert noise.std_at(5000) == 0.0


def test_without_annealing_the_std_is_constant():
    assert InstanceNoise(std=0.1).std_at(10**9) == 0.1


def test_zero_std_returns_the_input_itself():
    x = torch.randn(2, 3, 4, 4)
    assert InstanceNoise(std=0.0)(x, step=0) is x
    assert InstanceNoise(std=0.1, anneal_steps=10)(x, step=10) is x


@pytest.mark.parametrize("step, expected_std", [(0, 0.1), (300, 0.07)])
def test_noise_is_zero_mean_gaussian_with_the_scheduled_std(step, expected_std):
    noise = InstanceNoise(std=0.1, anneal_steps=1000)
    x = torch.full((4, 3, 128, 128), 0.5)
    added = noise(x, step, generator=torch.Generator().manual_seed(0)) - x
    assert added.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert added.std().item() == pytest.approx(expected_std, rel=0.01)
    # Gaussian: 4th standardized moment 3 (a uniform would give 1.8)
    kurtosis = ((added / added.std()) ** 4).mean().item()
    assert kurtosis == pytest.approx(3.0, abs=0.1)


def test_a_seeded_generator_reproduces_the_noise_and_successive_calls_differ():
    noise = InstanceNoise(std=0.1)
    x = torch.zeros(2, 3, 8, 8)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    real_1, fake_1 = noise(x, 0, g1), noise(x, 0, g1)
    real_2, fake_2 = noise(x, 0, g2), noise(x, 0, g2)
    assert torch.equal(real_1, real_2) and torch.equal(fake_1, fake_2)
    assert not torch.equal(real_1, fake_1)  # real and fake get independent draws


def test_keeps_the_input_dtype():
    x = torch.zeros(2, 3, 8, 8, dtype=torch.bfloat16)
    assert InstanceNoise(std=0.1)(x, 0).dtype == torch.bfloat16


def test_bad_settings_raise():
    with pytest.raises(ValueError):
        InstanceNoise(std=-1.0)
    with pytest.raises(ValueError):
        InstanceNoise(anneal_steps=0)
    with pytest.raises(ValueError):
        InstanceNoise().std_at(-1)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    m = (p + q) / 2
    kl_p = (p[p > 0] * (p[p > 0] / m[p > 0]).log()).sum()
    kl_q = (q[q > 0] * (q[q > 0] / m[q > 0]).log()).sum()
    return (0.5 * kl_p + 0.5 * kl_q).item()


def test_instance_noise_turns_the_flat_js_of_disjoint_supports_into_a_slope():
    # Data at 0, G's samples at theta: without noise JS = log 2 for every theta != 0 (no signal for
    # G, Arjovsky & Bottou 2017); with the same Gaussian noise on both, JS grows smoothly with theta.
    grid = torch.linspace(-4.0, 8.0, 1201, dtype=torch.float64)  # step 0.01
    thetas = [0.5, 1.0, 2.0, 3.0]

    def point_mass(at: float) -> torch.Tensor:
        p = torch.zeros_like(grid)
        p[torch.argmin((grid - at).abs())] = 1.0
        return p

    def blurred(at: float, std: float) -> torch.Tensor:
        p = torch.exp(-0.5 * ((grid - at) / std) ** 2)
        return p / p.sum()

    assert all(js_divergence(point_mass(0.0), point_mass(t)) == pytest.approx(math.log(2)) for t in thetas)
    noisy = [js_divergence(blurred(0.0, 0.5), blurred(t, 0.5)) for t in thetas]
    assert all(js < math.log(2) - 1e-3 for js in noisy)
    assert all(a < b for a, b in zip(noisy, noisy[1:]))
