"""Warnings that point at the user's line, not at skae's or scikit-learn's."""

import os
import sys
import warnings

import sklearn

#: skae's package folder (two levels up from this file) and scikit-learn's.
_LIBRARY_DIRS = (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
    os.path.dirname(sklearn.__file__) + os.sep,
)


def warn_user(message, category=UserWarning):
    """``warnings.warn`` attributed to the first caller outside skae and
    scikit-learn (e.g. the user's ``est.fit(X)``, or their ``pipe.fit``).

    A fixed ``stacklevel`` cannot do this: the same training code is reached
    from ``fit``, ``partial_fit``, ``fit_transform`` and ``fit_distributed``
    through different numbers of wrappers.

    Examples
    --------
    >>> import warnings
    >>> from skae.utils._warnings import warn_user
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_user("careful")
    >>> caught[0].filename.endswith("_warnings.py")
    False
    """
    level = 2  # 1 is this function, 2 its caller
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
