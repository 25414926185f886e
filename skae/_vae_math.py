r"""The variational bound and its relatives as pure torch functions.

Everything is per sample (no reduction over the batch), in nats, summed over
features or latent dimensions. Notation: :math:`q(z \mid x) =
\mathcal N(\mu, \operatorname{diag}\sigma^2)` with ``logvar`` :math:`= \log
\sigma^2`, prior :math:`p(z) = \mathcal N(0, I)`, decoder :math:`p(x \mid z)`.

.. math::

    \mathrm{ELBO}(x) = \mathbb E_{q(z \mid x)} \log p(x \mid z)
        - \mathrm{KL}\big(q(z \mid x) \,\|\, p(z)\big) \le \log p(x),

    \mathcal L_K(x) = \mathbb E \log \frac1K \sum_{k=1}^K
        \frac{p(x \mid z_k)\, p(z_k)}{q(z_k \mid x)} ,\quad z_k \sim q(z \mid x),

with :math:`\mathcal L_1 = \mathrm{ELBO} \le \mathcal L_K \le \mathcal L_{K+1}
\le \log p(x)` (Burda, Grosse and Salakhutdinov, 2016).
"""

import math

import torch
import torch.nn.functional as F

from skae import _random

LOG_2PI = math.log(2 * math.pi)


def kl_standard_normal(mu, logvar):
    r"""KL divergence from :math:`q = \mathcal N(\mu, \operatorname{diag}\sigma^2)`,
    ``logvar`` :math:`= \log\sigma^2`, to :math:`\mathcal N(0, I)`, in closed form.

    .. math::

        \mathrm{KL} = \frac12 \sum_{j=1}^k \big(\sigma_j^2 + \mu_j^2 - 1
        - \log \sigma_j^2\big)

    Parameters
    ----------
    mu, logvar : torch.Tensor of shape (..., k)

    Returns
    -------
    torch.Tensor of shape (...)

    Examples
    --------
    >>> import torch
    >>> from skae._vae_math import kl_standard_normal
    >>> kl_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3))
    tensor([0., 0.])
    """
    return 0.5 * (logvar.exp() + mu.square() - 1.0 - logvar).sum(dim=-1)


def gaussian_log_density(z, mu, logvar):
    r"""Log-density of a diagonal Gaussian, summed over the last axis.

    .. math::

        \log \mathcal N(z; \mu, \operatorname{diag}\sigma^2) = -\frac12 \sum_j
        \Big(\log 2\pi + \log\sigma_j^2 + \frac{(z_j - \mu_j)^2}{\sigma_j^2}\Big)

    Examples
    --------
    >>> import torch
    >>> from skae._vae_math import gaussian_log_density
    >>> round(gaussian_log_density(torch.zeros(1), torch.zeros(1),
    ...                            torch.zeros(1)).item(), 4)
    -0.9189
    """
    return -0.5 * (LOG_2PI + logvar + (z - mu).square() * torch.exp(-logvar)).sum(
        dim=-1
    )


def log_likelihood(x, output, likelihood, logvar=None):
    r"""Decoder log-likelihood :math:`\log p(x \mid z)` summed over features.

    Parameters
    ----------
    x : torch.Tensor of shape (..., d)
        Data (in [0, 1] for ``"bernoulli"``; a non-binary value gives the
        cross-entropy form :math:`x\log\theta + (1-x)\log(1-\theta)`).
    output : torch.Tensor of shape (..., d)
        Decoder output: logits for ``"bernoulli"``, the mean for ``"gaussian"``.
    likelihood : {"bernoulli", "gaussian"}
    logvar : torch.Tensor broadcastable to ``x``, optional
        Gaussian log-variance (required for ``"gaussian"``).

    Returns
    -------
    torch.Tensor of shape (...)

    Examples
    --------
    >>> import torch
    >>> from skae._vae_math import log_likelihood
    >>> x = torch.tensor([[1.0, 0.0]])
    >>> log_likelihood(x, torch.zeros(1, 2), "bernoulli")  # 2 * log(1/2)
    tensor([-1.3863])
    """
    if likelihood == "bernoulli":
        # x log(sigmoid(l)) + (1 - x) log(1 - sigmoid(l)) = x l - softplus(l),
        # stable for any logit and broadcasting x over draws.
        return (x * output - F.softplus(output)).sum(dim=-1)
    return gaussian_log_density(x, output, logvar.expand_as(x))


