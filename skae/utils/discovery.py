"""Find skae's public estimators, as :func:`sklearn.utils.all_estimators` does."""

import inspect

from sklearn.base import BaseEstimator


def all_estimators():
    """List every public estimator class exported by :mod:`skae`.

    New estimators are picked up as soon as ``skae.__all__`` lists them, so the
    common tests cover them with no extra work.

    Returns
    -------
    list of (name, class) tuples, sorted by name.

    Examples
    --------
    >>> from skae.utils import all_estimators
    >>> "AutoencoderTransformer" in dict(all_estimators())
    True
    """
    import skae

    found = []
    for name in skae.__all__:
        obj = getattr(skae, name)
        if (
            inspect.isclass(obj)
            and issubclass(obj, BaseEstimator)
            and not inspect.isabstract(obj)
            and not name.startswith("_")
        ):
            found.append((name, obj))
    return sorted(found)
