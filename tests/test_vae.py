"""Tests of the variational autoencoder: math, estimator API, and real data."""

import copy
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from skae._vae import VAE
from skae._vae_math import (
    elbo_terms,
    gaussian_log_density,
    iwae_bound,
    iwae_log_weights,
    kl_standard_normal,
    log_likelihood,
)
from skae.datasets import data_available, load_anomaly
from skae.nn._vae import MIN_VARIANCE, VAEModule

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # These models are tiny: on a shared 2-core machine, processes running two
    # OpenMP threads each oversubscribe the cores (measured 20x slower).
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def fitted_bernoulli(digits):
    X, _ = digits
    return VAE(
        n_components=8,
        hidden_layer_sizes=(64,),
        likelihood="bernoulli",
        max_iter=40,
        random_state=0,
    ).fit(X / 16)


@pytest.fixture(scope="module")
def fitted_gaussian(digits):
    X, _ = digits
    return VAE(
        n_components=8,
        hidden_layer_sizes=(64,),
        max_iter=40,
        batch_size=64,
        random_state=0,
    ).fit(X)


# --------------------------------------------------------------------- math
def test_kl_closed_form_hand_built():
    # q = N((1, -2), diag(4, 1)):
    # KL = 1/2 [(4 + 1 - 1 - log 4) + (1 + 4 - 1 - 0)] = 4 - log 2.
    mu = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    logvar = torch.tensor([[math.log(4.0), 0.0]], dtype=torch.float64)
    kl = kl_standard_normal(mu, logvar)
    assert kl.shape == (1,)
    assert kl.item() == pytest.approx(4.0 - math.log(2.0), abs=1e-12)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(kl, expected.double())
    assert kl_standard_normal(torch.zeros(1, 3), torch.zeros(1, 3)).item() == 0.0


def test_log_densities_match_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5, 7, generator=gen, dtype=torch.float64)
    mean = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    logvar = torch.randn(7, generator=gen, dtype=torch.float64)
    expected = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(x)
    torch.testing.assert_close(
        log_likelihood(x, mean, "gaussian", logvar), expected.sum(-1)
    )
    torch.testing.assert_close(
        gaussian_log_density(x, mean, logvar.expand_as(x)), expected.sum(-1)
    )
    binary = (x > 0.5).double()
    expected = torch.distributions.Bernoulli(logits=mean).log_prob(binary)
    torch.testing.assert_close(
        log_likelihood(binary, mean, "bernoulli"), expected.sum(-1)
    )
    # Extreme logits stay finite.
    assert torch.isfinite(
        log_likelihood(torch.ones(1, 2), torch.tensor([[-1e4, 1e4]]), "bernoulli")
    ).all()


def test_iwae_bound_logsumexp():
    log_w = torch.tensor([[0.0, math.log(3.0)], [-1000.0, -1000.0]])
    bound = iwae_bound(log_w)
    assert bound[0].item() == pytest.approx(math.log(2.0))
    assert bound[1].item() == pytest.approx(-1000.0)


def _tiny_problem():
    torch.manual_seed(0)  # only inside torch.random.fork_rng below
    module = VAEModule(6, 2, (5,), likelihood="gaussian").double()
    with torch.no_grad():
        module.raw_logvar.fill_(-1.0)
    x = torch.randn(3, 6, dtype=torch.float64)
    return module, x


def test_iwae_k1_equals_elbo_in_expectation():
    with torch.random.fork_rng():
        module, x = _tiny_problem()
    gen = torch.Generator().manual_seed(1)
    n_rows, n_draws = x.shape[0], 20000
    with torch.no_grad():
        mu, logvar = module.encode(x)
        dec_logvar = module.decoder_logvar()
        # n_draws independent replicates of the K=1 bound per row.
        eps = torch.randn(n_rows, n_draws, 2, generator=gen, dtype=torch.float64)
        iwae1 = iwae_log_weights(
            x, mu, logvar, module.decode, "gaussian", eps, dec_logvar
        )
        assert iwae1.shape == (n_rows, n_draws)
        # ELBO with the exact KL, its reconstruction term at fresh draws.
        rep = torch.repeat_interleave
        recon, kl = elbo_terms(
            rep(x, n_draws, 0),
            rep(mu, n_draws, 0),
            rep(logvar, n_draws, 0),
            module.decode,
            "gaussian",
            dec_logvar,
            torch.randn(n_rows * n_draws, 2, generator=gen, dtype=torch.float64),
        )
        elbo = recon.reshape(n_rows, n_draws) - kl.reshape(n_rows, n_draws)
    gap = iwae1.mean(1) - elbo.mean(1)
    se = torch.sqrt((iwae1.var(1) + elbo.var(1)) / n_draws)
    assert torch.all(gap.abs() < 4 * se), (gap, se)
    # A single weight's bound is the weight itself.
    torch.testing.assert_close(iwae_bound(iwae1[:, :1]), iwae1[:, 0])


