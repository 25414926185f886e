"""Label propagation on a k-nearest-neighbour graph, for pseudo-labels.

The semi-supervised step of :class:`skae.AutoencoderClassifier`, after Iscen,
Tolias, Avrithis and Chum, "Label Propagation for Deep Semi-Supervised
Learning", CVPR 2019 (itself built on the diffusion of Zhou et al., "Learning
with local and global consistency", NeurIPS 2004):

1. the rows' feature vectors (here: the autoencoder's codes) are centred and
   L2-normalized; each row's ``k`` nearest neighbours by cosine similarity
   get affinity ``max(0, cos)^gamma`` (``gamma = 3``), and the graph is made
   symmetric, ``W = A + A^T``, and normalized,
   ``W_n = D^{-1/2} W D^{-1/2}``;
2. the labels diffuse over it: ``Z`` solves ``(I - alpha W_n) Z = Y``
   (``Y`` one-hot on the labeled rows, zero elsewhere), by conjugate
   gradients, as in the paper;
3. each unlabeled row gets the pseudo-label ``argmax_j Z_ij`` and the
   certainty weight ``1 - H(z_i) / log(c)``, with ``z_i`` the row of ``Z``
   normalized to sum to one, ``H`` its entropy and ``c`` the number of
   classes: a row the diffusion reaches from one class only weighs 1, a row
   it reaches from every class equally weighs 0;
4. rows of each pseudo-class are also weighted by the inverse class
   frequency (the paper's class-balancing term), scaled so that a balanced
   set has weight 1.

One module, one job: nothing here knows about networks; it takes codes and
labels, and returns pseudo-labels and weights.
"""

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

#: Exponent of the affinities (the paper's gamma).
AFFINITY_POWER = 3
#: Rows of the query block in the neighbour search (bounds memory).
_SEARCH_BLOCK = 1024


def knn_graph(codes, n_neighbors, power=AFFINITY_POWER):
    """Symmetric, normalized kNN affinity graph of the rows of ``codes``.

    Parameters
    ----------
    codes : torch.Tensor of shape (n_samples, n_components)
    n_neighbors : int
        Neighbours per row (fewer when there are fewer other rows).
    power : float, default=3
        Exponent ``gamma`` of the clipped cosine similarity.

    Returns
    -------
    graph : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        ``D^{-1/2} (A + A^T) D^{-1/2}``, float64, zero diagonal.

    Examples
    --------
    >>> import torch
    >>> from skae._propagation import knn_graph
    >>> codes = torch.tensor([[1.0, 0.1], [1.0, 0.2], [-1.0, 0.1], [-1.0, 0.2]])
    >>> (knn_graph(codes, 1).toarray() > 0).astype(int)
    array([[0, 1, 0, 0],
           [1, 0, 0, 0],
           [0, 0, 0, 1],
           [0, 0, 1, 0]])
    """
    codes = codes.detach().to(torch.float32).cpu()
    n = len(codes)
    k = min(n_neighbors, n - 1)
    if k < 1:
        return scipy.sparse.csr_matrix((n, n))
    # Centred first: codes of an autoencoder need not be centred at 0, and
    # cosines between uncentred vectors are all close to 1.
    codes = codes - codes.mean(0)
    codes = torch.nn.functional.normalize(codes, dim=1)
    rows, cols, values = [], [], []
    for start in range(0, n, _SEARCH_BLOCK):
        block = codes[start : start + _SEARCH_BLOCK]
        similarity = block @ codes.T
        own = torch.arange(start, start + len(block))
        similarity[torch.arange(len(block)), own] = -np.inf
        top, index = similarity.topk(k, dim=1)
        rows.append(own.repeat_interleave(k))
        cols.append(index.flatten())
        values.append(top.flatten().clamp(min=0).pow(power))
    affinity = scipy.sparse.csr_matrix(
        (
            torch.cat(values).double().numpy(),
            (torch.cat(rows).numpy(), torch.cat(cols).numpy()),
        ),
        shape=(n, n),
    )
    affinity = affinity + affinity.T
    degree = np.asarray(affinity.sum(axis=1)).ravel()
    # A row whose neighbours all have negative cosine is isolated: degree 0,
    # no propagation through it.
    inverse_root = np.zeros(n)
    inverse_root[degree > 0] = degree[degree > 0] ** -0.5
    scaling = scipy.sparse.diags(inverse_root)
    graph = (scaling @ affinity @ scaling).tocsr()
    graph.eliminate_zeros()
    return graph


