"""The spectral monitor reports the normalized spectrum of D's raw weights and flags spectral collapse."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from translate.core.monitor import SpectralMonitor
from translate.core.spectral import apply_d_regularizer, raw_weight


def discriminator(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(16, 32, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(32, 1, 3, 1, 1),  # one output channel: a single singular value, not monitored
    )


def normalized_spectrum(weight: torch.Tensor) -> torch.Tensor:
    s = torch.linalg.svdvals(weight.detach().double().flatten(1))
    return s / s[0]


def test_measure_reports_mean_and_count_above_half_of_the_raw_normalized_spectrum():
    d = discriminator()
    stats = SpectralMonitor(d).measure()
    assert set(stats) == {
        "spectrum/0/mean",
        "spectrum/0/above_half",
        "spectrum/2/mean",
        "spectrum/2/above_half",
        "spectrum/mean",
    }
    for name in ("0", "2"):
        r = normalized_spectrum(d.get_submodule(name).weight)
        assert stats[f"spectrum/{name}/mean"] == pytest.approx(r.mean().item(), rel=1e-9)
        assert stats[f"spectrum/{name}/above_half"] == float((r > 0.5).sum())
    assert stats["spectrum/mean"] == pytest.approx((stats["spectrum/0/mean"] + stats["spectrum/2/mean"]) / 2)
    assert all(isinstance(v, float) for v in stats.values())


def test_monitor_reads_the_raw_weight_of_regularized_layers_without_a_power_iteration_step():
    d = discriminator()
    raw = {name: normalized_spectrum(d.get_submodule(name).weight) for name in ("0", "2")}
    reg = apply_d_regularizer(d, "sr-static", static_rank=4)
    u = reg.layers["2"].parametrizations.weight[0].u.clone()
    d.train()
    stats = SpectralMonitor(d).measure()
    for name in ("0", "2"):
        assert stats[f"spectrum/{name}/mean"] == pytest.approx(raw[name].mean().item(), rel=1e-6)
    assert torch.equal(reg.layers["2"].parametrizations.weight[0].u, u)


def make_rank_one_dominated_(weight: torch.Tensor) -> None:
    """Replace W by a rank-1 matrix plus 2% noise: the normalized spectrum collapses towards (1, 0, ...)."""
    with torch.no_grad():
        matrix = weight.flatten(1)
        u = torch.randn(matrix.shape[0], 1)
        v = torch.randn(1, matrix.shape[1])
        collapsed = u @ v + 0.02 * matrix.norm() / matrix.numel() ** 0.5 * torch.randn_like(matrix)
        weight.copy_(collapsed.reshape(weight.shape))


def test_a_rank_one_dominated_layer_triggers_the_collapse_warning(caplog):
    d = discriminator()
    monitor = SpectralMonitor(d)
    with caplog.at_level(logging.WARNING, logger="translate.core.monitor"):
        assert monitor.update(step=0)["spectrum/collapsed_layers"] == 0.0
        make_rank_one_dominated_(raw_weight(d[2]))
        stats = monitor.update(step=500)
    assert stats["spectrum/collapsed_layers"] == 1.0
    assert stats["spectrum/2/above_half"] <= 1.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "step 500" in warnings[0].getMessage() and "layer 2:" in warnings[0].getMessage()
    assert "layer 0" not in warnings[0].getMessage()  # the healthy layer is not named


def test_a_healthy_layer_that_drifts_does_not_warn(caplog):
    d = discriminator()
    monitor = SpectralMonitor(d)
    g = torch.Generator().manual_seed(1)
    with caplog.at_level(logging.WARNING, logger="translate.core.monitor"):
        for step in range(0, 1000, 100):
            with torch.no_grad():  # training-like drift: small random updates
                for layer in (d[0], d[2], d[4]):
                    w = layer.weight
                    w.add_(0.2 * w.std() * torch.randn(w.shape, generator=g))
            stats = monitor.update(step)
            assert stats["spectrum/collapsed_layers"] == 0.0
    assert not caplog.records


def test_a_collapse_is_reported_once_per_episode(caplog):
    d = discriminator()
    monitor = SpectralMonitor(d)
    healthy = raw_weight(d[2]).detach().clone()
    with caplog.at_level(logging.WARNING, logger="translate.core.monitor"):
        monitor.update(0)
        make_rank_one_dominated_(raw_weight(d[2]))
        monitor.update(1)
        assert monitor.update(2)["spectrum/collapsed_layers"] == 1.0  # still collapsed, no new warning
        assert len(caplog.records) == 1
        with torch.no_grad():
            raw_weight(d[2]).copy_(healthy)
        assert monitor.update(3)["spectrum/collapsed_layers"] == 0.0
        make_rank_one_dominated_(raw_weight(d[2]))
        monitor.update(4)
    assert len(caplog.records) == 2


def test_running_maxima_survive_a_state_round_trip(caplog):
    d = discriminator()
    monitor = SpectralMonitor(d)
    monitor.update(0)
    make_rank_one_dominated_(raw_weight(d[2]))
    resumed = SpectralMonitor(d)
    resumed.load_state_dict(monitor.state_dict())
    with caplog.at_level(logging.WARNING, logger="translate.core.monitor"):
        assert resumed.update(1)["spectrum/collapsed_layers"] == 1.0
    assert len(caplog.records) == 1


def test_drop_must_be_a_fraction():
    with pytest.raises(ValueError):
        SpectralMonitor(discriminator(), drop=1.5)


@pytest.mark.parametrize("kind", ["sr-dynamic", "sn"])
def test_a_diverged_weight_is_read_as_nan_not_a_crash(kind):
    # A run whose weights went to NaN is stopped by the training loop in one line; the regularizer's
    # refresh and the monitor reached before that must not fail on the SVD of a NaN matrix.
    net = discriminator()
    reg = apply_d_regularizer(net, kind, refresh_every=1)
    monitor = SpectralMonitor(net)
    with torch.no_grad():
        raw_weight(net[0]).fill_(float("nan"))
    reg.refresh()
    stats = monitor.update(step=1)
    assert torch.isnan(torch.tensor(stats["spectrum/0/mean"]))
    assert stats["spectrum/2/mean"] == pytest.approx(normalized_spectrum(raw_weight(net[2])).mean().item())
