"""Compare dimensionality reducers, clusterers and autoencoders in one call.

:func:`compare_reconstruction` cross-validates a list of models with the
uniform reconstruction error of :mod:`skae.metrics` (and, when labels are
given, the accuracy of a classifier trained on each model's codes) and returns
a :class:`pandas.DataFrame`; :func:`plot_comparison` draws it as error against
latent size, one line per method.
"""

import time
from collections.abc import Mapping
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.model_selection import check_cv
from sklearn.svm import SVC
from sklearn.utils import _safe_indexing

from skae.metrics import _check_reconstructible, reconstruction_error

__all__ = ["compare_reconstruction", "plot_comparison"]


def _named_estimators(estimators):
    """Normalize the ``estimators`` argument to a list of (name, estimator)."""
    if isinstance(estimators, Mapping):
        items = list(estimators.items())
    else:
        items = []
        for entry in estimators:
            if isinstance(entry, tuple) and len(entry) == 2:
                items.append(entry)
            else:
                items.append((type(entry).__name__, entry))
    named = []
    for name, value in items:
        group = value if isinstance(value, list | tuple) else [value]
        for estimator in group:
            if not hasattr(estimator, "fit"):
                raise TypeError(
                    f"estimators[{name!r}] must be an estimator with fit, got "
                    f"{estimator!r}."
                )
            named.append((str(name), estimator))
    if not named:
        raise ValueError("estimators is empty: give at least one estimator.")
    return named


def compare_reconstruction(
    estimators,
    X,
    y=None,
    *,
    cv=5,
    classifier=None,
    return_folds=False,
):
    """Cross-validate models on held-out reconstruction error (and accuracy).

    Each model is fitted on the training part of every split and scored on the
    held-out part with :func:`skae.metrics.reconstruction_error`, so PCA, NMF,
    KMeans, DictionaryLearning, pipelines and skae autoencoders are measured on
    the same scale. When ``y`` is given, ``classifier`` is also trained on the
    model's codes of the training part and scored (accuracy) on the held-out
    codes: the same as ``Pipeline([model, classifier])``, reusing the fitted
    model.

    Parameters
    ----------
    estimators : list or dict
        The models, unfitted (they are cloned). A list holds estimators or
        ``(name, estimator)`` pairs; a dict maps names to an estimator or to a
        list of estimators (e.g. one per latent size). Without a name, the
        class name is used. Rows sharing a name are one method in
        :func:`plot_comparison`.
    X : array-like of shape (n_samples, n_features)
        Data.
    y : array-like of shape (n_samples,), default=None
        Class labels. When given, the downstream accuracy is reported and an
        integer ``cv`` gives stratified folds.
    cv : int, cross-validation generator or iterable, default=5
        Splitting strategy, as in :func:`~sklearn.model_selection.cross_validate`.
    classifier : estimator, default=None
        Classifier trained on the codes; ``None`` means ``SVC()``.
    return_folds : bool, default=False
        Return one row per model and fold instead of the mean (and standard
        deviation) over folds.

    Returns
    -------
    results : pandas.DataFrame
        One row per model, in the given order, with columns ``method``,
        ``latent_size`` (the width of ``transform``'s output: ``n_components``,
        or ``n_clusters`` for KMeans), ``reconstruction_error`` and
        ``reconstruction_error_std`` (held-out MSE in the units of X), then
        ``accuracy`` and ``accuracy_std`` when ``y`` is given, ``fit_time`` and
        ``transform_time`` (seconds, mean per fold). With
        ``return_folds=True``: a ``fold`` column and no ``*_std`` columns.

    Raises
    ------
    TypeError
        Before any fitting, if a model cannot reconstruct its input (see
        :func:`skae.metrics.reconstruct`) or ``classifier`` is not a
        classifier.

    See Also
    --------
    plot_comparison : Draw the returned table.
    skae.metrics.neg_reconstruction_error : The scorer, for ``cross_validate``.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from skae.model_selection import compare_reconstruction
    >>> X, y = load_digits(return_X_y=True)
    >>> df = compare_reconstruction(
    ...     {
    ...         "PCA": [PCA(n_components=k) for k in (2, 8)],
    ...         "KMeans": [KMeans(n_clusters=k, n_init=1, random_state=0)
    ...                    for k in (2, 8)],
    ...     },
    ...     X, y, cv=3,
    ... )
    >>> df[["method", "latent_size"]].values.tolist()
    [['PCA', 2], ['PCA', 8], ['KMeans', 2], ['KMeans', 8]]
    >>> bool(df.loc[1, "reconstruction_error"] < df.loc[0, "reconstruction_error"])
    True
    """
    named = _named_estimators(estimators)
    for name, estimator in named:
        try:
            _check_reconstructible(estimator)
        except TypeError as exc:
            raise TypeError(f"estimator {name!r}: {exc}") from None
    if classifier is None:
        classifier = SVC()
    if y is not None and not is_classifier(classifier):
        raise TypeError(
            f"classifier must be a scikit-learn classifier, got {classifier!r}."
        )
    splitter = check_cv(cv, y, classifier=y is not None)
    splits = list(splitter.split(X, y))

    rows = []
    for order, (name, estimator) in enumerate(named):
        for fold, (train, test) in enumerate(splits):
            X_train = _safe_indexing(X, train)
            X_test = _safe_indexing(X, test)
            model = clone(estimator)
            start = time.perf_counter()
            model.fit(X_train)
            fit_time = time.perf_counter() - start
            start = time.perf_counter()
            Z_test = model.transform(X_test)
            transform_time = time.perf_counter() - start
            row = {
                "order": order,
                "method": name,
                "fold": fold,
                "latent_size": np.shape(Z_test)[1],
                "reconstruction_error": reconstruction_error(model, X_test),
            }
            if y is not None:
                y_train = _safe_indexing(y, train)
                y_test = _safe_indexing(y, test)
                clf = clone(classifier).fit(model.transform(X_train), y_train)
                row["accuracy"] = float(clf.score(Z_test, y_test))
            row["fit_time"] = fit_time
            row["transform_time"] = transform_time
            rows.append(row)
    folds = pd.DataFrame(rows)
    if return_folds:
        return folds.drop(columns="order")

    metrics = ["reconstruction_error"] + (["accuracy"] if y is not None else [])
    grouped = folds.groupby("order", sort=True)
    table = grouped[["method"]].first()
    sizes = grouped["latent_size"].mean()
    table["latent_size"] = [
        int(s) if float(s).is_integer() else float(s) for s in sizes
    ]
    for metric in metrics:
        table[metric] = grouped[metric].mean()
        table[f"{metric}_std"] = grouped[metric].std(ddof=0)
    table["fit_time"] = grouped["fit_time"].mean()
    table["transform_time"] = grouped["transform_time"].mean()
    return table.reset_index(drop=True)


