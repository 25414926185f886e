"""Tests for skae._dictionary.DictionaryLearner."""

import copy
import inspect
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.decomposition import (
    NMF,
    PCA,
    DictionaryLearning,
    MiniBatchDictionaryLearning,
    sparse_encode,
)
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skae
from skae import _dictionary
from skae._dictionary import DictionaryLearner

CODES = ["sparse", "nonnegative", "onehot", "orthogonal", "independent"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # These problems are tiny: a second intra-op thread only adds barrier
    # waits, which cost milliseconds per matmul on a loaded 2-core machine.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


@pytest.fixture(scope="module")
def digits():
    return load_digits().data


def _lasso_objective(X, D, alpha):
    """The documented DictionaryLearning objective at exact lasso codes for D.

    scikit-learn's own coordinate-descent lasso is the neutral judge for every
    dictionary; its ``alpha`` is per feature, hence the division.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        Z = sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha, max_iter=5000)
    return 0.5 * np.sum((X - Z @ D) ** 2) + alpha * np.abs(Z).sum()


def _assert_same(actual, expected, tol=0.0, where="model"):
    """Fitted attributes equal, containers item by item.

    With ``tol``, arrays and floats agree to ``tol`` (relative or absolute):
    on CUDA, atomic sums may round differently from one run to the next.
    """
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), where
        for key in expected:
            _assert_same(actual[key], expected[key], tol, f"{where}.{key}")
    elif isinstance(expected, (tuple, list)):
        assert type(actual) is type(expected) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            _assert_same(a, e, tol, f"{where}[{i}]")
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype, where
        if tol:
            np.testing.assert_allclose(
                actual, expected, rtol=tol, atol=tol, err_msg=where
            )
        else:
            assert np.array_equal(actual, expected), where
    elif tol and isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=tol, abs=tol), where
    else:
        assert actual == expected, where


def _stream(X, code, start):
    """A model that has seen ``X[:150]``, by ``start``, where atoms get resampled.

    At ``alpha=5`` some sparse atoms go unused at every step that continues
    these streams, so continuing draws random numbers (atom resampling).
    """
    model = DictionaryLearner(8, code=code, alpha=5.0, max_iter=5, random_state=0)
    if start == "partial_fit":
        for begin in range(0, 150, 50):
            model.partial_fit(X[begin : begin + 50])
    elif start == "fit":
        model.fit(X[:150])
    else:
        model.set_params(batch_size=50).fit(X[:150])
    return model


# ----------------------------------------------------------- scikit-learn API


# scikit-learn's common checks run in tests/test_common.py, with the
# configurations of tests/_instances.py (one per code type).


@pytest.mark.parametrize(
    "params, match",
    [
        ({"code": "dense"}, "'code' parameter"),
        ({"alpha": -1.0}, "'alpha' parameter"),
        ({"n_components": 0}, "'n_components' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"device": "not-a-device"}, "device='not-a-device'"),
    ],
)
def test_bad_parameters_raise(digits, params, match):
    with pytest.raises(ValueError, match=match):
        DictionaryLearner(**params).fit(digits[:50])


def test_negative_input_rejected_for_nonnegative_codes(digits):
    with pytest.raises(ValueError, match="Negative values"):
        DictionaryLearner(2, code="nonnegative").fit(digits[:50] - 1.0)


def test_size_errors(digits):
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_components=5"):
        DictionaryLearner(5, code="onehot").fit(digits[:3])
    with pytest.raises(ValueError, match="n_components=70 must be <="):
        DictionaryLearner(70, code="orthogonal").fit(digits[:100])


def test_failed_fit_leaves_model_unchanged(digits):
    model = DictionaryLearner(4, code="onehot", random_state=0).fit(digits[:100])
    before = pickle.dumps(model)
    with pytest.raises(ValueError):
        model.fit(np.full((10, 3), np.nan))
    with pytest.raises(ValueError):
        model.partial_fit(digits[:10, :5])
    assert pickle.dumps(model) == before


def test_not_fitted(digits):
    with pytest.raises(NotFittedError):
        DictionaryLearner().transform(digits[:5])


# ------------------------------------------------ agreement with scikit-learn


def test_orthogonal_matches_pca(digits):
    model = DictionaryLearner(10, code="orthogonal").fit(digits)
    pca = PCA(10).fit(digits)
    err = np.sum((digits - model.inverse_transform(model.transform(digits))) ** 2)
    err_pca = np.sum((digits - pca.inverse_transform(pca.transform(digits))) ** 2)
    assert abs(err - err_pca) <= 1e-4 * err_pca
    np.testing.assert_allclose(model.mean_, pca.mean_)
    # Same subspace: the projectors agree.
    np.testing.assert_allclose(
        model.components_.T @ model.components_,
        pca.components_.T @ pca.components_,
        atol=1e-8,
    )


def test_orthogonal_minibatch_is_exact(digits):
    full = DictionaryLearner(6, code="orthogonal").fit(digits)
    streamed = DictionaryLearner(6, code="orthogonal", batch_size=100).fit(digits)
    np.testing.assert_allclose(streamed.components_, full.components_, atol=1e-8)
    np.testing.assert_allclose(streamed.objective_, full.objective_, rtol=1e-9)


def test_onehot_matches_kmeans(digits):
    model = DictionaryLearner(10, code="onehot", n_init=5, random_state=0).fit(digits)
    kmeans = KMeans(n_clusters=10, n_init=5, random_state=0).fit(digits)
    inertia = -2 * model.score_samples(digits).sum()
    assert inertia <= 1.01 * kmeans.inertia_
    np.testing.assert_allclose(2 * model.objective_, inertia)
    Z = model.transform(digits)
    assert set(np.unique(Z)) == {0.0, 1.0}
    np.testing.assert_array_equal(Z.sum(axis=1), 1.0)


def test_nonnegative_matches_nmf(digits):
    # Both run well past their default stopping points: NMF's objective has
    # long plateaus (at the default tol=1e-5 skae stops 1.7% above this NMF).
    model = DictionaryLearner(
        10, code="nonnegative", tol=1e-6, max_iter=1000, random_state=0
    ).fit(digits)
    nmf = NMF(10, solver="cd", random_state=0, max_iter=500).fit(digits)
    W = nmf.transform(digits)
    objective_nmf = 0.5 * np.sum((digits - W @ nmf.components_) ** 2)
    objective = -model.score_samples(digits).sum()
    assert objective <= 1.02 * objective_nmf
    assert model.components_.min() >= 0
    assert model.transform(digits).min() >= 0


def test_sparse_no_worse_than_sklearn(digits):
    X, alpha = digits[:200] / 16.0, 0.5
    # DictionaryLearning's defaults: tol=1e-8, max_iter=1000.
    model = DictionaryLearner(
        15, alpha=alpha, tol=1e-8, max_iter=1000, random_state=0
    ).fit(X)
    dl = DictionaryLearning(15, alpha=alpha, random_state=0).fit(X)
    mbdl = MiniBatchDictionaryLearning(15, alpha=alpha, random_state=0).fit(X)
    objective = _lasso_objective(X, model.components_, alpha)
    # Same start and alternation as DictionaryLearning: equal up to round-off
    # of the stopping point; the online solver stops well above both.
    assert objective <= _lasso_objective(X, dl.components_, alpha) * (1 + 1e-5)
    assert objective <= _lasso_objective(X, mbdl.components_, alpha)
    np.testing.assert_allclose(
        np.linalg.norm(model.components_, axis=1)[
            np.linalg.norm(model.components_, axis=1) > 0
        ].max(),
        1.0,
        rtol=1e-8,
    )


def test_sparse_transform_solves_the_lasso(digits):
    X, alpha = digits[:200] / 16.0, 0.3
    model = DictionaryLearner(12, alpha=alpha, random_state=0).fit(X)
    Z = model.transform(X)
    D = model.components_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        Z_ref = sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha, max_iter=5000)
    objective = 0.5 * np.sum((X - Z @ D) ** 2, axis=1) + alpha * np.abs(Z).sum(1)
    objective_ref = 0.5 * np.sum((X - Z_ref @ D) ** 2, axis=1) + alpha * np.abs(
        Z_ref
    ).sum(1)
    np.testing.assert_allclose(objective, objective_ref, rtol=1e-5, atol=1e-8)


# ------------------------------------------------------------- behaviour


@pytest.mark.parametrize("code", CODES)
def test_inverse_transform_and_score_samples(digits, code):
    X = digits[:200] / 16.0
    alpha = 0.2
    model = DictionaryLearner(5, code=code, alpha=alpha, random_state=0).fit(X)
    Z = model.transform(X)
    assert Z.shape == (200, 5)
    X_rec = model.inverse_transform(Z)
    assert X_rec.shape == X.shape
    expected = Z @ model.components_
    if code in ("orthogonal", "independent"):
        expected = expected + model.mean_
    np.testing.assert_allclose(X_rec, expected)
    objective = 0.5 * np.sum((X - X_rec) ** 2, axis=1)
    if code == "sparse":
        objective += alpha * np.abs(Z).sum(axis=1)
    np.testing.assert_allclose(model.score_samples(X), -objective, rtol=1e-10)
    with pytest.raises(ValueError, match="expecting 5 features"):
        model.inverse_transform(Z[:, :3])


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("batch_size", [None, 64])
def test_reproducible(digits, code, batch_size):
    X = digits[:300] / 16.0
    params = dict(n_components=6, code=code, batch_size=batch_size, max_iter=30)
    a = DictionaryLearner(**params, random_state=3).fit(X)
    b = DictionaryLearner(**params, random_state=3).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


@pytest.mark.parametrize("code", ["sparse", "nonnegative", "onehot"])
def test_minibatch_fit_close_to_full_batch(digits, code):
    X = digits[:600] / 16.0
    params = dict(n_components=8, code=code, alpha=0.3, random_state=0)
    full = DictionaryLearner(**params).fit(X)
    online = DictionaryLearner(**params, batch_size=50, max_iter=50).fit(X)
    assert online.n_steps_ > 0
    assert -online.score_samples(X).sum() <= 1.1 * -full.score_samples(X).sum()


@pytest.mark.parametrize("code", CODES)
def test_partial_fit(digits, code):
    X = digits / 16.0
    model = DictionaryLearner(6, code=code, alpha=0.3, random_state=0)
    first = None
    for _ in range(3):
        for start in range(0, 1200, 100):
            model.partial_fit(X[start : start + 100])
        if first is None:
            first = -model.score_samples(X[1200:]).sum()
    assert model.n_steps_ == 36
    assert model.n_samples_seen_ == 3600
    assert model.components_.shape == (6, 64)
    # More passes do not make held-out reconstruction worse (beyond noise).
    assert -model.score_samples(X[1200:]).sum() <= 1.02 * first


def test_partial_fit_orthogonal_equals_pca(digits):
    model = DictionaryLearner(5, code="orthogonal")
    for start in range(0, len(digits), 300):
        model.partial_fit(digits[start : start + 300])
    pca = PCA(5).fit(digits)
    np.testing.assert_allclose(model.mean_, pca.mean_)
    np.testing.assert_allclose(
        np.abs(model.components_), np.abs(pca.components_), atol=1e-7
    )


def test_partial_fit_after_full_fit_keeps_dictionary_shape(digits):
    X = digits / 16.0
    model = DictionaryLearner(6, alpha=0.3, random_state=0).fit(X[:500])
    assert model.n_steps_ == 0
    model.partial_fit(X[500:600])
    assert model.n_steps_ == 1
    assert model.components_.shape == (6, 64)


# ----------------------------------- streams: saving, random stream, rollback


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("start", ["partial_fit", "fit", "minibatch fit"])
@pytest.mark.parametrize("code", CODES)
def test_saved_stream_continues_exactly(digits, code, start, tmp_path):
    X = digits / 16.0
    model = _stream(X, code, start)
    skae.save(model, tmp_path / "model.skae")
    copies = {
        "skae.load": skae.load(tmp_path / "model.skae"),
        "pickle": pickle.loads(pickle.dumps(model)),
    }
    for begin in (150, 200):
        model.partial_fit(X[begin : begin + 50])
        for other in copies.values():
            other.partial_fit(X[begin : begin + 50])
    for how, other in copies.items():
        _assert_same(vars(other), vars(model), tol=1e-12, where=how)


@pytest.mark.parametrize("code", CODES)
def test_fitted_state_is_public_and_documented(digits, code):
    # skae.save keeps public attributes only: the whole persistence contract.
    X = digits[:200] / 16.0
    model = DictionaryLearner(4, code=code, random_state=0).fit(X)
    model.partial_fit(X[:50])
    fitted = set(vars(model)) - set(model.get_params())
    assert not [name for name in fitted if name.startswith("_")]
    documented = re.findall(r"^(\w+_) :", inspect.getdoc(DictionaryLearner), re.M)
    assert fitted <= set(documented)


def test_partial_fit_continues_one_random_stream(digits, tmp_path):
    # Above alpha_max = max |x.d| every code is zero, so each step resamples
    # every atom from the batch: a step's atoms are its random draws.
    X = digits[:50] / 16.0
    model = DictionaryLearner(4, alpha=1e3, random_state=0).partial_fit(X)
    first = model.components_.copy()
    skae.save(model, tmp_path / "model.skae")
    unpickled = pickle.loads(pickle.dumps(model))
    model.partial_fit(X)
    # The int seed does not restart at every call: new draws on the same batch.
    assert not np.allclose(model.components_, first)
    for other in (skae.load(tmp_path / "model.skae"), unpickled):
        np.testing.assert_array_equal(
            other.partial_fit(X).components_, model.components_
        )
    # The first call draws from random_state as it always did.
    again = DictionaryLearner(4, alpha=1e3, random_state=0).partial_fit(X)
    np.testing.assert_array_equal(again.components_, first)


@pytest.mark.parametrize("code", CODES)
def test_failed_calls_leave_the_stream_unchanged(digits, code, monkeypatch):
    X = digits / 16.0
    model = _stream(X, code, "partial_fit")
    reference = pickle.loads(pickle.dumps(model))
    before = copy.deepcopy(vars(model))
    bad = X[150:200].copy()
    bad[-1, -1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(bad)
    _assert_same(vars(model), before)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad)
    _assert_same(vars(model), before)

    # A failure at the very end of a step, after it updated its atoms and
    # running statistics in place.
    def interrupted(state):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(_dictionary, "_to_numpy", interrupted)
    with pytest.raises(RuntimeError, match="interrupted"):
        model.partial_fit(X[150:200])
    monkeypatch.undo()
    _assert_same(vars(model), before)
    # The stream goes on as if the failed calls had never happened.
    model.partial_fit(X[150:200])
    reference.partial_fit(X[150:200])
    _assert_same(vars(model), vars(reference), tol=1e-12)


def test_transform_rows_independent_of_batch(digits):
    X = digits[:100] / 16.0
    model = DictionaryLearner(10, alpha=0.2, random_state=0).fit(X)
    Z = model.transform(X)
    Z_rows = np.vstack([model.transform(X[i : i + 1]) for i in range(10)])
    np.testing.assert_allclose(Z_rows, Z[:10], rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("code", CODES)
def test_float32_preserved(digits, code):
    X = (digits[:200] / 16.0).astype(np.float32)
    model = DictionaryLearner(4, code=code, random_state=0, max_iter=20).fit(X)
    assert model.components_.dtype == np.float32
    assert model.transform(X).dtype == np.float32
    assert model.device_.type in ("cpu", "cuda")


def test_max_iter_warns(digits):
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        DictionaryLearner(8, alpha=0.1, max_iter=2, random_state=0).fit(digits / 16)


def test_overcomplete_sparse_dictionary(digits):
    X = digits[:300] / 16.0
    model = DictionaryLearner(80, alpha=1.0, random_state=0, max_iter=30).fit(X)
    norms = np.linalg.norm(model.components_, axis=1)
    assert model.components_.shape == (80, 64)
    assert np.all(norms <= 1 + 1e-10)
    assert np.mean(model.transform(X) != 0) < 0.2


def test_feature_names_out(digits):
    model = DictionaryLearner(3, code="orthogonal").fit(digits)
    assert list(model.get_feature_names_out()) == [
        "dictionarylearner0",
        "dictionarylearner1",
        "dictionarylearner2",
    ]


def test_values_too_large_for_float32_give_clear_errors():
    X = np.array([[5.29, 1e30], [1.0, 2.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="too large"):
        DictionaryLearner(n_components=1, max_iter=2).fit(X)
    fitted = DictionaryLearner(n_components=1, max_iter=2, random_state=0).fit(
        np.random.RandomState(0).rand(20, 2).astype(np.float32)
    )
    # The squared error of 1e30 overflows float32: a clear error, never inf.
    with pytest.raises(ValueError, match="non-finite"):
        fitted.score_samples(X)
    try:
        assert np.all(np.isfinite(fitted.transform(X)))
    except ValueError as exc:
        assert "non-finite" in str(exc)


def test_score_is_the_mean_score_and_drives_grid_search(digits):
    from sklearn.model_selection import GridSearchCV

    X = digits[:300]
    dl = DictionaryLearner(n_components=4, code="orthogonal").fit(X)
    assert dl.score(X) == pytest.approx(dl.score_samples(X).mean())
    search = GridSearchCV(
        DictionaryLearner(code="orthogonal"), {"n_components": [2, 8]}, cv=2
    ).fit(X)
    assert search.best_params_ == {"n_components": 8}


def test_online_fit_stops_on_a_plateau_of_the_batch_objective(digits):
    """The default online fit stops once the moving average of the batch
    objective stops falling, long before max_iter, and no later than with
    the rule turned off would."""
    X = digits[:600] / 16.0
    params = dict(n_components=8, alpha=0.3, batch_size=50, random_state=0)
    stopped = DictionaryLearner(**params).fit(X)
    with pytest.warns(ConvergenceWarning):
        capped = DictionaryLearner(**params, max_no_improvement=None, max_iter=20).fit(
            X
        )
    assert stopped.n_iter_ < capped.n_iter_ == 20
    # The first pass is a warm-up: the rule cannot fire within it.
    assert stopped.n_steps_ > 600 // 50
    # It stopped at a useful dictionary: within 10% of twenty passes.
    assert -stopped.score_samples(X).sum() <= 1.1 * -capped.score_samples(X).sum()


def test_plateau_counts_batches_without_a_new_minimum():
    from skae._dictionary import _Plateau

    plateau = _Plateau(2, weight=1.0, warmup=1)
    # warm-up value ignored; 5 sets the minimum; 4 improves; 6, 7 do not.
    assert [plateau.reached(v) for v in [100.0, 5.0, 4.0, 6.0, 7.0]] == [
        False,
        False,
        False,
        False,
        True,
    ]
    assert not _Plateau(None, weight=1.0, warmup=0).reached(1.0)


def test_auto_tolerance_is_chosen_per_code_type():
    from skae._dictionary import _CODE_TYPES

    tols = {code: DictionaryLearner(code=code)._code_type().tol for code in _CODE_TYPES}
    assert tols["sparse"] == 1e-8 and tols["nonnegative"] == 1e-4
    assert DictionaryLearner(code="sparse", tol=0.5)._code_type().tol == 0.5


def test_online_objective_counts_every_row_when_a_pass_stops_early(digits):
    """n_init keeps the lowest objective_, so a pass cut short by the plateau
    rule must report an objective over all rows, not over the rows it saw."""
    X = digits[:600] / 16.0
    model = DictionaryLearner(
        n_components=8, alpha=0.3, batch_size=50, random_state=0
    ).fit(X)
    assert model.n_steps_ % (600 // 50) != 0  # it stopped within a pass
    full = -model.score_samples(X).sum()
    assert 0.5 * full < model.objective_ < 2.0 * full
