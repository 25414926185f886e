"""Reconstruction losses as pure torch functions (per sample, no reduction).

The estimators turn these into mini-batch objectives; keeping them pure makes
the math testable against closed forms.
"""

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
