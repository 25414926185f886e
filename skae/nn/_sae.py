r"""The single-layer sparse autoencoder used to find features in activations.

The network of the interpretability literature (Bricken et al., 2023; Gao et
al., 2024; Rajamanoharan et al., 2024):

.. math::

    z = \sigma\big(W_\text{enc} (x - b_\text{pre}) + b_\text{enc}\big), \qquad
    \hat x = W_\text{dec} z + b_\text{pre},

with unit-norm decoder columns (each latent is one direction of the input
space and its activation is that direction's coefficient), a pre-encoder bias
:math:`b_\text{pre}` shared by encoder and decoder, and an activation
:math:`\sigma` that makes the code sparse: :class:`BatchTopK` or
:class:`JumpReLU`. Only torch modules here; losses live in
:mod:`skae._sae_training`.
"""

import torch
from torch import nn

#: Guard against a zero decoder column (its direction is then undefined).
_NORM_EPS = 1e-12
#: Smallest JumpReLU threshold (it must stay positive).
_MIN_THRESHOLD = 1e-6


class _JumpReLUFunction(torch.autograd.Function):
    r""":math:`z = h \, H(h - \theta)` with the straight-through pseudo-derivative
    :math:`\partial z / \partial \theta = -\frac{\theta}{\varepsilon}
    K\big(\frac{h - \theta}{\varepsilon}\big)` (rectangle kernel :math:`K`)."""

    @staticmethod
    def forward(ctx, h, threshold, bandwidth):
        ctx.save_for_backward(h, threshold)
        ctx.bandwidth = bandwidth
        return h * (h > threshold).to(h.dtype)

    @staticmethod
    def backward(ctx, grad):
        h, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_h = grad * (h > threshold).to(h.dtype)
        window = rectangle((h - threshold) / eps)
        grad_threshold = (grad * (-threshold / eps) * window).sum(dim=0)
        return grad_h, grad_threshold, None


class _StepFunction(torch.autograd.Function):
    r""":math:`H(h - \theta)` with :math:`\partial H / \partial h = 0` and the
    pseudo-derivative :math:`\partial H / \partial \theta = -\frac1\varepsilon
    K\big(\frac{h - \theta}{\varepsilon}\big)`."""

    @staticmethod
    def forward(ctx, h, threshold, bandwidth):
        ctx.save_for_backward(h, threshold)
        ctx.bandwidth = bandwidth
        return (h > threshold).to(h.dtype)

    @staticmethod
    def backward(ctx, grad):
        h, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        window = rectangle((h - threshold) / eps)
        grad_threshold = (grad * (-1.0 / eps) * window).sum(dim=0)
        return None, grad_threshold, None


def rectangle(u):
    """The rectangle kernel :math:`K(u) = 1` for :math:`|u| < 1/2`, else 0.

    Examples
    --------
    >>> import torch
    >>> from skae.nn._sae import rectangle
    >>> rectangle(torch.tensor([-0.6, -0.4, 0.0, 0.5]))
    tensor([0., 1., 1., 0.])
    """
    return (u.abs() < 0.5).to(u.dtype)


def jumprelu(h, threshold, bandwidth):
    r"""JumpReLU :math:`h \, H(h - \theta)`, straight-through in :math:`\theta`.

    The gradient with respect to ``h`` is the exact one, :math:`H(h -
    \theta)`; the one with respect to ``threshold`` (shape (n_latents,),
    positive) is the pseudo-derivative of Rajamanoharan et al. (2024),
    :math:`-\frac{\theta}{\varepsilon} K(\frac{h - \theta}{\varepsilon})`,
    summed over the batch.

    Examples
    --------
    >>> import torch
    >>> from skae.nn._sae import jumprelu
    >>> jumprelu(torch.tensor([[0.5, 2.0]]), torch.tensor([1.0, 1.0]), 0.1)
    tensor([[0., 2.]])
    """
    return _JumpReLUFunction.apply(h, threshold, bandwidth)


def step(h, threshold, bandwidth):
    r"""Heaviside step :math:`H(h - \theta)`, straight-through in :math:`\theta`
    (no gradient to ``h``); summed over latents it is the L0 norm of a code.

    Examples
    --------
    >>> import torch
    >>> from skae.nn._sae import step
    >>> step(torch.tensor([[0.5, 2.0]]), torch.tensor([1.0, 1.0]), 0.1)
    tensor([[0., 1.]])
    """
    return _StepFunction.apply(h, threshold, bandwidth)


