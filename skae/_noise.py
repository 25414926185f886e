"""Corruption models for denoising autoencoders (pure torch, no scikit-learn).

Each function draws fresh noise, so every call (every mini-batch of every
epoch) sees a new corruption, from the generator of the fit that calls it
(:mod:`skae._random`; torch's global generator outside a fit). They never
modify their input.
"""

import torch  # noqa: F401  (doctests)

from skae import _random

NOISE_KINDS = ("gaussian", "masking", "salt_and_pepper")


def gaussian_noise(x, std):
    """Additive isotropic Gaussian noise: :math:`\\tilde x = x + \\sigma u`,
    :math:`u \\sim \\mathcal N(0, I)`.

    Examples
    --------
    >>> import torch
    >>> from skae._noise import gaussian_noise
    >>> gaussian_noise(torch.zeros(2, 3), 0.0)
    tensor([[0., 0., 0.],
            [0., 0., 0.]])
    """
    if std == 0:
        return x
    return x + std * _random.randn_like(x)


def masking_noise(x, p):
    """Masking noise (input dropout): each entry is set to 0 with probability ``p``.

    The kept entries are *not* rescaled by :math:`1 / (1 - p)`: the network
    must learn to fill in missing values, as in Vincent et al. (2010).

    Examples
    --------
    >>> import torch
    >>> from skae._noise import masking_noise
    >>> masking_noise(torch.ones(2, 3), 1.0)
    tensor([[0., 0., 0.],
            [0., 0., 0.]])
    """
    if p == 0:
        return x
    keep = _random.rand_like(x) >= p
    return x * keep


def salt_and_pepper_noise(x, p, low, high):
    """Salt-and-pepper noise: each entry is, with probability ``p``, replaced by
    its feature's minimum or maximum (each with probability 1/2).

    Parameters
    ----------
    x : torch.Tensor of shape (n_samples, n_features)
    p : float
        Probability that an entry is corrupted.
    low, high : torch.Tensor of shape (n_features,)
        The "pepper" and "salt" values of each feature.

    Examples
    --------
    >>> import torch
    >>> from skae._noise import salt_and_pepper_noise
    >>> out = salt_and_pepper_noise(torch.full((100, 2), 0.5), 1.0,
    ...                             torch.zeros(2), torch.ones(2))
    >>> sorted(out.unique().tolist())
    [0.0, 1.0]
    """
    if p == 0:
        return x
    u = _random.rand_like(x)
    corrupt = u < p
    # Given corruption, u / p is uniform on [0, 1): split it in two halves.
    salt = u < p / 2
    value = torch.where(salt, high.to(x), low.to(x))
    return torch.where(corrupt, value, x)


def corrupt(x, kind, level, low=None, high=None):
    """Apply the corruption ``kind`` with strength ``level`` to a batch ``x``.

    Parameters
    ----------
    x : torch.Tensor of shape (n_samples, n_features)
    kind : {"gaussian", "masking", "salt_and_pepper"}
    level : float
        Standard deviation for ``"gaussian"``, corruption probability otherwise.
    low, high : torch.Tensor of shape (n_features,), optional
        Per-feature extremes, needed by ``"salt_and_pepper"``.

    Returns
    -------
    torch.Tensor, a new tensor (or ``x`` itself when ``level == 0``).
    """
    if kind == "gaussian":
        return gaussian_noise(x, level)
    if kind == "masking":
        return masking_noise(x, level)
    if kind == "salt_and_pepper":
        return salt_and_pepper_noise(x, level, low, high)
    raise ValueError(f"Unknown noise kind {kind!r}; expected one of {NOISE_KINDS}.")
