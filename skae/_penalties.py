"""Regularization penalties of the regularized autoencoders (pure torch).

Everything here is a plain function of tensors (plus one parameter-free
module, :class:`TopK`), so it can be checked against closed forms and
autograd in isolation. Penalties are per mini-batch scalars, on the same
footing as the mean reconstruction loss they are added to.
"""

import torch
from torch import nn

#: Clamp for mean activations inside the KL divergence (log(0) guard).
_KL_EPS = 1e-6


def l1_penalty(code):
    """Mean over the batch of the L1 norm of each code: :math:`\\frac1m \\sum_i
    \\lVert h^{(i)} \\rVert_1`.

    Examples
    --------
    >>> import torch
    >>> from skae._penalties import l1_penalty
    >>> l1_penalty(torch.tensor([[1.0, -2.0], [0.0, 3.0]]))
    tensor(3.)
    """
    return code.abs().sum(dim=1).mean()


def bernoulli_kl(rho, rho_hat):
    """Elementwise Bernoulli KL divergence,
    :math:`KL(\\rho \\| \\hat\\rho) = \\rho \\log\\frac{\\rho}{\\hat\\rho}
    + (1 - \\rho) \\log\\frac{1 - \\rho}{1 - \\hat\\rho}`.

    ``rho_hat`` is clamped to :math:`[10^{-6}, 1 - 10^{-6}]` so that the value
    stays finite when a unit is saturated.

    Examples
    --------
    >>> import torch
    >>> from skae._penalties import bernoulli_kl
    >>> bernoulli_kl(0.5, torch.tensor([0.5]))
    tensor([0.])
    """
    rho_hat = rho_hat.clamp(_KL_EPS, 1 - _KL_EPS)
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log(
        (1 - rho) / (1 - rho_hat)
    )


def kl_sparsity_penalty(code, rho):
    """Sum over hidden units of :math:`KL(\\rho \\| \\hat\\rho_j)`, where
    :math:`\\hat\\rho_j = \\frac1m\\sum_i h_j^{(i)}` is the mean activation of
    unit :math:`j` over the mini-batch.

    The code must lie in (0, 1) (sigmoid units). Its gradient with respect to
    the pre-activation :math:`s_j^{(q)}` of sample :math:`q` is
    :math:`\\frac1m \\big(-\\frac{\\rho}{\\hat\\rho_j} + \\frac{1 - \\rho}{1 -
    \\hat\\rho_j}\\big) f'(s_j^{(q)})` (backpropagation through the batch
    mean, as in Lee et al., 2007).

    Examples
    --------
    >>> import torch
    >>> from skae._penalties import kl_sparsity_penalty
    >>> kl_sparsity_penalty(torch.full((4, 3), 0.05), 0.05)
    tensor(0.)
    """
    return bernoulli_kl(rho, code.mean(dim=0)).sum()


def topk_mask(h, k):
    """Boolean mask of the ``k`` largest entries of each row of ``h``."""
    idx = torch.topk(h, k, dim=1, sorted=False).indices
    return torch.zeros_like(h, dtype=torch.bool).scatter_(1, idx, True)


def topk_activation(h, k):
    """Keep the ``k`` largest values of each row of ``h`` and zero the rest.

    Gradients flow only through the kept entries. Rows are independent, so
    the result does not depend on the batch.

    Examples
    --------
    >>> import torch
    >>> from skae._penalties import topk_activation
    >>> topk_activation(torch.tensor([[3.0, -1.0, 2.0, 0.5]]), 2)
    tensor([[3., 0., 2., 0.]])
    """
    if k >= h.shape[1]:
        return h
    return torch.where(topk_mask(h, k), h, h.new_zeros(()))


class TopK(nn.Module):
    """:func:`topk_activation` as a parameter-free layer (``k`` largest kept).

    Examples
    --------
    >>> import torch
    >>> from skae._penalties import TopK
    >>> TopK(1)(torch.tensor([[1.0, 5.0, 2.0]]))
    tensor([[0., 5., 0.]])
    """

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, h):
        return topk_activation(h, self.k)

    def extra_repr(self):
        return f"k={self.k}"


