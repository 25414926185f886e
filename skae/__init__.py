"""skae: autoencoders as first-class scikit-learn estimators."""

from skae._autoencoder import AutoencoderTransformer
from skae._persistence import load, save
from skae._vae import VAE

__version__ = "0.1.0"

__all__ = ["AutoencoderTransformer", "VAE", "load", "save"]
