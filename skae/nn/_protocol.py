"""The module protocol: what an skae estimator asks of its torch module."""

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class AutoencoderModule(Protocol):
    """What every skae autoencoder's torch module provides.

    The training template, the objectives and inference use only these four
    members, so any :class:`torch.nn.Module` that has them can be trained by
    an skae estimator: an MLP (:class:`~skae.nn.MLPAutoencoder`), a
    convolutional or recurrent network, or a user's own.

    Attributes
    ----------
    encoder : torch.nn.Module
        The network from inputs to codes (exposed as the estimator's
        ``encoder_``; the contractive penalty differentiates it).
    decoder : torch.nn.Module
        The network from codes to outputs (the estimator's ``decoder_``).

    Methods
    -------
    encode(x)
        ``x``: a float tensor of shape (batch, n_features), the internally
        scaled rows. Returns the codes, shape (batch, n_components); the
        VAE's module returns ``(mean, log_variance)`` instead. Rows must not
        interact (no batch statistics), so that codes do not depend on how
        rows are batched.
    decode(z)
        Codes back to the *pre-activation* output, shape (batch,
        n_features): logits for a Bernoulli/BCE reconstruction, the
        reconstruction itself for MSE. The estimator applies the output
        activation.

    Examples
    --------
    >>> from skae.nn import AutoencoderModule, MLPAutoencoder
    >>> isinstance(MLPAutoencoder(6, 2), AutoencoderModule)
    True
    """

    encoder: torch.nn.Module
    decoder: torch.nn.Module

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


class EncoderDecoder(torch.nn.Module):
    """The simplest :class:`AutoencoderModule`: an encoder, then a decoder.

    Joins two existing modules without copying them, so training it trains
    them (a level of a layer-wise stack, or a user's own networks).

    Examples
    --------
    >>> import torch
    >>> from skae.nn import AutoencoderModule, EncoderDecoder
    >>> net = EncoderDecoder(torch.nn.Linear(4, 2), torch.nn.Linear(2, 4))
    >>> net(torch.zeros(3, 4)).shape, isinstance(net, AutoencoderModule)
    (torch.Size([3, 4]), True)
    """

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))
