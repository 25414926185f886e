"""Divergence is detected from the loss, and a stream survives one bad batch."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, ContractiveAE, DenoisingAE, SparseAE


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:400]


@pytest.mark.parametrize("cls", [DenoisingAE, SparseAE, ContractiveAE])
def test_a_blown_up_fit_warns_and_keeps_its_best_weights(cls, X):
    sane = cls(n_components=8, max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sane.fit(X)
    est = cls(n_components=8, learning_rate=1e3, max_iter=10, random_state=0)
    with pytest.warns(RuntimeWarning, match="diverged|far above its best"):
        est.fit(X)
    # The kept weights are those of the best epoch, not of the blown-up end.
    assert est.score(X) > -10 * abs(sane.score(X))
    assert np.all(np.isfinite(est.transform(X)))


def test_a_stream_keeps_learning_after_one_bad_batch(X):
    est = AutoencoderTransformer(n_components=8, random_state=0)
    for _ in range(5):
        est.partial_fit(X)
    before = est.score(X)
    bad = X.copy()
    bad[3, 5] = 1e30  # finite, but overflows the float32 loss
    with pytest.warns(RuntimeWarning, match="epoch was undone"):
        est.partial_fit(bad)
    assert est.score(X) == before  # the bad call changed nothing
    for _ in range(5):
        est.partial_fit(X)
    assert est.score(X) > before  # Adam's moments stayed finite
