"""The one training loop: every model trains here.

Per iteration (see translate.models.base): G's forward, one D update, and every `d_steps`-th iteration
one G update. The loop owns precision (autocast; a GradScaler per optimizer for fp16), gradient
averaging across processes, lr schedules, resume checkpoints, logging and the stop signal.

Exact resume: a checkpoint holds the networks, optimizers, schedulers, scalers, the model's extra state
(history pools), each rank's RNG states, and the step. Data order and augmentation are functions of
(seed, epoch, index) (translate.data), so a resumed run replays the remaining batches of its epoch
exactly.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from translate.data.datasets import EpochSampler
from translate.errors import UsageError
from translate.models.base import StepContext, TranslationModel, detached, set_requires_grad
from translate.train import distributed as ddp
from translate.train.batchnorm import batch_norm_layers, refresh_batch_norm
from translate.train.checkpoint import (atomic_torch_save, capture_rng_state, load_resume_state, read_state,
                                       restore_rng_state)
from translate.train.config import TrainConfig, config_to_dict
from translate.train.logs import MetricsLog, Progress, RunningMeans, TensorBoard, image_grid, save_png
from translate.train.precision import Precision
from translate.train.schedules import lr_multiplier

STATE_FILE = "state.pt"
CHECKPOINT_FORMAT = 1


@dataclass
class FitResult:
    step: int
    total_steps: int
    stopped_early: bool
    seconds: float
    #: the signal that stopped this process's run early (SIGINT or SIGTERM); None when it finished, or
    #: when another rank was signalled
    stop_signal: int | None = None


class StopRequest:
    """SIGINT/SIGTERM set a flag; the loop finishes its step, saves a checkpoint and returns.
    A second Ctrl-C falls through to Python's default (KeyboardInterrupt)."""

    def __init__(self):
        self.requested = False
        self.signal: int | None = None  # the first signal received
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals stay as they are
                pass
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        if self.signal is None:
            self.signal = signum
        what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name  # (a scheduler's SIGTERM)
        again = " (Ctrl-C again to abort)" if signum == signal.SIGINT else ""
        print(f"\nstop requested ({what}): finishing this step and saving a checkpoint{again}", file=sys.stderr)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class TrainingDiverged(UsageError):
    """The weights became inf or NaN; the run stops without overwriting its last checkpoint."""


def non_finite_networks(model: nn.Module) -> list[str]:
    """The top-level networks (G_A, D_B, ...) that hold a weight that is inf or NaN."""
    return sorted({name.split(".")[0] for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())})


#: how long after the first SIGTERM a DataLoader worker keeps ignoring more (longer than a step and its
#: checkpoint); after that a SIGTERM ends it, so that a worker that does not exit can still be stopped
WORKER_SIGTERM_GRACE_S = 120.0


