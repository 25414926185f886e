"""Reconstruction scorers that put PCA, NMF, KMeans and skae models on one scale.

scikit-learn's own ``score`` methods are not comparable across these models
(``PCA.score`` is a log-likelihood, ``KMeans.score`` the negative inertia and
``NMF`` has none). The functions here measure the same thing for all of them:
how well the model reconstructs held-out data, as a mean squared error in the
units of ``X``.

- :func:`reconstruct` returns the reconstruction of ``X`` by a fitted model;
- :func:`reconstruction_error` returns its mean squared error;
- :func:`neg_reconstruction_error` is a scorer (greater is better) for
  ``scoring=`` in :func:`~sklearn.model_selection.cross_validate` and
  :class:`~sklearn.model_selection.GridSearchCV`.

What "reconstruction" means for each kind of model:

- a transformer with ``inverse_transform`` (PCA, NMF, DictionaryLearning, every
  skae autoencoder): ``inverse_transform(transform(X))``;
- a clusterer with ``cluster_centers_`` and ``predict`` (KMeans,
  MiniBatchKMeans, BisectingKMeans): the centroid each sample is assigned to,
  ``cluster_centers_[predict(X)]`` (vector quantization);
- a :class:`~sklearn.pipeline.Pipeline`: transform ``X`` through every step but
  the last, reconstruct with the last step (either of the above), then map back
  through the earlier steps' ``inverse_transform`` in reverse order, so the
  error is again in the units of ``X``.

The numbers sparse-autoencoder papers report about a sparse code
(:func:`l0_norm`, :func:`fraction_variance_explained`, :func:`dead_fraction`,
:func:`shrinkage`, and all four at once by :func:`sparse_code_metrics`) are
here too.
"""

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from skae._sae_metrics import (
    dead_fraction,
    fraction_variance_explained,
    l0_norm,
    shrinkage,
    sparse_code_metrics,
)

__all__ = [
    "dead_fraction",
    "fraction_variance_explained",
    "l0_norm",
    "neg_reconstruction_error",
    "reconstruct",
    "reconstruction_error",
    "shrinkage",
    "sparse_code_metrics",
]


def _name(estimator):
    return type(estimator).__name__


def _is_passthrough(step):
    return step is None or (isinstance(step, str) and step == "passthrough")


def _is_quantizer(estimator):
    """A clusterer that assigns each sample to one of ``n_clusters`` centroids."""
    return (
        not hasattr(estimator, "inverse_transform")
        and hasattr(estimator, "predict")
        and (hasattr(estimator, "cluster_centers_") or hasattr(estimator, "n_clusters"))
    )


def _check_reconstructible(estimator):
    """Raise TypeError unless ``estimator`` can reconstruct its input.

    Looks only at the estimator's structure, so it works before fitting and
    lets callers fail fast.
    """
    if isinstance(estimator, Pipeline):
        steps = [(n, s) for n, s in estimator.steps if not _is_passthrough(s)]
        if not steps:
            return
        for name, step in steps[:-1]:
            if not hasattr(step, "inverse_transform"):
                raise TypeError(
                    f"Cannot measure reconstruction error of this Pipeline: its "
                    f"step {name!r} ({_name(step)}) has no inverse_transform, so "
                    "reconstructions cannot be mapped back to the units of X. Put "
                    "only invertible steps (e.g. StandardScaler) before the model."
                )
        _check_reconstructible(steps[-1][1])
        return
    if hasattr(estimator, "inverse_transform") and hasattr(estimator, "transform"):
        return
    if _is_quantizer(estimator):
        return
    raise TypeError(
        f"Cannot measure reconstruction error of {_name(estimator)}: it needs a "
        "transformer with transform and inverse_transform (PCA, NMF, an skae "
        "autoencoder), a clusterer with cluster_centers_ and predict (KMeans), "
        f"or a Pipeline ending in one; {_name(estimator)} is none of these."
    )


