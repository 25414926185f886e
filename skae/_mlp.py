"""The parameters of multi-layer-perceptron autoencoders, in one place.

``hidden_layer_sizes``, ``activation`` and ``dropout`` describe an MLP
encoder and its mirrored decoder; ``pretraining`` trains such a stack greedily,
layer by layer. :class:`MLPMixin` and :class:`LayerwisePretrainingMixin` carry
their validation, their part of the fitted architecture and their training
phase, so an estimator with another kind of network (convolutional,
recurrent, a user's module) derives from :class:`~skae._base.BaseAutoencoder`
alone and inherits none of them.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from skae._phases import LayerwisePretraining
from skae.nn import ACTIVATIONS, LinearPlusMLP, MLPAutoencoder, linear_layers

#: Rows the PCA initialization looks at (evenly spaced blocks of the data).
PCA_INIT_MAX_ROWS = 20000
_PCA_INIT_BLOCK = 1000
#: Up to this many features the directions are exact (a d x d eigenproblem).
_PCA_INIT_MAX_EXACT_FEATURES = 4096

#: Constraints of the MLP parameters, merged into an estimator's own.
MLP_PARAMETER_CONSTRAINTS = {
    "hidden_layer_sizes": ["array-like"],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "dropout": [Interval(Real, 0, 1, closed="left")],
}

#: Constraint of ``pretraining``, for the estimators that offer it.
PRETRAINING_PARAMETER_CONSTRAINTS = {
    "pretraining": [StrOptions({"layerwise"}), None],
}


class MLPMixin:
    """An MLP encoder with a mirrored decoder, from ``hidden_layer_sizes``,
    ``activation`` and ``dropout`` (and the model's ``_code_activation()``)."""

    def _validate_model_params(self, n_features):
        super()._validate_model_params(n_features)
        sizes = self.hidden_layer_sizes
        if np.ndim(sizes) != 1 or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h >= 1
            for h in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a sequence of positive integers, got "
                f"{sizes!r}."
            )

    def _code_activation(self):
        """Activation of the code layer: None is linear, as in PCA."""
        return None

    def _architecture(self, n_features):
        return {
            "n_features": int(n_features),
            "n_components": int(self.n_components),
            "hidden_layer_sizes": tuple(int(h) for h in self.hidden_layer_sizes),
            "activation": self.activation,
            "code_activation": self._code_activation(),
            "dropout": float(self.dropout),
        }

    def _build_module(self, architecture):
        return MLPAutoencoder(**architecture)


class LayerwisePretrainingMixin:
    """``pretraining="layerwise"``: greedy layer-wise pretraining of the MLP
    stack (``max_iter`` epochs per level) before the end-to-end training."""

    def _phases(self):
        phases = super()._phases()
        if self.pretraining == "layerwise":
            phases.insert(0, LayerwisePretraining(self.max_iter))
        return phases


@torch.no_grad()
def principal_directions(rows, n_components):
    """Mean and leading principal directions of training rows, float32.

    Reads at most ``PCA_INIT_MAX_ROWS`` rows, in evenly spaced blocks (rows
    of a memory map or a dask array may be ordered, e.g. by class).

    Returns
    -------
    mean : torch.Tensor of shape (n_features,)
    directions : torch.Tensor of shape (n_features, min(n_components, n_features))
        Orthonormal columns, by decreasing variance.
    """
    n = len(rows)
    if n <= PCA_INIT_MAX_ROWS:
        starts = range(0, n, _PCA_INIT_BLOCK)
    else:
        n_blocks = PCA_INIT_MAX_ROWS // _PCA_INIT_BLOCK
        starts = np.linspace(0, n - _PCA_INIT_BLOCK, n_blocks).astype(int)
    blocks = [(int(s), min(int(s) + _PCA_INIT_BLOCK, n)) for s in starts]
    n_features = rows.rows(0, 1).shape[1]
    k = min(n_components, n_features)
    if n_features > _PCA_INIT_MAX_EXACT_FEATURES:
        # Many features: a randomized SVD of the rows (it draws from the
        # seeded global RNG of the module's initialization).
        X = torch.cat([rows.rows(a, b) for a, b in blocks]).double()
        mean = X.mean(dim=0)
        _, _, vectors = torch.svd_lowrank(X - mean, q=min(k + 10, *X.shape))
        constant = (X == X[:1]).all(dim=0)
        return mean.float(), _without_constant_features(vectors[:, :k], constant)
    # One block at a time into the mean and the d x d scatter matrix, so the
    # memory is a block and the scatter, whatever the number of rows.
    count, total, products = 0, 0.0, 0.0
    first = rows.rows(0, 1).double()[0]
    constant = torch.ones_like(first, dtype=torch.bool)
    for a, b in blocks:
        x = rows.rows(a, b).double()
        count += len(x)
        total = total + x.sum(dim=0)
        products = products + x.T @ x
        constant &= (x == first).all(dim=0)
    mean = total / count
    scatter = products - count * torch.outer(mean, mean)
    # Right singular vectors: the scatter matrix's leading eigenvectors.
    _, vectors = torch.linalg.eigh(scatter)
    return mean.float(), _without_constant_features(
        vectors[:, -k:].flip(dims=(1,)), constant
    )


def _without_constant_features(directions, constant):
    """``directions`` (float32) with exact zeros on features that never vary.

    PCA's directions have no weight on a constant feature, but an eigensolver
    leaves round-off there (1e-16), and Adam scales the tiny gradients of such
    weights up to its step size: the start would then reconstruct MNIST's
    blank border pixels as noise of up to 0.01 instead of exactly 0.
    """
    directions = directions.clone()
    directions[constant] = 0
    return directions.float()


@torch.no_grad()
def initialize_as_pca(module, rows):
    """Make an autoencoder with a linear code start as PCA of ``rows``.

    The linear encoder projects onto the principal directions and the linear
    decoder maps back, so at the start the codes are PCA's scores and the
    reconstruction is PCA's; the MLP corrections of a
    :class:`~skae.nn.LinearPlusMLP` start at zero (their last layer). Code
    units beyond ``n_features`` start as random projections that decode to
    nothing.
    """
    encoder, decoder = module.encoder, module.decoder
    linear_enc = encoder.linear if isinstance(encoder, LinearPlusMLP) else encoder[0]
    linear_dec = decoder.linear if isinstance(decoder, LinearPlusMLP) else decoder[0]
    mean, directions = principal_directions(rows, linear_enc.out_features)
    mean = mean.to(linear_enc.weight.device)
    directions = directions.to(linear_enc.weight.device)
    k = directions.shape[1]
    linear_enc.weight[:k] = directions.T
    linear_enc.bias[:k] = -directions.T @ mean
    linear_dec.weight.zero_()
    linear_dec.weight[:, :k] = directions
    linear_dec.bias.copy_(mean)
    for part in (encoder, decoder):
        if isinstance(part, LinearPlusMLP):
            last = linear_layers(part.mlp)[-1]
            last.weight.zero_()
            last.bias.zero_()
