"""skae: autoencoders as first-class scikit-learn estimators."""

from skae._autoencoder import AutoencoderTransformer
from skae._classifier import AutoencoderClassifier, AutoencoderRegressor
from skae._contractive import ContractiveAE
from skae._conv import ConvAutoencoder
from skae._denoising import DenoisingAE
from skae._dictionary import DictionaryLearner
from skae._graph import GraphAutoencoder
from skae._outlier import OutlierDetector
from skae._persistence import load, save
from skae._sequence import SequenceAutoencoder
from skae._sparse import SparseAE
from skae._vae import VAE

__version__ = "0.1.0"

__all__ = [
    "AutoencoderClassifier",
    "AutoencoderRegressor",
    "AutoencoderTransformer",
    "ContractiveAE",
    "ConvAutoencoder",
    "DenoisingAE",
    "DictionaryLearner",
    "GraphAutoencoder",
    "OutlierDetector",
    "SequenceAutoencoder",
    "SparseAE",
    "VAE",
    "load",
    "save",
]
