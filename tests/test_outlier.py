"""OutlierDetector: the outlier contract, calibrated thresholds, explanations,
streaming, and the default ensemble (tiny settings: the suite stays fast)."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.utils._param_validation import InvalidParameterError

from skae import (
    VAE,
    AutoencoderTransformer,
    DenoisingAE,
    DictionaryLearner,
    OutlierDetector,
)
from skae._outlier import benjamini_hochberg, conformal_p_values
from skae._outlier_default import AutoencoderEnsemble


def _tiny_ensemble(**params):
    params = {"n_estimators": 2, "hidden_layer_size": 8, "n_steps": 30, **params}
    return AutoencoderEnsemble(**{"random_state": 0, **params})


def _tiny_ae(**params):
    params = {"n_components": 2, "hidden_layer_sizes": (), "max_iter": 5, **params}
    return AutoencoderTransformer(**{"random_state": 0, **params})


def _gaussian(n, rng, n_features=5):
    """Correlated Gaussian rows: a 2-d signal plus small noise."""
    mixing = np.random.RandomState(42).normal(size=(2, n_features))
    return rng.normal(size=(n, 2)) @ mixing + 0.1 * rng.normal(size=(n, n_features))


def _binomial_upper(rate, n_trials, z=4.0):
    """An upper bound on an empirical rate that a true ``rate`` exceeds by
    chance with negligible probability (z standard errors)."""
    return rate + z * np.sqrt(rate * (1 - rate) / n_trials)


# ------------------------------------------------------------------ contract
def test_outlier_detector_contract_with_pca():
    rng = np.random.RandomState(0)
    X = _gaussian(400, rng)
    det = OutlierDetector(PCA(n_components=2), random_state=0).fit(X)
    scores = det.score_samples(X)
    np.testing.assert_allclose(det.decision_function(X), scores - det.offset_)
    labels = det.predict(X)
    assert set(np.unique(labels)) <= {-1, 1}
    np.testing.assert_array_equal(labels == -1, det.decision_function(X) < 0)
    np.testing.assert_array_equal(det.fit_predict(X), labels)
    # Flagged rows are exactly those with p-value <= level.
    np.testing.assert_array_equal(labels == -1, det.p_values(X) <= det.level)


def test_outlier_detector_clones_the_estimator():
    pca = PCA(n_components=2)
    det = OutlierDetector(pca, random_state=0).fit(
        _gaussian(100, np.random.RandomState(0))
    )
    assert not hasattr(pca, "components_")
    assert det.estimator_ is not pca


def test_outlier_detector_offset_is_the_kth_calibration_score():
    X = _gaussian(199, np.random.RandomState(1))
    det = OutlierDetector(
        PCA(n_components=2), calibration_fraction=0.5, level=0.1, random_state=0
    ).fit(X)
    n = len(det.calibration_scores_)
    assert n == 100 and det.calibration_data_.shape == (100, 5)
    k = int(np.floor(0.1 * (n + 1)))
    assert det.offset_ == det.calibration_scores_[k - 1]


def test_calibration_rows_are_capped_and_the_rest_fit_the_estimator():
    X = _gaussian(1000, np.random.RandomState(0))
    det = OutlierDetector(
        PCA(n_components=2), calibration_fraction=0.5, max_calibration_samples=100
    ).fit(X)
    assert len(det.calibration_scores_) == 100
    assert det.estimator_.n_samples_ == 900


def test_outlier_detector_float_contamination_flags_that_share_of_training():
    X = _gaussian(300, np.random.RandomState(2))
    det = OutlierDetector(PCA(n_components=2), contamination=0.1, random_state=0)
    assert np.sum(det.fit_predict(X) == -1) == 30


def test_outlier_detector_in_grid_search_with_labelled_validation():
    rng = np.random.RandomState(3)
    X = np.vstack([_gaussian(300, rng), rng.normal(size=(30, 5))])
    y = np.r_[np.ones(300), -np.ones(30)].astype(int)  # 1 = inlier
    search = GridSearchCV(
        OutlierDetector(PCA(), random_state=0),
        {"estimator__n_components": [1, 2]},
        scoring="roc_auc",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    assert search.best_params_ == {"estimator__n_components": 2}
    assert search.best_score_ > 0.95


# --------------------------------------------------------------- guarantees
def test_false_alarm_rate_is_at_most_level_over_many_seeds():
    level, n_seeds, n_test = 0.1, 200, 100
    alarms = []
    for seed in range(n_seeds):
        rng = np.random.RandomState(seed)
        det = OutlierDetector(PCA(n_components=2), level=level, random_state=seed)
        det.fit(_gaussian(200, rng))
        alarms.append(np.mean(det.predict(_gaussian(n_test, rng)) == -1))
    rate = np.mean(alarms)
    # Conditional on a calibration set the rate varies (a Beta law); over
    # seeds its expectation is floor(level * 41) / 41 = 4/41 <= level.
    assert rate <= _binomial_upper(level, n_seeds * n_test)
    assert rate > level / 2  # and the test is not vacuous


def test_p_values_of_normal_rows_are_super_uniform():
    p = []
    for seed in range(100):
        rng = np.random.RandomState(seed)
        det = OutlierDetector(PCA(n_components=2), random_state=seed)
        p.append(det.fit(_gaussian(150, rng)).p_values(_gaussian(20, rng)))
    p = np.concatenate(p)
    for a in (0.05, 0.1, 0.25, 0.5):
        assert np.mean(p <= a) <= _binomial_upper(a, len(p))


def test_contaminated_training_keeps_the_false_alarm_rate():
    alarms = []
    for seed in range(100):
        rng = np.random.RandomState(seed)
        X = np.vstack([_gaussian(190, rng), 4 + rng.normal(size=(10, 5))])
        det = OutlierDetector(PCA(n_components=2), random_state=seed).fit(X)
        alarms.append(np.mean(det.predict(_gaussian(100, rng)) == -1))
    assert np.mean(alarms) <= _binomial_upper(0.05, 100 * 100)


def test_benjamini_hochberg_controls_the_false_discovery_rate():
    fdp, power = [], []
    for seed in range(100):
        rng = np.random.RandomState(seed)
        # BH needs p-values below level / m: 500 held-out rows allow 1/501.
        det = OutlierDetector(
            PCA(n_components=2), calibration_fraction=0.5, random_state=seed
        )
        det.fit(_gaussian(1000, rng))
        X = np.vstack([_gaussian(90, rng), rng.normal(scale=2.0, size=(10, 5))])
        flagged = det.predict(X, fdr=0.1) == -1
        fdp.append(flagged[:90].sum() / max(flagged.sum(), 1))
        power.append(flagged[90:].mean())
    assert np.mean(fdp) <= 0.1 + 4 * np.std(fdp) / np.sqrt(len(fdp))
    assert np.mean(power) > 0.5


def test_benjamini_hochberg_matches_the_step_up_rule():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.005])
    # Sorted: 0.005, 0.01, 0.03, 0.04, 0.2 against 0.008 * i: the 2 smallest.
    np.testing.assert_array_equal(
        benjamini_hochberg(p, 0.04), [True, False, False, False, True]
    )
    # Against 0.01 * i, 0.04 <= 0.04 passes: the step-up rule takes all 4.
    np.testing.assert_array_equal(
        benjamini_hochberg(p, 0.05), [True, True, True, False, True]
    )
    assert not benjamini_hochberg(np.array([0.5, 0.9]), 0.05).any()
    np.testing.assert_allclose(
        conformal_p_values(np.array([1.0, 1.0, 2.0]), np.array([1.0, 0.5])),
        [0.75, 0.25],
    )


def test_too_few_calibration_rows_warn_and_flag_nothing():
    X = _gaussian(30, np.random.RandomState(0))
    det = OutlierDetector(PCA(n_components=2), level=0.01, random_state=0)
    with pytest.warns(UserWarning, match="cannot support level=0.01"):
        det.fit(X)
    assert det.offset_ == -np.inf
    assert np.all(det.predict(X) == 1)


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "params, match",
    [
        ({"contamination": 0.7}, "contamination"),
        ({"contamination": 0.0}, "contamination"),
        ({"contamination": "high"}, "contamination"),
        ({"level": 1.5}, "level"),
        ({"calibration_fraction": 1.0}, "calibration_fraction"),
        ({"estimator": IsolationForest().fit}, "estimator"),
    ],
)
def test_invalid_parameters_name_themselves(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        OutlierDetector(**params).fit(np.zeros((10, 2)))


def test_an_estimator_class_is_refused():
    with pytest.raises(TypeError, match="instance"):
        OutlierDetector(AutoencoderTransformer).fit(np.zeros((10, 2)))


def test_bad_input_gets_clear_errors():
    X = _gaussian(100, np.random.RandomState(0))
    det = OutlierDetector(PCA(n_components=2), random_state=0)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        det.fit(X_nan)
    det.fit(X)
    with pytest.raises(ValueError, match="NaN"):
        det.predict(X_nan)
    with pytest.raises(ValueError, match="X has 3 features, but OutlierDetector"):
        det.p_values(X[:, :3])
    with pytest.raises(ValueError, match="X has 3 features, but OutlierDetector"):
        det.feature_scores(X[:, :3])
    with pytest.raises(ValueError, match="n_samples = 1"):
        clone(det).fit(X[:1])
    with pytest.raises(ValueError, match="fdr must be"):
        det.predict(X, fdr=2.0)


@pytest.mark.parametrize("method", ["p_values", "feature_scores", "predict"])
def test_unfitted_detector_says_so(method):
    with pytest.raises(NotFittedError):
        getattr(OutlierDetector(PCA()), method)(np.zeros((3, 2)))


def test_methods_follow_the_estimator():
    assert not hasattr(OutlierDetector(PCA()), "partial_fit")
    assert hasattr(OutlierDetector(_tiny_ae()), "partial_fit")
    assert hasattr(OutlierDetector(), "partial_fit")
    assert not hasattr(OutlierDetector(IsolationForest()), "feature_scores")
    det = OutlierDetector(IsolationForest(random_state=0), random_state=0)
    det.fit(_gaussian(100, np.random.RandomState(0)))
    assert det.feature_weights_ is None
    assert det.predict(_gaussian(5, np.random.RandomState(1))).shape == (5,)


# ------------------------------------------------------------- explanations
def test_feature_scores_of_pca_are_its_residual_term():
    rng = np.random.RandomState(0)
    X = _gaussian(300, rng)
    det = OutlierDetector(PCA(n_components=2), random_state=0).fit(X)
    X_new = _gaussian(10, rng)
    F = det.feature_scores(X_new)
    assert F.shape == (10, 5)
    pca = det.estimator_
    np.testing.assert_allclose(
        F, (X_new - pca.inverse_transform(pca.transform(X_new))) ** 2
    )
    # -log p(x) = residual / (2 sigma^2) + sum_k t_k^2 / (2 lambda_k) + const.
    t = pca.transform(X_new)
    latent = 0.5 * np.sum(t**2 / pca.explained_variance_, axis=1)
    rest = -det.score_samples(X_new) - F @ det.feature_weights_ - latent
    np.testing.assert_allclose(rest, rest[0])


@pytest.mark.parametrize(
    "estimator",
    [
        _tiny_ae(loss="mse", scaling="standard"),
        DenoisingAE(
            n_components=2, hidden_layer_sizes=(4,), max_iter=3, random_state=0
        ),
        DictionaryLearner(n_components=2, code="orthogonal", random_state=0),
    ],
    ids=["AutoencoderTransformer", "DenoisingAE", "DictionaryLearner"],
)
def test_feature_scores_of_skae_models_sum_to_their_score(estimator):
    rng = np.random.RandomState(0)
    X = 10 * _gaussian(200, rng) + 50  # X's units are not the scaled units
    det = OutlierDetector(estimator, random_state=0).fit(X)
    F = det.feature_scores(X[:20])
    np.testing.assert_allclose(
        F @ det.feature_weights_, -det.score_samples(X[:20]), rtol=1e-5
    )


@pytest.mark.parametrize(
    "estimator",
    [VAE(n_components=2, max_iter=2, random_state=0), _tiny_ae(loss="bce")],
    ids=["VAE", "bce"],
)
def test_feature_weights_are_none_when_the_score_is_no_squared_error(estimator):
    X = np.random.RandomState(0).rand(100, 4)
    det = OutlierDetector(estimator, random_state=0).fit(X)
    assert det.feature_weights_ is None
    assert det.feature_scores(X[:3]).shape == (3, 4)


def test_feature_scores_of_the_default_find_the_corrupted_feature():
    rng = np.random.RandomState(0)
    # Feature 4 carries no signal, only small noise (a pixel that stays dark).
    X = _gaussian(300, rng, n_features=6)
    X[:, 4] = 0.1 * rng.normal(size=300)
    det = OutlierDetector(_tiny_ensemble(), random_state=0).fit(X)
    X_new = _gaussian(20, rng, n_features=6)
    X_new[:, 4] = 0.1 * rng.normal(size=20)
    X_bad = X_new.copy()
    X_bad[:, 4] += 3.0
    F = det.feature_scores(X_bad)
    assert np.all(np.argmax(F - det.feature_scores(X_new), axis=1) == 4)
    X_new = X_bad
    reconstruction, _ = det.estimator_._parts(X_new)
    np.testing.assert_allclose(F @ det.feature_weights_, reconstruction, rtol=1e-6)


# ----------------------------------------------------------------- streaming
def test_partial_fit_keeps_the_threshold_current_on_a_drifting_stream():
    rng = np.random.RandomState(0)
    det = OutlierDetector(_tiny_ae(), max_calibration_samples=300, random_state=0)
    for _ in range(10):
        det.partial_fit(_gaussian(100, rng))
    assert det.n_batches_ == 10 and len(det.calibration_data_) <= 300
    before = np.mean(det.predict(_gaussian(2000, rng)) == -1)
    # The stream moves: the window of held-out rows follows it.
    for _ in range(20):
        det.partial_fit(3 * _gaussian(100, rng) + 5)
    after = np.mean(det.predict(3 * _gaussian(2000, rng) + 5) == -1)
    assert before <= 0.1 and after <= 0.1


def test_partial_fit_starts_a_stream_from_single_rows():
    rng = np.random.RandomState(0)
    det = OutlierDetector(_tiny_ae(), random_state=0)
    det.partial_fit(_gaussian(1, rng))
    # No held-out row yet: nothing can be flagged, every p-value is 1.
    assert det.offset_ == -np.inf and len(det.calibration_scores_) == 0
    np.testing.assert_array_equal(det.p_values(_gaussian(3, rng)), 1.0)
    for _ in range(30):
        det.partial_fit(_gaussian(10, rng))
    assert len(det.calibration_scores_) > 20 and np.isfinite(det.offset_)


def test_a_failed_fit_leaves_the_detector_as_it_was():
    X = _gaussian(100, np.random.RandomState(0))
    det = OutlierDetector(_tiny_ae(), random_state=0).fit(X)
    before = dict(det.__dict__)
    X_bad = X.copy()
    X_bad[0, 0] = np.inf
    for call in (det.fit, det.partial_fit):
        with pytest.raises(ValueError, match="infinity"):
            call(X_bad)
        assert det.__dict__.keys() == before.keys()
        assert all(det.__dict__[key] is value for key, value in before.items())
    # A failure inside the estimator's fit, after validation.
    det = OutlierDetector(PCA(n_components=2), random_state=0).fit(X)
    det.set_params(estimator=PCA(n_components=10))
    before = dict(det.__dict__)
    with pytest.raises(ValueError, match="n_components=10"):
        det.fit(X)
    assert all(det.__dict__[key] is value for key, value in before.items())


@pytest.mark.parametrize("scaling", ["minmax", "standard"])
def test_default_ensemble_scaling_follows_the_stream(scaling):
    rng = np.random.RandomState(0)
    batches = [0.1 * _gaussian(20, rng), _gaussian(50, rng), 3 * _gaussian(30, rng)]
    ens = _tiny_ensemble(scaling=scaling)
    for batch in batches:
        ens.partial_fit(batch)
    X = np.vstack(batches)
    assert ens.n_samples_seen_ == 100
    np.testing.assert_allclose(ens.data_min_, X.min(axis=0))
    np.testing.assert_allclose(ens.data_max_, X.max(axis=0))
    np.testing.assert_allclose(ens.data_mean_, X.mean(axis=0))
    np.testing.assert_allclose(ens.data_var_, X.var(axis=0))
    # The same scaling as a fit on all the rows.
    np.testing.assert_allclose(
        ens.scale_, _tiny_ensemble(scaling=scaling).fit(X).scale_
    )


def test_partial_fit_after_fit_continues_the_default_ensemble():
    rng = np.random.RandomState(0)
    X = _gaussian(200, rng)
    det = OutlierDetector(_tiny_ensemble(), random_state=0).fit(X)
    n_iter = det.estimator_.estimators_[0].n_iter_
    det.partial_fit(_gaussian(50, rng))
    assert det.estimator_.estimators_[0].n_iter_ == n_iter + 1
    assert det.n_batches_ == 1
    assert np.isfinite(det.offset_)


def test_partial_fit_stream_with_an_skae_autoencoder_is_reproducible():
    def run():
        rng = np.random.RandomState(0)
        det = OutlierDetector(_tiny_ae(), random_state=0)
        for _ in range(3):
            det.partial_fit(_gaussian(60, rng))
        return det

    first, second = run(), run()
    np.testing.assert_array_equal(first.calibration_scores_, second.calibration_scores_)
    X = _gaussian(10, np.random.RandomState(1))
    clone_ = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(clone_.p_values(X), first.p_values(X))


# ----------------------------------------------------------------- default
def test_default_ensemble_detects_planted_outliers():
    rng = np.random.RandomState(0)
    X_train = np.vstack([_gaussian(300, rng), rng.uniform(-4, 4, size=(15, 5))])
    X_test = np.vstack([_gaussian(100, rng), rng.uniform(-4, 4, size=(10, 5))])
    det = OutlierDetector(_tiny_ensemble(n_steps=300), random_state=0)
    det.fit(X_train)
    auc = roc_auc_score(np.r_[np.zeros(100), np.ones(10)], -det.score_samples(X_test))
    assert auc > 0.95


def test_default_ensemble_leaves_torch_threads_alone():
    import torch

    before = torch.get_num_threads()
    _tiny_ensemble().fit(_gaussian(50, np.random.RandomState(0)))
    assert torch.get_num_threads() == before


def test_default_is_seeded_by_the_detector():
    det = OutlierDetector(random_state=1)
    det.random_seed_ = 7
    default = det._new_estimator()
    assert isinstance(default, AutoencoderEnsemble)
    assert default.random_state == det._new_estimator().random_state
    given = OutlierDetector(_tiny_ensemble(random_state=None), random_state=1)
    given.random_seed_ = 7
    assert given._new_estimator().random_state is None  # the user's own
