"""The WGAN-GP gradient penalty (Gulrajani et al. 2017) against float64, under autocast and a scaler."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from translate.core.penalty import critic_gradient_norms, gradient_penalty, interpolate

N = 4


def patch_critic(seed: int = 0, gain: float = 3.0) -> nn.Sequential:
    """A small PatchGAN-like critic (N, 3, 8, 8) -> (N, 1, 4, 4), its weights scaled so that its input
    gradients have norms far from 1 (about 0.45) and vary across samples."""
    torch.manual_seed(seed)
    critic = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(16, 1, 3, stride=2, padding=1))
    with torch.no_grad():
        for p in critic.parameters():
            p.mul_(gain)
    return critic


def batches(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, 3, 8, 8, generator=g), torch.randn(N, 3, 8, 8, generator=g)


def float64_reference(critic, real, fake, seed, weight=10.0, per_sample=None):
    """The penalty computed independently in float64, with the same mixing weights: the critic value
    of a sample is the mean of its logits, as in the objectives."""
    critic64 = copy.deepcopy(critic).double()
    alpha = torch.rand((N, 1, 1, 1), generator=torch.Generator().manual_seed(seed)).double()
    x = (alpha * real.double() + (1 - alpha) * fake.double()).requires_grad_(True)
    out = critic64(x)
    values = per_sample(out) if per_sample else out.flatten(1).mean(dim=1)
    (grad,) = torch.autograd.grad(values.sum(), x, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    return weight * ((norms - 1) ** 2).mean(), norms, critic64


def test_interpolates_lie_on_the_segments_with_one_weight_per_sample():
    real, fake = batches()
    x = interpolate(real, fake, torch.Generator().manual_seed(3))
    alpha = torch.rand((N, 1, 1, 1), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(x, alpha * real + (1 - alpha) * fake)
    assert ((alpha > 0) & (alpha < 1)).all()


def test_gradient_penalty_matches_float64_in_value_and_parameter_gradients():
    critic, (real, fake) = patch_critic(), batches()
    penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    reference, norms, critic64 = float64_reference(critic, real, fake, seed=7)
    assert ((norms - 1).abs() > 0.4).all()  # a penalty well away from its minimum
    assert penalty.dtype == torch.float32
    torch.testing.assert_close(penalty.double(), reference, rtol=1e-5, atol=0)
    penalty.backward()
    reference.backward()
    for p, p64 in zip(critic.parameters(), critic64.parameters()):
        if p64.grad is None:  # the last bias does not move input gradients
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad.double(), p64.grad, rtol=1e-4, atol=1e-6)


def test_gradient_penalty_under_bf16_autocast_matches_float64_to_bf16_precision():
    critic, (real, fake) = patch_critic(), batches()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    reference, _, _ = float64_reference(critic, real, fake, seed=7)
    assert penalty.dtype == torch.float32
    # bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%) per operation; measured 0.13% here
    torch.testing.assert_close(penalty.double(), reference, rtol=1e-2, atol=0)
    penalty.backward()
    assert all(torch.isfinite(p.grad).all() for p in critic.parameters() if p.grad is not None)


class StubScaler:
    """The part of torch.amp.GradScaler the penalty uses, with fp16 training's usual initial scale."""

    def is_enabled(self) -> bool:
        return True

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        return t * self.get_scale()

    def get_scale(self) -> float:
        return 2.0**16


