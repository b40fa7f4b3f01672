"""CycleGAN: the published defaults, how its losses add up, exact resume with its history pools, the
command line end to end (exports, inference, evaluation, logs), and photo2vangogh offline."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from tests._data_helpers import make_unaligned
from translate.data import TransformConfig, open_dataset, resolve_dataset
from translate.models.base import StepContext, detached
from translate.models.cyclegan import CycleGAN, CycleGANConfig
from translate.train.loop import fit
from translate.train.precision import Precision

FP32 = Precision(torch.device("cpu"), None, False)
BF16 = Precision(torch.device("cpu"), torch.bfloat16, False)
TINY = dict(size=32, ngf=4, ndf=4, netG="resnet_2blocks", workers=0, log_every=1, sample_every=1000,
            checkpoint_every=1000, tensorboard=False, export=False)


# ---- the published defaults --------------------------------------------------------------------------

def test_config_defaults_are_the_papers_numbers():
    cfg = CycleGANConfig()
    # Zhu et al. 2017, sec. 4 / appendix 7.2 and the reference implementation's options
    assert cfg.netG == "resnet_9blocks"
    assert cfg.netD == "basic" and cfg.n_layers_D == 3  # 70x70 PatchGAN
    assert cfg.ngf == 64 and cfg.ndf == 64
    assert cfg.norm == "instance" and cfg.dropout is False
    assert cfg.objective == "lsgan"
    assert cfg.lambda_A == 10.0 and cfg.lambda_B == 10.0
    assert cfg.lambda_identity == 0.5
    assert cfg.pool_size == 50
    assert cfg.lr == 2e-4 and cfg.lr_d is None and cfg.beta1 == 0.5 and cfg.beta2 == 0.999
    assert cfg.optimizer == "auto" and cfg.weight_decay == 0.0  # Adam for lsgan
    assert cfg.epochs == 100 and cfg.epochs_decay == 100 and cfg.lr_policy == "linear"
    assert cfg.batch_size == 1
    assert cfg.size == 256 and cfg.preprocess == "resize_and_crop" and cfg.flip is True
    transform = TransformConfig(size=cfg.size, load_size=cfg.load_size, preprocess=cfg.preprocess)
    assert transform.resolved_load_size == 286
    assert cfg.d_reg == "none" and cfg.d_steps == 1 and cfg.instance_noise == 0.0


def test_default_networks_are_the_published_architectures():
    model = CycleGAN(CycleGANConfig())
    for G in (model.G_A, model.G_B):
        arch = G.config.to_dict()
        assert (arch["name"], arch["ngf"], arch["norm"], arch["dropout"], arch["padding"]) == \
            ("resnet_9blocks", 64, "instance", False, "reflect")
        assert arch["upsample"] == "transpose"  # the published layout (reference weights load)
        assert not any(isinstance(m, nn.Dropout) for m in G.modules())
    for D in (model.D_A, model.D_B):
        assert D.config.name == "basic" and D.config.ndf == 64 and D.receptive_field == 70
    assert model.fake_A_pool.size == 50 and model.fake_B_pool.size == 50
    assert model.fake_A_pool.p_old == 0.5
    assert model.generator_names == ("G_A", "G_B") and model.discriminator_names == ("D_A", "D_B")


# ---- the loss assembly, with stub networks whose outputs are known in closed form --------------------

class Affine(nn.Module):
    def __init__(self, scale: float, shift: float):
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x):
        return self.scale * x + self.shift


class ChannelMean(nn.Module):
    """A 'discriminator' whose logit map is the mean over channels plus an offset."""

    def __init__(self, offset: float = 0.0):
        super().__init__()
        self.offset = offset

    def forward(self, x):
        return x.mean(dim=1, keepdim=True) + self.offset


def stub_model(**settings) -> CycleGAN:
    model = CycleGAN(CycleGANConfig(**{"size": 32, "ngf": 4, "ndf": 4, "netG": "resnet_2blocks", **settings}))
    model.G_A, model.G_B = Affine(0.5, 0.0), Affine(1.0, 0.25)
    model.D_A, model.D_B = ChannelMean(0.1), ChannelMean(-0.2)
    return model


def batch64(n: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"A": torch.rand(n, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1,
            "B": torch.rand(n, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1}


def lsgan_g(logits):
    return ((logits - 1) ** 2).mean()


def test_generator_loss_is_gan_plus_weighted_cycle_and_identity_terms():
    model = stub_model(lambda_A=10.0, lambda_B=4.0, lambda_identity=0.5)
    batch = batch64()
    a, b = batch["A"], batch["B"]
    loss, logs = model.g_loss(batch, model.generate(batch), StepContext())
    fake_b, fake_a = 0.5 * a, b + 0.25
    expected = {
        "G_A": lsgan_g(fake_b.mean(1, keepdim=True) + 0.1),  # D_A judges G_A's outputs
        "G_B": lsgan_g(fake_a.mean(1, keepdim=True) - 0.2),
        "cycle_A": 10.0 * (fake_b + 0.25 - a).abs().mean(),  # lambda_A |G_B(G_A(a)) - a|
        "cycle_B": 4.0 * (0.5 * fake_a - b).abs().mean(),  # lambda_B |G_A(G_B(b)) - b|
        "idt_A": 0.5 * 4.0 * (0.5 * b - b).abs().mean(),  # lambda_idt lambda_B |G_A(b) - b|
        "idt_B": 0.5 * 10.0 * torch.tensor(0.25, dtype=torch.float64),  # lambda_idt lambda_A |G_B(a) - a|
    }
    for name, value in expected.items():
        assert logs[name].item() == pytest.approx(value.item(), rel=1e-6), name
    assert loss.item() == pytest.approx(sum(v.item() for v in expected.values()), rel=1e-6)


def test_identity_weight_zero_drops_the_identity_terms():
    model = stub_model(lambda_identity=0.0)
    batch = batch64()
    loss, logs = model.g_loss(batch, model.generate(batch), StepContext())
    assert "idt_A" not in logs and "idt_B" not in logs
    assert loss.item() == pytest.approx(sum(logs[k].item() for k in ("G_A", "G_B", "cycle_A", "cycle_B")), rel=1e-6)


def batch32(n: int = 2, dtype=torch.float64) -> dict:
    """batch64's images enlarged to the 32 px that the TINY networks take."""
    return {k: nn.functional.interpolate(v, size=32).to(dtype) for k, v in batch64(n).items()}


