"""Torch modules of the variational autoencoder (no losses, no sampling).

A :class:`GaussianEncoder` maps ``x`` to the mean and log-variance of a
diagonal Gaussian :math:`q(z \\mid x)`; a :class:`VAEModule` pairs it with an MLP
decoder whose output parametrizes :math:`p(x \\mid z)` (logits for a
product-Bernoulli, the mean for a Gaussian, whose log-variance is a learned
parameter of the module). The ELBO and its relatives live in
:mod:`skae._vae_math`.
"""

import math

import torch
from torch import nn

from skae.nn._mlp import ACTIVATIONS, Dropout, make_mlp

#: Floor of the Gaussian decoder's variance, in the internally scaled units:
#: a constant (or duplicated) feature must not make the density unbounded.
MIN_VARIANCE = 1e-3


def floored_logvar(raw_logvar):
    """``log(exp(raw) + MIN_VARIANCE)``: a log-variance floored smoothly at
    ``log(MIN_VARIANCE)``.

    Examples
    --------
    >>> import torch
    >>> from skae.nn._vae import floored_logvar
    >>> floored_logvar(torch.tensor([-100.0, 0.0])).exp()  # variances
    tensor([1.0000e-03, 1.0010e+00])
    """
    floor = torch.full_like(raw_logvar, math.log(MIN_VARIANCE))
    return torch.logaddexp(raw_logvar, floor)


class GaussianEncoder(nn.Module):
    """MLP encoder returning ``(mu, logvar)`` of a diagonal Gaussian posterior.

    Parameters
    ----------
    n_features : int
        Input width.
    n_components : int
        Latent dimension :math:`k`.
    hidden_layer_sizes : sequence of int, default=()
        Hidden widths, input side first (``()``: one linear map).
    activation : str, default="relu"
        Key of :data:`~skae.nn.ACTIVATIONS` for the hidden layers.
    dropout : float, default=0.0
        Dropout after each hidden activation.

    Examples
    --------
    >>> import torch
    >>> from skae.nn import GaussianEncoder
    >>> mu, logvar = GaussianEncoder(6, 2, (4,))(torch.zeros(3, 6))
    >>> mu.shape, logvar.shape
    (torch.Size([3, 2]), torch.Size([3, 2]))
    """

    def __init__(
        self,
        n_features,
        n_components,
        hidden_layer_sizes=(),
        activation="relu",
        dropout=0.0,
    ):
        super().__init__()
        hidden = list(hidden_layer_sizes)
        # The trunk ends on an activation; the head is linear (mu and logvar are
        # unconstrained real numbers).
        self.body = make_mlp(
            [n_features, *hidden],
            activation,
            dropout=dropout,
            last_activation=activation if hidden else None,
        )
        if hidden and dropout > 0:
            self.body.append(Dropout(dropout))
        self.head = nn.Linear(hidden[-1] if hidden else n_features, 2 * n_components)

    def forward(self, x):
        mu, logvar = self.head(self.body(x)).chunk(2, dim=-1)
        return mu, logvar


class VAEModule(nn.Module):
    """Gaussian encoder plus MLP decoder; the decoder mirrors the encoder.

    Parameters
    ----------
    n_features : int
        Input (and output) width.
    n_components : int
        Latent dimension.
    hidden_layer_sizes : sequence of int, default=()
        Encoder hidden widths, input side first; the decoder mirrors them.
    activation : str, default="relu"
        Hidden-layer activation.
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        ``"bernoulli"``: the decoder outputs logits. ``"gaussian"``: it outputs
        the mean, and the module holds a learned log-variance, one per feature
        (``variance="feature"``) or one shared (``variance="global"``).
    variance : {"feature", "global"}, default="feature"
        Shape of the Gaussian decoder's learned variance (ignored for Bernoulli).
    dropout : float, default=0.0
        Dropout on hidden layers.

    Examples
    --------
    >>> import torch
    >>> from skae.nn import VAEModule
    >>> module = VAEModule(6, 2, (4,))
    >>> mu, logvar = module.encode(torch.zeros(3, 6))
    >>> module.decode(mu).shape, module.decoder_logvar().shape
    (torch.Size([3, 6]), torch.Size([6]))
    """

    def __init__(
        self,
        n_features,
        n_components,
        hidden_layer_sizes=(),
        activation="relu",
        likelihood="gaussian",
        variance="feature",
        dropout=0.0,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}.")
        hidden = list(hidden_layer_sizes)
        self.likelihood = likelihood
        self.encoder = GaussianEncoder(
            n_features, n_components, hidden, activation, dropout
        )
        self.decoder = make_mlp(
            [n_components, *reversed(hidden), n_features], activation, dropout=dropout
        )
        if likelihood == "gaussian":
            n_var = n_features if variance == "feature" else 1
            # log(var - MIN_VARIANCE): starts at var = 1 + MIN_VARIANCE, the
            # variance of standardized data.
            self.raw_logvar = nn.Parameter(torch.zeros(n_var))

    def encode(self, x):
        """Return ``(mu, logvar)`` of :math:`q(z \\mid x)`."""
        return self.encoder(x)

    def decode(self, z):
        """Return the decoder output: logits (Bernoulli) or the mean (Gaussian)."""
        return self.decoder(z)

    def decoder_logvar(self):
        """Log-variance of the Gaussian decoder, floored smoothly at
        ``log(MIN_VARIANCE)`` (None for the Bernoulli decoder)."""
        if self.likelihood != "gaussian":
            return None
        return floored_logvar(self.raw_logvar)

    def forward(self, x):
        # Deterministic pass for convenience: decode the posterior mean.
        return self.decode(self.encode(x)[0])
