"""The adversarial core shared by every model and by the 2-D lab: GAN objectives, the WGAN-GP gradient
penalty, spectral normalization / regularization of D, the spectral monitor, the history pool of
generated images and instance noise."""

from translate.core.monitor import SpectralMonitor
from translate.core.noise import InstanceNoise
from translate.core.objectives import (
    OBJECTIVE_NAMES,
    Objective,
    canonical_objective_name,
    clip_weights_,
    get_objective,
)
from translate.core.penalty import critic_gradient_norms, gradient_penalty, interpolate
from translate.core.pool import HistoryPool
from translate.core.spectral import (
    REGULARIZER_KINDS,
    WEIGHT_LAYER_TYPES,
    SpectralRegularizer,
    SpectralWeight,
    apply_d_regularizer,
    canonical_regularizer_kind,
    raw_weight,
    singular_values,
    svd,
    weight_matrix,
)

__all__ = [
    # objectives
    "OBJECTIVE_NAMES",
    "Objective",
    "canonical_objective_name",
    "clip_weights_",
    "get_objective",
    # gradient penalty
    "critic_gradient_norms",
    "gradient_penalty",
    "interpolate",
    # spectral normalization / regularization
    "REGULARIZER_KINDS",
    "WEIGHT_LAYER_TYPES",
    "SpectralRegularizer",
    "SpectralWeight",
    "apply_d_regularizer",
    "canonical_regularizer_kind",
    "raw_weight",
    "singular_values",
    "svd",
    "weight_matrix",
    # spectral monitor, history pool, instance noise
    "SpectralMonitor",
    "HistoryPool",
    "InstanceNoise",
]
