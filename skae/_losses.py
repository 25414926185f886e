"""Reconstruction losses as pure torch functions (per sample, no reduction).

The estimators turn these into mini-batch objectives; keeping them pure makes
the math testable against closed forms.
"""

import torch
import torch.nn.functional as F


def reconstruction_loss(output, target, loss):
    """Per-sample mean reconstruction loss.

    Parameters
    ----------
    output : torch.Tensor of shape (n_samples, n_features)
        Decoder output: the reconstruction for ``"mse"``, logits for ``"bce"``.
    target : torch.Tensor of shape (n_samples, n_features)
        The clean input.
    loss : {"mse", "bce"}
        ``"mse"``: :math:`\\frac{1}{n}\\sum_j (\\hat x_j - x_j)^2`;
        ``"bce"``: :math:`-\\frac{1}{n}\\sum_j x_j \\log \\hat x_j +
        (1 - x_j) \\log (1 - \\hat x_j)` with :math:`\\hat x = \\sigma(\\text{output})`.

    Returns
    -------
    torch.Tensor of shape (n_samples,)

    Examples
    --------
    >>> import torch
    >>> from skae._losses import reconstruction_loss
    >>> reconstruction_loss(torch.ones(2, 3), torch.zeros(2, 3), "mse")
    tensor([1., 1.])
    """
    if loss == "bce":
        per_element = F.binary_cross_entropy_with_logits(
            output, target, reduction="none"
        )
    else:
        per_element = (output - target).square()
    return per_element.mean(dim=1)


def mean_reconstruction_loss(output, target, loss):
    """Mean of :func:`reconstruction_loss` over the batch, in one reduction.

    Every sample has the same number of features, so the mean of the
    per-sample means is the mean over all entries: torch's fused
    ``reduction="mean"`` kernels compute it (forward and backward) without the
    per-sample intermediate, a few percent of a small model's training step.
    Equal to ``reconstruction_loss(output, target, loss).mean()`` up to
    floating-point rounding.

    Examples
    --------
    >>> import torch
    >>> from skae._losses import mean_reconstruction_loss
    >>> mean_reconstruction_loss(torch.ones(2, 3), torch.zeros(2, 3), "mse")
    tensor(1.)
    """
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(output, target)
    return F.mse_loss(output, target)


def constant_prediction_loss(target, loss):
    """The mean loss of the best constant reconstruction: every row of
    ``target`` predicted by the column means.

    This is the loss a model with no information about its input reaches
    (PCA with zero components, for ``"mse"``: the mean per-feature variance;
    for ``"bce"``: the mean binary entropy of the column means). It gives a
    fit's losses a unit that does not depend on where training starts.

    Parameters
    ----------
    target : torch.Tensor of shape (n_samples, n_features)
    loss : {"mse", "bce"}

    Returns
    -------
    float

    Examples
    --------
    >>> import torch
    >>> from skae._losses import constant_prediction_loss
    >>> constant_prediction_loss(torch.tensor([[0.0, 1.0], [2.0, 1.0]]), "mse")
    0.5
    """
    target = target.double()
    means = target.mean(dim=0)
    if loss == "bce":
        # BCE's expectation over the rows depends on them only via the means.
        means = means.clamp(0.0, 1.0)
        entropy = -(torch.xlogy(means, means) + torch.xlogy(1 - means, 1 - means))
        return float(entropy.mean())
    return float((target - means).square().mean())
