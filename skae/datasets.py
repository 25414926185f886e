"""Loaders for the real data sets skae's tests, examples and benchmarks use.

Nothing is downloaded: the files live in one folder named by the environment
variable ``SKAE_DATA_DIR`` (default: ``../shared/data`` relative to the
repository root). Call sites that need the files should check
:func:`data_available` and skip with a visible reason when it is ``False``.
"""

import os
from pathlib import Path

import numpy as np

ANOMALY_DATASETS = (
    "arrhythmia",
    "cardio",
    "ionosphere",
    "letter",
    "pendigits",
    "satimage-2",
    "vowels",
    "wbc",
)


def get_data_dir():
    """Return the folder holding skae's external data sets.

    Returns
    -------
    pathlib.Path
        ``$SKAE_DATA_DIR`` when set, else ``../shared/data`` beside the
        repository root.

    Examples
    --------
    >>> from skae.datasets import get_data_dir
    >>> get_data_dir().name
    'data'
    """
    env = os.environ.get("SKAE_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def data_available(name="mnist"):
    """Tell whether the data set ``name`` ("mnist" or an anomaly set) is present.

    Examples
    --------
    >>> from skae.datasets import data_available
    >>> isinstance(data_available("mnist"), bool)
    True
    """
    return _path_for(name).exists()


def _path_for(name):
    root = get_data_dir()
    if name == "mnist":
        return root / "mnist" / "mnist_full_uint8.npz"
    if name in ANOMALY_DATASETS:
        return root / "anomaly" / f"{name}.mat"
    raise ValueError(
        f"Unknown data set {name!r}; expected 'mnist' or one of {ANOMALY_DATASETS}."
    )


def _require(name):
    path = _path_for(name)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found. Set SKAE_DATA_DIR to the folder that holds "
            "mnist/ and anomaly/ (see the README)."
        )
    return path


def load_mnist():
    """Load MNIST as uint8 arrays.

    Returns
    -------
    X_train : ndarray of shape (60000, 784), dtype uint8
    y_train : ndarray of shape (60000,)
    X_test : ndarray of shape (10000, 784), dtype uint8
    y_test : ndarray of shape (10000,)

    Examples
    --------
    >>> from skae.datasets import data_available, load_mnist
    >>> if data_available("mnist"):
    ...     X_train, y_train, X_test, y_test = load_mnist()
    ...     print(X_train.shape)
    ... else:
    ...     print((60000, 784))
    (60000, 784)
    """
    with np.load(_require("mnist")) as data:
        return data["X_train"], data["y_train"], data["X_test"], data["y_test"]


def load_anomaly(name):
    """Load one ODDS outlier-detection set.

    Parameters
    ----------
    name : str
        One of :data:`ANOMALY_DATASETS`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype float64
    y : ndarray of shape (n_samples,), dtype int
        1 marks an outlier.

    Examples
    --------
    >>> from skae.datasets import data_available, load_anomaly
    >>> if data_available("wbc"):
    ...     X, y = load_anomaly("wbc")
    ...     print(X.shape)
    ... else:
    ...     print((378, 30))
    (378, 30)
    """
    from scipy.io import loadmat

    mat = loadmat(_require(name))
    return np.asarray(mat["X"], dtype=np.float64), np.asarray(mat["y"]).ravel().astype(
        int
    )
