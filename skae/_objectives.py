"""Training objectives: ``objective(module, x, training) -> scalar loss``.

Every deterministic autoencoder minimizes the mean reconstruction loss of the
clean input, plus a model-specific penalty. :class:`ReconstructionObjective`
computes that in one ``forward``; a model declares what differs through two
hooks instead of rewriting the forward pass:

- ``corrupt(x)``: the training input made from the clean batch (denoising);
- ``penalty(code, x_in, module)``: a scalar added to the loss (sparsity,
  contraction), or None. ``needs_input_grad(module)`` returning True makes
  ``x_in`` require gradients first, for penalties on the encoder's Jacobian.

Objectives that keep per-epoch sums (e.g. the VAE's two ELBO terms, or which
code units fired) expose them through ``epoch_statistics()``: the engine calls
it once at the end of every training epoch and records the returned numbers in
the net's history, so callbacks read statistics from the history instead of
reaching into the objective.
"""

import torch

from skae._losses import mean_reconstruction_loss


class ReconstructionObjective(torch.nn.Module):
    """Mean reconstruction loss of ``decode(encode(corrupt(x)))`` against ``x``.

    Parameters
    ----------
    loss : {"mse", "bce"}
        The per-feature reconstruction loss (BCE on logits).

    Examples
    --------
    >>> import torch
    >>> from skae.nn import MLPAutoencoder
    >>> from skae._objectives import ReconstructionObjective
    >>> module = MLPAutoencoder(4, 2)
    >>> ReconstructionObjective("mse")(module, torch.zeros(3, 4)).ndim
    0
    """

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def needs_input_grad(self, module):
        """Whether the penalty differentiates the code with respect to ``x_in``."""
        return False

    def corrupt(self, x):
        """The network's training input for the clean batch ``x``."""
        return x

    def penalty(self, code, x_in, module):
        """A scalar added to the mean reconstruction loss, or None."""
        return None

    def begin_epoch(self, epoch):
        """Called before every training epoch with its number, from 1 (schedules)."""

    def observe(self, code):
        """Called with the (detached) codes of every training batch."""

    def epoch_statistics(self):
        """Per-epoch numbers to record in the history (then reset)."""
        return {}

    def forward(self, module, x, training=True):
        x_in = self.corrupt(x) if training else x
        if not self.needs_input_grad(module):
            return self._loss(module, x, x_in, training)
        # A Jacobian penalty needs a graph from the input to the code, also
        # when validating under no_grad.
        with torch.enable_grad():
            if not x_in.requires_grad:
                x_in = x_in.detach().requires_grad_(True)
            return self._loss(module, x, x_in, training)

    def _loss(self, module, x, x_in, training):
        code = module.encode(x_in)
        # Only objectives that count something in the codes pay for a
        # detached copy per step (a one-step epoch is a few such operations).
        if training and type(self).observe is not ReconstructionObjective.observe:
            self.observe(code.detach())
        value = mean_reconstruction_loss(module.decode(code), x, self.loss)
        extra = self.penalty(code, x_in, module)
        return value if extra is None else value + extra
