"""Torch modules used by skae's estimators: no losses, no training loops."""

from skae.nn._mlp import (
    ACTIVATIONS,
    MLPAutoencoder,
    linear_layers,
    make_mlp,
    output_activation,
)
from skae.nn._vae import GaussianEncoder, VAEModule

__all__ = [
    "ACTIVATIONS",
    "GaussianEncoder",
    "MLPAutoencoder",
    "linear_layers",
    "make_mlp",
    "output_activation",
    "VAEModule",
]
