"""Under torchrun: the gradients of a gradient penalty and of DiscoGAN's feature matching, both through
cross-rank batch norm, averaged over ranks; rank 0 saves them. `reference()` gives one process's
gradients on the whole batch. Float64, so that the two agree to rounding (tests/test_train_loop.py).

    torchrun --nproc-per-node 2 -m tests.cross_rank_check OUT.pt
"""

from __future__ import annotations

import sys

import torch
import torch.nn as nn

BATCH = 4


def networks() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    G = nn.Conv2d(3, 3, 3, padding=1)
    D = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))
    return G.double(), D.double()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return (torch.randn(BATCH, 3, 8, 8, generator=g, dtype=torch.float64),
            torch.randn(BATCH, 3, 8, 8, generator=g, dtype=torch.float64))


def gradients(G: nn.Module, D: nn.Module, x: torch.Tensor, real: torch.Tensor, term: str) -> list[torch.Tensor]:
    from translate.core.penalty import critic_gradient_norms
    from translate.models.discogan import feature_matching

    fake = G(x)
    if term == "penalty":  # on fixed interpolates (the random ones would differ between the runs)
        loss = 10.0 * ((critic_gradient_norms(D, 0.3 * real + 0.7 * fake.detach()) - 1.0) ** 2).mean()
    else:
        with torch.no_grad():
            real_features = [D[:2](real), D(real)]
        loss = feature_matching(real_features, [D[:2](fake), D(fake)])
    params = list(G.parameters()) + list(D.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def reference() -> dict[str, list[torch.Tensor]]:
    x, real = batch()
    return {term: gradients(*networks(), x, real, term) for term in ("penalty", "matching")}


def main(out: str) -> None:
    import torch.distributed as dist

    import translate.train.distributed as ddp

    torch.set_num_threads(1)
    context = ddp.init_distributed("cpu")
    n = BATCH // context.world_size
    x, real = batch()
    mine = slice(context.rank * n, (context.rank + 1) * n)
    result = {}
    for term in ("penalty", "matching"):
        G, D = networks()
        D = ddp.convert_batch_norm(D)
        params = list(G.parameters()) + list(D.parameters())
        for p, g in zip(params, gradients(G, D, x[mine], real[mine], term)):
            p.grad = g
        ddp.average_gradients(params)
        result[term] = [p.grad.clone() for p in params]
    if context.is_main:
        torch.save(result, out)
    dist.barrier()
    ddp.shutdown_distributed()


if __name__ == "__main__":
    main(sys.argv[1])