def test_iwae_grows_with_k_math():
    with torch.random.fork_rng():
        module, x = _tiny_problem()
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        mu, logvar = module.encode(x)
        eps = torch.randn(3, 4000, 2, generator=gen, dtype=torch.float64)
        log_w = iwae_log_weights(
            x, mu, logvar, module.decode, "gaussian", eps, module.decoder_logvar()
        )
    # Average L_K over disjoint groups of K draws: E L_1 <= E L_10 <= E L_100.
    bounds = [iwae_bound(log_w.reshape(3, -1, k)).mean().item() for k in (1, 10, 100)]
    assert bounds[0] < bounds[1] < bounds[2], bounds


def test_decoder_variance_floor():
    module = VAEModule(3, 1, (), likelihood="gaussian", variance="global")
    with torch.no_grad():
        module.raw_logvar.fill_(-100.0)
    assert module.decoder_logvar().shape == (1,)
    assert module.decoder_logvar().item() == pytest.approx(math.log(MIN_VARIANCE))
    assert VAEModule(3, 1, (), likelihood="bernoulli").decoder_logvar() is None


# ---------------------------------------------------------------- estimator
def test_transform_is_posterior_mean(fitted_gaussian, digits):
    X, _ = digits
    vae = fitted_gaussian
    Z = vae.transform(X[:10])
    x = torch.as_tensor((X[:10] - vae.offset_) / vae.scale_, dtype=torch.float32)
    with torch.no_grad():
        mu, _ = vae.module_.encode(x)
    np.testing.assert_allclose(Z, mu.numpy(), rtol=1e-4, atol=1e-5)
    assert vae.inverse_transform(Z).shape == (10, 64)


def test_score_samples_deterministic_and_row_independent(fitted_gaussian, digits):
    X, _ = digits
    vae = fitted_gaussian
    s = vae.score_samples(X[:20])
    np.testing.assert_array_equal(s, vae.score_samples(X[:20]))
    one_by_one = np.array([vae.score_samples(X[i : i + 1])[0] for i in range(5)])
    np.testing.assert_allclose(one_by_one, s[:5], rtol=1e-9)
    np.testing.assert_allclose(vae.score_samples(X[:20][::-1]), s[::-1], rtol=1e-9)
    assert vae.score(X[:20]) == pytest.approx(s.mean())
    # A function of the row and the fitted model: parameters changed after
    # fitting do not change it, and random_state=None is deterministic too.
    other = copy.deepcopy(vae).set_params(random_state=1)
    np.testing.assert_array_equal(other.score_samples(X[:20]), s)
    unseeded = VAE(n_components=2, hidden_layer_sizes=(8,), max_iter=2).fit(X[:100])
    np.testing.assert_array_equal(
        unseeded.score_samples(X[:20]), unseeded.score_samples(X[:20])
    )


def test_iwae_grows_with_k_estimator(fitted_bernoulli, digits):
    X, _ = digits
    Xb = X[:300] / 16
    vae = fitted_bernoulli
    means = []
    for k in (1, 10, 100):
        vae.set_params(n_importance_samples=k)
        means.append(vae.score_samples(Xb).mean())
    vae.set_params(n_importance_samples=1)
    assert means[0] < means[1] < means[2], means


def test_gaussian_scores_in_units_of_x(digits):
    # X and 10 X standardize to the same data, so the models match and the
    # densities differ by the Jacobian: 10 ** -1 per non-constant feature.
    X, _ = digits
    X = X[:400]
    params = dict(n_components=2, hidden_layer_sizes=(16,), max_iter=5, random_state=0)
    a = VAE(**params).fit(X)
    b = VAE(**params).fit(10 * X)
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-4)
    n_varying = np.sum(X.std(axis=0) > 0)
    shift = n_varying * math.log(10.0)
    # Each row's posterior draws depend on its values, so compare averages.
    gap = a.score_samples(X).mean() - b.score_samples(10 * X).mean()
    assert gap == pytest.approx(shift, abs=1.0)
    np.testing.assert_allclose(b.elbo_curve_, np.subtract(a.elbo_curve_, shift))


