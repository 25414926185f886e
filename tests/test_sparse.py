import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from skae._penalties import (
    TopK,
    bernoulli_kl,
    kl_sparsity_penalty,
    l1_penalty,
    topk_activation,
)
from skae._sparse import SparseAE

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, _ = load_digits(return_X_y=True)
    return X[:1500], X[1500:]


def test_kl_penalty_closed_form():
    code = torch.tensor([[0.1, 0.2], [0.3, 0.4]], dtype=torch.float64)
    rho = 0.05
    # Mean activations by hand: rho_hat = (0.2, 0.3).
    expected = sum(
        rho * math.log(rho / q) + (1 - rho) * math.log((1 - rho) / (1 - q))
        for q in (0.2, 0.3)
    )
    assert kl_sparsity_penalty(code, rho).item() == pytest.approx(expected, rel=1e-12)
    assert bernoulli_kl(rho, torch.tensor([rho])).item() == pytest.approx(0.0)


def test_kl_gradient_matches_lecture_derivation():
    # Seed 001: dKL/dw_jk = (1/N) (-rho/rho_j + (1-rho)/(1-rho_j)) f'(s_j^q) x_k^q,
    # summed over the N samples q, times beta.
    gen = torch.Generator().manual_seed(0)
    N, n_in, n_hidden, rho, beta = 7, 5, 4, 0.05, 3.0
    x = torch.randn(N, n_in, generator=gen, dtype=torch.float64)
    W = torch.randn(n_hidden, n_in, generator=gen, dtype=torch.float64)
    W.requires_grad_(True)
    b = torch.randn(n_hidden, generator=gen, dtype=torch.float64)
    s = x @ W.T + b
    h = torch.sigmoid(s)
    (beta * kl_sparsity_penalty(h, rho)).backward()

    with torch.no_grad():
        rho_hat = h.mean(dim=0)
        dkl_drho = -rho / rho_hat + (1 - rho) / (1 - rho_hat)
        f_prime = h * (1 - h)
        expected = beta / N * (dkl_drho * f_prime).T @ x
    torch.testing.assert_close(W.grad, expected, rtol=1e-10, atol=1e-12)
    # The notes' sign rule: units above the target get their weights decreased.
    assert torch.all((dkl_drho > 0) == (rho_hat > rho))


