"""The one place that looks at the type of the training input."""

import numpy as np
from sklearn.utils.validation import validate_data

from skae._dask import DaskSource, is_dask_collection
from skae._sources import ArraySource

_FLOAT_DTYPES = [np.float64, np.float32]


def as_source(estimator, X, *, reset):
    """Validate X for ``estimator``'s fit and wrap it in a training source.

    NumPy-like input goes through scikit-learn's ``validate_data`` (shape,
    dtype, finiteness, feature names; ``reset`` as in scikit-learn) into an
    :class:`~skae._sources.ArraySource`; an ``np.memmap`` stays memory-mapped.
    A dask collection is validated without computing it and streamed chunk by
    chunk (:class:`~skae._dask.DaskSource`).
    """
    if is_dask_collection(X):
        return DaskSource.validated(estimator, X, reset=reset)
    memmap = X if isinstance(X, np.memmap) else None
    X = validate_data(estimator, X, dtype=_FLOAT_DTYPES, reset=reset)
    if memmap is not None and memmap.dtype in _FLOAT_DTYPES:
        # validate_data read every row (finiteness) without copying; train
        # from the mapped file itself, batch by batch.
        X = memmap
    return ArraySource(X)
