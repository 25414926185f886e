"""Greedy layer-wise pretraining of stacked (deep) autoencoders.

The recipe for stacked autoencoders (Bengio et al., 2007; Vincent et al.,
2010): train a shallow autoencoder on the input, then another one on the codes
of the first, and so on; stack the encoders (and, mirrored, the decoders); then
fine-tune the whole network end to end. Here the shallow autoencoder of level
``i`` is made of the ``i``-th block of the estimator's encoder and the mirrored
block of its decoder, so pretraining writes directly into the estimator's
``module_`` and the usual training is the fine-tuning.

Nothing here touches an estimator: :class:`skae._phases.LayerwisePretraining`
calls :func:`pretrain_layerwise` with the module, the training rows and a net
factory, and the estimator records the returned curves.
"""

import numpy as np
import torch
from torch import nn

from skae import _engine
from skae._objectives import ReconstructionObjective
from skae._sources import TensorRows
from skae.nn import EncoderDecoder, LinearPlusMLP


def _blocks(sequential):
    """Split ``Linear -> activation [-> Dropout ...]`` runs at each Linear."""
    blocks, current = [], []
    for layer in sequential:
        if isinstance(layer, nn.Linear) and current:
            blocks.append(nn.Sequential(*current))
            current = []
        current.append(layer)
    if current:
        blocks.append(nn.Sequential(*current))
    return blocks


class LayerPair(EncoderDecoder):
    """A shallow autoencoder sharing its parameters with one level of a stack."""


def _stack(part):
    """The layer stack of an encoder or decoder (the MLP of a LinearPlusMLP)."""
    return part.mlp if isinstance(part, LinearPlusMLP) else part


def layer_pairs(module):
    """The shallow autoencoders of a mirrored stack, outermost first.

    Pair ``i`` is (encoder block ``i``, decoder block ``n - 1 - i``); every
    block starts with a ``Linear`` and keeps the activation (and dropout) that
    follows it in the full network, so a pair computes exactly what its
    layers compute inside the stack.

    Examples
    --------
    >>> from skae.nn import MLPAutoencoder
    >>> from skae._pretraining import layer_pairs
    >>> [len(p.encoder) for p in layer_pairs(MLPAutoencoder(8, 2, (6, 4)))]
    [2, 2, 1]
    """
    enc = _blocks(_stack(module.encoder))
    dec = _blocks(_stack(module.decoder))
    if len(enc) != len(dec):
        raise ValueError(
            "Layer-wise pretraining needs a mirrored encoder and decoder; got "
            f"{len(enc)} encoder and {len(dec)} decoder layers."
        )
    return [LayerPair(e, d) for e, d in zip(enc, reversed(dec))]


def iter_rows(data, batch_size=4096):
    """Consecutive row blocks of training rows (see :mod:`skae._sources`)."""
    for start in range(0, len(data), batch_size):
        yield data.rows(start, start + batch_size)


@torch.no_grad()
def _encode_in_batches(block, data, batch_size=4096):
    was_training = block.training
    block.eval()
    out = torch.cat([block(x) for x in iter_rows(data, batch_size)])
    block.train(was_training)
    return TensorRows(out)


def pretrain_layerwise(module, X_train, *, loss, make_net, seed, epochs):
    """Greedy layer-wise pretraining of a mirrored MLP ``module`` on ``X_train``.

    Level ``i`` (outermost first) is trained as a shallow autoencoder on the
    codes of level ``i - 1`` (level 0 on the scaled input), for at most
    ``epochs`` epochs with the stopping rule of the nets ``make_net`` builds.
    Level 0 minimizes ``loss`` (MSE, or BCE on logits); deeper levels
    reconstruct the previous level's activations with the MSE. A model's own
    regularizer (noise, sparsity, contraction) is left to the fine-tuning.

    Parameters
    ----------
    module : torch.nn.Module
        A mirrored MLP autoencoder (``encoder`` and ``decoder`` Sequentials);
        its parameters are trained in place.
    X_train : training rows (:mod:`skae._sources`)
        Scaled training data on the module's device. The codes of the hidden
        levels are held in memory.
    loss : {"mse", "bce"}
        Reconstruction loss of level 0.
    make_net : callable
        ``make_net(module, objective, n_rows, generator, max_epochs)``
        returns an initialized :class:`skae._engine.FastNet`.
    seed : int
        Seeds the shuffling of every level (one independent stream each).
    epochs : int
        Maximum epochs per level.

    Returns
    -------
    losses : list of list of float
        Per-epoch mean training loss of each level, outermost first.
    """
    pairs = layer_pairs(module)
    streams = np.random.SeedSequence(seed).spawn(len(pairs))
    inputs = X_train
    curves = []
    for i, (pair, stream) in enumerate(zip(pairs, streams)):
        objective = ReconstructionObjective(loss if i == 0 else "mse")
        generator = torch.Generator().manual_seed(int(stream.generate_state(1)[0]))
        net = make_net(pair, objective, len(inputs), generator, epochs)
        _engine.run_epochs(net, inputs, None, epochs)
        curves.append([float(h) for h in net.history[:, "train_loss"]])
        inputs = _encode_in_batches(pair.encoder, inputs)
    return curves