def _batch_sizes_seen(net: nn.Module) -> list[int]:
    seen = []
    net.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[0]))
    return seen


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_identity_passes_share_a_call_with_the_translation_only_where_that_changes_nothing(norm):
    # With instance norm, G_A(a) and G_A(b) are made in one call on [a, b]: the losses and gradients
    # must be those of separate calls. Batch norm would mix the domains' statistics: separate calls.
    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig(**{**TINY, "norm": norm})).double()
    batch = batch32()
    seen = _batch_sizes_seen(model.G_A)
    loss, logs = model.g_loss(batch, model.generate(batch), StepContext())
    grads = torch.autograd.grad(loss, list(model.G_A.parameters()))
    assert seen == ([4, 2] if norm == "instance" else [2, 2, 2])

    a, b = batch["A"], batch["B"]
    fake_b, fake_a = model.G_A(a), model.G_B(b)
    expected = {
        "cycle_A": 10.0 * (model.G_B(fake_b) - a).abs().mean(),
        "cycle_B": 10.0 * (model.G_A(fake_a) - b).abs().mean(),
        "idt_A": 5.0 * (model.G_A(b) - b).abs().mean(),
        "idt_B": 5.0 * (model.G_B(a) - a).abs().mean(),
        "G_A": lsgan_g(model.D_A(fake_b)),
        "G_B": lsgan_g(model.D_B(fake_a)),
    }
    for name, value in expected.items():
        assert logs[name].item() == pytest.approx(value.item(), rel=1e-6), name  # losses are float32
    if norm == "instance":
        for got, want in zip(grads, torch.autograd.grad(sum(expected.values()), list(model.G_A.parameters()))):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    with torch.no_grad():  # a pass G is not trained on (samples, D-only steps) makes no identity images
        seen.clear()
        assert "idt_A" not in model.generate(batch) and seen == [2, 2]


