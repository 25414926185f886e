r"""The numbers sparse-autoencoder papers report about a code and its
reconstruction (re-exported by :mod:`skae.metrics`).

For rows :math:`x_i`, codes :math:`z_i` and reconstructions :math:`\hat x_i`,
:math:`i = 1..m`:

- L0: :math:`\frac1m \sum_i \lVert z_i \rVert_0`, the mean number of active
  latents per row;
- fraction of variance explained: :math:`1 - \sum_i \lVert x_i - \hat x_i
  \rVert^2 / \sum_i \lVert x_i - \bar x \rVert^2`;
- dead fraction: the share of latents active on none of the rows (the
  window is the rows given);
- shrinkage: :math:`\frac1m \sum_i \lVert \hat x_i \rVert / \lVert x_i
  \rVert` over rows with :math:`x_i \ne 0` (below 1 when a penalty on the
  activations' size shrinks them, as L1 does; TopK kinds have none).
"""

import numpy as np
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = [
    "dead_fraction",
    "fraction_variance_explained",
    "l0_norm",
    "shrinkage",
    "sparse_code_metrics",
]


def _codes(Z):
    return check_array(Z, accept_sparse=("csr", "csc"), input_name="Z")


def _pair(X, X_hat):
    X = check_array(X, input_name="X")
    X_hat = check_array(X_hat, input_name="X_hat")
    if X.shape != X_hat.shape:
        raise ValueError(
            f"X has shape {X.shape} but X_hat has shape {X_hat.shape}: they must "
            "be the same rows and features."
        )
    return X, X_hat


def l0_norm(Z):
    """Mean number of non-zero entries per row of the codes ``Z``.

    Parameters
    ----------
    Z : array-like or sparse matrix of shape (n_samples, n_components)

    Returns
    -------
    float

    Examples
    --------
    >>> from skae.metrics import l0_norm
    >>> l0_norm([[0.0, 2.0, 1.0], [0.0, 0.0, 3.0]])
    1.5
    """
    Z = _codes(Z)
    nonzero = Z.getnnz() if hasattr(Z, "getnnz") else np.count_nonzero(Z)
    return float(nonzero / Z.shape[0])


def dead_fraction(Z):
    """Share of latents (columns of ``Z``) that are zero on every row.

    Parameters
    ----------
    Z : array-like or sparse matrix of shape (n_samples, n_components)
        Codes of the rows of the window.

    Returns
    -------
    float

    Examples
    --------
    >>> from skae.metrics import dead_fraction
    >>> dead_fraction([[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
    0.5
    """
    Z = _codes(Z)
    if hasattr(Z, "getnnz"):
        alive = np.asarray(abs(Z).sum(axis=0)).ravel() != 0
    else:
        alive = np.any(Z != 0, axis=0)
    return float(1.0 - alive.mean())


def fraction_variance_explained(X, X_hat):
    r"""``1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2`` over the rows.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    X_hat : array-like of shape (n_samples, n_features)
        Reconstructions of the rows of ``X``.

    Returns
    -------
    float
        1 for a perfect reconstruction, 0 for the mean row's.

    Examples
    --------
    >>> from skae.metrics import fraction_variance_explained
    >>> fraction_variance_explained([[0.0, 0.0], [2.0, 2.0]],
    ...                             [[0.0, 1.0], [2.0, 2.0]])
    0.75
    """
    X, X_hat = _pair(X, X_hat)
    total = np.sum((X - X.mean(axis=0)) ** 2)
    if total == 0:
        raise ValueError("X has no variance: the fraction explained is undefined.")
    return float(1.0 - np.sum((X - X_hat) ** 2) / total)


def shrinkage(X, X_hat):
    """Mean ratio of the norm of each reconstruction to the norm of its row.

    Rows of ``X`` that are all zero are left out. Pass centred data (and
    reconstructions) to measure the shrinkage of the part a code explains.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    X_hat : array-like of shape (n_samples, n_features)

    Returns
    -------
    float

    Examples
    --------
    >>> from skae.metrics import shrinkage
    >>> shrinkage([[3.0, 4.0], [0.0, 2.0]], [[1.5, 2.0], [0.0, 2.0]])
    0.75
    """
    X, X_hat = _pair(X, X_hat)
    norms = np.linalg.norm(X, axis=1)
    keep = norms > 0
    if not keep.any():
        raise ValueError("every row of X is zero: the shrinkage is undefined.")
    return float(np.mean(np.linalg.norm(X_hat[keep], axis=1) / norms[keep]))


def sparse_code_metrics(estimator, X):
    """L0, variance explained, dead fraction and shrinkage of a fitted
    sparse coder on ``X``.

    ``transform`` gives the codes and ``inverse_transform`` the
    reconstructions (any :class:`~skae.SparseAE`, a
    :class:`~skae.DictionaryLearner` or scikit-learn's dictionary learners).
    The shrinkage is measured on ``X`` and its reconstruction centred at the
    mean of ``X``.

    Parameters
    ----------
    estimator : fitted transformer with ``inverse_transform``
    X : array-like of shape (n_samples, n_features)
        The window of rows.

    Returns
    -------
    dict
        ``{"l0", "variance_explained", "dead_fraction", "shrinkage"}``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import SparseAE
    >>> from skae.metrics import sparse_code_metrics
    >>> X, _ = load_digits(return_X_y=True)
    >>> sae = SparseAE(32, sparsity="batchtopk", k=4, max_iter=3,
    ...                random_state=0).fit(X)
    >>> sorted(sparse_code_metrics(sae, X))
    ['dead_fraction', 'l0', 'shrinkage', 'variance_explained']
    """
    check_is_fitted(estimator)
    X = check_array(X, input_name="X")
    Z = estimator.transform(X)
    if hasattr(estimator, "inverse_transform"):
        X_hat = estimator.inverse_transform(Z)
    else:
        raise TypeError(
            f"{type(estimator).__name__} has no inverse_transform: its "
            "reconstructions cannot be measured."
        )
    mean = X.mean(axis=0)
    return {
        "l0": l0_norm(Z),
        "variance_explained": fraction_variance_explained(X, X_hat),
        "dead_fraction": dead_fraction(Z),
        "shrinkage": shrinkage(X - mean, X_hat - mean),
    }
