"""Batch-norm statistics recomputed with the final weights ("precise BN", Wu and Johnson 2021,
"Rethinking 'Batch' in BatchNorm", sec. 3).

In training a batch-norm layer normalizes with the batch's own statistics and keeps an exponential
moving average of them (momentum 0.1) for inference. That average covers the last twenty-odd batches,
each computed with different weights, and with small batches (pix2pix: 1 to 4 images; at the U-Net's
2x2 and 4x4 levels a batch of 4 gives 16 to 64 values per channel) it is a noisy estimate: the
generator, which decides colours in those deep layers, then translates differently in eval mode than in
training. Measured on synth-edges2landscape (unet_128, batch 4, step 3000): L1 0.213 with the moving
averages against 0.079 with recomputed statistics, the training-mode batch statistics of all 50 test
images giving 0.081 (docs/pix2pix.md).

`refresh_batch_norm` resets every batch-norm layer of the generators and accumulates the plain average
of per-batch statistics over up to `max_batches` training batches (momentum None), with the weights
frozen and dropout off (as at inference). Each batch gets the generator calls a training iteration
makes (`TranslationModel.statistics_pass`), so the result estimates what the moving averages track,
without their noise: for two-way models G_A runs on real A, on G_B's fakes and, with an identity term,
on real B. Statistics of real inputs alone would reproduce the generator's training-mode output on
them, which for DiscoGAN is speckled and scores far worse (docs/unpaired.md). Models without batch
norm (CycleGAN's instance norm) are left untouched, and no random stream is drawn from, so resuming
stays exact.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable

import torch
import torch.nn as nn

from translate.train.checkpoint import capture_rng_state, restore_rng_state


def batch_norm_layers(modules: Iterable[nn.Module]) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for module in modules for m in module.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def refresh_batch_norm(model, batches: Iterable[dict], max_batches: int,
                       autocast: Callable[[], object] | None = None, d_steps: int = 1) -> int:
    """Recompute the running statistics of the generators' batch-norm layers from `batches` (at most
    `max_batches` of them), each taken as training takes it with `d_steps` (every d_steps-th batch
    a G iteration). Returns how many batches were used (0: nothing to do)."""
    layers = batch_norm_layers(model.g_modules())
    if not layers or max_batches <= 0:
        return 0
    was_training = model.training
    momenta = [layer.momentum for layer in layers]
    rng = capture_rng_state()
    model.eval()  # dropout off, as at inference ...
    for layer in layers:  # ... but batch norm learning its statistics
        layer.reset_running_stats()
        layer.momentum = None  # the cumulative (plain) average over batches
        layer.train()
    used = 0
    try:
        for batch in batches:
            if used >= max_batches:
                break
            with autocast() if autocast is not None else contextlib.nullcontext():
                model.statistics_pass(batch, update_g=(used + 1) % d_steps == 0)
            used += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
        restore_rng_state(rng)
    return used
