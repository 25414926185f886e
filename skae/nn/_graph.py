"""The graph autoencoder's network: a two-layer GCN encoder and the
inner-product decoder (Kipf and Welling, 2016).

The encoder needs the whole graph, not one row at a time, so this module does
not follow :class:`~skae.nn.AutoencoderModule`: ``forward`` takes the
normalized adjacency and the node features and returns every node's code.
"""

import torch
from torch import nn


def _matmul(a, b):
    """``a @ b`` for a dense or sparse COO ``a``."""
    return torch.sparse.mm(a, b) if a.is_sparse else a @ b


class GCNEncoder(nn.Module):
    r"""Two graph-convolution layers, ``Z = Â relu(Â X W0) W1``.

    ``Â`` is the symmetrically normalized adjacency with self-loops
    :math:`D^{-1/2}(A + I)D^{-1/2}`. No biases, as in the paper: a bias would
    shift every inner product :math:`z_i^\top z_j` alike.

    Parameters
    ----------
    n_inputs : int
        Features per node.
    hidden_size : int
        Width of the first graph convolution.
    n_components : int
        Size of the node codes.

    Examples
    --------
    >>> import torch
    >>> from skae.nn._graph import GCNEncoder
    >>> encoder = GCNEncoder(5, 4, 2)
    >>> encoder(torch.eye(5), torch.eye(5)).shape
    torch.Size([5, 2])
    """

    def __init__(self, n_inputs, hidden_size, n_components):
        super().__init__()
        self.hidden = nn.Linear(n_inputs, hidden_size, bias=False)
        self.output = nn.Linear(hidden_size, n_components, bias=False)
        # Glorot-uniform, the paper's initialization (drawn from torch's
        # global generator, which the estimator seeds and restores).
        nn.init.xavier_uniform_(self.hidden.weight)
        nn.init.xavier_uniform_(self.output.weight)

    def forward(self, adjacency, features):
        """Codes of every node, shape (n_nodes, n_components)."""
        projected = _matmul(features, self.hidden.weight.T)
        hidden = torch.relu(_matmul(adjacency, projected))
        return _matmul(adjacency, self.output(hidden))


def inner_product_logits(z, rows=None, cols=None):
    """Logits ``z_i . z_j`` of the inner-product decoder ``sigmoid(Z Z^T)``.

    With ``rows`` and ``cols`` (index tensors of equal length) only those
    pairs, else the full (n_nodes, n_nodes) matrix.

    Examples
    --------
    >>> import torch
    >>> from skae.nn._graph import inner_product_logits
    >>> z = torch.tensor([[1.0, 0.0], [2.0, 1.0]])
    >>> inner_product_logits(z)
    tensor([[1., 2.],
            [2., 5.]])
    >>> inner_product_logits(z, torch.tensor([0]), torch.tensor([1]))
    tensor([2.])
    """
    if rows is None:
        return z @ z.T
    return (z[rows] * z[cols]).sum(dim=1)
