"""Behaviour of AutoencoderTransformer and, through it, of BaseAutoencoder."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from scipy.linalg import subspace_angles
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import skae._base
from skae import AutoencoderTransformer


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


def quick(**params):
    params = {"max_iter": 20, "random_state": 0, **params}
    return AutoencoderTransformer(**params)


@pytest.mark.parametrize("loader", [load_wine, load_breast_cancer, load_digits])
def test_default_linear_autoencoder_is_pca(loader):
    # Defaults only: the global scaling keeps PCA's objective, and the PCA
    # start is its optimum (Baldi and Hornik, 1989), which training keeps.
    X = loader().data
    for k in (2, 4):
        ae = AutoencoderTransformer(
            n_components=k, hidden_layer_sizes=(), activation="identity", random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ae.fit(X)
        basis = ae.decoder_[0].weight.detach().numpy() * ae.scale_[:, None]
        angles = subspace_angles(basis, PCA(n_components=k).fit(X).components_.T)
        assert angles.max() < 0.01, (k, angles)


def test_linear_autoencoder_from_random_start_finds_the_standardized_subspace(digits):
    # A random start and standardized features reach PCA of standardized X.
    X, _ = digits
    Xs = StandardScaler().fit_transform(X)
    k = 4
    ae = AutoencoderTransformer(
        n_components=k,
        hidden_layer_sizes=(),
        activation="identity",
        init="random",
        scaling="standard",
        early_stopping=False,
        loss="mse",
        alpha=0.0,
        learning_rate=3e-3,
        max_iter=300,
        tol=0.0,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(X)
    decoder_weight = ae.decoder_[0].weight.detach().numpy()  # (n_features, k)
    pca = PCA(n_components=k).fit(Xs)
    angles = subspace_angles(decoder_weight, pca.components_.T)
    assert angles.max() < 0.1, angles


def test_inverse_transform_returns_original_units(digits):
    X, _ = digits
    ae = quick(n_components=16, max_iter=60).fit(X)
    X_hat = ae.inverse_transform(ae.transform(X))
    assert X_hat.shape == X.shape
    # Reconstructions live in pixel units (0..16), not in the scaled space.
    assert abs(X_hat.mean() - X.mean()) < 0.5
    relative_error = ((X_hat - X) ** 2).sum() / ((X - X.mean(0)) ** 2).sum()
    assert relative_error < 0.35


def test_defaults_are_never_worse_than_pca_in_the_units_of_x():
    # Raw features spanning 5 orders of magnitude: the global scaling keeps
    # PCA's objective, and the PCA start is kept unless training beats it.
    X = load_breast_cancer().data
    X_train, X_test = train_test_split(X, random_state=0)
    for k in (2, 4, 8):
        with warnings.catch_warnings():
            # At k = 8 the PCA start reconstructs X almost exactly; leaving it
            # is no divergence, and a default fit must not say it is.
            warnings.simplefilter("error", RuntimeWarning)
            ae = AutoencoderTransformer(n_components=k, random_state=0).fit(X_train)
        pca = PCA(n_components=k).fit(X_train)

        def mse(model):
            return np.mean(
                (model.inverse_transform(model.transform(X_test)) - X_test) ** 2
            )

        assert mse(ae) <= 1.02 * mse(pca), k


def test_the_pca_start_is_pca():
    X = load_digits().data
    ae = AutoencoderTransformer(n_components=5, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(X)
    # One epoch later or kept: the linear path still spans PCA's subspace.
    basis = ae.decoder_.linear.weight.detach().numpy() * ae.scale_[:, None]
    angles = subspace_angles(basis, PCA(n_components=5).fit(X).components_.T)
    assert angles.max() < 0.05
    assert ae.architecture_["linear_path"]
    random = AutoencoderTransformer(n_components=5, init="random", max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert not random.fit(X).architecture_["linear_path"]


def test_same_seed_same_result_different_seed_differs(digits):
    X, _ = digits
    Z1 = quick(random_state=3).fit_transform(X)
    Z2 = quick(random_state=3).fit_transform(X)
    Z3 = quick(random_state=4).fit_transform(X)
    np.testing.assert_array_equal(Z1, Z2)
    assert not np.allclose(Z1, Z3)


def test_global_rng_untouched(digits):
    X, _ = digits
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    quick(max_iter=2, dropout=0.2).fit(X)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)


@pytest.mark.parametrize(
    "dtype, expected",
    [(np.float32, np.float32), (np.float64, np.float64), (int, np.float64)],
)
def test_transform_keeps_float_dtype(digits, dtype, expected):
    X, _ = digits
    ae = quick(max_iter=2).fit(X[:200].astype(dtype))
    Z = ae.transform(X[:10].astype(dtype))
    assert Z.dtype == expected
    assert ae.inverse_transform(Z).dtype == expected
    assert ae.score_samples(X[:10].astype(dtype)).dtype == expected


def test_dataframe_feature_names_and_pandas_output(digits):
    X, _ = digits
    df = pd.DataFrame(X[:300], columns=[f"px{i}" for i in range(64)])
    ae = quick(n_components=8, max_iter=2).set_output(transform="pandas").fit(df)
    np.testing.assert_array_equal(ae.feature_names_in_, df.columns)
    Z = ae.transform(df)
    assert isinstance(Z, pd.DataFrame)
    assert list(Z.columns) == [f"autoencodertransformer{i}" for i in range(8)]
    assert list(ae.get_feature_names_out()) == list(Z.columns)


def test_pipeline_and_grid_search(digits):
    X, y = digits
    pipe = Pipeline([("ae", quick(n_components=16, max_iter=30)), ("svc", SVC())])
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    assert pipe.fit(X_train, y_train).score(X_test, y_test) > 0.85
    search = GridSearchCV(pipe, {"ae__n_components": [2, 8]}, cv=3).fit(
        X[:600], y[:600]
    )
    assert search.best_params_["ae__n_components"] == 8


def test_grid_search_without_scorer_uses_reconstruction(digits):
    X, _ = digits
    search = GridSearchCV(quick(max_iter=15), {"n_components": [1, 12]}, cv=3)
    search.fit(X[:600])
    assert search.best_params_["n_components"] == 12
    assert search.best_score_ == pytest.approx(
        max(search.cv_results_["mean_test_score"])
    )


def test_score_samples_flags_anomalies(digits):
    X, _ = digits
    rng = np.random.RandomState(0)
    ae = quick(n_components=8, max_iter=40).fit(X[:1500])
    normal = ae.score_samples(X[1500:1600])
    noise = ae.score_samples(rng.uniform(0, 16, size=(100, 64)))
    assert normal.shape == (100,)
    assert np.median(normal) > np.max(noise)
    assert ae.score(X[1500:1600]) == pytest.approx(normal.mean())


def test_loss_auto_picks_bce_for_unit_interval_data_from_a_random_start(digits):
    X, _ = digits
    assert quick(init="random", max_iter=1).fit(X / 16.0).loss_ == "bce"
    assert quick(init="random", max_iter=1).fit(X).loss_ == "mse"
    ae = quick(init="random", max_iter=5).fit(X / 16.0)
    X_hat = ae.inverse_transform(ae.transform(X[:20] / 16.0))
    assert X_hat.min() >= 0 and X_hat.max() <= 1


def test_loss_auto_keeps_the_pca_start_on_unit_interval_data(digits):
    # The default start is PCA, the MSE's linear optimum: "auto" keeps the MSE
    # for pixels too, and the model starts exactly at PCA's reconstruction.
    X, _ = digits
    X = X / 16.0
    ae = quick(n_components=8, max_iter=1, learning_rate=1e-12).fit(X)
    assert (ae.loss_, ae.scaling_) == ("mse", "global")
    pca = PCA(8).fit(X)
    X_pca = pca.inverse_transform(pca.transform(X[:50]))
    assert np.abs(ae.inverse_transform(ae.transform(X[:50])) - X_pca).max() < 1e-3
    # An explicit BCE starts from the same linear maps (logits).
    bce = quick(loss="bce", max_iter=1).fit(X)
    assert bce.loss_ == "bce" and bce.architecture_["linear_path"]


def test_bce_with_standard_scaling_is_refused(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="scaling"):
        quick(loss="bce", scaling="standard").fit(X)


def test_partial_fit_continues_training(digits):
    X, _ = digits
    ae = AutoencoderTransformer(n_components=8, random_state=0)
    chunks = np.array_split(X, 6)
    ae.partial_fit(chunks[0])
    score_after_one_chunk = ae.score(X)
    for _ in range(3):
        for chunk in chunks:
            ae.partial_fit(chunk)
    assert ae.n_iter_ == 19
    # Same chunk, three passes apart: the loss went down.
    assert ae.loss_curve_[-1] < ae.loss_curve_[6]
    assert ae.score(X) > score_after_one_chunk
    with pytest.raises(ValueError, match="features"):
        ae.partial_fit(X[:, :10])


def test_partial_fit_reads_learning_rate_at_every_call(digits):
    # A schedule between partial_fit calls must reach the optimizer: a tiny
    # step barely moves the weights, the default one moves them clearly.
    X, _ = digits

    def weight_change(learning_rate):
        ae = AutoencoderTransformer(n_components=4, random_state=0).partial_fit(X)
        before = next(ae.module_.parameters()).detach().clone()
        ae.set_params(learning_rate=learning_rate).partial_fit(X)
        after = next(ae.module_.parameters()).detach()
        return (after - before).abs().max().item()

    assert weight_change(1e-9) < 1e-6
    assert weight_change(1e-3) > 1e-3


def test_early_stopping_uses_validation_split(digits):
    X, _ = digits
    ae = AutoencoderTransformer(
        n_components=8,
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=500,
        random_state=0,
    ).fit(X)
    assert len(ae.validation_loss_curve_) == ae.n_iter_ == len(ae.loss_curve_)
    assert ae.n_iter_ < 500
    # The best validation weights are kept.
    no_split = quick(max_iter=2, early_stopping=False).fit(X)
    assert not hasattr(no_split, "validation_loss_curve_")


def test_early_stopping_with_too_few_samples_warns():
    with pytest.warns(UserWarning, match="too few"):
        quick(early_stopping=True, max_iter=2).fit(np.ones((1, 3)))


def test_max_iter_reached_warns(digits):
    X, _ = digits
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        quick(max_iter=2).fit(X[:100])


def test_divergence_restores_best_weights(digits):
    X, _ = digits
    with pytest.warns(RuntimeWarning, match="diverged"):
        ae = AutoencoderTransformer(
            learning_rate=1e12, max_iter=30, random_state=0
        ).fit(X)
    assert np.all(np.isfinite(ae.transform(X)))
    assert np.all(np.isfinite(ae.score_samples(X)))


def test_inference_runs_in_batches(digits, monkeypatch):
    X, _ = digits
    ae = quick(max_iter=3).fit(X)
    full = ae.transform(X)
    seen = []
    encode = ae._encode

    def spy(module, x):
        seen.append(len(x))
        assert torch.is_inference_mode_enabled()
        return encode(module, x)

    monkeypatch.setattr(skae._base, "INFERENCE_BATCH_SIZE", 500)
    monkeypatch.setattr(ae, "_encode", spy)
    np.testing.assert_allclose(ae.transform(X), full)
    assert seen == [500, 500, 500, 297]


def test_pickle_round_trip_is_bit_identical(digits):
    X, _ = digits
    ae = quick(max_iter=3).fit(X)
    clone = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(clone.transform(X), ae.transform(X))
    # The reloaded model can keep training.
    clone.partial_fit(X)
    assert clone.n_iter_ == ae.n_iter_ + 1


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), "infinity"),
        (np.empty((0, 3)), "0 sample"),
        (np.ones((4, 3, 2)), "dim 3"),
        (pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}), "could not convert|string"),
    ],
)
def test_bad_input_to_fit_raises_value_error(X, match):
    with pytest.raises(ValueError, match=match):
        quick().fit(X)


def test_sparse_input_is_refused_with_type_error():
    with pytest.raises(TypeError, match="[Ss]parse"):
        quick().fit(sp.csr_matrix(np.eye(4)))


def test_failed_calls_leave_fitted_model_unchanged(digits):
    X, _ = digits
    ae = quick(max_iter=3).fit(X)
    before = ae.transform(X)
    state = dict(ae.__dict__)
    bad_df = pd.DataFrame(
        np.full((5, 64), np.nan), columns=[f"c{i}" for i in range(64)]
    )
    for bad in (bad_df, np.full((5, 64), np.inf)):
        with pytest.raises(ValueError):
            ae.fit(bad)
    for bad in (bad_df, X[:, :5], np.full((5, 64), np.inf)):
        with pytest.raises(ValueError):
            ae.partial_fit(bad)
    with pytest.raises(ValueError, match="features"):
        ae.transform(X[:, :5])
    with pytest.raises(ValueError, match="features"):
        ae.inverse_transform(np.zeros((3, 7)))
    assert ae.__dict__.keys() == state.keys()
    assert not hasattr(ae, "feature_names_in_")
    np.testing.assert_array_equal(ae.transform(X), before)


def test_values_overflowing_float32_are_reported():
    X = np.random.RandomState(0).rand(20, 3)
    X[0, 0] = 1e300
    with pytest.raises(ValueError, match="too large|overflow"):
        quick(scaling="none", loss="mse").fit(X)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 0}, "n_components"),
        ({"hidden_layer_sizes": (10, 0)}, "hidden_layer_sizes"),
        ({"activation": "swish"}, "activation"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_parameters_name_the_parameter(params, match):
    with pytest.raises(ValueError, match=match):
        quick(**params).fit(np.random.rand(10, 3))


@pytest.mark.skipif(torch.cuda.is_available(), reason="machine has CUDA")
def test_cuda_request_without_cuda_is_clear():
    with pytest.raises(ValueError, match="CUDA is not available"):
        quick(device="cuda").fit(np.random.rand(10, 3))


def test_device_auto_resolves_and_param_untouched():
    ae = quick(max_iter=1).fit(np.random.rand(10, 3))
    assert ae.device == "auto"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert ae.device_.type == expected


def test_verbose_shows_progress(capsys, digits):
    X, _ = digits
    quick(max_iter=3, verbose=1).fit(X[:100])
    err = capsys.readouterr().err
    assert "epoch" in err and "train_loss" in err


def test_layerwise_pretraining_then_fine_tuning(digits):
    X, _ = digits
    ae = quick(n_components=8, hidden_layer_sizes=(32, 16), max_iter=4, tol=0.0)
    ae.set_params(pretraining="layerwise").fit(X[:300])
    # Three levels (64-32, 32-16, 16-8) of 4 epochs each, then 4 end to end.
    assert ae.n_pretraining_iter_ == 12
    assert ae.n_iter_ == len(ae.loss_curve_) == 16
    plain = quick(n_components=8, hidden_layer_sizes=(32, 16), max_iter=4).fit(X[:300])
    assert plain.n_pretraining_iter_ == 0
    assert not np.allclose(plain.transform(X[:5]), ae.transform(X[:5]))


def test_pickling_between_partial_fits_keeps_optimizer_state(digits):
    X, _ = digits
    chunks = np.array_split(X[:600], 3)
    straight = AutoencoderTransformer(n_components=4, random_state=0)
    reloaded = AutoencoderTransformer(n_components=4, random_state=0)
    for chunk in chunks:
        straight.partial_fit(chunk)
        reloaded = pickle.loads(pickle.dumps(reloaded.partial_fit(chunk)))
    np.testing.assert_allclose(reloaded.transform(X), straight.transform(X), atol=1e-6)


def test_partial_fit_with_dropout_is_reproducible(digits):
    X, _ = digits

    def stream():
        ae = AutoencoderTransformer(n_components=4, dropout=0.3, random_state=0)
        for chunk in np.array_split(X[:600], 3):
            ae.partial_fit(chunk)
        return ae.transform(X[:50])

    first = stream()
    torch.rand(7)  # move the caller's RNG: the stream must not depend on it
    np.testing.assert_array_equal(first, stream())


def test_bce_without_scaling_on_data_outside_unit_interval_is_refused(digits):
    X, _ = digits
    with pytest.raises(ValueError, match=r"loss='bce' needs targets in \[0, 1\]"):
        AutoencoderTransformer(loss="bce", scaling="none", max_iter=1).fit(X)


def test_tiny_units_are_scaled_like_any_other(digits):
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    X = (X - X.mean(axis=0)) * 1e-13
    params = dict(n_components=8, max_iter=20, random_state=0)
    tiny = AutoencoderTransformer(**params).fit(X)
    unit = AutoencoderTransformer(**params).fit(X * 1e13)
    varying = X.std(axis=0) > 0  # constant pixels keep scale 1 in both
    np.testing.assert_allclose(
        tiny.scale_[varying] * 1e13, unit.scale_[varying], rtol=1e-6
    )
    Z = tiny.transform(X)
    accuracy = LogisticRegression(max_iter=500).fit(Z[:1200], y[:1200])
    assert accuracy.score(Z[1200:], y[1200:]) > 0.8


def test_mps_request_without_mps_is_clear():
    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(ValueError, match="MPS backend is not available"):
        AutoencoderTransformer(device="mps", max_iter=1).fit(np.ones((5, 2)))


def test_a_row_too_large_to_score_gets_minus_infinity(digits):
    from skae import VAE

    X, _ = digits
    for est in (
        AutoencoderTransformer(n_components=4, max_iter=3, random_state=0),
        VAE(n_components=2, max_iter=3, random_state=0),
    ):
        est.fit(X)
        bad = X[:5].astype(np.float32)
        bad[2, 10] = 1e25  # its square overflows float32
        with pytest.warns(UserWarning, match="1 row"):
            scores = est.score_samples(bad)
        assert scores[2] == -np.inf
        np.testing.assert_allclose(
            np.delete(scores, 2), np.delete(est.score_samples(X[:5]), 2), rtol=1e-4
        )


def test_vae_scores_of_a_dataframe_do_not_warn(digits):
    import warnings

    import pandas as pd

    from skae import VAE

    X, _ = digits
    frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    vae = VAE(n_components=2, max_iter=2, random_state=0).fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vae.score_samples(frame.iloc[:10])


def test_principal_directions_are_pcas_in_blocks():
    from skae._mlp import PCA_INIT_MAX_ROWS, principal_directions
    from skae._sources import TensorRows

    rng = np.random.RandomState(0)
    X = rng.randn(PCA_INIT_MAX_ROWS + 5000, 6) @ rng.randn(6, 6) + 3.0
    mean, directions = principal_directions(TensorRows(torch.from_numpy(X)), 3)
    # Evenly spaced blocks of 20,000 of the 25,000 rows: nearly PCA of all.
    pca = PCA(n_components=3).fit(X)
    np.testing.assert_allclose(mean.numpy(), X.mean(axis=0), atol=0.05)
    cosines = np.abs(np.sum(directions.numpy() * pca.components_.T, axis=0))
    assert cosines.min() > 0.999


def test_pca_start_leaves_constant_features_exactly_constant(digits):
    # An eigensolver leaves round-off (1e-16) on features that never vary, and
    # Adam scales the tiny gradients of such weights up to its step size: the
    # PCA start zeroes them, so a constant feature is reconstructed as itself.
    X, _ = digits
    X = np.column_stack([X, np.full(len(X), 0.3)])
    constant = np.flatnonzero(X.std(axis=0) == 0)
    assert len(constant) >= 3  # digits' blank pixels 0, 32 and 39, and 0.3
    ae = quick(n_components=8).fit(X)
    assert np.all(ae.decoder_.linear.weight.detach().numpy()[constant] == 0)
    X_hat = ae.inverse_transform(ae.transform(X[:100]))
    np.testing.assert_allclose(
        X_hat[:, constant], X[:100, constant], rtol=0, atol=1e-12
    )
