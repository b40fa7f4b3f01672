"""The lab's training run: deterministic for a seed, leaves global RNG alone, every objective runs."""

import pytest
import torch

from translate.core.objectives import OBJECTIVE_NAMES
from translate.lab.config import OBJECTIVE_CHOICES, LabConfig
from translate.lab.train import train_mog


def _short(**overrides) -> LabConfig:
    base = dict(steps=25, batch_size=64, g_width=32, d_width=32, eval_samples=500)
    base.update(overrides)
    return LabConfig(**base)


def test_same_seed_gives_the_same_samples_and_metrics():
    a = train_mog(_short(objective="wgan-gp", mixture="grid25", seed=3, d_steps=2))
    b = train_mog(_short(objective="wgan-gp", mixture="grid25", seed=3, d_steps=2))
    assert torch.equal(a.samples, b.samples)
    assert a.metrics == b.metrics
    da, db = a.to_dict(), b.to_dict()
    for key in ("seconds", "cpu_seconds"):
        da.pop(key), db.pop(key)
    assert da == db


def test_another_seed_gives_other_samples():
    a = train_mog(_short(objective="nsgan", seed=0))
    b = train_mog(_short(objective="nsgan", seed=1))
    assert not torch.equal(a.samples, b.samples)


def test_training_leaves_the_global_rng_untouched():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    train_mog(_short(objective="lsgan", steps=3))
    assert torch.equal(torch.get_rng_state(), state)


def test_lab_objective_names_are_the_cores():
    assert OBJECTIVE_CHOICES == OBJECTIVE_NAMES


@pytest.mark.parametrize("objective", OBJECTIVE_NAMES)
def test_every_objective_trains_and_is_measured(objective):
    result = train_mog(_short(objective=objective, steps=5, eval_samples=200))
    out = result.to_dict()
    assert out["objective"] == objective and out["eval_samples"] == 200
    assert len(out["counts"]) == 8


def test_wgan_clips_every_critic_weight():
    # Arjovsky et al.'s clipping acts after each critic step; one step must leave all weights in [-c, c].
    result = train_mog(_short(objective="wgan", steps=2, clip_value=0.01))
    weights = torch.cat([p.detach().flatten() for p in result.discriminator.parameters()])
    assert weights.abs().max() <= 0.01
    assert weights.abs().max() == pytest.approx(0.01)  # the default init is wider: clipping did act


def test_snapshots_hold_samples_and_landscape_at_the_asked_steps():
    result = train_mog(_short(objective="hinge", steps=10), snapshot_steps=(0, 5, 10), landscape_resolution=16)
    assert [s.step for s in result.snapshots] == [0, 5, 10]
    assert result.snapshots[0].landscape.shape == (16, 16)
    assert result.snapshots[-1].samples.shape[1] == 2
