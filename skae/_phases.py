"""Training phases: the steps a ``fit`` runs, in order, on one training session.

A fit is a list of phases (``estimator._phases()``): e.g. greedy layer-wise
pretraining then end-to-end training, or a VAE's KL warm-up then training.
Every phase acts on a :class:`TrainingSession` (the skorch net, the training
and validation rows, a factory for further nets) and returns a
:class:`PhaseResult`; the estimator, not the phase, turns results into fitted
attributes. Adding a phase means writing one small class with ``run``.
"""

from dataclasses import dataclass, field

from skae import _engine
from skae._pretraining import pretrain_layerwise


@dataclass
class PhaseResult:
    """What a phase trained: one history row per epoch, and why it stopped.

    ``reason`` is None when every epoch ran, else ``"converged"``,
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

    def run_epochs(self, epochs):
        """Train the net end to end; return the new history rows and the reason."""
        start = len(self.net.history)
        reason = _engine.run_epochs(self.net, self.train, self.valid, epochs)
        # An interrupted epoch leaves a history row without losses: skip it.
        rows = [dict(r) for r in self.net.history[start:] if "train_loss" in r]
        return PhaseResult(rows, reason)


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
    """

    def __init__(self, epochs, *, stopping=True):
        self.epochs = epochs
        self.stopping = stopping

    def run(self, session):
        if self.epochs < 1:
            return PhaseResult()
        monitor = dict(session.net.callbacks_)["monitor"]
        monitor.configure(
            patience=session.patience if self.stopping else None,
            restore_best=self.stopping and session.valid is not None,
        )
        return session.run_epochs(self.epochs)


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