class BatchTopK(nn.Module):
    r"""Keep the ``k * batch`` largest activations of a batch (training), or
    those above a threshold :math:`\theta` (inference).

    While training, :math:`z = \mathrm{ReLU}(h) \odot M` where the mask
    :math:`M` keeps the :math:`k B` largest entries of the whole
    :math:`B \times n` batch (Bussmann et al., 2024): on average ``k``
    latents per row, more on rows that need them. The threshold used at
    inference, :math:`\theta = \mathbb E_\text{batch}[\min_{M_{ij}=1}
    z_{ij}]`, is a running mean of each training batch's smallest kept
    activation (over the last ~100 batches), so that at inference
    :math:`z = \mathrm{ReLU}(h) \odot [h > \theta]` and each row's code does
    not depend on the other rows.

    Examples
    --------
    >>> import torch
    >>> from skae.nn._sae import BatchTopK
    >>> layer = BatchTopK(1)
    >>> layer(torch.tensor([[3.0, 2.5], [0.5, 1.0]]))
    tensor([[3.0000, 2.5000],
            [0.0000, 0.0000]])
    >>> layer.threshold
    tensor(2.5000)
    """

    #: Batches over which the threshold's running mean settles into an EMA.
    _THRESHOLD_WINDOW = 100

    def __init__(self, k):
        super().__init__()
        self.k = k
        self.register_buffer("threshold", torch.zeros(()))
        self.register_buffer("n_batches", torch.zeros((), dtype=torch.long))

    def forward(self, h):
        z = torch.relu(h)
        if not self.training:
            return z * (z > self.threshold).to(z.dtype)
        n_keep = min(self.k * z.shape[0], z.numel())
        flat = z.flatten()
        values, index = torch.topk(flat, n_keep, sorted=False)
        mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(0, index, True)
        with torch.no_grad():
            positive = values[values > 0]
            if positive.numel():
                count = int(self.n_batches) + 1
                rate = 1.0 / min(count, self._THRESHOLD_WINDOW)
                self.threshold += rate * (
                    positive.min().to(self.threshold) - self.threshold
                )
                self.n_batches += 1
        return torch.where(mask, flat, flat.new_zeros(())).view_as(z)

    def extra_repr(self):
        return f"k={self.k}"


class JumpReLU(nn.Module):
    r""":math:`z_j = h_j \, H(h_j - \theta_j)` with learned per-latent
    thresholds :math:`\theta_j > 0` (Rajamanoharan et al., 2024).

    :math:`\theta` is the parameter itself, not its logarithm: with Adam a
    log-parametrized threshold moves by a factor :math:`e^{\eta}` per step
    and takes thousands of steps to leave its small starting value. It is
    kept above ``1e-6`` in the forward pass.

    Parameters
    ----------
    n_latents : int
    bandwidth : float
        Width :math:`\varepsilon` of the rectangle kernel of the
        straight-through threshold gradient.
    initial_threshold : float, default=1e-3
        Starting :math:`\theta_j` of every latent.

    Examples
    --------
    >>> import torch
    >>> from skae.nn._sae import JumpReLU
    >>> JumpReLU(2, 0.01, initial_threshold=1.0)(torch.tensor([[0.5, 2.0]]))
    tensor([[0., 2.]], grad_fn=<_JumpReLUFunctionBackward>)
    """

    def __init__(self, n_latents, bandwidth, initial_threshold=1e-3):
        super().__init__()
        self.bandwidth = bandwidth
        self.threshold = nn.Parameter(
            torch.full((n_latents,), float(initial_threshold))
        )

    def _theta(self, h):
        return self.threshold.clamp_min(_MIN_THRESHOLD).to(h.dtype)

    def forward(self, h):
        return jumprelu(h, self._theta(h), self.bandwidth)

    def l0(self, h):
        """The number of active latents of each row, differentiable in
        :math:`\\theta` through the straight-through estimator."""
        return step(h, self._theta(h), self.bandwidth).sum(dim=1)

    def extra_repr(self):
        return f"bandwidth={self.bandwidth}"