def test_a_grad_scaler_does_not_change_the_penalty():
    critic, (real, fake) = patch_critic(), batches()
    plain = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    scaled = gradient_penalty(critic, real, fake, scaler=StubScaler(), generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(scaled, plain, rtol=1e-6, atol=0)
    disabled = torch.amp.GradScaler("cpu", enabled=False)
    torch.testing.assert_close(
        gradient_penalty(critic, real, fake, scaler=disabled, generator=torch.Generator().manual_seed(7)), plain
    )


def unit_linear_critic(seed: int = 0):
    w = torch.randn(3 * 8 * 8, generator=torch.Generator().manual_seed(seed))
    return w / w.norm()


def test_penalty_vanishes_for_a_linear_critic_with_unit_norm_weight():
    w = unit_linear_critic()
    real, fake = batches()
    penalty = gradient_penalty(lambda x: x.flatten(1) @ w, real, fake)
    assert penalty.item() < 1e-10


def test_penalty_treats_a_patch_map_as_the_mean_of_its_logits():
    # Every patch reports the same 1-Lipschitz value <w, x>: the loss's critic (the mean over the map,
    # as the objectives take it) is 1-Lipschitz, so the penalty must vanish. Penalising the sum of
    # the 16 patches would see a gradient norm of 16.
    w = unit_linear_critic()
    real, fake = batches()
    penalty = gradient_penalty(lambda x: (x.flatten(1) @ w).view(N, 1, 1, 1).expand(N, 1, 4, 4), real, fake)
    assert penalty.item() < 1e-10


def test_multi_scale_critic_is_the_mean_of_its_maps_means():
    critic, (real, fake) = patch_critic(), batches()

    def multi_scale(x):
        out = critic(x)
        return [out, F.avg_pool2d(out, 2) * 3.0]

    penalty = gradient_penalty(multi_scale, real, fake, generator=torch.Generator().manual_seed(7))

    class MultiScale(nn.Module):  # the same critic, for the float64 reference
        def __init__(self):
            super().__init__()
            self.critic = critic

        def forward(self, x):
            out = self.critic(x)
            return torch.stack([out.flatten(1).mean(1), (F.avg_pool2d(out, 2) * 3.0).flatten(1).mean(1)])

    reference, _, _ = float64_reference(MultiScale(), real, fake, seed=7, per_sample=lambda out: out.mean(0))
    torch.testing.assert_close(penalty.double(), reference, rtol=1e-5, atol=0)


class ProjectionCritic(nn.Module):
    """D(x, c) = psi(phi(x)) + <embed(c), phi(x)> (Miyato & Koyama 2018), c a one-hot label."""

    def __init__(self, classes: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.phi = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.psi = nn.Linear(8, 1)
        self.embed = nn.Linear(classes, 8, bias=False)

    def forward(self, x, c):
        h = self.phi(x)
        return self.psi(h) + (self.embed(c) * h).sum(dim=1, keepdim=True)


def test_conditional_critic_is_penalised_through_the_image_only():
    critic = ProjectionCritic()
    real, fake = batches()
    condition = F.one_hot(torch.tensor([0, 2, 1, 2]), 3).float()
    penalty = gradient_penalty(lambda x: critic(x, condition), real, fake, generator=torch.Generator().manual_seed(7))
    assert not condition.requires_grad and condition.grad is None

    class ImageOnly(nn.Module):  # the condition is a constant of the float64 reference
        def __init__(self):
            super().__init__()
            self.critic = critic

        def forward(self, x):
            return self.critic(x, condition.double())

    reference, _, _ = float64_reference(ImageOnly(), real, fake, seed=7)
    torch.testing.assert_close(penalty.double(), reference, rtol=1e-5, atol=0)


def test_a_strong_condition_term_does_not_enter_the_penalty():
    # D(x, c) = <w, x> + <a, c> with |w| = 1, |a| = 5: 1-Lipschitz in the image, so no penalty.
    w = unit_linear_critic()
    a = torch.full((3,), 5.0 / 3**0.5)
    real, fake = batches()
    condition = torch.randn(N, 3)
    penalty = gradient_penalty(lambda x: x.flatten(1) @ w + condition @ a, real, fake)
    assert penalty.item() < 1e-10


def test_gradient_norms_are_per_sample():
    # Doubling one sample's part of a block-diagonal critic changes only that sample's norm.
    w = unit_linear_critic()
    scale = torch.tensor([1.0, 2.0, 1.0, 3.0])
    real, _ = batches()
    norms = critic_gradient_norms(lambda x: (x.flatten(1) @ w) * scale, real)
    torch.testing.assert_close(norms, scale, rtol=1e-6, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_autocast_with_a_real_grad_scaler_on_cuda():
    critic, (real, fake) = patch_critic(), batches()
    reference, _, _ = float64_reference(critic, real, fake, seed=7)
    critic = critic.cuda()
    scaler = torch.amp.GradScaler("cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        penalty = gradient_penalty(
            critic, real.cuda(), fake.cuda(), scaler=scaler, generator=torch.Generator().manual_seed(7)
        )
    torch.testing.assert_close(penalty.double().cpu(), reference, rtol=2e-2, atol=0)


# ---- batch norm and the per-sample penalty -------------------------------------------------------------

def _norms_one_sample_at_a_time(critic, x):
    return torch.cat([critic_gradient_norms(critic, x[i:i + 1]) for i in range(x.shape[0])])


@pytest.mark.parametrize("model", ["discogan", "pix2pix"])
def test_a_wgan_gp_critic_asked_for_batch_norm_gets_layer_norm_and_per_sample_gradients(model):
    # Batch norm makes each critic value depend on the whole batch: the gradient the penalty sees is
    # then not each sample's own (Gulrajani et al. sec. 4). Under wgan-gp the D's take layer norm
    # instead, and the batched norms equal those computed one sample at a time.
    from translate.models.discogan import DiscoGAN, DiscoGANConfig
    from translate.models.pix2pix import Pix2Pix, Pix2PixConfig

    torch.manual_seed(0)
    if model == "discogan":
        built = {o: DiscoGAN(DiscoGANConfig(objective=o, ngf=4, ndf=4)) for o in ("wgan-gp", "nsgan")}
        critic_of = {o: (lambda m: (lambda x: m.D_A(x)[0]))(m) for o, m in built.items()}
        x = torch.randn(4, 3, 64, 64, dtype=torch.float64)
        gens = [built["wgan-gp"].G_A]
    else:
        built = {o: Pix2Pix(Pix2PixConfig(objective=o, ngf=4, ndf=4, netG="unet_32")) for o in ("wgan-gp", "lsgan")}
        critic_of = {o: (lambda m: (lambda x: m.D(x)))(m) for o, m in built.items()}
        x = torch.randn(4, 6, 32, 32, dtype=torch.float64)
        gens = [built["wgan-gp"].G]
    critics = [m for n, m in built["wgan-gp"].named_children() if n.startswith("D") and n != "D_condition"]
    assert critics and not any(isinstance(l, nn.BatchNorm2d) for d in critics for l in d.modules())
    assert all(any(isinstance(l, nn.GroupNorm) for l in d.modules()) for d in critics)
    assert any(isinstance(l, nn.BatchNorm2d) for g in gens for l in g.modules())  # G keeps its batch norm
    for m in built.values():
        m.double().train()
    wgan_gp, other = critic_of["wgan-gp"], critic_of[next(o for o in built if o != "wgan-gp")]
    torch.testing.assert_close(critic_gradient_norms(wgan_gp, x), _norms_one_sample_at_a_time(wgan_gp, x),
                               rtol=1e-10, atol=1e-12)
    # with batch norm (the other objective keeps it) the batched norms are not the samples' own
    batched, alone = critic_gradient_norms(other, x), _norms_one_sample_at_a_time(other, x)
    assert (batched - alone).abs().max() > 1e-3 * alone.abs().max()
