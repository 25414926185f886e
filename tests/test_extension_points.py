"""The developer guide's worked examples (doc/developer/extension_examples.py):
a sparsity kind added in one place, and a non-MLP network on the template."""

import pathlib
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import check_estimator

import skae
from skae import SparseAE
from skae._sparsity import SPARSITY_KINDS
from skae.nn import AutoencoderModule

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "doc" / "developer"))
from extension_examples import (  # noqa: E402
    LogSparsity,
    TiedAutoencoder,
    TiedLinearModule,
)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def test_a_sparsity_kind_is_one_table_entry(monkeypatch):
    X = load_digits().data[:300]
    monkeypatch.setitem(SPARSITY_KINDS, "log", LogSparsity())
    sae = SparseAE(n_components=32, sparsity="log", max_iter=5, random_state=0).fit(X)
    dense = SparseAE(
        n_components=32, sparsity="log", sparsity_weight=0.0, max_iter=5, random_state=0
    ).fit(X)
    small = np.abs(sae.transform(X)) < 1e-1
    assert small.mean() > np.mean(np.abs(dense.transform(X)) < 1e-1)
    assert sae.dead_fraction_ < 1.0


def test_the_sparsity_kinds_are_the_parameter_values():
    with pytest.raises(ValueError, match="'sparsity' parameter"):
        SparseAE(sparsity="log").fit(np.ones((5, 2)))


def test_a_new_network_follows_the_module_protocol():
    assert isinstance(TiedLinearModule(4, 2), AutoencoderModule)


def test_a_new_network_is_a_full_estimator(tmp_path):
    X, y = load_digits(return_X_y=True)
    ae = TiedAutoencoder(n_components=8, max_iter=20, random_state=0).fit(X)
    # Tied weights: the decoder holds no weight matrix of its own.
    assert sum(p.numel() for p in ae.module_.parameters()) == 64 * 8 + 8 + 64
    assert not hasattr(ae, "hidden_layer_sizes")  # MLP parameters not inherited
    Z = ae.transform(X)
    assert Z.shape == (1797, 8) and ae.inverse_transform(Z).shape == X.shape
    pipe = Pipeline([("ae", TiedAutoencoder(n_components=16)), ("svc", SVC())])
    assert pipe.fit(X[:1200], y[:1200]).score(X[1200:], y[1200:]) > 0.8
    # Persistence and streams need nothing extra.
    ae.partial_fit(X)
    np.testing.assert_array_equal(
        skae.load(_save(ae, tmp_path), classes=[TiedAutoencoder]).transform(X),
        ae.transform(X),
    )


def test_a_new_network_passes_the_estimator_checks():
    check_estimator(TiedAutoencoder(max_iter=5))


def _save(est, tmp_path):
    path = tmp_path / "tied.skae"
    skae.save(est, path)
    return path