def test_l1_penalty_and_topk_values():
    h = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    assert l1_penalty(h).item() == pytest.approx((3.5 + 4.0) / 2)
    torch.testing.assert_close(
        topk_activation(h, 1), torch.tensor([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    )
    assert TopK(3)(h) is h or torch.equal(TopK(3)(h), h)


def test_kl_mean_activation_near_target(digits):
    X_train, _ = digits
    rho = 0.05
    sae = SparseAE(
        n_components=64,
        sparsity="kl",
        sparsity_target=rho,
        sparsity_weight=1.0,
        max_iter=30,
        random_state=0,
    ).fit(X_train)
    Z = sae.transform(X_train)
    assert Z.min() > 0 and Z.max() < 1  # sigmoid units
    mean_activation = Z.mean(axis=0)
    # Measured: every unit's mean activation within about 0.01 of rho.
    assert np.all(np.abs(mean_activation - rho) < 0.02), mean_activation


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_topk_gives_exactly_k_nonzeros(digits, dtype):
    X_train, X_test = digits
    sae = SparseAE(
        n_components=96, sparsity="topk", k=7, max_iter=5, random_state=0
    ).fit(X_train.astype(dtype))
    Z = sae.transform(X_test.astype(dtype))
    assert Z.dtype == dtype
    np.testing.assert_array_equal((Z != 0).sum(axis=1), 7)
    assert sae.k_ == 7


def test_topk_default_k():
    X = np.random.default_rng(0).normal(size=(50, 4))
    sae = SparseAE(n_components=30, sparsity="topk", max_iter=2, random_state=0)
    assert (sae.fit_transform(X) != 0).sum(axis=1).max() == 3
    assert sae.k_ == 3


@pytest.mark.parametrize("sparsity", ["l1", "topk", "kl"])
def test_overcomplete_sparse_ae_does_not_learn_identity(digits, sparsity):
    X_train, X_test = digits
    sae = SparseAE(
        n_components=256,  # 4x overcomplete for 64 pixels
        sparsity=sparsity,
        k=16,
        sparsity_weight={"l1": 0.05, "kl": 0.5, "topk": None}[sparsity],
        max_iter=30,
        random_state=0,
    ).fit(X_train)
    rng = np.random.default_rng(0)
    X_noisy = X_test + rng.normal(scale=4.0, size=X_test.shape)

    def self_error(X):
        return np.mean((sae.inverse_transform(sae.transform(X)) - X) ** 2)

    # An identity map would reconstruct the noisy digits as well as the clean.
    assert self_error(X_noisy) > 2 * self_error(X_test)
    Z = sae.transform(X_test)
    if sparsity == "kl":
        assert np.mean(Z > 0.5) < 0.1
    else:
        assert np.mean(Z != 0) < 0.25


@pytest.mark.parametrize(
    "params, name",
    [
        ({"sparsity_target": 0.0}, "sparsity_target"),
        ({"sparsity_target": 1.0}, "sparsity_target"),
        ({"sparsity_target": -0.1}, "sparsity_target"),
        ({"sparsity_weight": -1.0}, "sparsity_weight"),
        ({"sparsity": "l2"}, "sparsity"),
        ({"sparsity": "topk", "k": 11, "n_components": 10}, "k"),
        ({"sparsity": "topk", "k": 0}, "k"),
        ({"resample_dead": "yes"}, "resample_dead"),
    ],
)
def test_bad_parameters_raise_at_fit(params, name):
    X = np.random.default_rng(0).normal(size=(20, 3))
    sae = SparseAE(max_iter=1, **params)  # no validation in __init__
    with pytest.raises(ValueError, match=name):
        sae.fit(X)


def test_dead_units_are_resampled():
    X = np.random.default_rng(0).normal(size=(200, 8))
    fits = {}
    for resample in (False, True):
        sae = SparseAE(
            n_components=32,
            sparsity="l1",
            resample_dead=resample,
            max_iter=2,
            random_state=0,
        ).fit(X)
        # Kill 16 units: a large negative bias keeps their ReLU at 0.
        encoder = sae.module_.encoder[0]
        with torch.no_grad():
            encoder.bias[:16] = -1e3
        sae.partial_fit(X)  # an epoch in which they never fire
        assert sae.dead_fraction_ >= 0.5
        sae.partial_fit(X)  # resampled (or not) at the start of this epoch
        fits[resample] = sae.dead_fraction_
    assert fits[False] >= 0.5
    assert fits[True] < 0.1, fits


def test_dead_fraction_reported(digits):
    X_train, _ = digits
    sae = SparseAE(n_components=64, sparsity="l1", max_iter=3, random_state=0)
    sae.fit(X_train)
    assert 0.0 <= sae.dead_fraction_ <= 1.0
    Z = sae.transform(X_train)
    assert sae.dead_fraction_ == pytest.approx(np.mean(~(Z > 0).any(axis=0)))


@pytest.mark.parametrize("sparsity", ["kl", "l1", "topk"])
def test_reproducible_and_picklable(sparsity):
    X = np.random.default_rng(0).normal(size=(120, 6))
    a = SparseAE(n_components=24, sparsity=sparsity, max_iter=4, random_state=3)
    b = SparseAE(n_components=24, sparsity=sparsity, max_iter=4, random_state=3)
    Za, Zb = a.fit_transform(X), b.fit_transform(X)
    np.testing.assert_array_equal(Za, Zb)
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.transform(X), Za)


def test_l1_default_weight_means_the_same_for_data_in_unit_interval(digits):
    # The L1 penalty grows with the codes' scale: on pixels in [0, 1] (BCE,
    # variance ~0.1) its default weight zeroed every unit. loss="auto" trains
    # the MSE on globally scaled rows instead, where X and X / 16 are the same
    # problem: the codes agree and are sparse but alive.
    X_train, X_test = digits
    params = dict(n_components=16, sparsity="l1", max_iter=20, random_state=0)
    raw = SparseAE(**params).fit(X_train)
    unit = SparseAE(**params).fit(X_train / 16.0)
    assert (unit.loss_, unit.scaling_) == ("mse", "global")
    codes = unit.transform(X_test / 16.0)
    np.testing.assert_allclose(codes, raw.transform(X_test), atol=1e-3)
    assert 0.05 < np.mean(codes > 0) < 0.95
    # Every kind's "auto" is the MSE; an explicit BCE is kept.
    kl = SparseAE(n_components=16, max_iter=1, random_state=0).fit(X_train / 16.0)
    assert kl.loss_ == "mse"
    bce = SparseAE(**{**params, "loss": "bce", "max_iter": 1}).fit(X_train / 16.0)
    assert bce.loss_ == "bce"
