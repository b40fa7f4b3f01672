"""Generators, discriminators and condition encoders (see docs/nets.md)."""

from translate.nets.conditions import LabelEmbedding, TextEncoder, Vocabulary, tokenize
from translate.nets.discriminators import (
    DiscoGANDiscriminator,
    DiscriminatorConfig,
    MultiScaleDiscriminator,
    PatchDiscriminator,
    PixelDiscriminator,
    ProjectionHead,
)
from translate.nets.factory import (
    DISCRIMINATOR_NAMES,
    GENERATOR_NAMES,
    PUBLISHED_NORMS,
    build_discriminator_from_config,
    build_generator_from_config,
    check_image_size,
    create_discriminator,
    create_generator,
    required_multiple,
)
from translate.nets.generators import DiscoGANGenerator, GeneratorConfig, ResnetGenerator, UNetGenerator
from translate.nets.layers import FiLM, init_weights, pad_to_multiple, parameter_count, receptive_field

__all__ = [
    "DISCRIMINATOR_NAMES",
    "GENERATOR_NAMES",
    "PUBLISHED_NORMS",
    "DiscoGANDiscriminator",
    "DiscoGANGenerator",
    "DiscriminatorConfig",
    "FiLM",
    "GeneratorConfig",
    "LabelEmbedding",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
    "PixelDiscriminator",
    "ProjectionHead",
    "ResnetGenerator",
    "TextEncoder",
    "UNetGenerator",
    "Vocabulary",
    "build_discriminator_from_config",
    "build_generator_from_config",
    "check_image_size",
    "create_discriminator",
    "create_generator",
    "init_weights",
    "pad_to_multiple",
    "parameter_count",
    "receptive_field",
    "required_multiple",
    "tokenize",
]
