"""skae: autoencoders as first-class scikit-learn estimators."""

from skae._autoencoder import AutoencoderTransformer

__version__ = "0.1.0"

__all__ = ["AutoencoderTransformer"]