def test_elbo_curves(fitted_gaussian):
    vae = fitted_gaussian
    assert len(vae.elbo_curve_) == len(vae.kl_curve_) == vae.n_iter_
    np.testing.assert_allclose(
        vae.elbo_curve_,
        np.subtract(vae.reconstruction_curve_, vae.kl_curve_),
    )
    assert vae.elbo_curve_[-1] > vae.elbo_curve_[0] + 10
    assert all(k >= 0 for k in vae.kl_curve_)
    # beta = 1, no warm-up: the objective (scaled space) and the ELBO (units
    # of X) differ by the constant Jacobian.
    shift = np.sum(np.log(vae.scale_))
    np.testing.assert_allclose(
        -np.asarray(vae.loss_curve_), np.asarray(vae.elbo_curve_) + shift, rtol=1e-5
    )


def test_kl_warmup_schedule(digits):
    X, _ = digits
    vae = VAE(
        n_components=2,
        hidden_layer_sizes=(8,),
        kl_warmup=3,
        max_iter=8,
        tol=1e9,
        n_iter_no_change=1,
        random_state=0,
    ).fit(X[:200])
    # Stopping is suspended during the warm-up, then resumes (tol is huge).
    np.testing.assert_allclose(vae.kl_weight_curve_, [1 / 3, 2 / 3, 1.0, 1.0, 1.0])
    assert vae.n_iter_ == len(vae.elbo_curve_) == 5


def test_kl_warmup_continues_across_pickling_in_partial_fit(digits):
    X, _ = digits
    vae = VAE(n_components=2, hidden_layer_sizes=(8,), kl_warmup=4, random_state=0)
    vae.partial_fit(X[:100]).partial_fit(X[100:200])
    assert vae.kl_weight_curve_[-1] == pytest.approx(2 / 4)
    # The warm-up must not restart after unpickling.
    vae = pickle.loads(pickle.dumps(vae)).partial_fit(X[200:300])
    assert vae.kl_weight_curve_[-1] == pytest.approx(3 / 4)
    vae.partial_fit(X[300:400]).partial_fit(X[400:500]).partial_fit(X[500:600])
    np.testing.assert_allclose(vae.kl_weight_curve_, [1 / 4, 2 / 4, 3 / 4, 1, 1, 1])


def test_beta_trades_kl_for_reconstruction(digits):
    X, _ = digits
    params = dict(
        n_components=4,
        hidden_layer_sizes=(32,),
        max_iter=15,
        likelihood="bernoulli",
        random_state=0,
    )
    low = VAE(beta=0.2, **params).fit(X / 16)
    high = VAE(beta=4.0, **params).fit(X / 16)
    assert high.kl_curve_[-1] < low.kl_curve_[-1]
    assert high.reconstruction_curve_[-1] < low.reconstruction_curve_[-1]


def test_sample_shape_and_seed(fitted_bernoulli):
    vae = fitted_bernoulli
    assert vae.sample().shape == (1, 64)
    a = vae.sample(7, random_state=3)
    assert a.shape == (7, 64) and a.dtype == np.float64
    np.testing.assert_array_equal(a, vae.sample(7, random_state=3))
    assert not np.array_equal(a, vae.sample(7, random_state=4))
    assert np.all((a >= 0) & (a <= 1))
    binary = vae.sample(50, random_state=0, mean=False)
    assert set(np.unique(binary)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="n_samples"):
        vae.sample(0)


def test_sample_means_match_data(fitted_gaussian, digits):
    X, _ = digits
    samples = fitted_gaussian.sample(4000, random_state=0, mean=False)
    std = X.std(axis=0)
    gap = np.abs(samples.mean(axis=0) - X.mean(axis=0))
    # Constant pixels are reproduced; the rest within a fraction of a std.
    assert np.all(gap[std == 0] < 0.05)
    relative = gap[std > 0] / std[std > 0]
    assert np.mean(relative) < 0.15, np.mean(relative)
    assert np.max(relative) < 0.5, np.max(relative)


