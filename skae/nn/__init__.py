"""Torch modules used by skae's estimators: no losses, no training loops."""

from skae.nn._mlp import (
    ACTIVATIONS,
    MLPAutoencoder,
    linear_layers,
    make_mlp,
    output_activation,
)

__all__ = [
    "ACTIVATIONS",
    "MLPAutoencoder",
    "linear_layers",
    "make_mlp",
    "output_activation",
]
