"""The adversarial core shared by every model and by the 2-D lab: GAN objectives, the WGAN-GP gradient
penalty, spectral normalization / regularization of D, the spectral monitor, the history pool of
generated images and instance noise."""

from translate.core.objectives import (
    OBJECTIVE_NAMES,
    Objective,
    canonical_objective_name,
    clip_weights_,
    get_objective,
)
from translate.core.penalty import critic_gradient_norms, gradient_penalty, interpolate
from translate.core.spectral import (
    REGULARIZER_KINDS,
    SpectralRegularizer,
    SpectralWeight,
    apply_d_regularizer,
    raw_weight,
    singular_values,
    weight_matrix,
)

__all__ = [
    "OBJECTIVE_NAMES",
    "Objective",
    "canonical_objective_name",
    "clip_weights_",
    "get_objective",
    "critic_gradient_norms",
    "gradient_penalty",
    "interpolate",
    "REGULARIZER_KINDS",
    "SpectralRegularizer",
    "SpectralWeight",
    "apply_d_regularizer",
    "raw_weight",
    "singular_values",
    "weight_matrix",
]
