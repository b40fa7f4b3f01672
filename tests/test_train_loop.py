"""The training loop: exact resume, Ctrl-C, precision modes, and data parallelism under torchrun."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from tests.toy_training import ToyModel, ToyPairs, flat_parameters
from translate.train.config import TrainConfig
from translate.data.datasets import EpochSampler
from translate.train.loop import fit
from translate.train.precision import Precision, resolve_precision
from translate.train.schedules import lr_multiplier

ROOT = Path(__file__).resolve().parents[1]
QUIET = dict(workers=0, log_every=1, sample_every=1000, checkpoint_every=1000, tensorboard=False)


def run_toy(tmp: Path, *, data=None, objective="lsgan", precision=None, **overrides):
    cfg = TrainConfig(data="toy", objective=objective, **{**QUIET, **overrides})
    torch.manual_seed(cfg.seed)
    model = ToyModel(objective)
    precision = precision or Precision(torch.device("cpu"), None, False)
    result = fit(model, data or ToyPairs(), cfg, tmp, precision=precision, log=lambda *a: None)
    return model, result


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_sampler_shards_are_the_global_batch_split_by_rank():
    one = EpochSampler(10, seed=3)
    ranks = [EpochSampler(10, rank=r, world_size=2, seed=3) for r in range(2)]
    for s in [one, *ranks]:
        s.set_epoch(5)
    global_order = list(one)
    per_rank = [list(s) for s in ranks]
    for step in range(2):  # a global batch of 4 is the union of the ranks' batches of 2
        union = per_rank[0][2 * step : 2 * step + 2] + per_rank[1][2 * step : 2 * step + 2]
        assert sorted(union) == sorted(global_order[4 * step : 4 * step + 4])


def test_resume_after_ctrl_c_continues_bit_for_bit(tmp_path):
    torch.use_deterministic_algorithms(True)
    straight, _ = run_toy(tmp_path / "straight", max_steps=14, batch_size=2)
    # Loading the 17th sample sends SIGINT (step 9, in the second epoch of 6 steps): the loop finishes
    # that step, saves a checkpoint and returns early, as after a user's Ctrl-C.
    _, first = run_toy(tmp_path / "interrupted", data=ToyPairs(interrupt_at=17), max_steps=14, batch_size=2)
    assert first.stopped_early and first.step == 9
    resumed, second = run_toy(tmp_path / "interrupted", max_steps=14, batch_size=2, resume=True)
    assert second.step == 14 and not second.stopped_early
    assert torch.equal(flat_parameters(resumed), flat_parameters(straight))
    steps = [m["step"] for m in read_metrics(tmp_path / "interrupted")]
    assert steps == list(range(1, 15)), "a resumed run's metrics continue without gaps or repeats"


@pytest.mark.parametrize("before, after", [("off", "on"), ("on", "off")])
def test_resume_in_another_memory_layout_continues_exactly(tmp_path, before, after):
    # A CPU run continued on CUDA (channels_last under auto), or --channels-last changed on resume:
    # the saved Adam moments must follow the parameters' layout (fused Adam reads flat memory).
    settings = dict(max_steps=12, batch_size=4, lr=2e-3)
    straight, _ = run_toy(tmp_path / "straight", channels_last=after, **settings)
    _, first = run_toy(tmp_path / "resumed", data=ToyPairs(interrupt_at=4 * 5 + 1), channels_last=before, **settings)
    assert first.stopped_early
    resumed, _ = run_toy(tmp_path / "resumed", channels_last=after, resume=True, **settings)
    torch.manual_seed(TrainConfig(data="toy").seed)
    moved = (flat_parameters(straight) - flat_parameters(ToyModel())).abs().max()  # from the initial weights
    # Rounding only (one layout against the other sums in another order); a moment applied to the
    # wrong weight moved them by about a tenth of the whole training.
    assert (flat_parameters(resumed) - flat_parameters(straight)).abs().max() < 1e-4 * moved


def test_sigterm_to_the_whole_job_saves_and_resumes(tmp_path):
    # `timeout`, SLURM and systemd send SIGTERM to every process of the job, the DataLoader workers
    # included (here twice): the run must still finish its step, save a checkpoint and exit cleanly.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    settings = {**QUIET, "workers": 1, "max_steps": 14, "batch_size": 2, "out": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "tests.toy_training", json.dumps({**settings, "terminate_group_at": 9})],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, start_new_session=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    first = torch.load(tmp_path / "final.pt", weights_only=True)
    assert first["stopped_early"] and 0 < first["step"] < 14
    assert (tmp_path / "state.pt").is_file()
    done = subprocess.run([sys.executable, "-m", "tests.toy_training", json.dumps({**settings, "resume": True})],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert torch.load(tmp_path / "final.pt", weights_only=True)["step"] == 14


def test_an_unexpected_error_with_workers_exits_with_its_traceback_instead_of_hanging(tmp_path):
    # The traceback Python keeps for its report holds the loop's frame and with it the workers, which
    # ignore the SIGTERM multiprocessing sends them at exit: the process waited on them for ever.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    settings = {**QUIET, "workers": 2, "max_steps": 6, "batch_size": 2, "out": str(tmp_path), "fail_at_step": 2}
    done = subprocess.run([sys.executable, "-m", "tests.toy_training", json.dumps(settings)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, start_new_session=True)
    assert done.returncode == 1 and "RuntimeError: a failure at step 2" in done.stderr, done.stderr[-3000:]


def test_a_stop_logs_its_interval_and_the_resumed_run_starts_a_fresh_one(tmp_path):
    torch.use_deterministic_algorithms(True)
    run_toy(tmp_path / "each", max_steps=14, batch_size=2, log_every=1)
    each = {m["step"]: m["loss_D"] for m in read_metrics(tmp_path / "each")}
    run_toy(tmp_path / "run", data=ToyPairs(interrupt_at=17), max_steps=14, batch_size=2, log_every=4)  # stops at 9
    run_toy(tmp_path / "run", max_steps=14, batch_size=2, log_every=4, resume=True)
    lines = {m["step"]: m["loss_D"] for m in read_metrics(tmp_path / "run")}
    intervals = {4: [1, 2, 3, 4], 8: [5, 6, 7, 8], 9: [9], 12: [10, 11, 12], 14: [13, 14]}
    assert sorted(lines) == sorted(intervals), "step 9 (the stop) has its line; no step goes unlogged"
    for step, steps in intervals.items():
        assert lines[step] == pytest.approx(sum(each[s] for s in steps) / len(steps), rel=1e-5)


def test_a_fresh_start_in_a_crashed_runs_folder_shows_only_its_own_curves(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_toy(tmp_path, max_steps=6, tensorboard=True)
    (tmp_path / "state.pt").unlink()  # as if it had crashed before its first checkpoint
    run_toy(tmp_path, max_steps=3, tensorboard=True, seed=1)
    lines = {m["step"]: m["loss_D"] for m in read_metrics(tmp_path)}
    shown = {e.step: e.value for e in EventAccumulator(str(tmp_path / "tensorboard")).Reload().Scalars("loss_D")}
    assert sorted(shown) == sorted(lines) == [1, 2, 3]
    assert shown == pytest.approx(lines)  # the second run's values, not the first's


class PoisonedAfterFirstEpoch(ToyPairs):
    """NaN inputs from the second epoch on: the weights go to NaN at its first step."""

    def __getitem__(self, key):
        sample = super().__getitem__(key)
        if (key[0] if isinstance(key, tuple) else self.epoch) >= 1:
            sample["A"] = sample["A"] * float("nan")
        return sample


@pytest.mark.parametrize("log_every", [1, 100])
def test_a_diverged_run_stops_in_one_line_and_keeps_its_last_good_checkpoint(tmp_path, log_every):
    from translate.train.loop import TrainingDiverged

    # 12 pairs, batches of 2: a checkpoint at step 6, NaN from step 7 (found by the losses logged at
    # step 7, or by the check before the next checkpoint at step 12).
    with pytest.raises(TrainingDiverged) as diverged:
        run_toy(tmp_path, data=PoisonedAfterFirstEpoch(), max_steps=14, batch_size=2, checkpoint_every=6,
                log_every=log_every)
    message = str(diverged.value)
    assert "G, D hold weights that are not finite" in message or "D, G hold weights" in message
    assert "state.pt keeps step 6" in message and "lower --lr" in message
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["step"] == 6 and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_metrics_lines_hold_step_epoch_losses_and_timing(tmp_path):
    run_toy(tmp_path, max_steps=7, log_every=3)
    lines = read_metrics(tmp_path)
    assert [m["step"] for m in lines] == [3, 6, 7]
    for m in lines:
        assert {"step", "epoch", "loss_D", "loss_G", "G_L1", "sec_per_step", "lr_G", "lr_D"} <= set(m)
        assert m["sec_per_step"] > 0


@pytest.mark.parametrize("n, batch_size, images", [(5, 10, [5, 5, 5]), (5, 2, [2, 2, 1])],
                         ids=["batch larger than the data", "a partial last batch"])
def test_images_per_second_counts_the_images_trained_on(tmp_path, monkeypatch, n, batch_size, images):
    # images_per_sec multiplied --batch-size by the steps: a batch of 10 on 5 samples was reported as 10
    # images a step, twice the truth. sec_per_step * images_per_sec is the images of each logged step;
    # the progress line's img/s uses the images per step averaged over an epoch.
    import translate.train.loop as loop

    shown_per_step = []

    class Recorded(loop.Progress):
        def __init__(self, total, initial, batch_images, **kwargs):
            shown_per_step.append(batch_images)
            super().__init__(total, initial, batch_images, **kwargs)

    monkeypatch.setattr(loop, "Progress", Recorded)
    cfg = TrainConfig(data="toy", objective="lsgan", **{**QUIET, "max_steps": 3, "log_every": 1, "batch_size": batch_size})
    torch.manual_seed(cfg.seed)
    notes = []
    fit(ToyModel("lsgan"), ToyPairs(n=n), cfg, tmp_path, precision=Precision(torch.device("cpu"), None, False),
        log=notes.append)
    shown = [m["sec_per_step"] * m["images_per_sec"] for m in read_metrics(tmp_path)]
    assert shown == pytest.approx(images)
    assert shown_per_step == [pytest.approx(sum(images) / len(images))]  # one epoch: 5 images in 1 or 3 steps
    larger = [line for line in notes if "is more than the" in line]
    assert larger == ([f"note: --batch-size {batch_size} is more than the {n} training samples: each step trains on "
                       f"those {n}"] if batch_size > n else [])


def test_linear_decay_reaches_near_zero_lr_at_the_end(tmp_path):
    _, _ = run_toy(tmp_path, max_steps=20, epochs=1, epochs_decay=1, log_every=1)
    lrs = [m["lr_G"] for m in read_metrics(tmp_path)]  # the lr each step trained with
    assert lrs[:10] == pytest.approx([2e-4] * 10)
    assert all(b < a for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(2e-4 / 11)  # the last step still trains


def test_d_steps_update_g_every_kth_iteration(tmp_path):
    model, _ = run_toy(tmp_path, max_steps=6, d_steps=3, log_every=1)
    lines = read_metrics(tmp_path)
    assert [("loss_G" in m) for m in lines] == [False, False, True, False, False, True]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_mixed_precision_steps_are_finite_and_change_the_weights(tmp_path, dtype):
    precision = Precision(torch.device("cpu"), dtype, loss_scaling=dtype == torch.float16)
    torch.manual_seed(0)
    before = flat_parameters(ToyModel())
    model, _ = run_toy(tmp_path, objective="wgan-gp", precision=precision, max_steps=4)
    after = flat_parameters(model)
    assert torch.isfinite(after).all() and not torch.equal(before, after)
    lines = read_metrics(tmp_path)
    if dtype == torch.float16:
        assert "amp_scale_D" in lines[-1] and "amp_skipped_G" in lines[-1]
    assert lines[-1]["loss_D"] is not None and lines[-1]["loss_G"] is not None


def test_overflowing_scaled_gradients_skip_the_step_and_lower_the_scale():
    from translate.train.loop import _Optimization

    layer = torch.nn.Linear(4, 1)
    before = [p.detach().clone() for p in layer.parameters()]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    opt = _Optimization(list(layer.parameters()), torch.optim.Adam(layer.parameters(), lr=0.1), lambda s: 1.0, scaler)
    loss = (layer(torch.full((2, 4), 1e3)) ** 2).mean()  # gradients ~1e6: times 2**127 is inf in fp32
    assert opt.backward_and_step(loss) is False
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters())), "a skipped step changed weights"
    assert scaler.get_scale() == 2.0**126
    opt.zero_grad()
    scaler.update(1024.0)
    assert opt.backward_and_step((layer(torch.ones(2, 4)) ** 2).mean()) is True
    assert not all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))


def test_fp16_steps_skipped_for_an_overflowing_penalty_log_no_nan(tmp_path, monkeypatch):
    # A scale of 2**100 makes the scaled critic's input-gradients overflow in fp16, so the penalty is
    # inf and the first D steps are skipped, as fp16's first steps are in real runs.
    monkeypatch.setattr(Precision, "make_scaler",
                        lambda self: torch.amp.GradScaler("cpu", init_scale=2.0**100, enabled=self.loss_scaling))
    precision = Precision(torch.device("cpu"), torch.float16, loss_scaling=True)
    run_toy(tmp_path, objective="wgan-gp", precision=precision, max_steps=4, log_every=1)
    lines = read_metrics(tmp_path)
    assert lines[0]["amp_skipped_D"] == 1.0
    assert all(value is not None for line in lines for value in line.values()), lines
    assert "loss_D" not in lines[0] and "D_real" in lines[0]


def test_amp_auto_picks_bf16_only_on_cpus_with_native_bf16(monkeypatch):
    import translate.train.precision as p

    monkeypatch.setattr(p, "cpu_has_native_bf16", lambda: True)
    assert p.resolve_precision("auto", torch.device("cpu")).name == "bf16"
    monkeypatch.setattr(p, "cpu_has_native_bf16", lambda: False)
    assert p.resolve_precision("auto", torch.device("cpu")).name == "fp32"
    assert p.resolve_precision("fp16", torch.device("cpu")).loss_scaling


def test_amp_auto_on_cuda_takes_bf16_only_where_the_gpu_has_it_natively(monkeypatch):
    import translate.train.precision as p

    cuda = torch.device("cuda")
    # torch reports bf16 as supported on GPUs that only emulate it (compute capability 7.x)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert p.resolve_precision("auto", cuda).name == "fp16"
    assert p.resolve_precision("bf16", cuda).name == "bf16"  # asked for by name: emulated is allowed
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert p.resolve_precision("auto", cuda).name == "bf16"


def test_each_cuda_process_picks_its_own_gpu_before_joining_the_group(monkeypatch):
    import torch.distributed as dist

    import translate.train.distributed as ddp

    calls = []
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: calls.append(("set_device", index)))
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.append(("init", backend)))
    monkeypatch.setattr(dist, "get_rank", lambda: 3)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    context = ddp.init_distributed("cuda")
    assert calls == [("set_device", 1), ("init", "nccl")]
    assert (context.rank, context.world_size, context.local_rank) == (3, 4, 1)
    calls.clear()
    ddp.init_distributed("cpu")
    assert calls == [("init", "gloo")]


def test_averaged_gradients_keep_each_parameters_memory_layout(monkeypatch):
    import torch.distributed as dist

    import translate.train.distributed as ddp

    # Two ranks with the same gradients: the average is the gradient itself. The fused Adam reads
    # parameter and gradient as flat memory, so a channels_last weight needs a channels_last gradient.
    monkeypatch.setattr(ddp, "_is_active", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "all_reduce", lambda t, *a, **kw: t.mul_(2))

    def trained(average: bool) -> torch.Tensor:
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(conv.parameters(), lr=0.1, fused=True)
        x = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1))
        for _ in range(3):
            opt.zero_grad()
            conv(x.contiguous(memory_format=torch.channels_last)).square().mean().backward()
            if average:
                ddp.average_gradients(conv.parameters())
                assert conv.weight.grad.stride() == conv.weight.stride()
            opt.step()
        return conv.weight.detach()

    torch.testing.assert_close(trained(True), trained(False), rtol=0, atol=1e-6)


def _torchrun(tmp: Path, nproc: int, settings: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           "-m", "tests.toy_training", json.dumps({**settings, "out": str(tmp)})]
    if nproc == 1:
        cmd = [sys.executable, "-m", "tests.toy_training", json.dumps({**settings, "out": str(tmp)})]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(tmp / "final.pt", weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path, norm):
    settings = {**QUIET, "max_steps": 6, "norm": norm}
    two = _torchrun(tmp_path / "two", 2, {**settings, "batch_size": 2})
    one = _torchrun(tmp_path / "one", 1, {**settings, "batch_size": 4})
    half = _torchrun(tmp_path / "half", 1, {**settings, "batch_size": 2})
    assert torch.equal(two["all_ranks"][0], two["all_ranks"][1]), "ranks drifted apart"
    # Summation order differs between one and two processes, and Adam's normalized steps amplify
    # rounding where a gradient is near zero, so compare against how far training moved the weights,
    # and against a control that trains on half of the global batch.
    moved = (one["params"] - one["initial"]).norm()
    assert (two["params"] - one["params"]).norm() < 0.01 * moved
    assert (half["params"] - one["params"]).norm() > 0.1 * moved


@pytest.mark.slow
def test_resume_under_torchrun_is_exact(tmp_path):
    settings = {**QUIET, "max_steps": 10, "batch_size": 1}
    straight = _torchrun(tmp_path / "straight", 2, settings)
    first = _torchrun(tmp_path / "resumed", 2, {**settings, "interrupt_at": 4, "interrupt_rank": 1})
    assert first["step"] == 4
    second = _torchrun(tmp_path / "resumed", 2, {**settings, "resume": True})
    assert second["step"] == 10
    assert torch.equal(second["params"], straight["params"])


def test_linear_schedule_per_step_is_the_reference_rule_per_epoch():
    # The reference's lambda_rule (epoch_count 1, n_epochs 100, n_epochs_decay 100), one step an epoch:
    # 100 steps at the full lr, then 100 decaying to 1/101.
    reference = [1.0 - max(0, epoch + 1 - 100) / (100 + 1) for epoch in range(200)]
    ours = lr_multiplier("linear", 200, constant_fraction=0.5)
    assert [ours(step) for step in range(200)] == pytest.approx(reference, abs=1e-12)
    assert ours(99) == 1.0 and ours(100) == pytest.approx(100 / 101) and ours(199) == pytest.approx(1 / 101)


def test_instance_noise_is_annealed_over_the_run_however_long(tmp_path):
    from translate.core.noise import InstanceNoise
    from translate.models.base import Adversary

    torch.manual_seed(0)
    model = ToyModel()
    model.adversary = Adversary(model.objective, InstanceNoise(0.1))
    cfg = TrainConfig(data="toy", epochs=2, epochs_decay=1, batch_size=2, **QUIET)  # no --max-steps
    result = fit(model, ToyPairs(), cfg, tmp_path, precision=Precision(torch.device("cpu"), None, False),
                 log=lambda *a: None)
    assert result.total_steps == 3 * 6  # three epochs of 12 pairs in batches of 2
    assert model.adversary.instance_noise.anneal_steps == result.total_steps
    assert model.adversary.instance_noise.std_at(result.total_steps) == 0.0


def test_resume_keeps_the_spectral_monitors_running_maxima(tmp_path):
    from translate.core.monitor import SpectralMonitor
    from translate.train.checkpoint import load_state

    def run(folder, data=None, resume=False) -> SpectralMonitor:
        cfg = TrainConfig(data="toy", max_steps=14, batch_size=2, resume=resume, spectral_every=1, **QUIET)
        torch.manual_seed(cfg.seed)
        model = ToyModel()
        monitor = SpectralMonitor(model.D)
        fit(model, data or ToyPairs(), cfg, folder, precision=Precision(torch.device("cpu"), None, False),
            spectral_monitors={"spectrum_D": monitor}, log=lambda *a: None)
        return monitor

    torch.use_deterministic_algorithms(True)
    straight = run(tmp_path / "straight")
    interrupted = run(tmp_path / "interrupted", data=ToyPairs(interrupt_at=17))  # stops after step 9
    saved = load_state(tmp_path / "interrupted" / "state.pt")["spectral_monitors"]["spectrum_D"]
    assert saved == interrupted.state_dict() and saved["running_max"]
    resumed = run(tmp_path / "interrupted", resume=True)
    assert resumed.state_dict() == straight.state_dict()


def test_the_benchmark_reads_its_settings_by_the_config_fields_types():
    from translate.errors import UsageError
    from translate.train.benchmark import _parse_overrides

    parsed = _parse_overrides("pix2pix", ["dropout=false", "size=128", "netG=unet_128", "lr=2e-4", "lr-d=1"])
    assert parsed == {"dropout": False, "size": 128, "netG": "unet_128", "lr": 2e-4, "lr_d": 1.0}
    for bad in ("dropout=no", "size=big", "nothing=1"):
        with pytest.raises(UsageError):
            _parse_overrides("pix2pix", [bad])


def test_cross_rank_batch_norm_is_batch_norm_and_carries_the_gradient_penalty(tmp_path, monkeypatch):
    # Every device converts to CrossRankBatchNorm2d (SyncBatchNorm's backward has no derivative, so a
    # gradient penalty through it fails on CUDA). In an active group of one it must equal batch norm in
    # the output, the running statistics and the penalty's double backward.
    import torch.distributed as dist

    import translate.train.distributed as ddp
    from translate.core.penalty import gradient_penalty

    def critic() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, bias=False))

    real = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    fake = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))

    def penalty_grads(net: nn.Module) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        out = net(real)
        gp = gradient_penalty(net, real, fake, generator=torch.Generator().manual_seed(3))
        grads = torch.autograd.grad(gp, list(net.parameters()))
        return out.detach(), [g.detach() for g in grads], net[1].running_var.clone()

    plain = penalty_grads(critic())
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        monkeypatch.setattr(ddp, "_is_active", lambda: True)  # take the all-reduce path in a group of one
        converted = ddp.convert_batch_norm(critic())
        assert type(converted[1]) is ddp.CrossRankBatchNorm2d
        crossed = penalty_grads(converted)
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(crossed[0], plain[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(crossed[1], plain[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(crossed[2], plain[2], rtol=1e-5, atol=1e-6)


def test_cross_rank_batch_norm_keeps_the_variance_of_activations_far_from_zero(tmp_path, monkeypatch):
    # float32 activations of mean 100 and spread 1: the statistics must be as good as one process's.
    import torch.distributed as dist

    import translate.train.distributed as ddp

    x = 100 + torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    exact = x.double().var(dim=(0, 2, 3), unbiased=True)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        monkeypatch.setattr(ddp, "_is_active", lambda: True)
        norm = ddp.convert_batch_norm(nn.BatchNorm2d(3, momentum=1.0))
        y = norm(x)
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(norm.running_var.double(), exact, rtol=1e-5, atol=0)
    reference = torch.nn.functional.batch_norm(x.double(), None, None, training=True, eps=norm.eps)
    torch.testing.assert_close(y.double(), reference, rtol=0, atol=1e-4)


def test_step_and_cosine_schedules_follow_their_formulas():
    step = lr_multiplier("step", 90, step_every=30, step_gamma=0.5)
    assert [step(s) for s in (0, 29, 30, 59, 60, 89)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert lr_multiplier("step", 90)(30) == pytest.approx(0.1)  # a third of the run, gamma 0.1 by default
    cosine = lr_multiplier("cosine", 100)
    assert cosine(0) == 1.0 and cosine(50) == pytest.approx(0.5) and cosine(100) == pytest.approx(0.0, abs=1e-12)
    assert cosine(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert cosine(150) == pytest.approx(0.0, abs=1e-12)  # past the end it stays at zero


@pytest.mark.slow
def test_penalty_and_feature_matching_through_cross_rank_batch_norm_match_one_process(tmp_path):
    # Two ranks with half the batch each, gradients averaged, against one process on the whole batch,
    # in float64: checks the cross-rank all-reduce's backward (and its double backward, which the
    # penalty needs) and the global-batch means of feature matching.
    from tests.cross_rank_check import reference

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "tests.cross_rank_check", str(tmp_path / "grads.pt")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    two = torch.load(tmp_path / "grads.pt", weights_only=True)
    one = reference()
    for term in ("penalty", "matching"):
        assert any(g.abs().max() > 1e-3 for g in one[term])
        for a, b in zip(two[term], one[term]):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_the_stop_notice_names_the_signal_and_offers_a_second_ctrl_c_only_after_one(capsys):
    # After a SIGTERM (a scheduler's, `kill`) it said "Ctrl-C again to abort", which no one had pressed.
    import signal

    from translate.train.loop import StopRequest

    stop = StopRequest()
    stop._handle(signal.SIGTERM, None)
    assert "stop requested (SIGTERM): finishing this step and saving a checkpoint\n" in capsys.readouterr().err
    stop = StopRequest()
    stop._handle(signal.SIGINT, None)
    assert "stop requested (Ctrl-C): finishing this step and saving a checkpoint (Ctrl-C again to abort)" in \
        capsys.readouterr().err
    assert stop.requested and stop.signal == signal.SIGINT
