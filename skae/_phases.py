"""Training phases: the steps a ``fit`` runs, in order, on one training session.

A fit is a list of phases (``estimator._phases()``): e.g. greedy layer-wise
pretraining then end-to-end training, or a VAE's KL warm-up then training.
Every phase acts on a :class:`TrainingSession` (the skorch net, the training
and validation rows, a factory for further nets) and returns a
:class:`PhaseResult`; the estimator, not the phase, turns results into fitted
attributes. Adding a phase means writing one small class with ``run``.
"""

import copy
from dataclasses import dataclass, field

import torch

from skae import _engine
from skae._losses import reconstruction_loss
from skae._pretraining import pretrain_layerwise

#: Rows evaluated at once when a phase scores the validation rows.
INFERENCE_ROWS = 4096


@dataclass
class PhaseResult:
    """What a phase trained: one history row per epoch, and why it stopped.

    ``reason`` is None when every epoch ran, else ``"converged"``,
    ``"degraded"`` (every epoch ran, but the last ended far above the best),
    ``"diverged"`` or ``"interrupted"``. ``pretraining`` marks epochs that did
    not train the whole network.
    """

    rows: list = field(default_factory=list)
    reason: str | None = None
    pretraining: bool = False


class TrainingSession:
    """The state the phases of one fit share.

    Parameters
    ----------
    net : skae._engine.FastNet
        The net training the estimator's module end to end.
    train, valid : training rows (:mod:`skae._sources`); ``valid`` may be None
    make_net : callable
        ``make_net(module, objective, n_rows, generator, max_epochs)``: a net
        with the estimator's optimizer settings, for phases that train parts.
    loss : {"mse", "bce"}
        The reconstruction loss in use.
    patience : int
        The stopping rule's patience (``n_iter_no_change``).
    seed : int
        Root seed for the phases' own random streams.
    """

    def __init__(self, net, train, valid, *, make_net, loss, patience, seed):
        self.net = net
        self.train = train
        self.valid = valid
        self.make_net = make_net
        self.loss = loss
        self.patience = patience
        self.seed = seed

    @property
    def module(self):
        return self.net.module_

    @torch.no_grad()
    def validation_row_losses(self):
        """Per-row reconstruction losses of the current weights on the
        validation rows (evaluation mode: no corruption, no dropout)."""
        module = self.net.module_
        was_training = module.training
        module.eval()
        losses = torch.cat(
            [
                reconstruction_loss(module(x), x, self.loss)
                for x in self.valid.batches(INFERENCE_ROWS)
            ]
        )
        module.train(was_training)
        return losses

    def run_epochs(self, epochs):
        """Train the net end to end; return the new history rows and the reason."""
        start = len(self.net.history)
        reason = _engine.run_epochs(self.net, self.train, self.valid, epochs)
        # An interrupted epoch leaves a history row without losses: skip it.
        rows = [dict(r) for r in self.net.history[start:] if "train_loss" in r]
        return PhaseResult(rows, reason)


#: One-sided z threshold of the paired test that lets trained weights
#: replace the starting ones (``EndToEnd(keep_best=True)``): about 0.1%.
START_Z = 3.0


def significantly_better(start_losses, trained_losses, z=START_Z):
    """Whether per-row losses improved on the same rows beyond noise.

    A paired test: the mean of the per-row improvements must exceed ``z``
    standard errors. On a small validation split a lucky few rows cannot
    make a model leave a solid start.

    Examples
    --------
    >>> import torch
    >>> from skae._phases import significantly_better
    >>> start = torch.ones(100)
    >>> significantly_better(start, start - 0.1)
    True
    >>> significantly_better(start, start + 0.1 * torch.randn(100))
    False
    """
    gain = (start_losses - trained_losses).double()
    if len(gain) < 2:
        return False
    standard_error = gain.std() / len(gain) ** 0.5
    return bool(gain.mean() > z * standard_error) and bool(gain.mean() > 0)


class EndToEnd:
    """Train the whole network for at most ``epochs`` epochs.

    Parameters
    ----------
    epochs : int
    stopping : bool, default=True
        Apply the stopping rule (``tol``, ``n_iter_no_change``) and, with a
        validation split, restore the weights with the best validation loss
        at the end. False runs every epoch (an objective that changes from
        epoch to epoch, such as a KL warm-up, has no meaningful best).
    keep_best : bool, default=False
        With a validation split, end with the weights of the best validation
        loss, the *starting* weights included: a model that starts as a good
        solution (e.g. PCA) leaves it only for trained weights whose per-row
        validation reconstruction is better beyond noise
        (:func:`significantly_better`), so the simpler start wins the ties
        that a small validation split cannot resolve. Without a split this is
        the usual stopping rule: the mean training loss of an epoch is
        measured while the weights move, so it cannot rank the start.
    """

    def __init__(self, epochs, *, stopping=True, keep_best=False):
        self.epochs = epochs
        self.stopping = stopping
        self.keep_best = keep_best

    def run(self, session):
        if self.epochs < 1:
            return PhaseResult()
        monitor = dict(session.net.callbacks_)["monitor"]
        monitor.configure(
            patience=session.patience if self.stopping else None,
            restore_best=self.keep_best
            or (self.stopping and session.valid is not None),
        )
        if not (self.keep_best and session.valid is not None):
            return session.run_epochs(self.epochs)
        module = session.net.module_
        start = copy.deepcopy(module.state_dict())
        start_losses = session.validation_row_losses()
        result = session.run_epochs(self.epochs)
        if not significantly_better(start_losses, session.validation_row_losses()):
            module.load_state_dict(start)
        return result


class LayerwisePretraining:
    """Greedy layer-wise pretraining of a mirrored MLP, ``epochs`` per level
    (see :func:`skae._pretraining.pretrain_layerwise`)."""

    def __init__(self, epochs):
        self.epochs = epochs

    def run(self, session):
        curves = pretrain_layerwise(
            session.module,
            session.train,
            loss=session.loss,
            make_net=session.make_net,
            seed=session.seed,
            epochs=self.epochs,
        )
        rows = [{"train_loss": loss} for curve in curves for loss in curve]
        return PhaseResult(rows, None, pretraining=True)
