r"""Training pieces of the dictionary-style sparse autoencoders
(``SparseAE(sparsity="batchtopk" | "jumprelu")``, whose network is
:class:`skae.nn._sae.SAEModule`).

- :func:`geometric_median`: the starting pre-encoder bias (Bricken et al., 2023);
- :class:`SAEObjective`: mean squared error, the kind's penalty on the
  pre-activations (JumpReLU's L0) and the AuxK loss of dead latents (Gao et
  al., 2024), with the per-latent count of rows since each latent last fired.
"""

import numpy as np
import torch

from skae._losses import reconstruction_loss
from skae._objectives import ReconstructionObjective

#: Rows the geometric median looks at (evenly spaced blocks of the data).
GEOMETRIC_MEDIAN_MAX_ROWS = 4096
_BLOCK = 512


@torch.no_grad()
def geometric_median(x, n_iter=50, tol=1e-6):
    r"""The point minimizing the sum of Euclidean distances to the rows of ``x``.

    Weiszfeld's iteration :math:`m \leftarrow \sum_i w_i x_i / \sum_i w_i`
    with :math:`w_i = 1 / \max(\lVert x_i - m \rVert, 10^{-8})`, from the mean;
    it stops when :math:`m` moves by less than ``tol`` times its scale.

    Examples
    --------
    >>> import torch
    >>> from skae._sae_training import geometric_median
    >>> x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [10.0, 1.0], [50.0, 1.0]])
    >>> geometric_median(x, n_iter=500).round(decimals=2)  # the mean is (12.6, 1)
    tensor([2., 1.], dtype=torch.float64)
    """
    x = x.double()
    median = x.mean(dim=0)
    scale = x.abs().max().clamp_min(1e-300)
    for _ in range(n_iter):
        weights = 1.0 / (x - median).norm(dim=1).clamp_min(1e-8)
        new = (weights[:, None] * x).sum(dim=0) / weights.sum()
        moved = (new - median).norm()
        median = new
        if moved <= tol * scale:
            break
    return median