def reparameterize(mu, logvar, eps):
    r"""Return :math:`z = \mu + \sigma \odot \varepsilon`, differentiable in
    :math:`\mu` and :math:`\log\sigma^2`.

    Examples
    --------
    >>> import torch
    >>> from skae._vae_math import reparameterize
    >>> reparameterize(torch.ones(2), torch.zeros(2), torch.ones(2))
    tensor([2., 2.])
    """
    return mu + torch.exp(0.5 * logvar) * eps


def elbo_terms(x, mu, logvar, decode, likelihood, dec_logvar=None, eps=None):
    r"""One-sample ELBO estimate split as ``(reconstruction, kl)``.

    ``reconstruction`` is :math:`\log p(x \mid z)` at one reparameterized draw
    :math:`z = \mu + \sigma\varepsilon` (an unbiased estimate of its
    expectation); ``kl`` is exact. The ELBO estimate is their difference.

    Parameters
    ----------
    x : torch.Tensor of shape (n, d)
    mu, logvar : torch.Tensor of shape (n, k)
        Posterior parameters.
    decode : callable
        Maps ``z`` of shape (n, k) to decoder outputs of shape (n, d).
    likelihood : {"bernoulli", "gaussian"}
    dec_logvar : torch.Tensor, optional
        Gaussian decoder log-variance.
    eps : torch.Tensor of shape (n, k) or (k,), optional
        Standard normal noise; drawn from the fit's generator
        (:mod:`skae._random`) when None.

    Returns
    -------
    reconstruction, kl : torch.Tensor of shape (n,)
    """
    if eps is None:
        eps = _random.randn_like(mu)
    z = reparameterize(mu, logvar, eps)
    recon = log_likelihood(x, decode(z), likelihood, dec_logvar)
    return recon, kl_standard_normal(mu, logvar)


def iwae_log_weights(x, mu, logvar, decode, likelihood, eps, dec_logvar=None):
    r"""Log importance weights :math:`\log p(x\mid z_k) + \log p(z_k) -
    \log q(z_k \mid x)` for draws :math:`z_k = \mu + \sigma\varepsilon_k`.

    Parameters
    ----------
    x : torch.Tensor of shape (n, d)
    mu, logvar : torch.Tensor of shape (n, k)
    decode : callable
        Maps ``z`` of shape (m, k) to decoder outputs of shape (m, d).
    likelihood : {"bernoulli", "gaussian"}
    eps : torch.Tensor of shape (n, K, k) or (K, k)
        Standard normal draws, per row or shared by the n rows.
    dec_logvar : torch.Tensor, optional

    Returns
    -------
    torch.Tensor of shape (n, K)
    """
    n, k = mu.shape
    if eps.dim() == 2:
        eps = eps[None]
    n_draws = eps.shape[1]
    z = reparameterize(mu[:, None, :], logvar[:, None, :], eps)
    output = decode(z.reshape(n * n_draws, k)).reshape(n, n_draws, -1)
    log_px = log_likelihood(x[:, None, :], output, likelihood, dec_logvar)
    log_pz = -0.5 * (LOG_2PI + z.square()).sum(dim=-1)
    # log q(z|x) at z = mu + sigma * eps: the quadratic term is eps^2.
    log_qz = -0.5 * (LOG_2PI + logvar[:, None, :] + eps.square()).sum(dim=-1)
    return log_px + log_pz - log_qz


def iwae_bound(log_weights):
    r"""The importance-weighted bound :math:`\log \frac1K \sum_k w_k` from log
    weights of shape (n, K), computed stably with ``logsumexp``.

    Examples
    --------
    >>> import torch
    >>> from skae._vae_math import iwae_bound
    >>> iwae_bound(torch.log(torch.tensor([[1.0, 3.0]])))
    tensor([0.6931])
    """
    return torch.logsumexp(log_weights, dim=-1) - math.log(log_weights.shape[-1])
