"""Instance noise: Gaussian noise on everything D sees, real and generated alike.

Early in training p_data and p_G live on low-dimensional manifolds that barely overlap, so the
optimal D separates them perfectly, JS(p_data || p_G) = log 2 whatever G does, and G's gradient
vanishes (Arjovsky & Bottou 2017, "Towards Principled Methods for Training GANs", sec. 2-3; seed
002). Convolving both distributions with the same Gaussian makes their supports overlap, so the
divergence is smooth again (Sønderby et al. 2016, "Amortised MAP Inference for Image
Super-resolution", who named it instance noise). The noise biases the game, so its std is annealed to 0
as G's samples approach the data: here linearly, std(t) = std * max(0, 1 - t / anneal_steps).
"""

from __future__ import annotations

import torch


class InstanceNoise:
    """x -> x + std(step) * N(0, I), with std annealed linearly from `std` to 0 over `anneal_steps`.

    Apply the same instance to D's real and generated inputs (and to conditional D's image input, not
    to the condition). std = 0, or a step at or past anneal_steps, returns the input unchanged.
    anneal_steps=None keeps the std constant."""

    def __init__(self, std: float = 0.1, anneal_steps: int | None = None):
        if std < 0:
            raise ValueError(f"instance noise std must be >= 0, got {std}")
        if anneal_steps is not None and anneal_steps < 1:
            raise ValueError(f"anneal_steps must be a positive number of steps or None, got {anneal_steps}")
        self.std = float(std)
        self.anneal_steps = anneal_steps

    def std_at(self, step: int) -> float:
        """The noise std at training step `step` (0-based)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if self.anneal_steps is None:
            return self.std
        return self.std * max(0.0, 1.0 - step / self.anneal_steps)

    def __call__(self, x: torch.Tensor, step: int, generator: torch.Generator | None = None) -> torch.Tensor:
        std = self.std_at(step)
        if std == 0.0:
            return x
        # Drawn where the generator lives (a CPU generator may serve CUDA inputs), in float32 so that a
        # seeded run draws the same noise whatever the input precision.
        device = generator.device if generator is not None else x.device
        noise = torch.randn(x.shape, generator=generator, device=device, dtype=torch.float32)
        return x + (std * noise).to(device=x.device, dtype=x.dtype)

    def __repr__(self) -> str:
        return f"InstanceNoise(std={self.std}, anneal_steps={self.anneal_steps})"
