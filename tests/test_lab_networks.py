"""The lab's networks: D's Fourier features, G's skip, raw logits, and the regularizers on D."""

import math

import pytest
import torch

from translate.lab.config import LabConfig
from translate.lab.networks import FourierFeatures, MLPDiscriminator, MLPGenerator
from translate.lab.train import train_mog


def test_fourier_features_are_x_then_sines_then_cosines_of_2pi_bx():
    torch.manual_seed(0)
    features = FourierFeatures(num_frequencies=3, sigma=1.5)
    x = torch.tensor([[0.25, -0.5], [1.0, 0.0]])
    angles = 2 * math.pi * x.double() @ features.frequencies.double()
    expected = torch.cat([x.double(), angles.sin(), angles.cos()], dim=1)
    assert torch.allclose(features(x).double(), expected, atol=1e-6)
    assert "frequencies" in dict(features.named_buffers())  # fixed, not trained
    assert list(features.parameters()) == []


def test_generator_is_its_mlp_plus_the_scaled_latent():
    generator = MLPGenerator(z_dim=2, width=8, depth=2, skip_gain=0.5)
    for p in generator.net.parameters():
        torch.nn.init.zeros_(p)
    z = torch.randn(5, 2)
    assert torch.equal(generator(z), 0.5 * z)


def test_discriminator_emits_one_raw_logit_per_point():
    discriminator = MLPDiscriminator(width=16, depth=2, fourier_features=8)
    out = discriminator(torch.randn(7, 2) * 100)
    assert out.shape == (7, 1)
    assert (out.abs() > 1).any() or (out < 0).any()  # not squashed into (0, 1) by a sigmoid
    assert not isinstance(discriminator.net[-1], (torch.nn.Sigmoid, torch.nn.Tanh))


@pytest.mark.parametrize("d_reg", ["sn", "sr-static", "sr-dynamic"])
def test_spectral_regularizers_wrap_every_linear_layer_of_d(d_reg):
    config = LabConfig(d_reg=d_reg, steps=3, batch_size=32, g_width=16, d_width=16, eval_samples=100, sr_refresh_every=2)
    result = train_mog(config)
    linears = [m for m in result.discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == config.d_depth + 1
    assert all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in linears)
    assert result.to_dict()["d_spectrum_mean"] is not None
