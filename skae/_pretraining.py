"""Greedy layer-wise pretraining of stacked (deep) autoencoders.

The lecture notes' recipe for stacked autoencoders: train a shallow
autoencoder on the input, then another one on the codes of the first, and so
on; stack the encoders (and, mirrored, the decoders); then fine-tune the whole
network end to end. Here the shallow autoencoder of level ``i`` is made of the
``i``-th block of the estimator's encoder and the mirrored block of its
decoder, so pretraining writes directly into the estimator's ``module_`` and
the usual training is the fine-tuning.
"""

import torch
from torch import nn

from skae import _engine
from skae._base import ReconstructionObjective


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


class LayerPair(nn.Module):
    """A shallow autoencoder sharing its parameters with one level of a stack."""

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
    enc = _blocks(module.encoder)
    dec = _blocks(module.decoder)
    if len(enc) != len(dec):
        raise ValueError(
            "Layer-wise pretraining needs a mirrored encoder and decoder; got "
            f"{len(enc)} encoder and {len(dec)} decoder layers."
        )
    return [LayerPair(e, d) for e, d in zip(enc, reversed(dec))]


def iter_rows(data, batch_size=4096):
    """Consecutive row blocks of training data: a tensor, or the engine's
    host-side array (``rows(start, stop)``, for out-of-core data)."""
    for start in range(0, len(data), batch_size):
        if isinstance(data, torch.Tensor):
            yield data[start : start + batch_size]
        else:
            yield data.rows(start, start + batch_size)


@torch.no_grad()
def _encode_in_batches(block, data, batch_size=4096):
    was_training = block.training
    block.eval()
    out = torch.cat([block(x) for x in iter_rows(data, batch_size)])
    block.train(was_training)
    return out


def pretrain_layerwise(estimator, X_train, seed, epochs=None):
    """Greedy layer-wise pretraining of ``estimator.module_`` on ``X_train``.

    Level ``i`` (outermost first) is trained as a shallow autoencoder on the
    codes of level ``i - 1`` (level 0 on the scaled input), with the
    estimator's optimizer settings and stopping rule, for at most ``epochs``
    epochs. Level 0 minimizes the estimator's reconstruction loss
    (``loss_``: MSE, or BCE on logits); deeper levels reconstruct the previous
    level's activations with the MSE. The estimator's own regularizer (noise,
    sparsity, contraction) is left to the fine-tuning phase.

    Parameters
    ----------
    estimator : BaseAutoencoder
        An estimator whose ``module_`` and ``loss_`` exist (inside ``fit``,
        after ``_start_training``), e.g. from ``_fit_loop``.
    X_train : torch.Tensor of shape (n_samples, n_features)
        Training data, already scaled, on the estimator's device (or the
        engine's host-side array for out-of-core data; the codes of the
        hidden levels are then held in memory).
    seed : int
        Seeds the shuffling of each level.
    epochs : int, default=None
        Maximum epochs per level; ``estimator.max_iter`` when None.

    Returns
    -------
    losses : list of list of float
        Per-epoch mean training loss of each level, outermost first.
    """
    epochs = estimator.max_iter if epochs is None else epochs
    inputs = X_train
    curves = []
    for i, pair in enumerate(layer_pairs(estimator.module_)):
        objective = ReconstructionObjective(estimator.loss_ if i == 0 else "mse")
        net = _engine.build_net(
            pair,
            objective,
            learning_rate=estimator.learning_rate,
            weight_decay=estimator.alpha,
            batch_size=estimator._batch_size_for(len(inputs)),
            shuffle=estimator.shuffle,
            generator=torch.Generator().manual_seed(seed + 10 + i),
            device=estimator.device_,
            tol=estimator.tol,
            patience=estimator.n_iter_no_change,
            monitor="train_loss",
            restore_best=False,
            verbose=False,
            max_epochs=epochs,
        )
        _engine.run_epochs(net, inputs, None, epochs)
        curves.append([float(h) for h in net.history[:, "train_loss"]])
        inputs = _encode_in_batches(pair.encoder, inputs)
    return curves


def fit_loop_with_pretraining(estimator, net, X_train, X_valid):
    """``_fit_loop`` body: optional layer-wise pretraining, then fine-tuning.

    With ``estimator.pretraining == "layerwise"``, ``loss_curve_`` holds the
    pretraining epochs of every level, then the fine-tuning epochs;
    ``n_pretraining_iter_`` is the number of pretraining epochs (0 otherwise).
    """
    pre = []
    if getattr(estimator, "pretraining", None) == "layerwise":
        # Drawn from the forked, seeded global generator of ``fit``.
        seed = int(torch.randint(2**31 - 1, ()).item())
        for curve in pretrain_layerwise(estimator, X_train, seed):
            pre += curve
    estimator.n_pretraining_iter_ = len(pre)
    # ``_train`` aligns loss_curve_ with the fine-tuning net's history.
    estimator.loss_curve_ = []
    reason = estimator._train(net, X_train, X_valid, estimator.max_iter)
    estimator.loss_curve_ = pre + estimator.loss_curve_
    estimator.n_iter_ = len(estimator.loss_curve_)
    return reason
