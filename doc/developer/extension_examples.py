"""Worked examples of the developer guide: a new sparsity kind and a new
network. ``tests/test_extension_points.py`` runs them, so the guide's code
cannot rot."""

import torch
from torch import nn

from skae._base import BaseAutoencoder
from skae._sparsity import SparsityKind


# --------------------------------------------------- a new sparsity kind
class LogSparsity(SparsityKind):
    r"""Linear codes with the log penalty
    :math:`\beta \sum_j \log(1 + h_j^2)`, which, unlike L1, barely shrinks
    large activations."""

    default_weight = 0.05

    def penalty(self, code, weight, sparsity_target):
        return weight * torch.log1p(code.square()).sum(dim=1).mean()

    def fires(self, code):
        # Codes of either sign; tiny ones do not count as firing.
        return code.abs() > 1e-3


# ------------------------------------------------------- a new network
class TiedDecoder(nn.Module):
    """The transpose of a linear encoder, with a bias of its own."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = [encoder]  # a plain list: not a second copy in state_dict
        self.bias = nn.Parameter(torch.zeros(encoder.in_features))

    def forward(self, z):
        return z @ self.encoder[0].weight + self.bias


class TiedLinearModule(nn.Module):
    """A linear autoencoder whose decoder is its encoder's transpose."""

    def __init__(self, n_features, n_components):
        super().__init__()
        self.encoder = nn.Linear(n_features, n_components)
        self.decoder = TiedDecoder(self.encoder)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


class TiedAutoencoder(BaseAutoencoder):
    """A linear autoencoder with tied weights, as a scikit-learn transformer.

    Parameters
    ----------
    n_components : int, default=2
        Size of the code.
    **other parameters
        As :class:`skae.AutoencoderTransformer`'s training parameters.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, _ = load_iris(return_X_y=True)
    >>> TiedAutoencoder(max_iter=5, random_state=0).fit_transform(X).shape
    (150, 2)
    """

    def __init__(
        self,
        n_components=2,
        *,
        loss="auto",
        scaling="auto",
        alpha=0.0,
        learning_rate=1e-2,
        batch_size="auto",
        max_iter=200,
        shuffle=True,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.loss = loss
        self.scaling = scaling
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _architecture(self, n_features):
        # Plain values only: this dict is the fitted ``architecture_``.
        return {"n_features": int(n_features), "n_components": self.n_components}

    def _build_module(self, architecture):
        return TiedLinearModule(**architecture)