def plot_comparison(df, ax=None, *, metric="reconstruction_error", logy=False):
    """Plot a comparison table: ``metric`` against latent size, one line per method.

    Parameters
    ----------
    df : pandas.DataFrame
        As returned by :func:`compare_reconstruction`: needs the columns
        ``method``, ``latent_size`` and ``metric`` (its ``<metric>_std``
        column, when present, is drawn as error bars).
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; a new figure is created when ``None``.
    metric : str, default="reconstruction_error"
        Column to plot, e.g. ``"accuracy"`` or ``"fit_time"``.
    logy : bool, default=False
        Use a logarithmic y axis.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on.

    See Also
    --------
    compare_reconstruction : Build the table.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from skae.model_selection import plot_comparison
    >>> df = pd.DataFrame({
    ...     "method": ["PCA", "PCA", "KMeans", "KMeans"],
    ...     "latent_size": [2, 8, 2, 8],
    ...     "reconstruction_error": [13.4, 6.8, 15.1, 11.0],
    ... })
    >>> ax = plot_comparison(df)
    >>> [line.get_label() for line in ax.get_lines()]
    ['PCA', 'KMeans']
    """
    import matplotlib.pyplot as plt

    missing = {"method", "latent_size", metric} - set(df.columns)
    if missing:
        raise ValueError(
            f"df lacks the column(s) {sorted(missing)}; pass the DataFrame "
            "returned by compare_reconstruction."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    std_column = f"{metric}_std"
    for method in pd.unique(df["method"]):
        part = df[df["method"] == method].sort_values("latent_size")
        (line,) = ax.plot(
            part["latent_size"], part[metric], marker="o", label=str(method)
        )
        if std_column in part and part[std_column].notna().any():
            ax.errorbar(
                part["latent_size"],
                part[metric],
                yerr=part[std_column],
                fmt="none",
                ecolor=line.get_color(),
                capsize=3,
            )
    sizes = sorted(pd.unique(df["latent_size"]))
    if sizes and all(isinstance(s, Integral | np.integer) and s > 0 for s in sizes):
        if sizes[-1] / sizes[0] >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("latent size (n_components / n_clusters)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend()
    ax.grid(True, alpha=0.3)
    return ax
