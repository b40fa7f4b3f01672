"""The spectral monitor: watch D's normalized singular values for spectral collapse.

Liu et al. 2019 ("Spectral Regularization for Combating Mode Collapse in GANs"; seed 004) observe that
when mode collapse sets in, the singular values of D's weight matrices, normalized by the largest
(s_j / s1, the spectrum of the spectrally normalized weight), fall sharply: *spectral collapse*. In a
healthy D most of them stay well above zero.

For each weight layer of D this logs, from the raw trained weight W (before any SN/SR parametrization,
whose effective spectrum is held up by construction):

    spectrum/<layer>/mean         mean of s_j / s1
    spectrum/<layer>/above_half   how many s_j / s1 exceed 0.5
    spectrum/mean                 the mean of the per-layer means

and `update` adds `spectrum/collapsed_layers` (how many layers are in collapse now). A layer is in
collapse when its mean, or its count above 0.5, has fallen below (1 - drop) times its running maximum
over past updates. Entering collapse is reported with `logging` (logger `translate.core.monitor`),
not `warnings`: it is an event in a training run's data, not a misuse of the API, so it belongs in the
run's log with the metrics, and `warnings`' once-per-location filter would hide later episodes.

Cost: one symmetric eigenvalue problem per layer (`spectral.singular_values`), about 0.35 s for the
whole 70x70 PatchGAN on the shared 2-core CPU: affordable every few hundred steps.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from translate.core.spectral import WEIGHT_LAYER_TYPES, output_dim, raw_weight, singular_values, weight_matrix

logger = logging.getLogger(__name__)

# A count's fall is only judged once it has been at least this large: a layer going from 2 values
# above one half to 1 is noise, not collapse.
_MIN_COUNT_TO_JUDGE = 4


class SpectralMonitor:
    """Normalized-spectrum statistics of every weight layer of `module`, with collapse detection.

    drop: a statistic in collapse has lost more than this fraction of its running maximum (0.5: it
    halved). Layers whose weight matrix has a single row or column (one singular value, s1 / s1 = 1,
    e.g. PatchGAN's last conv) carry no information and are left out."""

    def __init__(
        self,
        module: nn.Module,
        *,
        drop: float = 0.5,
        layer_types: tuple[type[nn.Module], ...] = WEIGHT_LAYER_TYPES,
    ):
        if not 0.0 < drop < 1.0:
            raise ValueError(f"drop must be a fraction in (0, 1), got {drop}")
        self.drop = drop
        self.layers: dict[str, nn.Module] = {}
        for name, layer in module.named_modules():
            if not isinstance(layer, layer_types):
                continue
            w = raw_weight(layer)
            if w.dim() >= 2 and min(weight_matrix(w, output_dim(layer)).shape) >= 2:
                self.layers[name or "weight"] = layer
        self.running_max: dict[str, float] = {}
        self.collapsed: set[str] = set()

    @torch.no_grad()
    def measure(self) -> dict[str, float]:
        """The per-layer mean of s_j / s1 and count of s_j / s1 > 0.5, and their overall mean."""
        stats: dict[str, float] = {}
        means = []
        for name, layer in self.layers.items():
            weight = raw_weight(layer)
            if not bool(torch.isfinite(weight).all()):  # diverged: no spectrum to read
                stats[f"spectrum/{name}/mean"] = stats[f"spectrum/{name}/above_half"] = float("nan")
                continue
            s = singular_values(weight_matrix(weight, output_dim(layer)))
            ratios = s / s[0] if s[0] > 0 else torch.zeros_like(s)
            mean = ratios.mean().item()
            stats[f"spectrum/{name}/mean"] = mean
            stats[f"spectrum/{name}/above_half"] = float((ratios > 0.5).sum().item())
            means.append(mean)
        if means:
            stats["spectrum/mean"] = sum(means) / len(means)
        return stats

    def update(self, step: int) -> dict[str, float]:
        """Measure, update the running maxima, log a warning for layers that have just collapsed."""
        stats = self.measure()
        collapsed_now: dict[str, list[str]] = {}
        for name in self.layers:
            for statistic in ("mean", "above_half"):
                key = f"spectrum/{name}/{statistic}"
                value = stats[key]
                peak = self.running_max.get(key, value)
                judged = statistic == "mean" or peak >= _MIN_COUNT_TO_JUDGE
                if judged and value < (1.0 - self.drop) * peak:
                    collapsed_now.setdefault(name, []).append(f"{statistic} {value:.3g} (max {peak:.3g})")
                self.running_max[key] = max(peak, value)
        newly = [name for name in collapsed_now if name not in self.collapsed]
        if newly:
            details = "; ".join(f"layer {name}: {', '.join(collapsed_now[name])}" for name in newly)
            logger.warning(
                "spectral collapse at step %d: D's normalized singular values s_j/s1 fell by more than "
                "%d%% of their maximum in %s; mode collapse usually goes with it (try --d-reg sr-dynamic)",
                step,
                round(100 * self.drop),
                details,
            )
        self.collapsed = set(collapsed_now)
        stats["spectrum/collapsed_layers"] = float(len(self.collapsed))
        return stats

    def state_dict(self) -> dict:
        return {"running_max": dict(self.running_max), "collapsed": sorted(self.collapsed)}

    def load_state_dict(self, state: dict) -> None:
        self.running_max = dict(state["running_max"])
        self.collapsed = set(state["collapsed"])