def sample_rows(rows, max_rows=GEOMETRIC_MEDIAN_MAX_ROWS):
    """At most ``max_rows`` training rows, in evenly spaced blocks (rows of a
    memory map or dask array may be ordered, e.g. by class)."""
    n = len(rows)
    if n <= max_rows:
        starts = range(0, n, _BLOCK)
    else:
        starts = np.linspace(0, n - _BLOCK, max_rows // _BLOCK).astype(int)
    return torch.cat([rows.rows(int(s), min(int(s) + _BLOCK, n)) for s in starts])


class SAEObjective(ReconstructionObjective):
    r"""MSE + the kind's penalty + :math:`\alpha_\text{aux}` AuxK loss.

    For a batch with pre-activations :math:`h`, codes :math:`z` and
    reconstructions :math:`\hat x`, with :math:`D` the latents that have not
    fired on any of the last ``dead_window`` training rows,

    .. math::

        e = x - \hat x, \qquad
        \hat e = W_\text{dec}\, \mathrm{ReLU}\big(\mathrm{TopK}_{k_\text{aux}}
        (h|_D)\big), \qquad
        L_\text{aux} = \frac1{m\,d} \sum_i \lVert e_i - \hat e_i \rVert^2 ,

    the dead latents' best ``k_aux`` activations reconstructing the residual
    error (Gao et al., 2024): they get a gradient again although the main
    loss gives them none. The ReLU of the top :math:`k_\text{aux}`
    pre-activations is differentiated as the identity, so that a latent whose
    pre-activation is negative on every row (the usual way to die) is pulled
    back too. The residual is a target (detached), so only the
    dead latents learn from this term.

    Parameters
    ----------
    kind : skae._sparsity.SparsityKind
    weight : float
        The kind's penalty weight (JumpReLU's L0 coefficient).
    aux_k : int
        :math:`k_\text{aux}`; 0 disables the AuxK loss.
    aux_weight : float
        :math:`\alpha_\text{aux}`.
    dead_window : int
        Rows without firing after which a latent counts as dead.
    prefixes : sequence of int or None, default=None
        Matryoshka prefix sizes :math:`m_1 < \dots < m_L = n`: the
        reconstruction term is then the mean over :math:`l` of the squared
        error of :math:`\hat x^{(l)} = W_\text{dec}[:, :m_l]\, z_{:m_l} +
        b_\text{pre}`, the reconstruction by the first :math:`m_l` latents
        only (Bussmann et al., 2025), and AuxK uses the full one's residual.
        With a user's decoder :math:`g` (no dictionary of columns), it is
        :math:`g` of the code with the latents beyond :math:`m_l` zeroed.

    The module gives ``decode_residual(z)``, what latents add to a
    reconstruction: :math:`W_\text{dec} z` for skae's network, :math:`g(z)
    - g(0)` for a user's decoder :math:`g`.
    """

    def __init__(self, kind, weight, aux_k, aux_weight, dead_window, prefixes=None):
        super().__init__("mse")
        self.prefixes = None if prefixes is None else tuple(prefixes)
        self.kind = kind
        self.weight = weight
        self.aux_k = aux_k
        self.aux_weight = aux_weight
        self.dead_window = dead_window
        self._fired = None

    def epoch_statistics(self):
        fired, self._fired = self._fired, None
        return {} if fired is None else {"fired_units": fired}

    def forward(self, module, x, training=True):
        encoder = module.encoder
        h = encoder.pre_activations(x)
        z = encoder.activation(h)
        if self.prefixes is None:
            x_hat = module.decode(z)
            loss = reconstruction_loss(x_hat, x, "mse").mean()
        else:
            loss, x_hat = self._nested_loss(module, z, x)
        penalty = self.kind.code_penalty(encoder.activation, h, self.weight)
        if penalty is not None:
            loss = loss + penalty
        if training:
            fired = (z.detach() != 0).any(dim=0)
            self._fired = fired if self._fired is None else self._fired | fired
            dead = encoder.rows_since_fired >= self.dead_window
            if self.aux_k > 0 and self.aux_weight > 0 and bool(dead.any()):
                loss = loss + self.aux_weight * self._aux_loss(
                    module, h, dead, (x - x_hat).detach()
                )
            with torch.no_grad():
                encoder.rows_since_fired += len(x)
                encoder.rows_since_fired[fired] = 0
        return loss

    def _nested_loss(self, module, z, x):
        """Mean squared error of the nested prefixes' reconstructions, and
        the full reconstruction."""
        if not hasattr(module.decoder, "directions"):
            # Any decoder (a user's): decode the codes cut to each prefix.
            latent, losses = torch.arange(z.shape[1], device=z.device), []
            for stop in self.prefixes:
                x_hat = module.decode(z * (latent < stop).to(z.dtype))
                losses.append(reconstruction_loss(x_hat, x, "mse").mean())
            return torch.stack(losses).mean(), x_hat
        directions = module.decoder.directions().to(z.dtype)
        x_hat = module.encoder.pre_bias.to(z.dtype).expand_as(x)
        start, losses = 0, []
        for stop in self.prefixes:
            # Each group adds its latents' part to the previous prefix's.
            x_hat = x_hat + z[:, start:stop] @ directions[:, start:stop].T
            losses.append(reconstruction_loss(x_hat, x, "mse").mean())
            start = stop
        return torch.stack(losses).mean(), x_hat

    def _aux_loss(self, module, h, dead, residual):
        k = min(self.aux_k, int(dead.sum()))
        candidates = torch.where(dead, h, h.new_full((), -torch.inf))
        values, index = torch.topk(candidates, k, dim=1, sorted=False)
        # ReLU forward, identity backward: a latent that died because its
        # pre-activation is negative on every row still gets a gradient, and
        # it raises the pre-activation where the latent's decoder direction
        # would reduce the residual (a negative code with a flipped direction
        # would keep it dead).
        values = values + (torch.relu(values) - values).detach()
        z_aux = torch.zeros_like(h).scatter(1, index, values)
        return reconstruction_loss(
            module.decode_residual(z_aux), residual, "mse"
        ).mean()