def test_bernoulli_grey_levels_scaled(digits):
    X, _ = digits  # values in 0..16: min-max scaled to [0, 1]
    vae = VAE(
        n_components=2,
        hidden_layer_sizes=(8,),
        likelihood="bernoulli",
        max_iter=2,
        random_state=0,
    ).fit(X[:100])
    assert vae.loss_ == "bce" and vae.scaling_ == "minmax"
    assert vae.inverse_transform(vae.transform(X[:3])).max() <= 16 + 1e-9


def test_pickle_roundtrip(fitted_gaussian, digits):
    X, _ = digits
    clone = pickle.loads(pickle.dumps(fitted_gaussian))
    np.testing.assert_array_equal(
        clone.score_samples(X[:5]), fitted_gaussian.score_samples(X[:5])
    )
    np.testing.assert_array_equal(clone.sample(3), fitted_gaussian.sample(3))


def test_dynamic_binarize_trains(digits):
    X, _ = digits
    vae = VAE(
        n_components=2,
        hidden_layer_sizes=(16,),
        likelihood="bernoulli",
        binarize="dynamic",
        max_iter=3,
        random_state=0,
    ).fit(X / 16)
    assert np.all(np.isfinite(vae.elbo_curve_))


@pytest.mark.parametrize(
    "params, X_factor, match",
    [
        ({"binarize": "dynamic"}, 1.0, "binarize='dynamic' needs likelihood"),
        ({"likelihood": "bernoulli", "scaling": "standard"}, 1.0, "needs data in"),
        ({"likelihood": "bernoulli", "scaling": "none"}, 1.0, "outside"),
    ],
)
def test_invalid_parameters(params, X_factor, match, digits):
    X, _ = digits
    with pytest.raises(ValueError, match=match):
        VAE(max_iter=1, **params).fit(X[:20] * X_factor)


def test_partial_fit_updates_curves(digits):
    X, _ = digits
    vae = VAE(n_components=2, hidden_layer_sizes=(8,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        vae.partial_fit(X[:100]).partial_fit(X[100:200])
    assert len(vae.elbo_curve_) == vae.n_iter_ == 2
    # Unpickling rebuilds the skorch net; the curves must still extend.
    vae = pickle.loads(pickle.dumps(vae)).partial_fit(X[200:300])
    for curve in (vae.elbo_curve_, vae.kl_curve_, vae.reconstruction_curve_):
        assert len(curve) == vae.n_iter_ == 3
    # A new fit starts new curves.
    vae.set_params(max_iter=2).fit(X[:100])
    assert len(vae.elbo_curve_) == len(vae.kl_curve_) == vae.n_iter_ == 2


# --------------------------------------------------------------- real data
ANOMALY_SETS = ("wbc", "ionosphere", "cardio")


@pytest.mark.skipif(
    not all(data_available(name) for name in ANOMALY_SETS),
    reason="ODDS anomaly sets not found under $SKAE_DATA_DIR (../shared/data)",
)
@pytest.mark.parametrize("name", ANOMALY_SETS)
def test_anomaly_ranking_roc_auc(name):
    X, y = load_anomaly(name)
    X_train, X_test, _, y_test = train_test_split(
        X, y, test_size=0.4, random_state=0, stratify=y
    )
    vae = VAE(
        n_components=4, hidden_layer_sizes=(64, 32), max_iter=50, random_state=0
    ).fit(X_train)
    auc = roc_auc_score(y_test, -vae.score_samples(X_test))
    # Measured: wbc 0.90, ionosphere 0.85, cardio 0.85.
    assert auc > 0.75, auc


def test_auto_likelihood_follows_the_data_range():
    rng = np.random.RandomState(0)
    unit = rng.rand(80, 6)
    params = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_unit = VAE(**params).fit(unit)
        outside = VAE(**params).fit(unit * 3 - 1)
        forced = VAE(likelihood="gaussian", **params).fit(unit)
    assert (in_unit.likelihood_, in_unit.loss_) == ("bernoulli", "bce")
    assert (outside.likelihood_, outside.loss_) == ("gaussian", "mse")
    assert forced.likelihood_ == "gaussian"
    with pytest.raises(ValueError, match="chose 'gaussian'"):
        VAE(binarize="dynamic", **params).fit(unit * 3 - 1)
