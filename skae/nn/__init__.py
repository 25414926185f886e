"""Torch modules used by skae's estimators: no losses, no training loops.

Every estimator's module follows :class:`AutoencoderModule` (``encode``,
``decode``, ``encoder``, ``decoder``): the extension point for new
architectures.
"""

from skae.nn._conv import ConvAutoencoderModule
from skae.nn._mlp import (
    ACTIVATIONS,
    LinearPlusMLP,
    MLPAutoencoder,
    linear_layers,
    make_mlp,
    output_activation,
)
from skae.nn._protocol import AutoencoderModule, EncoderDecoder
from skae.nn._recurrent import (
    RecurrentAutoencoder,
    RecurrentDecoder,
    RecurrentEncoder,
)
from skae.nn._sae import BatchTopK, JumpReLU, SAEModule
from skae.nn._vae import GaussianEncoder, VAEModule

__all__ = [
    "ACTIVATIONS",
    "AutoencoderModule",
    "BatchTopK",
    "ConvAutoencoderModule",
    "EncoderDecoder",
    "GaussianEncoder",
    "JumpReLU",
    "LinearPlusMLP",
    "MLPAutoencoder",
    "RecurrentAutoencoder",
    "RecurrentDecoder",
    "RecurrentEncoder",
    "linear_layers",
    "make_mlp",
    "output_activation",
    "SAEModule",
    "VAEModule",
]
