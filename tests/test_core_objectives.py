"""GAN objectives: closed forms, saturation, shapes, and the theory of the optimal discriminator.

Seeds 000-002: for a fixed G, the D maximizing V(D, G) = E_data[log D] + E_G[log(1 - D)] is
D* = p_data / (p_data + p_G), and V(D*, G) = 2 JS(p_data || p_G) - log 4; for disjoint supports JS is
log 2 whatever G does, so the optimal D gives G nothing to follow.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from translate.core.objectives import OBJECTIVE_NAMES, clip_weights_, get_objective
from translate.errors import UsageError

# --- closed forms ----------------------------------------------------------------------------------


def log_sigmoid(x: float) -> float:
    return math.log(1.0 / (1.0 + math.exp(-x)))


def log_one_minus_sigmoid(x: float) -> float:
    return math.log(1.0 - 1.0 / (1.0 + math.exp(-x)))


CLOSED_FORMS = {
    # name: (D loss(real logit, fake logit), G loss(fake logit)), straight from the papers' formulas
    "minimax": (lambda r, f: -log_sigmoid(r) - log_one_minus_sigmoid(f), lambda f: log_one_minus_sigmoid(f)),
    "nsgan": (lambda r, f: -log_sigmoid(r) - log_one_minus_sigmoid(f), lambda f: -log_sigmoid(f)),
    "lsgan": (lambda r, f: (r - 1) ** 2 + f**2, lambda f: (f - 1) ** 2),
    "hinge": (lambda r, f: max(0.0, 1 - r) + max(0.0, 1 + f), lambda f: -f),
    "wgan": (lambda r, f: f - r, lambda f: -f),
    "wgan-gp": (lambda r, f: f - r, lambda f: -f),
}


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
@pytest.mark.parametrize("real, fake", [(0.0, 0.0), (2.5, -1.5), (-3.0, 4.0), (0.7, 0.3)])
def test_losses_match_their_closed_forms(name, real, fake):
    objective = get_objective(name)
    d_loss, g_loss = CLOSED_FORMS[name]
    r = torch.tensor([real], dtype=torch.float64)
    f = torch.tensor([fake], dtype=torch.float64)
    assert objective.d_loss(r, f).item() == pytest.approx(d_loss(real, fake), rel=1e-12, abs=1e-12)
    assert objective.g_loss(f).item() == pytest.approx(g_loss(fake), rel=1e-12, abs=1e-12)


def test_log_losses_stay_finite_for_confident_logits():
    objective = get_objective("nsgan")
    big = torch.tensor([200.0])
    assert objective.d_loss(big, -big).item() == pytest.approx(0.0, abs=1e-30)
    assert objective.d_loss(-big, big).item() == pytest.approx(400.0)
    assert torch.isfinite(get_objective("minimax").g_loss(big))


def fake_logit_gradient(name: str, logit: float) -> float:
    f = torch.tensor([logit], requires_grad=True)
    get_objective(name).g_loss(f).backward()
    return f.grad.item()


def test_minimax_generator_gradient_vanishes_where_d_is_confident_but_nsgan_does_not():
    # D confident that G's sample is fake: D(G) = sigmoid(-8) = 3e-4. d/dl log(1 - sigmoid(l)) =
    # -sigmoid(l) ~ 3e-4 (saturated), d/dl -log sigmoid(l) = -sigmoid(-l) ~ -1 (seed 001/002).
    minimax, nsgan = fake_logit_gradient("minimax", -8.0), fake_logit_gradient("nsgan", -8.0)
    assert minimax == pytest.approx(-torch.sigmoid(torch.tensor(-8.0)).item(), rel=1e-5)
    assert nsgan == pytest.approx(-torch.sigmoid(torch.tensor(8.0)).item(), rel=1e-5)
    assert abs(minimax) < 1e-3 * abs(nsgan)
    # Where G already fools D the roles swap: minimax pushes hardest there.
    assert abs(fake_logit_gradient("minimax", 8.0)) > 1e3 * abs(fake_logit_gradient("nsgan", 8.0))


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_losses_are_means_over_any_shape_and_over_lists(name):
    objective = get_objective(name)
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(2, 1, 30, 30, generator=g), torch.randn(2, 1, 30, 30, generator=g)
    torch.testing.assert_close(objective.d_loss(real, fake), objective.d_loss(real.flatten(), fake.flatten()))
    small_real, small_fake = torch.randn(2, 1, 7, 7, generator=g), torch.randn(2, 1, 7, 7, generator=g)
    # a multi-scale D: the mean of the per-scale losses
    torch.testing.assert_close(
        objective.d_loss([real, small_real], [fake, small_fake]),
        (objective.d_loss(real, fake) + objective.d_loss(small_real, small_fake)) / 2,
    )
    torch.testing.assert_close(
        objective.g_loss([fake, small_fake]), (objective.g_loss(fake) + objective.g_loss(small_fake)) / 2
    )
    with pytest.raises(ValueError):
        objective.g_loss([])


def test_losses_of_bf16_logits_are_float32():
    objective = get_objective("lsgan")
    logits = torch.randn(4, 1, 30, 30).to(torch.bfloat16)
    loss = objective.g_loss(logits)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(((logits.double() - 1) ** 2).mean().item(), rel=1e-6)


def test_names_aliases_and_settings():
    assert get_objective("vanilla").name == "nsgan"
    assert get_objective("WGAN_GP").name == "wgan-gp"
    wgan, gp = get_objective("wgan"), get_objective("wgan-gp")
    assert (wgan.clip_value, wgan.recommended_optimizer, wgan.gradient_penalty_weight) == (0.01, "rmsprop", 0.0)
    assert (gp.clip_value, gp.recommended_optimizer, gp.gradient_penalty_weight) == (None, "adam", 10.0)
    assert wgan.is_wasserstein and not get_objective("hinge").is_wasserstein
    with pytest.raises(UsageError, match="choose one of"):
        get_objective("wasserstein")


def test_weight_clipping_keeps_every_parameter_in_the_box():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 3))
    with torch.no_grad():
        for p in critic.parameters():
            p.copy_(torch.randn_like(p))
    inside = {name: p.detach().abs() <= 0.01 for name, p in critic.named_parameters()}
    before = {name: p.detach().clone() for name, p in critic.named_parameters()}
    clip_weights_(critic, 0.01)
    for name, p in critic.named_parameters():
        assert p.abs().max() <= 0.01
        assert torch.equal(p[inside[name]], before[name][inside[name]])  # values inside are untouched
        assert torch.equal(p[~inside[name]], 0.01 * before[name][~inside[name]].sign())


# --- the optimal discriminator on a 1-D grid ---------------------------------------------------------

GRID = torch.linspace(-5.0, 5.0, 401, dtype=torch.float64)


def gaussian_mixture(means, stds, weights) -> torch.Tensor:
    density = sum(w * torch.exp(-0.5 * ((GRID - m) / s) ** 2) / s for m, s, w in zip(means, stds, weights))
    return density / density.sum()  # probability masses on the grid


P_DATA = gaussian_mixture([-2.0, 1.5], [0.6, 0.8], [0.5, 0.5])
P_G = gaussian_mixture([0.0], [1.8], [1.0])


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    m = (p + q) / 2

    def kl(a, b):
        mask = a > 0
        return (a[mask] * (a[mask] / b[mask]).log()).sum()

    return (0.5 * kl(p, m) + 0.5 * kl(q, m)).item()


def optimal_logits(name: str, p: torch.Tensor, q: torch.Tensor, *, steps: int = 1500, sgd: bool = False) -> torch.Tensor:
    """Free per-grid-point logits minimizing the objective's own D loss weighted by the densities,
    sum_k p_k * real_term(l_k) + q_k * fake_term(l_k), with each term read off `d_real`/`d_fake`.

    The problem is separable, so each point's weights are divided by p_k + q_k (its minimizer does
    not move) to put all points on one scale. Adam suits the smooth losses; the hinge's kinks need
    plain gradient descent, whose overshoot is bounded by the step size."""
    objective = get_objective(name)
    per_point_real = torch.vmap(lambda l: objective.d_real(l))
    per_point_fake = torch.vmap(lambda l: objective.d_fake(l))
    support = (p + q) > 0
    w_real = p[support] / (p + q)[support]
    logits = torch.zeros(int(support.sum()), 1, dtype=torch.float64, requires_grad=True)
    if sgd:
        optimizer = torch.optim.SGD([logits], lr=0.03)
    else:
        optimizer = torch.optim.Adam([logits], lr=0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1.0 - t / steps)
    for _ in range(steps):
        loss = (w_real * per_point_real(logits) + (1 - w_real) * per_point_fake(logits)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    result = torch.zeros(len(p), dtype=torch.float64)
    result[support] = logits.detach().squeeze(1)
    return result


def value_function(d: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> float:
    """V(D, G) = E_data[log D] + E_G[log(1 - D)] on the grid."""
    return (p * d.log() + q * (1 - d).log()).sum().item()


@pytest.mark.parametrize("name", ["minimax", "nsgan"])
def test_the_d_that_maximizes_v_is_p_data_over_p_data_plus_p_g(name):
    logits = optimal_logits(name, P_DATA, P_G)
    d_star = P_DATA / (P_DATA + P_G)
    assert (torch.sigmoid(logits) - d_star).abs().max().item() < 1e-3
    # V(D*, G) = 2 JS - log 4, and the learned D reaches it
    js = js_divergence(P_DATA, P_G)
    assert 0.05 < js < math.log(2)
    assert value_function(d_star, P_DATA, P_G) == pytest.approx(2 * js - math.log(4), abs=1e-12)
    assert value_function(torch.sigmoid(logits), P_DATA, P_G) == pytest.approx(2 * js - math.log(4), abs=1e-6)


def test_least_squares_optimal_d_is_the_same_ratio_without_a_sigmoid():
    # Mao et al. 2017, with targets a = 0 (fake), b = 1 (real): D* = p_data / (p_data + p_G).
    logits = optimal_logits("lsgan", P_DATA, P_G)
    assert (logits - P_DATA / (P_DATA + P_G)).abs().max().item() < 1e-3


def test_hinge_optimal_d_is_the_sign_of_p_data_minus_p_g():
    logits = optimal_logits("hinge", P_DATA, P_G, sgd=True)
    # (where p_data ~ p_G the loss is nearly flat and gradient descent takes long to get there)
    decided = (P_DATA / (P_DATA + P_G) - 0.5).abs() > 0.1
    assert decided.float().mean() > 0.7
    assert (logits[decided] - torch.sign(P_DATA - P_G)[decided]).abs().max().item() < 0.05


def test_equal_distributions_give_d_one_half_and_v_minus_log_4():
    logits = optimal_logits("nsgan", P_DATA, P_DATA, steps=200)
    assert torch.sigmoid(logits).sub(0.5).abs().max().item() < 1e-6
    assert js_divergence(P_DATA, P_DATA) == 0.0


def test_disjoint_supports_give_js_log_2_whatever_the_distance():
    # p_data on the left of the grid, p_G a narrow bump moved across the right: JS is log 2 at every
    # position, so V(D*) = 0 carries no information on how far G is from the data.
    p = torch.where(GRID < -1.0, P_DATA, torch.zeros_like(P_DATA))
    p = p / p.sum()
    for shift in (0.0, 1.5, 3.0):
        q = gaussian_mixture([1.0 + shift], [0.1], [1.0])
        q = torch.where(GRID > -1.0, q, torch.zeros_like(q))
        q = q / q.sum()
        assert js_divergence(p, q) == pytest.approx(math.log(2), abs=1e-12)
    logits = optimal_logits("nsgan", p, q)
    d = torch.sigmoid(logits)
    v = (p[p > 0] * d[p > 0].log()).sum() + (q[q > 0] * (1 - d[q > 0]).log()).sum()
    # sup V = 2 log 2 - log 4 = 0, approached (never reached) as D grows certain
    assert -2e-3 < v.item() < 0.0
    assert js_divergence(P_DATA, P_G) < math.log(2) - 0.5  # overlapping supports: well below log 2