@pytest.mark.parametrize("update_g", [False, True])
def test_an_iteration_that_updates_d_alone_skips_the_cycle_passes_and_trains_d_the_same(update_g):
    # --d-steps 5: four iterations in five update D alone. D's loss needs only the translations, so
    # each generator runs once there; D's update must be what the full forward would have given.
    from translate.train.loop import make_optimizations, train_step

    def setup():
        torch.manual_seed(0)
        model = CycleGAN(CycleGANConfig(**{**TINY, "d_steps": 5, "objective": "wgan-gp", "pool_size": 0}))
        d_opt, g_opt = make_optimizations(model, model.cfg, FP32, total_steps=10)
        return model, d_opt, g_opt

    batch = batch32(dtype=torch.float32)
    model, d_opt, g_opt = setup()
    seen = _batch_sizes_seen(model.G_A)
    torch.manual_seed(1)  # the gradient penalty's interpolation draws
    train_step(model, batch, d_opt, g_opt, FP32, StepContext(d_scaler=d_opt.scaler), update_g)
    assert seen == ([4, 2] if update_g else [2])  # with G's update: translation + identity, then the cycle
    full, d_opt_full, g_opt_full = setup()
    full.generate_for_d = full.generate  # what every iteration ran before: all four passes
    torch.manual_seed(1)
    train_step(full, batch, d_opt_full, g_opt_full, FP32, StepContext(d_scaler=d_opt_full.scaler), update_g)
    for name in ("D_A", "D_B", "G_A", "G_B"):
        for p, q in zip(getattr(model, name).parameters(), getattr(full, name).parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_discriminator_loss_is_halved_least_squares_per_discriminator():
    model = stub_model(pool_size=0)
    batch = batch64()
    out = detached(model.generate(batch))
    loss, logs = model.d_loss(batch, out, StepContext())
    d_a = 0.5 * (((batch["B"].mean(1) + 0.1 - 1) ** 2).mean() + ((out["fake_B"].mean(1) + 0.1) ** 2).mean())
    d_b = 0.5 * (((batch["A"].mean(1) - 0.2 - 1) ** 2).mean() + ((out["fake_A"].mean(1) - 0.2) ** 2).mean())
    assert logs["D_A"].item() == pytest.approx(d_a.item(), rel=1e-6)
    assert logs["D_B"].item() == pytest.approx(d_b.item(), rel=1e-6)
    assert loss.item() == pytest.approx((d_a + d_b).item(), rel=1e-6)


def test_discriminators_see_fakes_from_the_history_pool():
    model = stub_model(pool_size=2)
    for pool in (model.fake_A_pool, model.fake_B_pool):
        pool.p_old = 1.0  # once full, always answer with a stored image
    first, second = batch64(2), {k: -v for k, v in batch64(2).items()}
    model.d_loss(first, detached(model.generate(first)), StepContext())  # fills both pools
    out_second = detached(model.generate(second))
    _, logs = model.d_loss(second, out_second, StepContext())
    # D_A's fake term is computed on the first step's fakes, which the pool returned, not on the new ones.
    old_fake_B = 0.5 * first["A"]
    assert logs["D_A_fake"].item() == pytest.approx(((old_fake_B.mean(1) + 0.1) ** 2).mean().item(), rel=1e-6)
    assert logs["D_A_fake"].item() != pytest.approx(((out_second["fake_B"].mean(1) + 0.1) ** 2).mean().item(), rel=1e-3)
    assert set(model.extra_state()) == {"fake_A_pool", "fake_B_pool"}
    assert len(model.extra_state()["fake_B_pool"]["images"]) == 2


def _pool_choices(model: CycleGAN, queries: int = 80) -> list[bool]:
    """For each query of one new image into D_A's (full) pool: was a stored image returned instead?"""
    pool = model.fake_B_pool
    choices = []
    for k in range(pool.size + queries):
        new = torch.full((1, 3, 2, 2), float(k))
        choices.append(not torch.equal(pool.query(new), new))
    return choices[pool.size:]


def test_each_torchrun_rank_draws_its_own_pool_decisions(monkeypatch):
    import translate.models.cyclegan as cyclegan

    decisions = {}
    for rank in (0, 1):
        monkeypatch.setattr(cyclegan, "current_rank", lambda rank=rank: rank)
        decisions[rank] = _pool_choices(stub_model(pool_size=5))
    assert decisions[0] != decisions[1], "ranks sharing one stream make the same choice at every step"
    # One process (rank 0) keeps the stream it always had: seeded runs reproduce earlier results.
    monkeypatch.setattr(cyclegan, "current_rank", lambda: 0)
    assert _pool_choices(stub_model(pool_size=5)) == decisions[0]
    assert cyclegan.pool_seed(0, 1, 0) == 1 and cyclegan.pool_seed(3, 2, 0) == 3 * 1009 + 2


# ---- training: exact resume, other objectives -------------------------------------------------------

class InterruptAt(torch.utils.data.Dataset):
    """Sends this process SIGINT when its `at`-th sample is loaded, as a user's Ctrl-C would."""

    def __init__(self, dataset, at: int | None):
        self.dataset, self.at, self.loads = dataset, at, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        self.loads += 1
        if self.loads == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return self.dataset[key]


@pytest.fixture(scope="module")
def tiny_unpaired(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unpaired") / "tiny2set"
    return make_unaligned(root, {"trainA": 5, "trainB": 4, "testA": 2, "testB": 2}, size=(36, 36), truth=True)


def train_tiny(folder: Path, run: Path, precision=FP32, interrupt_at=None, **settings):
    cfg = CycleGANConfig(data=str(folder), **{**TINY, **settings})
    train_set = open_dataset(resolve_dataset(folder), "train", transform=TransformConfig(size=cfg.size),
                             pairing="unpaired", seed=cfg.seed)
    torch.manual_seed(cfg.seed)
    model = CycleGAN(cfg)
    result = fit(model, InterruptAt(train_set, interrupt_at), cfg, run, precision=precision, log=lambda *a: None)
    return model, result


def test_cyclegan_resumes_bit_for_bit_with_its_history_pools(tmp_path, tiny_unpaired):
    torch.use_deterministic_algorithms(True)
    try:
        settings = dict(max_steps=8, pool_size=3)  # the pools fill at step 3 and swap after that
        straight, _ = train_tiny(tiny_unpaired, tmp_path / "straight", **settings)
        _, first = train_tiny(tiny_unpaired, tmp_path / "resumed", interrupt_at=5, **settings)
        assert first.stopped_early and first.step == 5
        resumed, second = train_tiny(tiny_unpaired, tmp_path / "resumed", resume=True, **settings)
        assert second.step == 8
    finally:
        torch.use_deterministic_algorithms(False)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    for pool in ("fake_A_pool", "fake_B_pool"):
        ours, theirs = straight.extra_state()[pool], resumed.extra_state()[pool]
        assert len(ours["images"]) == 3
        assert all(torch.equal(x, y) for x, y in zip(ours["images"], theirs["images"]))
        assert torch.equal(ours["generator"], theirs["generator"])


@pytest.mark.parametrize("precision", [FP32, BF16], ids=["fp32", "bf16"])
def test_wgan_gp_with_dynamic_spectral_regularization_trains_without_nans(tmp_path, tiny_unpaired, precision):
    model, result = train_tiny(tiny_unpaired, tmp_path, precision=precision, max_steps=4, objective="wgan-gp",
                               d_reg="sr-dynamic", sr_refresh=2)
    assert result.step == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        for key in ("loss_D", "loss_G", "D_A_gp", "D_B_gp", "cycle_A", "idt_B"):
            assert torch.isfinite(torch.tensor(line[key])), (key, line)
    assert len(model.d_regularizers) == 2 and all(r.steps == 4 for r in model.d_regularizers)


# ---- the command line, end to end ------------------------------------------------------------------

def test_train_infer_eval_on_the_command_line(tmp_path, tiny_unpaired, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from translate.cli import eval as eval_cli
    from translate.cli import infer as infer_cli
    from translate.cli import train as train_cli
    from translate.io.generator_file import pick_generator, read_metadata

    runs = tmp_path / "runs"
    rc = train_cli.main(["cyclegan", "--data", str(tiny_unpaired), "--checkpoints", str(runs), "--name", "r",
                         "--size", "32", "--ngf", "4", "--ndf", "4", "--netG", "resnet_2blocks", "--max-steps", "3",
                         "--log-every", "1", "--spectral-every", "1", "--workers", "0", "--amp", "off"])
    assert rc == 0
    run = runs / "r"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3]
    for key in ("D_A", "D_B", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "sec_per_step"):
        assert key in lines[-1], key
    assert {"spectrum_D_A/spectrum/mean", "spectrum_D_B/spectrum/mean"} <= set(lines[-1])
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"D_A", "G_B", "cycle_A", "spectrum_D_A/spectrum/mean", "spectrum_D_B/spectrum/mean"} <= tags
    assert (run / "samples" / "latest.png").is_file()

    # Two exported generators, each with its direction on its card; --direction picks one.
    cards = {p.name: read_metadata(p)["card"] for p in sorted(run.glob("*.safetensors"))}
    assert cards["G_A.safetensors"]["translates"] == "a2b" and cards["G_B.safetensors"]["translates"] == "b2a"
    assert pick_generator(run, "a2b").name == "G_A.safetensors"
    assert pick_generator(run, "b2a").name == "G_B.safetensors"

    out = tmp_path / "out"
    assert infer_cli.main(["--model", str(run), "--input", str(tiny_unpaired / "testA"), "--output", str(out),
                           "--direction", "a2b"]) == 0
    page = (out / "index.html").read_text()
    assert "ground truth" in page and page.count("truth_") == 2  # testA_truth/ found for both inputs
    single = tmp_path / "single"
    assert infer_cli.main(["--model", str(run), "--input", str(tiny_unpaired / "testB" / "000.png"),
                           "--output", str(single), "--direction", "b2a"]) == 0
    assert (single / "000.png").is_file()

    capsys.readouterr()
    assert eval_cli.main(["--model", str(run), "--data", str(tiny_unpaired), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["n"] == 2 and scores["direction"] == "a2b"
    assert {"model", "baselines", "cycle"} <= set(scores)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_photo2vangogh_offline_fails_in_one_line_and_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    from translate.cli import train as train_cli

    monkeypatch.setenv("TRANSLATE_MIRROR", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.chdir(tmp_path)
    rc = train_cli.main(["cyclegan", "--data", "photo2vangogh"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("translate-train: error: "), err
    assert "vangogh2photo" in err  # the alias resolved to the registry set
    assert "translate-data download vangogh2photo" in err and "--data synth-photo2vangogh" in err
    assert list(tmp_path.rglob("*")) == [], "no run folder, no dataset folder, no .part file"


@pytest.mark.slow
def test_the_quick_preset_learns_the_painting_on_synthetic_data(tmp_path, capsys):
    """The quick preset as `make demo` runs it (U-Net generators, identity term, lr schedule), cut to 300
    steps on a small synth-photo2vangogh at 128 px: its paintings of the test photos are closer to the
    true paintings than the photos themselves and the mean painting, and the photos come back from them."""
    from translate.cli import eval as eval_cli
    from translate.cli import train as train_cli
    from translate.data.synthetic import write_synthetic

    data = write_synthetic("synth-photo2vangogh", tmp_path / "p2v", n_train=60, n_test=12, size=128, seed=0)
    runs = tmp_path / "runs"
    assert train_cli.main(["cyclegan", "--data", str(data), "--checkpoints", str(runs), "--name", "q",
                           "--preset", "quick", "--max-steps", "300", "--amp", "off", "--workers", "0",
                           "--sample-every", "1000", "--no-tensorboard"]) == 0
    from translate.models.cyclegan import CycleGANConfig

    # run.json keeps the preset as it was, so that a later version of it can be told apart on --resume
    recorded = json.loads((runs / "q" / "run.json").read_text())["preset"]
    assert recorded == {"name": "quick", "settings": CycleGANConfig.PRESETS["quick"]}
    # as if the preset had said max_steps 300 then (the run was given --max-steps 300): resuming names the difference and keeps the record
    info = json.loads((runs / "q" / "run.json").read_text())
    info["preset"]["settings"]["max_steps"] = 300
    (runs / "q" / "run.json").write_text(json.dumps(info))
    capsys.readouterr()
    assert train_cli.main(["cyclegan", "--data", str(data), "--checkpoints", str(runs), "--name", "q",
                           "--preset", "quick", "--resume", "--workers", "0", "--no-tensorboard"]) == 0
    assert "resumes with its own settings (max_steps 300)" in capsys.readouterr().err
    assert json.loads((runs / "q" / "run.json").read_text())["preset"]["settings"]["max_steps"] == 300
    capsys.readouterr()
    assert eval_cli.main(["--model", str(runs / "q"), "--data", str(data), "--json", "--device", "cpu"]) == 0
    scores = json.loads(capsys.readouterr().out)
    model, baselines = scores["model"], scores["baselines"]
    assert scores["size"] == 128 and scores["n"] == 12
    assert model["l1"] < 0.95 * baselines["identity"]["l1"], scores
    assert model["psnr"] > baselines["identity"]["psnr"] and model["l1"] < 0.6 * baselines["mean_target"]["l1"], scores
    assert scores["cycle"]["l1"] < 0.07, scores


def test_a_truth_folder_covering_some_test_images_still_trains(tmp_path, capsys):
    # The sample grids collated previews with and without B_truth: a KeyError traceback, exit 1.
    from translate.cli import train as train_cli

    folder = make_unaligned(tmp_path / "partial", {"trainA": 4, "trainB": 4, "testA": 2, "testB": 2},
                            size=(36, 36), truth=True)
    (folder / "testA_truth" / "001.png").unlink()
    rc = train_cli.main(["cyclegan", "--data", str(folder), "--checkpoints", str(tmp_path / "runs"), "--name", "r",
                         "--size", "32", "--ngf", "4", "--ndf", "4", "--netG", "resnet_2blocks", "--max-steps", "2",
                         "--workers", "0", "--amp", "off"])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "runs" / "r" / "G_A.safetensors").is_file()
