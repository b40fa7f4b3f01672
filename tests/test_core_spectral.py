"""Spectral normalization and spectral regularization: the effective weights' spectra on known matrices."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from translate.core.objectives import clip_weights_
from translate.core.spectral import (
    apply_d_regularizer,
    raw_weight,
    singular_values,
    svd,
    weight_matrix,
)
from translate.errors import UsageError


def orthonormal_columns(rows: int, cols: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))
    return q


def matrix_with_spectrum(s, rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    """W = U diag(s) V^T with random orthonormal U (rows x r) and V (cols x r)."""
    s = torch.as_tensor(s, dtype=torch.float64)
    u = orthonormal_columns(rows, len(s), seed)
    v = orthonormal_columns(cols, len(s), seed + 1000)
    return (u * s) @ v.T


def linear_with_weight(w: torch.Tensor, dtype=torch.float64) -> nn.Linear:
    layer = nn.Linear(w.shape[1], w.shape[0], bias=False).to(dtype)
    with torch.no_grad():
        layer.weight.copy_(w)
    return layer


def effective_spectrum(layer: nn.Module, out_dim: int = 0) -> torch.Tensor:
    """Singular values of the weight the layer computes with, read in eval mode (no power-iteration step)."""
    was_training = layer.training
    layer.eval()
    with torch.no_grad():
        s = torch.linalg.svdvals(weight_matrix(layer.weight.double(), out_dim))
    layer.train(was_training)
    return s


S = torch.tensor([4.0, 3.0, 2.0, 1.0, 0.5], dtype=torch.float64)
R = S / S[0]  # the normalized spectrum s_j / s1


# --- the SVD helper ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 12), (12, 5), (7, 7)])
def test_svd_helper_is_an_exact_thin_svd(shape):
    a = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    u, s, vh = svd(a)
    r = min(shape)
    torch.testing.assert_close(s, torch.linalg.svdvals(a), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close((u * s) @ vh, a, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(u.T @ u, torch.eye(r, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(vh @ vh.T, torch.eye(r, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(singular_values(a), torch.linalg.svdvals(a), rtol=1e-12, atol=1e-12)


def test_svd_helper_handles_rank_deficient_matrices():
    a = matrix_with_spectrum([2.0, 1.0], 4, 9)  # rank 2 of 4
    u, s, vh = svd(a)
    torch.testing.assert_close(s, torch.tensor([2.0, 1.0, 0.0, 0.0], dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(vh @ vh.T, torch.eye(4, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close((u * s) @ vh, a, rtol=0, atol=1e-12)


# --- spectra of the effective weights ---------------------------------------------------------------


def test_sn_normalizes_the_spectrum_by_s1():
    layer = linear_with_weight(matrix_with_spectrum(S, 5, 9))
    apply_d_regularizer(layer, "sn")
    torch.testing.assert_close(effective_spectrum(layer), R, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rank", [2, 3])
def test_sr_static_sets_the_top_i_normalized_singular_values_to_one(rank):
    layer = linear_with_weight(matrix_with_spectrum(S, 5, 9))
    apply_d_regularizer(layer, "sr-static", static_rank=rank)
    expected = torch.cat([torch.ones(rank, dtype=torch.float64), R[rank:]])
    torch.testing.assert_close(effective_spectrum(layer), expected, rtol=1e-12, atol=1e-12)


def test_sr_static_rank_beyond_the_matrix_rank_makes_the_whole_spectrum_one():
    layer = linear_with_weight(matrix_with_spectrum(S, 5, 9))
    apply_d_regularizer(layer, "sr-static", static_rank=50)
    torch.testing.assert_close(effective_spectrum(layer), torch.ones(5, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_sr_dynamic_at_start_leaves_the_spectrum_as_it_is():
    # gamma = s / s1 at t = 0, so d_j = gamma_j s1 - s_j = 0: a spectrum that has not fallen from its
    # best is not compensated (the bracketed misreading gamma_j (s1 - s_j) gave r_j + r_j (1 - r_j)).
    layer = linear_with_weight(matrix_with_spectrum(S, 5, 9))
    reg = apply_d_regularizer(layer, "sr-dynamic")
    torch.testing.assert_close(effective_spectrum(layer), R, rtol=1e-12, atol=1e-12)
    param = layer.parametrizations.weight[0]
    assert float(param.delta.abs().max()) < 1e-12
    assert reg.kind == "sr-dynamic"


def test_sr_dynamic_gamma_is_the_running_maximum_of_the_normalized_spectrum():
    # Same singular vectors, ratios s_j / s1 that rise and then fall: gamma keeps the peak and the
    # compensation is computed from the peak, not from the current (collapsed) spectrum.
    ratio_history = [
        [1.0, 0.3, 0.2, 0.1],
        [1.0, 0.6, 0.5, 0.2],
        [1.0, 0.8, 0.4, 0.3],  # s3 / s1 already past its peak
        [1.0, 0.2, 0.1, 0.05],  # spectral collapse
    ]
    scales = [2.0, 3.0, 1.5, 5.0]  # s1 changes too; gamma only sees ratios
    weights = [matrix_with_spectrum(torch.tensor(r, dtype=torch.float64) * c, 4, 8) for r, c in zip(ratio_history, scales)]
    layer = linear_with_weight(weights[0])
    reg = apply_d_regularizer(layer, "sr-dynamic", refresh_every=1)
    param = layer.parametrizations.weight[0]
    running_max = torch.tensor(ratio_history[0], dtype=torch.float64)
    torch.testing.assert_close(param.gamma, running_max, rtol=1e-12, atol=1e-12)
    for w, r in zip(weights[1:], ratio_history[1:]):
        with torch.no_grad():
            raw_weight(layer).copy_(w)
        assert reg.step()
        running_max = torch.maximum(running_max, torch.tensor(r, dtype=torch.float64))
        torch.testing.assert_close(param.gamma, running_max, rtol=1e-12, atol=1e-12)
    assert running_max.tolist() == [1.0, 0.8, 0.5, 0.3]
    # After the collapse the layer computes with its best spectrum, s_j / s1 -> gamma_j (Liu et al.:
    # d_j = gamma_j s1 - s_j; their released code sets each singular value to s1 gamma_j).
    torch.testing.assert_close(effective_spectrum(layer), running_max, rtol=1e-12, atol=1e-12)


def test_refresh_every_is_honoured_and_the_compensation_is_constant_in_between():
    w0 = matrix_with_spectrum(S, 5, 9, seed=0)
    layer = linear_with_weight(w0)
    reg = apply_d_regularizer(layer, "sr-static", static_rank=2, refresh_every=3)
    param = layer.parametrizations.weight[0]
    refreshed = []
    deltas = [param.delta.clone()]
    for t in range(1, 8):
        with torch.no_grad():
            raw_weight(layer).add_(0.05 * matrix_with_spectrum(S, 5, 9, seed=t))
        refreshed.append(reg.step())
        deltas.append(param.delta.clone())
    assert refreshed == [False, False, True, False, False, True, False]
    assert reg.steps == 7
    for t in range(1, 8):
        unchanged = torch.equal(deltas[t], deltas[t - 1])
        assert unchanged == (t not in (3, 6))
    # Between refreshes the layer computes (W_t + dW_{last refresh}) / sigma(W_t).
    w = raw_weight(layer).detach()
    layer.eval()
    expected = (w + deltas[6]) / torch.linalg.matrix_norm(w, ord=2)
    with torch.no_grad():
        layer.train()
        for _ in range(30):  # let the power iteration converge on the current W
            layer.weight
        layer.eval()
        torch.testing.assert_close(layer.weight, expected, rtol=1e-10, atol=1e-12)


def test_refresh_is_exact_even_in_training_mode():
    # At a refresh u, v become the top singular pair, so the next training-mode forward (which takes a
    # power-iteration step) already has sigma = s1 and the spectrum of the formulas.
    layer = linear_with_weight(matrix_with_spectrum(S, 5, 9))
    reg = apply_d_regularizer(layer, "sr-static", static_rank=3, refresh_every=1)
    with torch.no_grad():
        raw_weight(layer).copy_(matrix_with_spectrum(S * 2, 5, 9, seed=7))
    reg.step()
    layer.train()
    with torch.no_grad():
        w_train = layer.weight  # one power-iteration step happens here
    s = torch.linalg.svdvals(w_train)
    torch.testing.assert_close(s, torch.cat([torch.ones(3, dtype=torch.float64), R[3:]]), rtol=1e-12, atol=1e-12)


def test_sn_does_not_compute_svds_after_the_start():
    layer = linear_with_weight(matrix_with_spectrum(S, 5, 9))
    reg = apply_d_regularizer(layer, "sn", refresh_every=1)
    assert reg.step() is False
    assert layer.parametrizations.weight[0].delta is None


@pytest.mark.parametrize("kind", ["sn", "sr-static", "sr-dynamic"])
def test_conv_layers_use_out_by_in_kh_kw_matrices(kind):
    # Conv2d: weight (out, in, kh, kw) read as out x (in*kh*kw); ConvTranspose2d: (in, out, kh, kw), the
    # output channels are dim 1. Expected effective weights come from an independent float64 SVD.
    out_ch, in_ch, k = 4, 3, 3
    matrix = matrix_with_spectrum([3.0, 2.0, 1.0, 0.25], out_ch, in_ch * k * k)
    conv = nn.Conv2d(in_ch, out_ch, k, bias=False).double()
    tconv = nn.ConvTranspose2d(in_ch, out_ch, k, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(matrix.reshape(out_ch, in_ch, k, k))
        tconv.weight.copy_(matrix.reshape(out_ch, in_ch, k, k).transpose(0, 1))
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    d = torch.zeros_like(s)
    if kind == "sr-static":
        d[:2] = s[0] - s[:2]
    elif kind == "sr-dynamic":  # a spectrum that was once better: gamma held above s / s1
        best = torch.tensor([1.0, 0.9, 0.8, 0.7], dtype=torch.float64)
        d = best * s[0] - s
    expected = ((u * (s + d)) @ vh / s[0]).reshape(out_ch, in_ch, k, k)
    for layer in (conv, tconv):
        apply_d_regularizer(layer, kind, static_rank=2)
        if kind == "sr-dynamic":
            param = layer.parametrizations.weight[0]
            param.gamma.copy_(best)
            param.refresh(layer.parametrizations.weight.original)
        layer.eval()
    x = torch.randn(2, in_ch, 8, 8, dtype=torch.float64)
    y = torch.randn(2, in_ch, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(conv(x), F.conv2d(x, expected), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(tconv(y), F.conv_transpose2d(y, expected.transpose(0, 1)), rtol=1e-10, atol=1e-12)


# --- power iteration ------------------------------------------------------------------------------


def test_power_iteration_sigma_converges_to_the_largest_singular_value():
    w = matrix_with_spectrum([2.0, 1.0, 0.5, 0.1], 6, 9).float()
    layer = linear_with_weight(w, dtype=torch.float32)
    apply_d_regularizer(layer, "sn")
    param = layer.parametrizations.weight[0]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # start from random vectors instead of the exact ones
        param.u.copy_(F.normalize(torch.randn(6, generator=g), dim=0))
        param.v.copy_(F.normalize(torch.randn(9, generator=g), dim=0))
    s1 = torch.linalg.svdvals(w.double())[0].item()
    errors = []
    layer.train()
    for _ in range(12):
        with torch.no_grad():
            layer.weight  # one training-mode forward: one power-iteration step
        errors.append(abs(param.sigma(raw_weight(layer)).item() - s1) / s1)
    assert errors[0] > 1e-3  # a random start is off ...
    assert errors[-1] < 1e-6  # ... and s2/s1 = 1/2 contracts the error by ~4 per step
    assert errors[-1] < errors[2]


def test_sn_matches_torch_spectral_norm_in_value_and_gradient():
    torch.manual_seed(0)
    ours = nn.Linear(9, 6)
    theirs = copy.deepcopy(ours)
    apply_d_regularizer(ours, "sn")
    nn.utils.parametrizations.spectral_norm(theirs)
    with torch.no_grad():  # same starting vectors
        ours.parametrizations.weight[0].u.copy_(theirs.parametrizations.weight[0]._u)
        ours.parametrizations.weight[0].v.copy_(theirs.parametrizations.weight[0]._v)
    x = torch.randn(4, 9)
    for _ in range(3):
        for layer in (ours, theirs):
            layer.zero_grad()
            layer(x).pow(2).sum().backward()
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(
            raw_weight(ours).grad, theirs.parametrizations.weight.original.grad, rtol=1e-5, atol=1e-7
        )


def test_eval_mode_leaves_the_power_iteration_vectors_alone():
    layer = nn.Linear(9, 6)
    apply_d_regularizer(layer, "sr-dynamic")
    param = layer.parametrizations.weight[0]
    with torch.no_grad():
        param.u.copy_(F.normalize(torch.ones(6), dim=0))
    layer.eval()
    u = param.u.clone()
    layer(torch.randn(2, 9))
    assert torch.equal(param.u, u)
    layer.train()
    layer(torch.randn(2, 9))
    assert not torch.equal(param.u, u)


# --- training integration: resume, precision, clipping, DDP -----------------------------------------


def small_discriminator() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(8, 16, 4, 2, 1),
        nn.InstanceNorm2d(16, affine=True),
        nn.LeakyReLU(0.2),
        nn.Conv2d(16, 1, 3, 1, 1),
    )


def train_steps(d, reg, opt, steps: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    outputs = []
    for _ in range(steps):
        real, fake = torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)
        loss = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        reg.step()
        outputs.append(d(real).detach())
    return outputs


def test_regularizer_lists_the_wrapped_layers():
    d = small_discriminator()
    reg = apply_d_regularizer(d, "sr-static")
    assert list(reg.layers) == ["0", "2", "5"]
    assert all(isinstance(layer, nn.Conv2d) for layer in reg.layers.values())


@pytest.mark.parametrize("kind", ["sn", "sr-dynamic"])
def test_module_state_dict_resumes_exactly(kind):
    torch.manual_seed(0)
    d = small_discriminator()
    reg = apply_d_regularizer(d, kind, refresh_every=2)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    train_steps(d, reg, opt, 3, seed=1)  # stop between refreshes: dW is older than W
    saved = copy.deepcopy((d.state_dict(), opt.state_dict()))
    continued = train_steps(d, reg, opt, 4, seed=2)

    torch.manual_seed(123)  # a different initial D
    d2 = small_discriminator()
    reg2 = apply_d_regularizer(d2, kind, refresh_every=2)
    opt2 = torch.optim.Adam(d2.parameters(), lr=1e-3)
    d2.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])
    assert reg2.steps == 3
    resumed = train_steps(d2, reg2, opt2, 4, seed=2)
    for a, b in zip(continued, resumed):
        assert torch.equal(a, b)


def test_sr_works_under_bf16_autocast_with_float32_weights():
    torch.manual_seed(0)
    d = small_discriminator()
    reg = apply_d_regularizer(d, "sr-dynamic")
    x = torch.randn(2, 3, 16, 16)
    reference = d(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = d(x)
        assert out.dtype == torch.bfloat16
        assert d[0].weight.dtype == torch.float32  # the parametrization itself runs in float32
    out.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())
    assert reg.layers["0"].parametrizations.weight[0].u.dtype == torch.float32
    torch.testing.assert_close(out.float(), reference, rtol=0.05, atol=0.05)


def test_weight_clipping_still_bounds_every_parameter_of_a_wrapped_module():
    torch.manual_seed(0)
    d = small_discriminator()
    apply_d_regularizer(d, "sr-static")
    with torch.no_grad():
        for p in d.parameters():
            p.mul_(10)
    clip_weights_(d, 0.01)
    assert all(p.abs().max() <= 0.01 for p in d.parameters())
    assert raw_weight(d[0]).abs().max().item() == pytest.approx(0.01)


def test_none_returns_none_and_leaves_the_module_untouched():
    d = small_discriminator()
    before = copy.deepcopy(d.state_dict())
    assert apply_d_regularizer(d, "none") is None
    assert d.state_dict().keys() == before.keys()


def test_unknown_kind_and_bad_settings_are_usage_errors():
    with pytest.raises(UsageError, match="choose one of"):
        apply_d_regularizer(small_discriminator(), "spectral")
    with pytest.raises(UsageError, match="refresh_every"):
        apply_d_regularizer(small_discriminator(), "sr-static", refresh_every=0)
    with pytest.raises(UsageError, match="static_rank"):
        apply_d_regularizer(small_discriminator(), "sr-static", static_rank=0)
    d = small_discriminator()
    apply_d_regularizer(d, "sn")
    with pytest.raises(UsageError, match="already"):
        apply_d_regularizer(d, "sr-dynamic")
    with pytest.raises(UsageError, match="no Linear or Conv"):
        apply_d_regularizer(nn.Sequential(nn.ReLU()), "sn")


def test_kind_names_are_normalized():
    assert apply_d_regularizer(nn.Linear(3, 3), "SR_Dynamic").kind == "sr-dynamic"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    d_cpu = small_discriminator()
    d_gpu = copy.deepcopy(d_cpu).cuda()
    apply_d_regularizer(d_cpu, "sr-dynamic")
    apply_d_regularizer(d_gpu, "sr-dynamic")
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(d_gpu(x.cuda()).cpu(), d_cpu(x), rtol=1e-4, atol=1e-5)
    with torch.autocast("cuda", dtype=torch.float16):
        out = d_gpu(x.cuda())
    assert out.dtype == torch.float16 and torch.isfinite(out).all()


def test_ddp_sees_the_regularizer_state_as_buffers(tmp_path):
    # DDP broadcasts a module's buffers from rank 0 before every forward; all SR state is a buffer, so
    # every rank computes with rank 0's u, v, dW and gamma. (One process here: a 2-process gloo run
    # costs ~20 s of spawning on the 2-core CI machine.)
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        d = small_discriminator()
        reg = apply_d_regularizer(d, "sr-dynamic", refresh_every=1)
        ddp = DistributedDataParallel(d)
        buffers = dict(ddp.module.named_buffers())
        for name in ("u", "v", "delta", "gamma", "steps"):
            assert f"2.parametrizations.weight.0.{name}" in buffers
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        delta = reg.layers["2"].parametrizations.weight[0].delta.clone()
        for _ in range(2):
            opt.zero_grad()
            ddp(torch.randn(2, 3, 8, 8)).mean().backward()
            opt.step()
            reg.step()
        assert reg.steps == 2
        assert not torch.equal(reg.layers["2"].parametrizations.weight[0].delta, delta)
    finally:
        dist.destroy_process_group()
