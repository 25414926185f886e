"""Multi-layer perceptron encoders and decoders (torch modules only, no losses)."""

import torch
from torch import nn

from skae import _random

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` drawing its masks from the generator of the
    skae fit in progress (:mod:`skae._random`), so that fits in concurrent
    threads are reproducible; outside a fit it is ``torch.nn.Dropout``.

    Examples
    --------
    >>> import torch
    >>> from skae.nn._mlp import Dropout
    >>> Dropout(0.5).eval()(torch.ones(2, 2))
    tensor([[1., 1.],
            [1., 1.]])
    """

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = _random.rand_like(x) >= self.p
        return x * keep / (1 - self.p)


def make_mlp(sizes, activation="relu", *, dropout=0.0, last_activation=None):
    """Build ``Linear -> activation [-> Dropout]`` blocks through ``sizes``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first; ``len(sizes) - 1`` linear layers are built.
    activation : str, default="relu"
        Key of :data:`ACTIVATIONS`, applied after every layer but the last.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.
    last_activation : str or None, default=None
        Activation after the last layer (None leaves it linear).

    Returns
    -------
    torch.nn.Sequential

    Examples
    --------
    >>> from skae.nn import make_mlp
    >>> make_mlp([4, 3, 2])
    Sequential(
      (0): Linear(in_features=4, out_features=3, bias=True)
      (1): ReLU()
      (2): Linear(in_features=3, out_features=2, bias=True)
    )
    """
    layers = []
    n_layers = len(sizes) - 1
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < n_layers - 1:
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(Dropout(dropout))
        elif last_activation is not None:
            layers.append(ACTIVATIONS[last_activation]())
    return nn.Sequential(*layers)


class LinearPlusMLP(nn.Module):
    """``linear(x) + mlp(x)``: a linear map with a non-linear correction.

    With the correction's last layer at zero this is exactly the linear map,
    e.g. PCA's projection, which training then bends where the data ask for
    it (the residual idea of He et al., 2016, applied to the whole encoder or
    decoder).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skae.nn import LinearPlusMLP, make_mlp
    >>> block = LinearPlusMLP(nn.Linear(4, 2), make_mlp([4, 8, 2]))
    >>> block(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    """

    def __init__(self, linear, mlp):
        super().__init__()
        self.linear = linear
        self.mlp = mlp

    def forward(self, x):
        return self.linear(x) + self.mlp(x)


class MLPAutoencoder(nn.Module):
    """A mirrored MLP autoencoder: ``x -> encoder -> code -> decoder -> output``.

    The decoder returns the *pre-activation* output (logits for a Bernoulli /
    BCE reconstruction) so that losses stay numerically stable; losses and
    output activations live outside the module.

    Parameters
    ----------
    n_features : int
        Input (and output) width.
    n_components : int
        Code width.
    hidden_layer_sizes : sequence of int
        Encoder hidden widths, input side first; the decoder mirrors them.
    activation : str, default="relu"
        Hidden-layer activation.
    code_activation : str or None, default=None
        Activation applied to the code (None: a linear code, as in PCA).
    dropout : float, default=0.0
        Dropout on hidden layers.
    linear_path : bool, default=False
        With hidden layers, make the encoder and the decoder
        :class:`LinearPlusMLP`: a linear map plus the MLP (for a code layer
        without activation only).

    Examples
    --------
    >>> import torch
    >>> from skae.nn import MLPAutoencoder
    >>> module = MLPAutoencoder(6, 2, (4,))
    >>> module(torch.zeros(3, 6)).shape
    torch.Size([3, 6])
    """

    def __init__(
        self,
        n_features,
        n_components,
        hidden_layer_sizes=(),
        activation="relu",
        code_activation=None,
        dropout=0.0,
        linear_path=False,
    ):
        super().__init__()
        hidden = list(hidden_layer_sizes)
        self.encoder = make_mlp(
            [n_features, *hidden, n_components],
            activation,
            dropout=dropout,
            last_activation=code_activation,
        )
        self.decoder = make_mlp(
            [n_components, *reversed(hidden), n_features], activation, dropout=dropout
        )
        if linear_path and hidden:
            if code_activation is not None:
                raise ValueError("linear_path needs a linear code layer.")
            self.encoder = LinearPlusMLP(
                nn.Linear(n_features, n_components), self.encoder
            )
            self.decoder = LinearPlusMLP(
                nn.Linear(n_components, n_features), self.decoder
            )

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


def linear_layers(module):
    """Return the :class:`torch.nn.Linear` layers of ``module`` in order.

    Examples
    --------
    >>> from skae.nn import MLPAutoencoder, linear_layers
    >>> len(linear_layers(MLPAutoencoder(6, 2, (4,))))
    4
    """
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def output_activation(loss):
    """The function mapping decoder outputs to reconstructions for ``loss``.

    Examples
    --------
    >>> import torch
    >>> from skae.nn import output_activation
    >>> output_activation("bce")(torch.zeros(1)).item()
    0.5
    """
    return torch.sigmoid if loss == "bce" else (lambda t: t)
