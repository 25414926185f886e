"""The one place that looks at the type of the training input."""

import numpy as np
from sklearn import get_config
from sklearn.utils import assert_all_finite
from sklearn.utils.validation import validate_data

from skae._dask import DaskSource, is_dask_collection
from skae._sources import ArraySource

_FLOAT_DTYPES = [np.float64, np.float32]

#: Bytes of an ``np.memmap``'s rows checked for finiteness at once.
FINITE_CHECK_CHUNK_BYTES = 4 * 2**20


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
    return ArraySource(validate_float_rows(estimator, X, reset=reset))


def validate_float_rows(estimator, X, *, reset):
    """``validate_data`` for float rows that never copies a float ``np.memmap``.

    Any input but a float32 or float64 ``np.memmap`` goes through
    scikit-learn's ``validate_data`` unchanged (a copy where a conversion is
    needed). A float ``np.memmap`` is validated without the finiteness check,
    then checked chunk by chunk (:func:`check_finite_in_chunks`), and the
    memmap itself is returned, so that training and inference read it batch
    by batch. scikit-learn's own check needs no memory on a C-contiguous array
    whose sum is finite, but falls back to full-size temporaries (boolean
    masks, or a flattened copy of a Fortran-ordered array) when the sum is
    not finite, e.g. large finite values or a NaN.

    Parameters
    ----------
    estimator : estimator instance
    X : array-like of shape (n_samples, n_features)
    reset : bool
        As in scikit-learn's ``validate_data``.

    Returns
    -------
    X : ndarray or np.memmap of shape (n_samples, n_features)
        float32 or float64, finite.
    """
    if not (isinstance(X, np.memmap) and X.dtype in _FLOAT_DTYPES):
        return validate_data(estimator, X, dtype=_FLOAT_DTYPES, reset=reset)
    validate_data(
        estimator, X, dtype=_FLOAT_DTYPES, reset=reset, ensure_all_finite=False
    )
    check_finite_in_chunks(X, estimator_name=type(estimator).__name__)
    return X


def check_finite_in_chunks(X, *, estimator_name=None):
    """Raise scikit-learn's ValueError if X holds NaN or infinity, chunk by chunk.

    Each chunk of about ``FINITE_CHECK_CHUNK_BYTES`` is summed first (finite
    sum: finite chunk, no temporary); only a chunk whose sum is not finite is
    checked element-wise, by scikit-learn's ``assert_all_finite``, which
    raises its usual message. As scikit-learn reports NaN before infinity for
    the whole array, a chunk with infinity raises only once no later chunk
    holds a NaN. Honours ``sklearn.set_config(assume_finite=True)``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Float rows (e.g. an ``np.memmap``).
    estimator_name : str, default=None
        Named in the message, as ``validate_data`` does.

    Examples
    --------
    >>> import numpy as np
    >>> from skae._input import check_finite_in_chunks
    >>> check_finite_in_chunks(np.ones((3, 2)))
    >>> check_finite_in_chunks(np.array([[1.0, np.inf]]))
    Traceback (most recent call last):
    ...
    ValueError: Input X contains infinity or a value too large for dtype('float64').
    """
    if get_config()["assume_finite"] or X.size == 0:
        return
    rows = max(1, FINITE_CHECK_CHUNK_BYTES // (X.dtype.itemsize * X.shape[1]))

    def check(block):
        assert_all_finite(block, estimator_name=estimator_name, input_name="X")

    first_infinite = None
    for start in range(0, X.shape[0], rows):
        block = X[start : start + rows]
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(block.sum()):
                continue
        if np.isnan(block).any():
            check(block)  # raises the NaN message
        if first_infinite is None and not np.isfinite(block).all():
            first_infinite = block
    if first_infinite is not None:
        check(first_infinite)  # raises the infinity message
