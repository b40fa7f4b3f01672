"""The WGAN-GP gradient penalty (Gulrajani et al. 2017, eq. 3), correct under mixed precision.

    penalty = lambda * E[(||grad_x D(x_hat)||_2 - 1)^2],   x_hat = a * x + (1 - a) * G(z),  a ~ U[0, 1]

one `a` per sample. A conditional critic is passed as a closure that holds the condition fixed
(`lambda x: D(x, condition)`), so only the image is interpolated.

The critic whose gradient is penalised is the one the loss uses: the objectives average D's logits
over every element, so a sample's critic value is the *mean* of its logits (over a PatchGAN map, and
over the maps of a multi-scale D). Penalising the gradient of the sum instead, as some code does,
would ask the loss's critic for a gradient norm of 1 / (number of patches), not 1. For one logit per
sample both are the same.

Under fp16 autocast with a GradScaler the recipe is PyTorch's ("Automatic Mixed Precision examples:
gradient penalty"): differentiate the *scaled* output so that small gradients survive fp16, divide the
gradients by the scale by hand (the scaler's own unscale_ acts on .grad of parameters, not on these),
then form the penalty. bf16 has fp32's exponent range and needs no scaler; pass scaler=None.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch

Critic = Callable[[torch.Tensor], Union[torch.Tensor, Sequence[torch.Tensor]]]

# Keeps d||g||/dg = g/||g|| finite where a critic is flat (g = 0 exactly, e.g. dead ReLUs); it moves
# the norm by at most 1e-6 of a unit, far below what any test or training run can see.
_NORM_EPS = 1e-12


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _per_sample_critic(out) -> torch.Tensor:
    """(N,) critic values: each sample's logits averaged, as `Objective.d_real`/`d_fake` average them."""
    if isinstance(out, torch.Tensor):
        return _at_least_float32(out).reshape(out.shape[0], -1).mean(dim=1)
    if not out:
        raise ValueError("the critic returned an empty list of logits")
    return torch.stack([_per_sample_critic(o) for o in out]).mean(dim=0)


def interpolate(real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random points on the segments between real and generated samples, one mixing weight each."""
    if real.shape != fake.shape:
        raise ValueError(f"real and fake batches differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
    alpha_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    # drawn on the generator's device (a CPU generator may serve CUDA batches)
    device = generator.device if generator is not None else real.device
    alpha = torch.rand(alpha_shape, generator=generator, device=device, dtype=torch.float32).to(real.device)
    # mixed in at least float32 (bf16 inputs would round the mix), float64 stays float64
    dtype = torch.promote_types(real.dtype, torch.float32)
    alpha = alpha.to(dtype)
    return (alpha * real.detach().to(dtype) + (1.0 - alpha) * fake.detach().to(dtype)).to(real.dtype)


def critic_gradient_norms(critic: Critic, x: torch.Tensor, scaler=None) -> torch.Tensor:
    """Per-sample L2 norms of d critic(x) / dx, with a graph so that they can be penalised."""
    x = x.detach().requires_grad_(True)
    # Summing over the batch gives every sample its own gradient: samples are independent (no batch
    # norm in a WGAN-GP critic, Gulrajani et al. sec. 4; the models build theirs with layer norm,
    # translate.models.base.critic_norm).
    out = _per_sample_critic(critic(x)).sum()
    if scaler is not None and scaler.is_enabled():
        (grad,) = torch.autograd.grad(scaler.scale(out), x, create_graph=True)
        grad = grad * (1.0 / scaler.get_scale())
    else:
        (grad,) = torch.autograd.grad(out, x, create_graph=True)
    grad = _at_least_float32(grad).flatten(1)
    return torch.sqrt(grad.pow(2).sum(dim=1) + _NORM_EPS)


def gradient_penalty(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    weight: float = 10.0,
    scaler=None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """lambda * mean((||grad D(x_hat)|| - 1)^2) on random interpolates of `real` and `fake`.

    Call it inside the same autocast context as the critic's other forward passes; the result is a
    float32 scalar to add to the critic's loss before `scaler.scale(loss).backward()`."""
    norms = critic_gradient_norms(critic, interpolate(real, fake, generator), scaler=scaler)
    return weight * ((norms - 1.0) ** 2).mean()