class SAEEncoder(nn.Module):
    r""":math:`x \mapsto \sigma(W (x - b_\text{pre}) + b)`.

    ``pre_activations`` and ``activation`` are separate so that training can
    use the pre-activations :math:`h` (the AuxK loss of dead latents, the L0
    penalty of JumpReLU). ``rows_since_fired`` counts, per latent, the
    training rows seen since it last fired (a dead latent has a count of at
    least the dead window).
    """

    def __init__(self, n_features, n_latents, activation):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_latents, n_features))
        self.bias = nn.Parameter(torch.zeros(n_latents))
        self.pre_bias = nn.Parameter(torch.zeros(n_features))
        self.activation = activation
        self.register_buffer(
            "rows_since_fired", torch.zeros(n_latents, dtype=torch.long)
        )

    def pre_activations(self, x):
        return nn.functional.linear(x - self.pre_bias, self.weight, self.bias)

    def forward(self, x):
        return self.activation(self.pre_activations(x))


class UserSAEEncoder(nn.Module):
    r""":math:`x \mapsto \sigma(f(x))` for a user's encoder :math:`f`, with
    :class:`SAEEncoder`'s ``pre_activations``, ``activation`` and
    ``rows_since_fired``, which the training objective reads.

    Examples
    --------
    >>> import torch
    >>> from skae.nn._sae import BatchTopK, UserSAEEncoder
    >>> enc = UserSAEEncoder(torch.nn.Linear(4, 8), BatchTopK(2), 8).eval()
    >>> enc(torch.zeros(3, 4)).shape
    torch.Size([3, 8])
    """

    def __init__(self, network, activation, n_latents):
        super().__init__()
        self.network = network
        self.activation = activation
        self.register_buffer(
            "rows_since_fired", torch.zeros(n_latents, dtype=torch.long)
        )

    def pre_activations(self, x):
        return self.network(x)

    def forward(self, x):
        return self.activation(self.pre_activations(x))


class UnitNormDecoder(nn.Module):
    r""":math:`z \mapsto W_\text{dec} z` with the columns of :math:`W_\text{dec}`
    normalized in the forward pass, :math:`W_\text{dec} = V / \lVert V
    \rVert_\text{col}`.

    Normalizing inside the forward pass (rather than after each optimizer
    step) keeps every column at norm one exactly, and the gradient reaching
    :math:`V` has no component along its column (the projection of Bricken
    et al., 2023, done by autograd).
    """

    def __init__(self, n_latents, n_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_features, n_latents))

    def directions(self):
        """The unit-norm decoder columns, shape (n_features, n_latents)."""
        return self.weight / self.weight.norm(dim=0, keepdim=True).clamp_min(_NORM_EPS)

    def forward(self, z):
        return nn.functional.linear(z, self.directions().to(z.dtype))


class SAEModule(nn.Module):
    r"""The sparse autoencoder :math:`\hat x = W_\text{dec}\,
    \sigma(W_\text{enc}(x - b_\text{pre}) + b_\text{enc}) + b_\text{pre}`.

    Built with random unit decoder columns and the encoder as their
    transpose (Gao et al., 2024), so that at the start each latent reads the
    direction it writes; :math:`b_\text{pre} = 0` until the estimator sets it
    from the data.

    Parameters
    ----------
    n_features : int
    n_latents : int
    activation : torch.nn.Module
        :class:`BatchTopK` or :class:`JumpReLU`.

    Examples
    --------
    >>> import torch
    >>> from skae.nn._sae import BatchTopK, SAEModule
    >>> module = SAEModule(4, 8, BatchTopK(2))
    >>> module(torch.zeros(3, 4)).shape
    torch.Size([3, 4])
    >>> bool(torch.allclose(module.decoder.directions().norm(dim=0), torch.ones(8)))
    True
    """

    def __init__(self, n_features, n_latents, activation):
        super().__init__()
        self.encoder = SAEEncoder(n_features, n_latents, activation)
        self.decoder = UnitNormDecoder(n_latents, n_features)
        if self.decoder.weight.device.type != "meta":
            with torch.no_grad():
                nn.init.normal_(self.decoder.weight)
                directions = self.decoder.directions()
                self.decoder.weight.copy_(directions)
                self.encoder.weight.copy_(directions.T)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z) + self.encoder.pre_bias.to(z.dtype)

    def decode_residual(self, z):
        """What the latents ``z`` add to a reconstruction: :math:`W_\text{dec}
        z` (the AuxK loss reconstructs the residual with it)."""
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))
