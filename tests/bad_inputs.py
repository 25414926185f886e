"""Random bad (and good) inputs for every estimator, shared by the property
tests and ``benchmarks/fuzz_bad_input.py``.

An outcome is *correct* when a call either returns a finite array of the right
shape and dtype, or raises ``ValueError`` / ``TypeError`` with a message; and a
failed ``fit`` on an already fitted estimator leaves it exactly as it was.
"""

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from hypothesis import strategies as st

DTYPES = ["int64", "bool", "float16", "float32", "float64", "object", "str"]
CONTAINERS = [
    "ndarray",
    "list",
    "dataframe",
    "mixed_dataframe",
    "categorical",
    "sparse",
]
SPECIALS = ["none", "nan", "inf", "huge", "tiny", "constant_column"]


@st.composite
def bad_inputs(draw):
    """Draw ``(X, description)``: an input to ``fit``/``transform``."""
    ndim = draw(st.sampled_from([2, 2, 2, 2, 1, 3]))
    n_samples = draw(st.sampled_from([0, 1, 2, 3, 7, 25]))
    n_features = draw(st.sampled_from([0, 1, 2, 5]))
    dtype = draw(st.sampled_from(DTYPES))
    container = draw(st.sampled_from(CONTAINERS))
    special = draw(st.sampled_from(SPECIALS))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.RandomState(seed)
    shape = {
        1: (n_samples,),
        2: (n_samples, n_features),
        3: (n_samples, n_features, 2),
    }[ndim]
    X = rng.normal(scale=3.0, size=shape)
    if X.size and special != "none":
        flat = X.reshape(-1)
        where = rng.rand(flat.size) < 0.3
        where[rng.randint(flat.size)] = True
        value = {"nan": np.nan, "inf": np.inf, "huge": 1e30, "tiny": 1e-30}.get(special)
        if special == "constant_column" and ndim == 2:
            X[:, 0] = 4.2
        elif value is not None:
            flat[where] = value * rng.choice([-1, 1], size=where.sum())
    if dtype == "str":
        X = X.astype(str)
    elif dtype == "object":
        X = X.astype(object)
    else:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X = X.astype(dtype)
    desc = f"{container}/{dtype}/{special}/shape={shape}"
    if ndim != 2 or container == "ndarray":
        return X, desc
    if container == "list":
        return X.tolist(), desc
    columns = [f"f{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    if container == "mixed_dataframe" and X.shape[1]:
        frame[columns[0]] = ["a"] * len(frame)
    if container == "categorical" and X.shape[1]:
        frame[columns[0]] = pd.Categorical(
            ["x", "y"] * (len(frame) // 2) + ["x"] * (len(frame) % 2)
        )
    if container == "sparse" and dtype not in ("str", "object"):
        return sp.csr_matrix(X.astype(float)), desc
    return frame, desc


def expected_dtype(X):
    if hasattr(X, "dtypes"):  # a DataFrame: float32 only if every column is
        is_float32 = len(X.dtypes) > 0 and all(dt == np.float32 for dt in X.dtypes)
    else:
        is_float32 = getattr(X, "dtype", None) == np.float32
    return np.float32 if is_float32 else np.float64


def check_outcome(call, n_rows=None, n_cols=None, dtype=None, scores=False):
    """Run ``call``; return "ok" or "error". Raise AssertionError on anything else.

    ``scores``: the output is anomaly scores, where ``-inf`` is the documented
    score of a row too large to score (never NaN or ``+inf``).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = call()
    except (ValueError, TypeError) as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return "error"
    if n_rows is not None:
        out = np.asarray(out)
        assert out.shape[0] == n_rows, out.shape
        if n_cols is not None:
            assert out.shape[1] == n_cols, out.shape
        allowed = np.isfinite(out) | (scores & (out == -np.inf))
        assert np.all(allowed), "non-finite output"
        if dtype is not None:
            assert out.dtype == dtype, (out.dtype, dtype)
    return "ok"


def targets_for(estimator, X):
    """The ``y`` a supervised estimator is fitted with (none for the others).

    Two alternating classes for a classifier, a ramp for a regressor, one per
    row of ``X`` however ``X`` is stored.
    """
    from sklearn.base import is_classifier, is_regressor

    if not (is_classifier(estimator) or is_regressor(estimator)):
        return ()
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    return (np.arange(n) % 2,) if is_classifier(estimator) else (np.arange(n) / 7.0,)


def fit_input(estimator, X):
    """``X`` (rows of samples) in the form ``estimator.fit`` takes.

    A pairwise estimator (``GraphAutoencoder``, tagged as scikit-learn's
    ``SpectralEmbedding(affinity="precomputed")``) takes a square,
    non-negative affinity matrix: the linear kernel of the rows shifted to be
    non-negative, as scikit-learn's common checks build it. Other estimators
    take the rows themselves.
    """
    from sklearn.utils import get_tags

    if not get_tags(estimator).input_tags.pairwise:
        return X
    shifted = X - X.min()
    return shifted @ shifted.T


def output_method(estimator):
    """The call whose output every estimator must give for new rows."""
    return "transform" if hasattr(estimator, "transform") else "predict"


def exercise(estimator, fitted, X):
    """Apply every public call to ``X``; return the list of outcomes.

    ``estimator`` is a fresh (unfitted) estimator, ``fitted`` a fitted one.
    Transformers are checked through ``transform`` (and its inverse), the
    others through ``predict``; ``score_samples`` wherever it exists.
    """
    outcomes = [check_outcome(lambda: estimator.fit(X, *targets_for(estimator, X)))]
    output = output_method(estimator)
    if outcomes[0] == "ok":
        n = X.shape[0] if hasattr(X, "shape") else len(X)  # len() fails on sparse
        if output == "transform":
            k = estimator._n_features_out
            outcomes.append(
                check_outcome(lambda: estimator.transform(X), n, k, expected_dtype(X))
            )
            if outcomes[-1] == "ok":
                Z = estimator.transform(X)
                outcomes.append(
                    check_outcome(lambda: estimator.inverse_transform(Z), n)
                )
        else:
            outcomes.append(check_outcome(lambda: estimator.predict(X), n))
        if hasattr(estimator, "score_samples"):
            outcomes.append(
                check_outcome(lambda: estimator.score_samples(X), n, scores=True)
            )
    before = fitted.__dict__.copy()
    reference = np.random.RandomState(0).rand(4, fitted.n_features_in_)
    out_before = getattr(fitted, output)(reference)
    for method in ("fit", output, "score_samples"):
        if not hasattr(fitted, method):
            continue
        if method == "fit":
            call = lambda: fitted.fit(X, *targets_for(fitted, X))  # noqa: E731
        else:
            call = lambda m=method: getattr(fitted, m)(X)  # noqa: E731
        outcome = check_outcome(call)
        outcomes.append(outcome)
        if method == "fit" and outcome == "ok":
            return outcomes  # a successful refit legitimately changes the model
        assert fitted.__dict__.keys() == before.keys(), method
        np.testing.assert_array_equal(getattr(fitted, output)(reference), out_before)
    return outcomes
