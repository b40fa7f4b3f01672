"""Data-parallel training across processes started by torchrun.

Why not `DistributedDataParallel`: a GAN step updates D and G alternately, runs D in G's step with D's
parameters frozen, runs D several times before one backward, and differentiates D twice for the
gradient penalty. DDP's autograd hooks expect one forward and one backward per parameter per step and
either deadlock or all-reduce gradients nobody uses in those patterns. Here each network's gradients
are averaged across ranks explicitly, once, right before its own optimizer step, in one coalesced
all-reduce (the approach of StyleGAN2-ADA/StyleGAN3's training loops). Parameters start identical
(broadcast from rank 0) and stay identical because every rank applies the same averaged update.

Batch norm: under several processes, batch statistics must cover the global batch. Every device uses
`CrossRankBatchNorm2d` below, which all-reduces the per-channel sums with autograd-aware collectives.
Not `torch.nn.SyncBatchNorm`: it does not run on CPU, and its backward ops have no derivative, so the
gradient penalty (a double backward through D) fails with it.

Multi-node runs use torchrun's rendezvous unchanged, e.g. on each of 2 nodes with 8 GPUs:
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m translate.cli.train cyclegan --data horse2zebra
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist
import torch.nn as nn


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def current_rank() -> int:
    """This process's rank in the process group (0 without one)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def init_distributed(device_type: str) -> DistributedContext:
    """Join the process group torchrun prepared (env:// rendezvous); a no-op for a single process."""
    if not launched_by_torchrun():
        return DistributedContext()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if device_type == "cuda":
            # before the process group: NCCL's barrier and all_gather_object work on the *current* CUDA
            # device, which is cuda:0 in every process unless each picks its own
            torch.cuda.set_device(local_rank)
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return DistributedContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)


def shutdown_distributed(*, synchronize: bool = True) -> None:
    """Leave the process group. With `synchronize` (a clean exit), every rank first meets the others at
    a barrier: gloo ranks that tear down their connections while a peer is still finishing its last
    collective can abort at exit ("terminate called without an active exception"), which torchrun
    reports as a failed run. After an error, no barrier: the other ranks may never arrive."""
    if dist.is_available() and dist.is_initialized():
        if synchronize and dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


def leave_process(code: int) -> None:
    """End a distributed process that has finished cleanly, without interpreter finalization.

    Gloo's C++ connection threads live in objects that are destroyed at finalization; one still
    joinable then calls std::terminate ("terminate called without an active exception", SIGABRT), and
    torchrun reports the whole run as failed after it has written everything. On the 2-core development
    machine under load that happened to about 1 two-rank run in 12 even after the barrier and
    destroy_process_group of `shutdown_distributed`. A run that got here has closed its logs and written
    its files atomically, so there is nothing left to finalize: flush the streams and exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _is_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Make every rank's parameters and buffers equal to rank `src`'s."""
    if not _is_active():
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=src)


@torch.no_grad()
def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over ranks, in one flat all-reduce.

    A parameter without a gradient on this rank counts as a zero gradient, so every rank sends the
    same buffer layout (ranks must never disagree on the collective's shape)."""
    if not _is_active():
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.numel()
        # in the parameter's own memory layout: the fused Adam reads parameter, gradient and moments as
        # flat memory without checking strides, so a contiguous gradient of a channels_last weight
        # would update each element with another element's gradient
        p.grad = torch.empty_like(p).copy_(flat[offset : offset + n].view(p.shape))
        offset += n


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is true on any rank (e.g. a stop request seen by one process)."""
    if not _is_active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_gather_objects(obj) -> list:
    if not _is_active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Logged scalars averaged over ranks (each over the ranks that report it): the losses of the
    global batch rather than of rank 0's share. Every rank must call it at the same step."""
    if not _is_active():
        return values
    reports = all_gather_objects(values)
    keys = list(dict.fromkeys(k for report in reports for k in report))
    return {k: sum(r[k] for r in reports if k in r) / sum(k in r for r in reports) for k in keys}


def barrier() -> None:
    if _is_active():
        dist.barrier()


class _SummedOverRanks(torch.autograd.Function):
    """y = the sum of x over ranks (an all-reduce), differentiable to any order: the gradient of each
    rank's x is the sum over ranks of the gradients of y, itself a sum over ranks, so the backward pass
    applies this same function (double backward, as the gradient penalty needs, works through it).
    (torch.distributed.nn.functional.all_reduce does the same and is deprecated.)"""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _SummedOverRanks.apply(grad.contiguous())


def summed_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The sum of `x` over every rank, with gradients (identity without a process group)."""
    return _SummedOverRanks.apply(x) if _is_active() else x


def global_batch_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean over dim 0 of the batches of every rank together, in at least float32, differentiable.

    For terms that are not averages of per-sample losses (feature matching compares batch means):
    averaging each rank's gradient of its own batch's statistic is not the gradient of the global
    batch's. Through the differentiable all-reduce, each rank's backward receives the sum of every
    rank's (equal) upstream gradient, which the later gradient average divides back by the world size."""
    x = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16 in, float32 sums; float64 stays
    if not _is_active():
        return x.mean(dim=0)
    count = torch.tensor([float(x.shape[0])], device=x.device, dtype=x.dtype)
    dist.all_reduce(count)
    return summed_over_ranks(x.sum(dim=0)) / count


class CrossRankBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose training statistics cover the batch of every rank, on any device.

    Mean and variance come from all-reduced per-channel sums through `summed_over_ranks`, which is
    differentiable, so the gradient is that of batch norm on the concatenated global batch. Two passes
    (count and sum, then the squares about the global mean): one pass's E[x^2] - mean^2 loses the
    variance to cancellation in float32 where |mean| >> std (a relative error of 2e-3 at mean 100,
    std 1), where one process's batch norm does not. Eval mode and single-process runs are plain batch norm.
    Its state dict is batch norm's, so checkpoints move freely between the two."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _is_active()):
            return super().forward(x)
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        count = torch.tensor([float(x.shape[0] * x.shape[2] * x.shape[3])], device=x.device, dtype=xf.dtype)
        stats = summed_over_ranks(torch.cat([count, xf.sum(dim=(0, 2, 3))]))
        n = stats[0]
        mean = stats[1:] / n
        centered = xf - mean[None, :, None, None]
        var = summed_over_ranks((centered * centered).sum(dim=(0, 2, 3))) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (n / (n - 1).clamp_min(1.0))
                self.running_mean.mul_(1 - momentum).add_(momentum * mean)
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
        y = centered * torch.rsqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def convert_batch_norm(module: nn.Module) -> nn.Module:
    """Swap BatchNorm2d layers for `CrossRankBatchNorm2d` (the same state dict, device and dtype)."""
    if type(module) is nn.BatchNorm2d:
        like = next(iter(module.parameters()), None)
        like = like if like is not None else module.running_mean
        new = CrossRankBatchNorm2d(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
            **({"device": like.device, "dtype": like.dtype} if like is not None else {}),
        )
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert_batch_norm(child))
    return module

