"""Fits in concurrent threads neither interfere nor touch global RNG state."""

import threading
import warnings

import numpy as np
import pytest
import torch
from joblib import parallel_backend
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from skae import VAE, AutoencoderTransformer, DenoisingAE, SparseAE

ESTIMATORS = [
    DenoisingAE(n_components=3, hidden_layer_sizes=(16,), noise="gaussian"),
    VAE(n_components=2, hidden_layer_sizes=(16,), binarize=None),
    AutoencoderTransformer(n_components=3, hidden_layer_sizes=(16,), dropout=0.3),
    SparseAE(n_components=12, sparsity="topk", k=2),
]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data():
    rng = np.random.RandomState(0)
    return rng.randn(300, 8) @ rng.randn(8, 8)


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_fits_in_threads_equal_fits_in_sequence(est):
    X = _data()
    models = [clone(est).set_params(max_iter=4, random_state=s) for s in range(4)]
    sequential = [clone(m).fit(X).transform(X) for m in models]
    results = [None] * 4

    def fit(i):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            results[i] = models[i].fit(X).transform(X)

    threads = [threading.Thread(target=fit, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, expected in zip(results, sequential):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("est", ESTIMATORS[:2], ids=lambda e: type(e).__name__)
def test_fit_and_partial_fit_leave_the_global_rng_alone(est):
    X = _data()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    clone(est).set_params(max_iter=2, random_state=0).fit(X).partial_fit(X)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_grid_search_threading_backend_matches_one_job():
    X = _data()
    grid = {"noise_level": [0.1, 0.5]}
    est = DenoisingAE(n_components=3, noise="gaussian", max_iter=3, random_state=0)
    one = GridSearchCV(est, grid, cv=2, n_jobs=1).fit(X)
    with parallel_backend("threading", n_jobs=2):
        two = GridSearchCV(est, grid, cv=2, n_jobs=2).fit(X)
    np.testing.assert_array_equal(
        one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"]
    )
