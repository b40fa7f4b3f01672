"""Learning-rate schedules, as multipliers of the base lr per optimizer step.

`linear` is the published CycleGAN/pix2pix schedule: the lr stays constant for `epochs` epochs, then
decays linearly to zero over `epochs_decay` epochs (Zhu et al. 2017, sec. 7.1: "100 epochs at 0.0002,
then linearly decay to zero over the next 100"). Here it is applied per step rather than per epoch, so
`--max-steps` runs keep the same shape: constant for the first epochs / (epochs + epochs_decay) of the
steps, then a straight line down to (almost) zero.
"""

from __future__ import annotations

import math
from typing import Callable

from translate.errors import UsageError

SCHEDULES = ("linear", "constant", "step", "cosine")


def lr_multiplier(
    kind: str,
    total_steps: int,
    *,
    constant_fraction: float = 0.5,
    step_every: int | None = None,
    step_gamma: float = 0.1,
) -> Callable[[int], float]:
    """A function from the number of optimizer steps taken so far to the lr multiplier."""
    total_steps = max(int(total_steps), 1)
    if kind == "constant":
        return lambda step: 1.0
    if kind == "linear":
        start = int(round(total_steps * constant_fraction))
        span = max(total_steps - start, 1)

        def linear(step: int) -> float:
            # The reference's rule, 1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1) with
            # epoch_count 1, one step for one epoch: `start` steps at the full lr, the first decayed step
            # at 1 - 1 / (span + 1), the last still training at 1 / (span + 1).
            return 1.0 - max(0, step + 1 - start) / (span + 1)

        return linear
    if kind == "step":
        every = step_every or max(total_steps // 3, 1)
        return lambda step: step_gamma ** (step // every)
    if kind == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    raise UsageError(f"unknown lr schedule {kind!r}; use one of {', '.join(SCHEDULES)}")
