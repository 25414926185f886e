"""Time series to window rows, and window scores back to time steps.

A sequence model scores fixed-length windows; an anomaly in a series is
found at a time step. :func:`sliding_windows` turns a series of shape
``(n_times,)`` or ``(n_times, n_channels)`` into the rows a
:class:`~skae.SequenceAutoencoder` (or any scikit-learn estimator) takes, and
:func:`window_scores_to_steps` maps the per-window (or per-window-step) scores
back onto the series, averaging over the windows that cover each step.

These are functions, not a transformer: windowing changes the number of
rows, which a scikit-learn transformer must not do (``Pipeline`` would no
longer line rows up with ``y``), and mapping scores back needs the series'
length, which a fitted transformer has no business keeping.
"""

from numbers import Integral

import numpy as np
from sklearn.utils.validation import check_array


def _check_positive_int(value, name):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def n_windows(n_times, window, stride=1):
    """Number of windows :func:`sliding_windows` takes from ``n_times`` steps.

    Parameters
    ----------
    n_times, window, stride : int

    Returns
    -------
    n_windows : int
        ``(n_times - window) // stride + 1``; 0 when ``window > n_times``.

    Examples
    --------
    >>> from skae.timeseries import n_windows
    >>> n_windows(10, window=4, stride=3)
    3
    """
    n_times = _check_positive_int(n_times, "n_times")
    window = _check_positive_int(window, "window")
    stride = _check_positive_int(stride, "stride")
    return max(0, (n_times - window) // stride + 1)


def sliding_windows(series, window, stride=1):
    """Rows of the windows of a series, each flattened step by step.

    Window ``i`` covers steps ``i * stride`` to ``i * stride + window - 1``;
    its row is ``series[i*stride : i*stride + window].ravel()``, i.e. all
    channels of the first step, then of the second, ... : the layout
    :class:`~skae.SequenceAutoencoder` reads with
    ``sequence_shape=(window, n_channels)``. A tail of fewer than ``stride``
    steps after the last full window is not covered.

    Parameters
    ----------
    series : array-like of shape (n_times,) or (n_times, n_channels)
        The series; finite values.
    window : int
        Steps per window, at most ``n_times``.
    stride : int, default=1
        Steps between the starts of consecutive windows.

    Returns
    -------
    X : ndarray of shape (n_windows, window * n_channels)
        A copy (float), with ``n_windows = (n_times - window) // stride + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from skae.timeseries import sliding_windows
    >>> sliding_windows(np.arange(6), window=3, stride=2)
    array([[0., 1., 2.],
           [2., 3., 4.]])
    >>> sliding_windows(np.arange(8).reshape(4, 2), window=2)
    array([[0., 1., 2., 3.],
           [2., 3., 4., 5.],
           [4., 5., 6., 7.]])
    """
    values = check_array(
        series,
        ensure_2d=False,
        allow_nd=True,
        dtype=[np.float64, np.float32],
        input_name="series",
    )
    if values.ndim > 2:
        raise ValueError(
            "series must be 1-D (n_times,) or 2-D (n_times, n_channels), got an "
            f"array of shape {values.shape}."
        )
    if values.ndim == 1:
        values = values[:, None]
    window = _check_positive_int(window, "window")
    stride = _check_positive_int(stride, "stride")
    n_times, n_channels = values.shape
    if window > n_times:
        raise ValueError(
            f"window={window} is longer than the series ({n_times} steps)."
        )
    # (n_windows', n_channels, window) views, every stride-th one kept.
    views = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)
    views = views[::stride].transpose(0, 2, 1)
    return np.ascontiguousarray(views).reshape(len(views), window * n_channels)


def window_scores_to_steps(scores, n_times, window, stride=1):
    """Per-time-step scores from the scores of the windows of a series.

    The score of step ``t`` is the mean over the windows that cover it: of
    each window's score when ``scores`` has one per window (e.g.
    ``score_samples``), or of the score each window gives its own step ``t``
    when ``scores`` has one per window step (e.g.
    :meth:`~skae.SequenceAutoencoder.score_steps`). Steps that no window
    covers (a tail shorter than ``stride``) get NaN.

    Parameters
    ----------
    scores : array-like of shape (n_windows,) or (n_windows, window)
        Scores of the rows :func:`sliding_windows` returned for the series.
    n_times : int
        Length of the series.
    window, stride : int
        As given to :func:`sliding_windows`.

    Returns
    -------
    step_scores : ndarray of shape (n_times,)

    Examples
    --------
    Windows of 3 steps every 2 steps over 6 steps cover steps 0-2 and 2-4;
    step 2 is in both, step 5 in neither:

    >>> import numpy as np
    >>> from skae.timeseries import window_scores_to_steps
    >>> window_scores_to_steps(np.array([1.0, 3.0]), n_times=6, window=3, stride=2)
    array([ 1.,  1.,  2.,  3.,  3., nan])
    """
    expected = n_windows(n_times, window, stride)
    scores = check_array(
        scores,
        ensure_2d=False,
        dtype=[np.float64, np.float32],
        ensure_all_finite=False,
        input_name="scores",
    )
    if scores.ndim == 1:
        scores = np.repeat(scores[:, None], window, axis=1)
    if scores.shape != (expected, window):
        raise ValueError(
            f"scores has shape {scores.shape}, but a series of {n_times} steps "
            f"has {expected} windows of {window} steps with stride={stride}: "
            f"expected ({expected},) or ({expected}, {window})."
        )
    # Step of every (window, position) entry: its window's start + position.
    steps = (np.arange(expected) * stride)[:, None] + np.arange(window)
    counts = np.bincount(steps.ravel(), minlength=n_times)
    sums = np.bincount(steps.ravel(), weights=scores.ravel(), minlength=n_times)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sums / counts
    out[counts == 0] = np.nan
    return out.astype(scores.dtype, copy=False)
