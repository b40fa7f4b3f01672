"""Batch-norm statistics recomputed with the final weights at the end of training (precise BN)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from tests.toy_training import ToyModel, ToyPairs
from translate.train.batchnorm import refresh_batch_norm
from translate.train.config import TrainConfig
from translate.train.loop import fit
from translate.train.precision import Precision

QUIET = dict(workers=0, log_every=1, sample_every=1000, checkpoint_every=1000, tensorboard=False)


class Net(nn.Module):
    """conv -> batch norm -> dropout -> batch norm: the second norm's statistics show whether dropout
    ran during the pass."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn2(self.drop(self.bn1(self.conv(x))))


class Model(nn.Module):
    generator_names = ("G",)

    def __init__(self):
        super().__init__()
        self.G = Net()

    def g_modules(self):
        return [self.G]

    def statistics_pass(self, batch, update_g=True):
        self.G(batch["A"])


def batches(n=5, size=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"A": torch.randn(size, 3, 4, 4, generator=g, dtype=torch.float64) * (1 + k)} for k in range(n)]


def test_running_statistics_become_the_average_of_per_batch_statistics_with_the_final_weights():
    torch.manual_seed(0)
    model = Model().double().train()
    for layer in (model.G.bn1, model.G.bn2):  # stale moving averages, as after training
        layer.running_mean.fill_(5.0)
        layer.running_var.fill_(7.0)
    data = batches()
    rng_before = torch.get_rng_state()
    assert refresh_batch_norm(model, data, max_batches=4) == 4
    # By hand: the conv's outputs per batch, their per-channel means and unbiased variances, averaged
    # over the first four batches (the fifth is beyond max_batches).
    means, variances, normalized = [], [], []
    for batch in data[:4]:
        h = model.G.conv(batch["A"]).detach()
        flat = h.transpose(0, 1).reshape(4, -1)
        means.append(flat.mean(1))
        variances.append(flat.var(1, unbiased=True))
        normalized.append((h - flat.mean(1)[None, :, None, None]) / torch.sqrt(flat.var(1, unbiased=False)[None, :, None, None] + 1e-5))
    assert torch.allclose(model.G.bn1.running_mean, torch.stack(means).mean(0))
    assert torch.allclose(model.G.bn1.running_var, torch.stack(variances).mean(0))
    # No dropout during the pass: bn2 saw bn1's batch-normalized outputs unchanged (mean 0 per batch).
    second = [n.transpose(0, 1).reshape(4, -1).var(1, unbiased=True) for n in normalized]
    assert torch.allclose(model.G.bn2.running_mean, torch.zeros(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(model.G.bn2.running_var, torch.stack(second).mean(0))
    # Left as found: training mode, momentum, and the random stream.
    assert model.training and model.G.drop.training and model.G.bn1.momentum == 0.1
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_nothing_happens_without_batch_norm_or_with_zero_batches():
    class Plain(Model):
        def __init__(self):
            super().__init__()
            self.G = nn.Sequential(nn.Conv2d(3, 4, 1), nn.InstanceNorm2d(4))

    calls = []
    assert refresh_batch_norm(Plain(), iter(lambda: calls.append(1), None), max_batches=10) == 0
    assert calls == []  # the batches were not even drawn
    model = Model()
    model.G.bn1.running_mean.fill_(5.0)
    assert refresh_batch_norm(model, batches(), max_batches=0) == 0
    assert torch.equal(model.G.bn1.running_mean, torch.full((4,), 5.0))


def _fit_toy(tmp_path, **overrides):
    cfg = TrainConfig(data="toy", norm="batch", **{**QUIET, "max_steps": 5, "batch_size": 2, **overrides})
    torch.manual_seed(cfg.seed)
    model = ToyModel("lsgan", "batch")
    fit(model, ToyPairs(), cfg, tmp_path, precision=Precision(torch.device("cpu"), None, False), log=lambda *a: None)
    return model


@pytest.mark.parametrize("refresh, tracked", [(0, 5), (3, 3), (200, 6)])  # 12 toy pairs: 6 batches of 2
def test_training_ends_with_recomputed_statistics(tmp_path, refresh, tracked):
    model = _fit_toy(tmp_path / str(refresh), bn_refresh_batches=refresh)
    norm = model.G[1]
    # With momentum None, num_batches_tracked counts the batches of the refresh; without one, the steps.
    assert int(norm.num_batches_tracked) == tracked
    state = torch.load(tmp_path / str(refresh) / "state.pt", weights_only=False)
    assert torch.equal(state["model"]["G.1.running_mean"], norm.running_mean)  # saved as recomputed


def test_the_refresh_leaves_training_exactly_as_it_was(tmp_path):
    plain = _fit_toy(tmp_path / "plain", bn_refresh_batches=0)
    refreshed = _fit_toy(tmp_path / "refreshed")
    for (name, a), b in zip(plain.named_parameters(), refreshed.parameters()):
        assert torch.equal(a, b), name


def test_an_interrupted_refresh_loses_no_training(tmp_path, monkeypatch):
    import translate.train.loop as loop

    def second_ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "refresh_batch_norm", second_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        _fit_toy(tmp_path / "run")
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=False)
    assert state["step"] == state["total_steps"] == 5  # the trained weights were saved before the refresh
    monkeypatch.undo()
    resumed = _fit_toy(tmp_path / "run", resume=True)  # redoes only the end-of-run work
    straight = _fit_toy(tmp_path / "straight")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def _inputs_seen(model) -> dict[str, list[torch.Tensor]]:
    seen = {name: [] for name in model.generator_names}
    for name in model.generator_names:
        getattr(model, name).register_forward_pre_hook(lambda module, args, name=name: seen[name].append(args[0].detach().clone()))
    return seen


def _same_multiset(got: list[torch.Tensor], want: list[torch.Tensor]) -> bool:
    left = list(want)
    for x in got:
        match = next((i for i, y in enumerate(left) if y.shape == x.shape and torch.allclose(x, y, atol=1e-6)), None)
        if match is None:
            return False
        left.pop(match)
    return not left


@pytest.mark.parametrize("d_steps", [1, 2])
@pytest.mark.parametrize("kind,identity", [("discogan", 0.0), ("discogan", 0.5), ("cyclegan", 0.0), ("cyclegan", 0.5)])
def test_the_refresh_runs_each_generator_on_what_training_gives_it(kind, identity, d_steps):
    # The moving averages track every generator call of training: for two-way models G_A(real A),
    # G_A(G_B's fakes) and, with an identity term, G_A(real B). Statistics of real A alone left a U-Net
    # DiscoGAN's output speckled (SSIM 0.40 against 0.58 at 64 px). The refresh must make the same
    # calls, on the same inputs, as the iterations it stands in for.
    import copy

    from translate.models.base import StepContext
    from translate.models.cyclegan import CycleGAN, CycleGANConfig
    from translate.models.discogan import DiscoGAN, DiscoGANConfig
    from translate.train.loop import make_optimizations, train_step

    torch.manual_seed(0)
    if kind == "discogan":
        model = DiscoGAN(DiscoGANConfig(ngf=4, ndf=4, lambda_identity=identity, d_steps=d_steps))
        size = 64
    else:
        model = CycleGAN(CycleGANConfig(size=32, ngf=4, ndf=4, netG="resnet_2blocks", norm="batch",
                                        lambda_identity=identity, d_steps=d_steps, pool_size=0))
        size = 32
    g = torch.Generator().manual_seed(1)
    data = [{"A": torch.rand(2, 3, size, size, generator=g) * 2 - 1, "B": torch.rand(2, 3, size, size, generator=g) - 0.5}
            for _ in range(2 * d_steps)]
    refreshed = copy.deepcopy(model)
    in_refresh = _inputs_seen(refreshed)
    assert refresh_batch_norm(refreshed, data, max_batches=len(data), d_steps=d_steps) == len(data)

    precision = Precision(torch.device("cpu"), None, False)
    in_training = _inputs_seen(model)
    d_opt, g_opt = make_optimizations(model, model.cfg, precision, total_steps=10)
    for opt in (d_opt, g_opt):  # the weights of the copy the refresh ran with, throughout
        opt.scheduler.base_lrs = [0.0] * len(opt.scheduler.base_lrs)
        for group in opt.optimizer.param_groups:
            group["lr"] = 0.0
    for step, batch in enumerate(data):
        train_step(model, batch, d_opt, g_opt, precision, StepContext(step=step, d_scaler=d_opt.scaler),
                   update_g=(step + 1) % d_steps == 0)
    g_calls = len(data) // d_steps
    per_g_iteration = 2 + (identity > 0)  # real A, G_B's fake and, with the identity term, real B
    assert len(in_training["G_A"]) == (len(data) - g_calls) + g_calls * per_g_iteration
    for name in model.generator_names:
        assert _same_multiset(in_refresh[name], in_training[name]), name
    for p, q in zip(model.parameters(), refreshed.parameters()):
        assert torch.equal(p, q)  # nothing trained: the generators' inputs could be compared