def _worker_leaves_stopping_to_the_loop(worker_id: int) -> None:
    """DataLoader worker start-up: the stop signals are the loop's to act on.

    Ctrl-C reaches the terminal's whole process group, and `timeout`, SLURM, systemd and container
    runtimes send SIGTERM to every process of a job (a wrapper may forward it more than once). A worker
    that died of it would make the main process fail with a traceback before it could save, losing the
    run's progress since the last checkpoint. Workers ignore SIGINT, and SIGTERM for
    WORKER_SIGTERM_GRACE_S after the first; the loop finishes its step, saves and shuts them down. A
    worker whose main process has died exits on its own.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _sigterm_in_a_worker)


_first_sigterm: float | None = None


def _sigterm_in_a_worker(signum, frame) -> None:
    global _first_sigterm
    now = time.monotonic()
    if _first_sigterm is None:
        _first_sigterm = now
    if now - _first_sigterm >= WORKER_SIGTERM_GRACE_S:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


class WorkersShutDown:
    """Stops a DataLoader's persistent workers when the loop is left, however it is left.

    Workers ignore SIGTERM (`_worker_leaves_stopping_to_the_loop`). After an unexpected error the
    traceback Python keeps for its report (sys.last_traceback) holds the loop's frame, so the loader's
    iterator outlives the loop; at exit multiprocessing then sends its workers SIGTERM and waits for
    them, which they ignore: the process hung for ever instead of exiting with the error. The
    iterator's own shutdown asks the workers to leave, which they do.
    """

    def __init__(self, loader: DataLoader):
        self.loader = loader

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        iterator = getattr(self.loader, "_iterator", None)
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        self.loader._iterator = None


def _batch_images(batch: dict) -> int:
    """How many samples a collated batch holds (the last of an epoch, or one larger than the data, holds
    fewer than --batch-size)."""
    return int(batch["A"].shape[0])


def _to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
            if channels_last and v.dim() == 4:
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


def make_optimizer(params, cfg: TrainConfig, lr: float, objective_name: str, device: torch.device):
    kind = cfg.optimizer
    if kind == "auto":
        kind = "rmsprop" if objective_name == "wgan" else "adam"
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=cfg.weight_decay, foreach=device.type == "cuda")
    # Fused Adam, on CUDA and on CPU alike: on this project's 2-core CPU one step of the 42 M
    # parameters of unet_128 took 0.30 s fused, 0.56 s plain and 1.13 s with foreach.
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay, fused=True)


class _Optimization:
    """One network's optimizer, lr schedule and GradScaler, and the step that uses them."""

    def __init__(self, params, optimizer, schedule, scaler):
        self.params, self.optimizer, self.scaler = params, optimizer, scaler
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        self.lr_used = optimizer.param_groups[0]["lr"]  # the lr of the latest step (what the logs show)

    def zero_grad(self):
        self.optimizer.zero_grad(set_to_none=True)

    def backward_and_step(self, loss: torch.Tensor) -> bool:
        """Backward, average across ranks, step; False when fp16 loss scaling found an overflow and
        skipped the step (the scaler then lowers its scale; early skips are normal)."""
        self.scaler.scale(loss).backward()
        # Averaging scaled gradients is fine: an inf/NaN on one rank becomes inf/NaN on all, so every
        # rank's scaler skips the same step and keeps the same scale.
        ddp.average_gradients(self.params)
        if not self.scaler.is_enabled():
            self.optimizer.step()
            return True
        scale = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return self.scaler.get_scale() >= scale

    def step_schedule(self) -> None:
        self.lr_used = self.optimizer.param_groups[0]["lr"]
        with warnings.catch_warnings():
            # After an overflow-skipped fp16 step torch warns that the scheduler ran before the
            # optimizer; the schedule deliberately counts iterations, skipped or not.
            warnings.simplefilter("ignore", UserWarning)
            self.scheduler.step()

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """The run's moments, step counts, schedule position and loss scale; the hyperparameters (lr,
        betas, weight decay, fused or not) stay those of the settings now, so that `--resume --lr 1e-5`
        does what it says (loading alone would bring the saved ones back)."""
        settings = [{k: v for k, v in group.items() if k != "params"} for group in self.optimizer.param_groups]
        base_lrs = list(self.scheduler.base_lrs)
        self.optimizer.load_state_dict(state["optimizer"])
        self._match_parameter_layouts()
        self.scheduler.load_state_dict(state["scheduler"])
        self.scheduler.base_lrs = base_lrs
        for group, kept, base, schedule in zip(self.optimizer.param_groups, settings, base_lrs,
                                               self.scheduler.lr_lambdas):
            group.update(kept)
            group["lr"] = base * schedule(self.scheduler.last_epoch)  # where the schedule has got to
        self.lr_used = self.optimizer.param_groups[0]["lr"]
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def _match_parameter_layouts(self) -> None:
        """Loaded moments keep the memory layout of the run that saved them; fused Adam reads parameter,
        gradient and moments as flat memory, so a run saved contiguous (CPU) and resumed channels_last
        (CUDA, or --channels-last on), or the other way round, would update each weight with another
        one's moments. Give every moment its parameter's layout."""
        for group in self.optimizer.param_groups:
            for param in group["params"]:
                state = self.optimizer.state.get(param, {})
                for key, value in state.items():
                    if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                        state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def train_step(model: TranslationModel, batch: dict, d_opt: _Optimization, g_opt: _Optimization,
               precision: Precision, ctx: StepContext, update_g: bool) -> dict:
    """One iteration: G's forward, one D update, and a G update when `update_g`; returns detached
    scalars to log."""
    with precision.autocast(), torch.set_grad_enabled(update_g):
        out = model.generate(batch) if update_g else model.generate_for_d(batch)

    set_requires_grad(model.d_modules(), True)
    d_opt.zero_grad()
    with precision.autocast():
        loss_d, logs = model.d_loss(batch, detached(out), ctx)
    stepped = d_opt.backward_and_step(loss_d)
    d_opt.step_schedule()
    if stepped:
        model.after_d_step()
    logs = {"loss_D": loss_d.detach(), **logs}
    if d_opt.scaler.is_enabled():
        if not stepped:
            # A gradient penalty differentiates the scaled critic: when that overflows (normal in fp16's
            # first steps, the step is skipped) the penalty and loss_D are inf or NaN. Keep those
            # readings out of the logged means; amp_skipped_D counts the skip.
            logs = {k: v for k, v in logs.items() if math.isfinite(float(v))}
        logs.update({"amp_skipped_D": float(not stepped), "amp_scale_D": d_opt.scaler.get_scale()})

    if update_g:
        # D is frozen during G's step: its weights get no gradients, and no work is spent on them.
        set_requires_grad(model.d_modules(), False)
        g_opt.zero_grad()
        with precision.autocast():
            loss_g, logs_g = model.g_loss(batch, out, ctx)
        stepped = g_opt.backward_and_step(loss_g)
        g_opt.step_schedule()
        set_requires_grad(model.d_modules(), True)
        logs.update({"loss_G": loss_g.detach(), **logs_g})
        if g_opt.scaler.is_enabled():
            logs["amp_skipped_G"] = float(not stepped)
    return logs