def sigmoid_contractive_penalty(x, weight, bias):
    """Closed-form mean :math:`\\lVert J_f(x) \\rVert_F^2` of one sigmoid layer.

    For :math:`h = \\sigma(W x + b)`, :math:`J = \\mathrm{diag}(h \\odot (1 - h))
    W`, hence :math:`\\lVert J \\rVert_F^2 = \\sum_j \\big(h_j (1 - h_j)\\big)^2
    \\sum_k W_{jk}^2`: one matrix product, no Jacobian is formed.

    Parameters
    ----------
    x : torch.Tensor of shape (m, n_features)
    weight : torch.Tensor of shape (n_components, n_features)
    bias : torch.Tensor of shape (n_components,) or None

    Returns
    -------
    torch.Tensor, scalar: the mean over the m samples.
    """
    h = torch.sigmoid(nn.functional.linear(x, weight, bias))
    row_norms = weight.square().sum(dim=1)
    return ((h * (1 - h)).square() @ row_norms).mean()


def jacobian_penalty(code, x):
    """Mean :math:`\\lVert \\partial h / \\partial x \\rVert_F^2` for any encoder.

    ``code`` must have been computed from ``x`` (which requires grad) with
    rows independent of each other (no batch statistics). The Jacobian rows
    of all samples are obtained at once by *batched* vector-Jacobian products
    with the ``n_components`` basis vectors (``is_grads_batched``, i.e.
    ``vmap`` over the backward pass, no Python loop over samples), kept in the
    graph so the penalty can itself be differentiated.

    Parameters
    ----------
    code : torch.Tensor of shape (m, n_components)
    x : torch.Tensor of shape (m, n_features), ``requires_grad=True``

    Returns
    -------
    torch.Tensor, scalar: the mean over the m samples.
    """
    m, k = code.shape
    basis = torch.eye(k, dtype=code.dtype, device=code.device)
    # grad_outputs[j] = e_j for every sample: vjp j gives row j of each J(x_i).
    grad_outputs = basis.unsqueeze(1).expand(k, m, k)
    (rows,) = torch.autograd.grad(
        code, x, grad_outputs=grad_outputs, is_grads_batched=True, create_graph=True
    )
    return rows.square().sum() / m


def single_sigmoid_layer(encoder):
    """The ``nn.Linear`` of an encoder made of ``Linear -> Sigmoid`` only, or None."""
    layers = list(encoder) if isinstance(encoder, nn.Sequential) else []
    if (
        len(layers) == 2
        and isinstance(layers[0], nn.Linear)
        and isinstance(layers[1], nn.Sigmoid)
    ):
        return layers[0]
    return None


def contractive_penalty(encoder, x):
    """Mean squared Frobenius norm of the encoder's Jacobian over a batch.

    Uses :func:`sigmoid_contractive_penalty` when ``encoder`` is a single
    sigmoid layer and :func:`jacobian_penalty` otherwise.

    Returns
    -------
    code : torch.Tensor of shape (m, n_components)
        ``encoder(x)``, computed once and shared with the reconstruction.
    penalty : torch.Tensor, scalar

    Examples
    --------
    >>> import torch
    >>> from skae._penalties import contractive_penalty
    >>> enc = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Sigmoid())
    >>> code, pen = contractive_penalty(enc, torch.zeros(4, 3))
    >>> code.shape, pen.ndim
    (torch.Size([4, 2]), 0)
    """
    if single_sigmoid_layer(encoder) is None and not x.requires_grad:
        x = x.detach().requires_grad_(True)
    code = encoder(x)
    return code, jacobian_norm_penalty(encoder, code, x)


def jacobian_norm_penalty(encoder, code, x):
    """Mean squared Frobenius norm of the encoder's Jacobian, given the codes.

    ``code = encoder(x)`` must have been computed from ``x``; when the encoder
    is not a single sigmoid layer, ``x`` must require grad (the batched
    vector-Jacobian products of :func:`jacobian_penalty` differentiate
    ``code`` with respect to it). A single sigmoid layer uses the closed form
    of :func:`sigmoid_contractive_penalty`, written in terms of the codes.
    """
    linear = single_sigmoid_layer(encoder)
    if linear is None:
        return jacobian_penalty(code, x)
    row_norms = linear.weight.square().sum(dim=1)
    return ((code * (1 - code)).square() @ row_norms).mean()


def exact_jacobian_norms(encoder, x):
    """Per-sample :math:`\\lVert J_f(x_i) \\rVert_F^2` via ``torch.func`` (for checks).

    Returns
    -------
    torch.Tensor of shape (m,)
    """
    from torch.func import jacrev, vmap

    def f(row):
        return encoder(row.unsqueeze(0)).squeeze(0)

    jac = vmap(jacrev(f))(x)
    return jac.square().sum(dim=(1, 2))