def propagate(graph, labels, n_classes, alpha=0.99, max_iter=20):
    """Diffuse the known labels over ``graph``: solve ``(I - alpha W) Z = Y``.

    Parameters
    ----------
    graph : sparse matrix of shape (n_samples, n_samples)
        Symmetric, normalized affinities (:func:`knn_graph`).
    labels : ndarray of int of shape (n_samples,)
        Class index of each labeled row, ``-1`` for the unlabeled.
    n_classes : int
    alpha : float, default=0.99
        Weight of the neighbours against the row's own label, in [0, 1).
    max_iter : int, default=20
        Conjugate-gradient iterations per class (the paper's setting).

    Returns
    -------
    scores : ndarray of shape (n_samples, n_classes)
        ``Z``, the diffused label mass of each class at each row.

    Examples
    --------
    >>> import numpy as np, scipy.sparse
    >>> from skae._propagation import propagate
    >>> chain = scipy.sparse.diags([[0.5, 0.5], [0.5, 0.5]], [-1, 1], shape=(3, 3))
    >>> propagate(chain, np.array([0, -1, -1]), 2).argmax(1)
    array([0, 0, 0])
    """
    n = graph.shape[0]
    system = scipy.sparse.identity(n, format="csr") - alpha * graph
    known = np.flatnonzero(labels >= 0)
    scores = np.zeros((n, n_classes))
    for j in range(n_classes):
        target = np.zeros(n)
        target[known[labels[known] == j]] = 1.0
        if not target.any():
            continue
        scores[:, j], _ = scipy.sparse.linalg.cg(
            system, target, x0=target, rtol=1e-6, maxiter=max_iter
        )
    return scores


def pseudo_labels(scores, labels):
    """Pseudo-labels and weights of every row from diffused ``scores``.

    Parameters
    ----------
    scores : ndarray of shape (n_samples, n_classes)
        :func:`propagate`'s output.
    labels : ndarray of int of shape (n_samples,)
        Class index of each labeled row, ``-1`` for the unlabeled.

    Returns
    -------
    targets : ndarray of int of shape (n_samples,)
        The true label of a labeled row, ``argmax`` of its scores otherwise.
    weights : ndarray of shape (n_samples,)
        1 for a labeled row; certainty times class balance otherwise (0 for
        a row the diffusion did not reach).

    Examples
    --------
    >>> import numpy as np
    >>> from skae._propagation import pseudo_labels
    >>> scores = np.array([[1.0, 0.0], [0.9, 0.0], [0.1, 0.8], [0.0, 0.0]])
    >>> targets, weights = pseudo_labels(scores, np.array([0, -1, -1, -1]))
    >>> targets[:3], weights.round(2)
    (array([0, 0, 1]), array([1. , 1. , 0.5, 0. ]))
    """
    n_classes = scores.shape[1]
    mass = np.clip(scores, 0, None)
    total = mass.sum(axis=1, keepdims=True)
    reached = total[:, 0] > 0
    probability = np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(probability > 0, probability * np.log(probability), 0.0)
    certainty = 1.0 - entropy.sum(axis=1) / np.log(n_classes)
    certainty = np.where(reached, np.clip(certainty, 0.0, 1.0), 0.0)
    labeled = labels >= 0
    targets = np.where(labeled, labels, scores.argmax(axis=1))
    # Class balance over the pseudo-labeled rows: inverse frequency, scaled
    # so that equal classes weigh 1 (scikit-learn's "balanced" weights).
    unlabeled = ~labeled & reached
    counts = np.bincount(targets[unlabeled], minlength=n_classes).astype(float)
    balance = np.divide(
        unlabeled.sum(),
        n_classes * counts,
        out=np.zeros(n_classes),
        where=counts > 0,
    )
    weights = np.where(labeled, 1.0, certainty * balance[targets])
    return targets, weights