def make_optimizations(model: TranslationModel, cfg: TrainConfig, precision: Precision, total_steps: int):
    """D's and G's optimizer, lr schedule and GradScaler. G's schedule counts G updates
    (total_steps / d_steps of them)."""
    device = precision.device
    constant_fraction = cfg.epochs / (cfg.epochs + cfg.epochs_decay)
    d_schedule = lr_multiplier(cfg.lr_policy, total_steps, constant_fraction=constant_fraction)
    g_schedule = lr_multiplier(cfg.lr_policy, max(total_steps // cfg.d_steps, 1), constant_fraction=constant_fraction)
    name = model.objective.name
    g_params, d_params = model.g_parameters(), model.d_parameters()
    g_opt = _Optimization(g_params, make_optimizer(g_params, cfg, cfg.lr, name, device), g_schedule, precision.make_scaler())
    d_opt = _Optimization(d_params, make_optimizer(d_params, cfg, cfg.lr_d or cfg.lr, name, device), d_schedule,
                          precision.make_scaler())
    return d_opt, g_opt


def epoch_sampler(cfg: TrainConfig, dataset_size: int, dist: ddp.DistributedContext) -> EpochSampler:
    """This rank's sampler. One process with batch b*W sees at each step the union of what W processes
    with batch b see (rank r takes elements r, r + W, ...), so runs agree across process counts."""
    return EpochSampler(dataset_size, seed=cfg.seed, rank=dist.rank, world_size=dist.world_size)


def batches_per_epoch(cfg: TrainConfig, sampler: EpochSampler) -> int:
    return math.ceil(sampler.samples_per_rank / cfg.batch_size)


def total_steps_for(cfg: TrainConfig, batches_per_epoch: int) -> int:
    if cfg.max_steps is not None:
        return cfg.max_steps
    return (cfg.epochs + cfg.epochs_decay) * batches_per_epoch


def fit(
    model: TranslationModel,
    train_set,
    cfg: TrainConfig,
    run_dir: Path,
    *,
    precision: Precision,
    dist: ddp.DistributedContext = ddp.DistributedContext(),
    sample_batch: dict | None = None,
    spectral_monitors: dict | None = None,
    log=print,
    long_run_hint: str | None = None,
) -> FitResult:
    """Train `model` on `train_set` as `cfg` says, writing into `run_dir`; resumes from its
    checkpoint when cfg.resume is set. Returns where it stopped. `long_run_hint` is shown once if the
    measured speed puts the end more than a day away."""
    device = precision.device
    run_dir = Path(run_dir)
    channels_last = cfg.channels_last == "on" or (cfg.channels_last == "auto" and device.type == "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    ddp.broadcast_module(model)

    sampler = epoch_sampler(cfg, len(train_set), dist)
    per_epoch = batches_per_epoch(cfg, sampler)
    total_steps = total_steps_for(cfg, per_epoch)
    model.set_run_length(total_steps)
    d_opt, g_opt = make_optimizations(model, cfg, precision, total_steps)

    # Every rank draws its own randomness (dropout, pools, penalty interpolates) from its own stream.
    torch.manual_seed(cfg.seed * 7919 + 1 + dist.rank)
    step = 0
    state_path = run_dir / STATE_FILE
    if cfg.resume and state_path.exists():
        # A damaged state.pt, or one saved with settings that shape the networks otherwise, is one line.
        state = read_state(state_path)
        load_resume_state(state, state_path, model, {"g": g_opt, "d": d_opt}, rank=dist.rank, world_size=dist.world_size)
        step = int(state["step"])
        if step > total_steps:
            raise UsageError(f"cannot resume {run_dir} for {total_steps} steps: it is already at step {step}; give a "
                             f"--max-steps above {step}")
        # The monitors' running maxima (rank 0's, who writes them), so that a collapse that began
        # before the interruption is still judged against the peak from before it.
        for name, monitor in (spectral_monitors or {}).items():
            if name in state.get("spectral_monitors", {}):
                monitor.load_state_dict(state["spectral_monitors"][name])
        ranks = state["per_rank"]
        if len(ranks) == dist.world_size:  # (load_resume_state loaded this rank's extra state)
            restore_rng_state(ranks[dist.rank]["rng"])
        else:
            log(f"note: the checkpoint was written by {len(ranks)} processes, this run has {dist.world_size}: "
                "history pools and random streams restart, so the continuation is not bit-for-bit")
        log(f"resumed {run_dir} at step {step}/{total_steps}")

    metrics = tb = None
    if dist.is_main:
        metrics = MetricsLog(run_dir / "metrics.jsonl", keep_through_step=step)
        tb = TensorBoard(run_dir / "tensorboard" if cfg.tensorboard else None, resumed_at=step)

    saved_step = step if cfg.resume and state_path.exists() else None

    def stop_if_diverged():
        """A weight that is inf or NaN stays so (every later step is NaN): stop in one line, without a
        checkpoint, so that state.pt keeps the last good weights. The weights are the same on every rank,
        so every rank stops here together."""
        broken = non_finite_networks(model)
        if broken:
            kept = (f"{STATE_FILE} keeps step {saved_step}; resume it with a lower --lr" if saved_step is not None
                    else "no checkpoint was written; start again with a lower --lr")
            amp = " (or --amp off)" if precision.name != "fp32" else ""
            raise TrainingDiverged(f"training diverged by step {step}: {', '.join(broken)} hold weights that are not "
                                   f"finite numbers; {kept}{amp}")

    def save_checkpoint():
        nonlocal saved_step
        stop_if_diverged()
        per_rank = ddp.all_gather_objects({"rng": capture_rng_state(), "extra": model.extra_state()})
        if dist.is_main:
            atomic_torch_save(
                {
                    "format": CHECKPOINT_FORMAT,
                    "step": step,
                    "total_steps": total_steps,
                    "model": model.state_dict(),
                    "g": g_opt.state_dict(),
                    "d": d_opt.state_dict(),
                    "per_rank": per_rank,
                    "spectral_monitors": {name: m.state_dict() for name, m in (spectral_monitors or {}).items()},
                    "config": config_to_dict(cfg),
                },
                state_path,
            )
        ddp.barrier()
        saved_step = step

    def write_samples():
        if sample_batch is None or not dist.is_main:
            return
        was_training = model.training
        model.eval()
        with torch.no_grad(), precision.autocast():
            batch = _to_device(sample_batch, device, channels_last)
            columns = model.visuals(batch, model.generate(batch))
        model.train(was_training)
        grid = image_grid(columns)
        save_png(grid, run_dir / "samples" / f"step_{step:07d}.png")
        save_png(grid, run_dir / "samples" / "latest.png")
        tb.image("samples/" + "|".join(name for name, _ in columns), grid, step)

    loader = DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        drop_last=False,
        persistent_workers=cfg.workers > 0,
        worker_init_fn=_worker_leaves_stopping_to_the_loop,
        # Worker seeds from a private generator: creating an iterator must not draw from the global
        # RNG stream, or a resumed run (which creates one mid-epoch) would diverge.
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    ctx = StepContext(step=step, d_scaler=d_opt.scaler)
    means = RunningMeans()
    # A batch larger than the data holds what there is (the loader drops no partial batch).
    batch_images = min(cfg.batch_size, sampler.samples_per_rank)
    if batch_images < cfg.batch_size and dist.is_main:
        log(f"note: --batch-size {cfg.batch_size} is more than the {sampler.samples_per_rank} training samples"
            f"{' per process' if dist.world_size > 1 else ''}: each step trains on those {batch_images}")
    # The progress line's img/s: images per step averaged over an epoch (its last batch may be partial).
    progress = Progress(total_steps, step, sampler.samples_per_rank * dist.world_size / per_epoch,
                        enabled=dist.is_main, long_run_hint=long_run_hint)
    model.train()
    start = time.perf_counter()
    interval_start, interval_steps, interval_images = time.perf_counter(), 0, 0
    stopped_early = False

    with StopRequest() as stop, WorkersShutDown(loader):
        while step < total_steps:
            epoch, batch_in_epoch = divmod(step, per_epoch)
            # The sampler's (epoch, index) keys carry the epoch into the workers, so that crops, flips
            # and unpaired partners are those of this epoch even in persistent workers.
            sampler.set_epoch(epoch, start=batch_in_epoch * cfg.batch_size)
            for batch in loader:
                batch = _to_device(batch, device, channels_last)
                ctx.step = step
                update_g = (step + 1) % cfg.d_steps == 0

                means.add(train_step(model, batch, d_opt, g_opt, precision, ctx, update_g))

                step += 1
                interval_steps += 1
                interval_images += _batch_images(batch) * dist.world_size
                stopping = ddp.any_rank(stop.requested, device)
                # A stop logs the steps since the last line: a resumed run starts a fresh interval.
                log_step = step % cfg.log_every == 0 or step == total_steps or stopping
                if log_step:
                    values = ddp.mean_over_ranks(means.pop())  # every rank takes part; rank 0 writes
                    if any(isinstance(v, float) and not math.isfinite(v) for v in values.values()):
                        stop_if_diverged()  # (the same values on every rank)
                if log_step and dist.is_main:
                    elapsed = time.perf_counter() - interval_start
                    record = {
                        "step": step,
                        "epoch": epoch + 1,
                        **values,
                        "lr_G": g_opt.lr_used,
                        "lr_D": d_opt.lr_used,
                        "sec_per_step": elapsed / max(interval_steps, 1),
                        "images_per_sec": interval_images / max(elapsed, 1e-9),
                    }
                    if spectral_monitors and (step % cfg.spectral_every < cfg.log_every or step == total_steps):
                        for name, monitor in spectral_monitors.items():
                            for key, value in monitor.update(step).items():
                                record[f"{name}/{key}"] = value
                    if any(isinstance(v, float) and not math.isfinite(v) for v in values.values()):
                        log(f"warning: non-finite loss at step {step}: {values}")
                    metrics.write(record)
                    tb.scalars({k: v for k, v in record.items() if k not in ("step", "epoch")}, step)
                    progress.update(step, values)
                    interval_start, interval_steps, interval_images = time.perf_counter(), 0, 0
                elif dist.is_main:
                    progress.update(step)
                if step % cfg.sample_every == 0 and step < total_steps:
                    write_samples()
                if stopping:
                    stopped_early = step < total_steps
                    break
                if step % cfg.checkpoint_every == 0 and step < total_steps:
                    save_checkpoint()
                if step >= total_steps:
                    break
            if stopped_early:
                break
        if not stopped_early:
            # Inference statistics for batch norm from the final weights (no-op without batch norm).
            # The trained weights are saved first: a crash or a second Ctrl-C in those passes loses
            # nothing, and a resume at the last step redoes only them.
            if cfg.bn_refresh_batches > 0 and batch_norm_layers(model.g_modules()):
                save_checkpoint()
            sampler.set_epoch(0)
            batches = (_to_device(b, device, channels_last) for b in loader)
            used = refresh_batch_norm(model, batches, cfg.bn_refresh_batches, precision.autocast, cfg.d_steps)
            if used:
                log(f"batch-norm statistics recomputed over {used} training batches")
            write_samples()
        save_checkpoint()

    progress.close()
    if dist.is_main:
        metrics.close()
        tb.close()
    return FitResult(step=step, total_steps=total_steps, stopped_early=stopped_early, seconds=time.perf_counter() - start,
                     stop_signal=stop.signal if stopped_early else None)