def reconstruct(estimator, X):
    """Reconstruct ``X`` with a fitted model, in the units of ``X``.

    Parameters
    ----------
    estimator : estimator instance
        A fitted transformer with ``inverse_transform`` (PCA, NMF, any skae
        autoencoder), a fitted clusterer with ``cluster_centers_`` and
        ``predict`` (KMeans: each sample is reconstructed by its centroid), or a
        fitted :class:`~sklearn.pipeline.Pipeline` whose last step is one of
        these and whose earlier steps all have ``inverse_transform``.
    X : array-like of shape (n_samples, n_features)
        Data in the units the model was fitted on.

    Returns
    -------
    X_hat : ndarray of shape (n_samples, n_features)
        The reconstruction of ``X``.

    Raises
    ------
    TypeError
        If the estimator cannot reconstruct its input (no
        ``inverse_transform``, not a centroid-based clusterer).

    See Also
    --------
    reconstruction_error : Mean squared error of this reconstruction.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.cluster import KMeans
    >>> from skae.metrics import reconstruct
    >>> X = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 10.0], [10.0, 12.0]])
    >>> km = KMeans(n_clusters=2, n_init=1, random_state=0).fit(X)
    >>> reconstruct(km, X[:1])  # the centroid of the first cluster
    array([[0., 1.]])
    """
    _check_reconstructible(estimator)
    if isinstance(estimator, Pipeline):
        steps = [(n, s) for n, s in estimator.steps if not _is_passthrough(s)]
        if not steps:
            return np.asarray(X)
        Xt = X
        for _, step in steps[:-1]:
            Xt = step.transform(Xt)
        X_hat = reconstruct(steps[-1][1], Xt)
        # Undo the preprocessing in reverse order: back to the units of X.
        for _, step in reversed(steps[:-1]):
            X_hat = step.inverse_transform(X_hat)
        return np.asarray(X_hat)
    if hasattr(estimator, "inverse_transform"):
        return np.asarray(estimator.inverse_transform(estimator.transform(X)))
    check_is_fitted(estimator, "cluster_centers_")
    return np.asarray(estimator.cluster_centers_)[estimator.predict(X)]


def reconstruction_error(estimator, X):
    """Mean squared reconstruction error of a fitted model on ``X``.

    The error is averaged over samples and features and expressed in the
    units of ``X`` (squared), whatever scaling the model applies internally,
    so PCA, NMF, KMeans, DictionaryLearning and every skae estimator can be
    compared directly. See :func:`reconstruct` for what reconstruction means
    for each kind of model.

    Parameters
    ----------
    estimator : estimator instance
        A fitted model that :func:`reconstruct` accepts.
    X : array-like of shape (n_samples, n_features)
        Data to reconstruct, typically held out from fitting.

    Returns
    -------
    mse : float
        ``mean((X - reconstruct(estimator, X)) ** 2)``. Multiply by
        ``n_features`` for the squared error per sample.

    Raises
    ------
    TypeError
        If the estimator cannot reconstruct its input.

    See Also
    --------
    neg_reconstruction_error : The same, negated, as a scorer.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from skae.metrics import reconstruction_error
    >>> X, _ = load_digits(return_X_y=True)
    >>> pca = PCA(n_components=8).fit(X[:1000])
    >>> round(reconstruction_error(pca, X[1000:]), 1)
    6.7
    """
    X_hat = reconstruct(estimator, X)
    X = np.asarray(X, dtype=np.float64)
    if X_hat.shape != X.shape:
        raise ValueError(
            f"The reconstruction by {_name(estimator)} has shape {X_hat.shape}, "
            f"but X has shape {X.shape}."
        )
    return float(np.mean((X - X_hat.astype(np.float64, copy=False)) ** 2))


def neg_reconstruction_error(estimator, X, y=None):
    """Scorer: the negative mean squared reconstruction error (greater is better).

    Pass it as ``scoring=`` to :func:`~sklearn.model_selection.cross_validate`,
    :func:`~sklearn.model_selection.cross_val_score` or
    :class:`~sklearn.model_selection.GridSearchCV` (alone, or as a value in a
    dict of scorers) to compare or tune PCA, NMF, KMeans, pipelines and skae
    models on the same, held-out, scale.

    Parameters
    ----------
    estimator : estimator instance
        A fitted model that :func:`reconstruct` accepts.
    X : array-like of shape (n_samples, n_features)
        Held-out data.
    y : Ignored
        Not used, present for the scorer signature.

    Returns
    -------
    score : float
        ``-reconstruction_error(estimator, X)``.

    See Also
    --------
    reconstruction_error : The error itself.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skae.metrics import neg_reconstruction_error
    >>> X, _ = load_digits(return_X_y=True)
    >>> search = GridSearchCV(
    ...     PCA(), {"n_components": [2, 8, 16]}, scoring=neg_reconstruction_error
    ... ).fit(X)
    >>> search.best_params_
    {'n_components': 16}
    """
    return -reconstruction_error(estimator, X)
