"""AutoencoderClassifier and AutoencoderRegressor: semi-supervised fit, transfer,
bad input, rollback and persistence.

Small data (digits, a few hundred rows) and tiny networks: every fit takes
well under a second.
"""

import copy
import pickle
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse
import torch
from hypothesis import HealthCheck, given, settings
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import cross_val_score

import skae
from skae import (
    VAE,
    AutoencoderClassifier,
    AutoencoderRegressor,
    AutoencoderTransformer,
    ContractiveAE,
    DenoisingAE,
    SparseAE,
    _classifier,
)
from skae import _propagation as propagation

sys.path.insert(0, str(Path(__file__).parent))
from bad_inputs import bad_inputs, check_outcome  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def tiny_ae(cls=DenoisingAE, **params):
    params = {"n_components": 8, "hidden_layer_sizes": (16,), "max_iter": 3, **params}
    return cls(**params)


def tiny(cls=AutoencoderClassifier, **params):
    return cls(**{"autoencoder": tiny_ae(), "max_iter": 5, "random_state": 0, **params})


@pytest.fixture(scope="module")
def digits():
    """300 digits in [0, 1]; labels for the first 100 rows only (-1 after)."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    y_semi = y.copy()
    y_semi[100:] = -1
    return X, y, y_semi


@pytest.fixture(scope="module")
def encoder(digits):
    X, _, _ = digits
    return tiny_ae(random_state=0).fit(X)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _snapshot(estimator):
    """Every attribute, tensors cloned (pickled tensors differ in their bytes)."""
    state = dict(estimator.__getstate__())
    weights = state.pop("module_", {})
    return pickle.dumps(state), {k: v.clone() for k, v in weights.items()}


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ------------------------------------------------------------------ y = -1
def test_unlabeled_rows_pretrain_and_are_never_a_class(digits):
    X, _, y_semi = digits
    X_raw = X * 16.0  # MSE with scaling="global": the offset is the rows' mean
    clf = tiny(autoencoder=tiny_ae(loss="mse")).fit(X_raw, y_semi)
    np.testing.assert_array_equal(clf.classes_, np.arange(10))
    assert set(clf.predict(X_raw)) <= set(range(10))
    # Pretraining saw every row, labeled or not.
    np.testing.assert_allclose(clf.offset_, X_raw.mean(axis=0))
    assert not np.allclose(clf.offset_, X_raw[:100].mean(axis=0))
    assert clf.n_pretraining_iter_ == 3 and clf.n_head_iter_ >= 1
    assert clf.n_iter_ == len(clf.loss_curve_) > clf.n_head_iter_


def test_unlabeled_rows_enter_the_reconstruction_term(digits, monkeypatch):
    X, _, y_semi = digits
    seen = []
    forward = _classifier.SupervisedObjective.forward

    def spy(self, module, batch, training=True):
        if training and batch.pool is not None:
            seen.append(len(batch.pool))
        return forward(self, module, batch, training)

    monkeypatch.setattr(_classifier.SupervisedObjective, "forward", spy)
    tiny(max_iter=2).fit(X, y_semi)
    assert seen and all(n == 200 for n in seen)  # min(200, all 300 rows)
    seen.clear()
    tiny(max_iter=2, fine_tune="head").fit(X, y_semi)
    assert not seen


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_binary_and_multiclass_outputs_agree(digits, n_classes):
    X, y, _ = digits
    keep = y < n_classes
    X, y = X[keep], y[keep] + 5  # labels that are not 0..k-1
    y_semi = y.copy()
    y_semi[::2] = -1
    clf = tiny(max_iter=100, learning_rate=1e-2).fit(X, y_semi)
    proba = clf.predict_proba(X)
    scores = clf.decision_function(X)
    assert proba.shape == (len(X), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)
    predicted = clf.predict(X)
    if n_classes == 2:
        assert scores.shape == (len(X),)
        np.testing.assert_array_equal(predicted, clf.classes_[(scores > 0).astype(int)])
    else:
        assert scores.shape == (len(X), n_classes)
        np.testing.assert_array_equal(predicted, clf.classes_[scores.argmax(axis=1)])
    np.testing.assert_array_equal(predicted, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, y) > 0.8


def test_string_labels_have_no_unlabeled_rows(digits):
    X, y, _ = digits
    names = np.array(["zero", "one", "two"])[y % 3]
    clf = tiny().fit(X, names)
    np.testing.assert_array_equal(clf.classes_, ["one", "two", "zero"])
    assert clf.predict(X[:5]).dtype == names.dtype
    # Unsigned labels cannot hold the marker either.
    assert len(tiny().fit(X, y.astype(np.uint8)).classes_) == 10
    # Object labels may mix strings with the -1 marker.
    mixed = names.astype(object)
    mixed[150:] = -1
    assert list(tiny().fit(X, mixed).classes_) == ["one", "two", "zero"]


def test_learns_digits_with_few_labels(digits):
    X, y, y_semi = digits
    clf = AutoencoderClassifier(
        DenoisingAE(n_components=32, hidden_layer_sizes=(64,), max_iter=20),
        random_state=0,
    ).fit(X, y_semi)
    assert clf.score(X[100:], y[100:]) > 0.8


# ------------------------------------------------------------- bad input
BAD_Y = {
    "all rows unlabeled": (
        lambda y: np.full_like(y, -1),
        "Every row of y is unlabeled",
    ),
    "one class only": (
        lambda y: np.where(np.arange(len(y)) < 50, 3, -1),
        "hold one class only",
    ),
    "labels of the wrong length": (
        lambda y: y[:-1],
        "inconsistent numbers of samples",
    ),
    "NaN labels": (lambda y: np.where(y == 1, np.nan, y), "Input y contains NaN"),
    "continuous labels": (lambda y: y + 0.5, "Unknown label type"),
    "no y": (lambda y: None, "requires y to be passed"),
}


@pytest.mark.parametrize("make_y, match", BAD_Y.values(), ids=BAD_Y.keys())
def test_bad_labels_fail_clearly(digits, make_y, match):
    X, _, y_semi = digits
    with pytest.raises(ValueError, match=match):
        tiny().fit(X, make_y(y_semi))


BAD_X = {
    "NaN": (lambda X: np.where(X > 0.9, np.nan, X), "Input X contains NaN"),
    "infinity": (lambda X: np.where(X > 0.9, np.inf, X), "infinity"),
    "1-D": (lambda X: X[:, 0], "Expected 2D array"),
    "sparse": (lambda X: __import__("scipy.sparse").sparse.csr_matrix(X), "(?i)sparse"),
}


@pytest.mark.parametrize("make_X, match", BAD_X.values(), ids=BAD_X.keys())
def test_bad_X_fails_clearly(digits, make_X, match):
    X, _, y_semi = digits
    with pytest.raises((ValueError, TypeError), match=match):
        tiny().fit(make_X(X), y_semi)


def _labels_for(cls, X, seed):
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    rng = np.random.RandomState(seed)
    if cls is AutoencoderRegressor:
        return np.where(rng.rand(n) < 0.3, np.nan, rng.randn(n))
    return rng.choice([-1, 0, 1, 2], size=n)


@pytest.mark.parametrize("cls", [AutoencoderClassifier, AutoencoderRegressor])
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=bad_inputs())
def test_random_inputs_give_result_or_clear_error(cls, case):
    """The unsupervised estimators' fuzz harness (tests/test_reliability.py
    calls ``fit(X)``), with labels: every call returns finite outputs of the
    right shape or raises a ValueError/TypeError with a message, and a failed
    call leaves a fitted estimator as it was."""
    X, description = case
    params = {"max_iter": 2, "random_state": 0}
    rng = np.random.RandomState(1)
    fitted = tiny(cls, **params).fit(rng.rand(20, 3), _labels_for(cls, range(20), 1))
    reference = rng.rand(4, 3)
    expected = fitted.predict(reference)
    before = _snapshot(fitted)
    y = _labels_for(cls, X, 0)
    fresh = tiny(cls, **params)
    try:
        if check_outcome(lambda: fresh.fit(X, y)) == "ok":
            check_outcome(lambda: fresh.predict(X), len(y))
        check_outcome(lambda: fitted.predict(X), len(y))
        if check_outcome(lambda: fitted.fit(X, y)) == "error":
            after = _snapshot(fitted)
            assert after[0] == before[0]
            _assert_same_weights(after[1], before[1])
            np.testing.assert_array_equal(fitted.predict(reference), expected)
    except AssertionError as exc:
        raise AssertionError(f"{cls.__name__} on {description}: {exc}") from exc


def test_wrong_width_and_unfitted_fail_clearly(digits):
    X, _, y_semi = digits
    with pytest.raises(NotFittedError):
        tiny().predict(X)
    clf = tiny().fit(X, y_semi)
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(ValueError, match="X has 63 features, but"):
            getattr(clf, method)(X[:, :-1])


def test_regressor_bad_targets_fail_clearly(digits):
    X, y, _ = digits
    y = y.astype(float)
    with pytest.raises(ValueError, match="Every row of y is unlabeled"):
        tiny(AutoencoderRegressor).fit(X, np.full(len(X), np.nan))
    with pytest.raises(ValueError, match="infinity"):
        tiny(AutoencoderRegressor).fit(X, np.where(y == 1, np.inf, y))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        tiny(AutoencoderRegressor).fit(X, y[:-1])
    with pytest.raises(ValueError, match="requires y to be passed"):
        tiny(AutoencoderRegressor).fit(X, None)


def test_encoder_errors_name_the_problem(digits, encoder):
    X, _, y_semi = digits
    with pytest.raises(ValueError, match="not both"):
        tiny(encoder=encoder).fit(X, y_semi)
    with pytest.raises(NotFittedError, match="must be a fitted skae autoencoder"):
        tiny(autoencoder=None, encoder=tiny_ae()).fit(X, y_semi)
    with pytest.raises(ValueError, match="fitted on 64 features"):
        tiny(autoencoder=None, encoder=encoder).fit(X[:, :10], y_semi)
    with pytest.raises(ValueError, match="autoencoder"):
        AutoencoderClassifier(autoencoder="DenoisingAE").fit(X, y_semi)
    with pytest.raises(ValueError, match="head_layer_sizes"):
        tiny(head_layer_sizes=(0,)).fit(X, y_semi)

    class MyAE(DenoisingAE):
        pass

    with pytest.raises(ValueError, match="one of skae's autoencoder classes"):
        tiny(autoencoder=MyAE()).fit(X, y_semi)


def test_a_failed_fit_leaves_the_estimator_unchanged(digits, monkeypatch):
    X, _, y_semi = digits
    clf = tiny().fit(X, y_semi)
    before = _snapshot(clf)
    proba = clf.predict_proba(X)
    with pytest.raises(ValueError):
        clf.fit(X, np.full_like(y_semi, -1))

    def fail(*args, **kwargs):  # mid-way: after pretraining, while fine-tuning
        raise RuntimeError("boom")

    monkeypatch.setattr(_classifier.SupervisedObjective, "forward", fail)
    with pytest.raises(RuntimeError, match="boom"):
        clf.fit(X, y_semi)
    monkeypatch.undo()
    after = _snapshot(clf)
    assert after[0] == before[0]
    _assert_same_weights(after[1], before[1])
    np.testing.assert_array_equal(clf.predict_proba(X), proba)


# --------------------------------------------------------------- transfer
def test_the_users_encoder_is_never_modified(digits, encoder):
    X, _, y_semi = digits
    weights = _state(encoder.module_)
    attributes = pickle.dumps({k: v for k, v in vars(encoder).items()})
    for fine_tune in ("all", "head"):
        tiny(autoencoder=None, encoder=encoder, fine_tune=fine_tune).fit(X, y_semi)
    _assert_same_weights(_state(encoder.module_), weights)
    assert pickle.dumps({k: v for k, v in vars(encoder).items()}) == attributes


def test_head_only_leaves_encoder_weights_bit_identical(digits, encoder):
    X, _, y_semi = digits
    clf = tiny(autoencoder=None, encoder=encoder, fine_tune="head", max_iter=20)
    clf.fit(X, y_semi)
    _assert_same_weights(_state(clf.module_.autoencoder), _state(encoder.module_))
    head = clf.module_.head
    assert clf.n_iter_ == clf.n_head_iter_ >= 1
    # The probe learned: a linear head on the codes.
    np.testing.assert_allclose(
        clf.decision_function(X),
        encoder.transform(X) @ head[0].weight.detach().double().numpy().T
        + head[0].bias.detach().double().numpy(),
        rtol=1e-5,
        atol=1e-5,
    )
    # Fine-tuning all layers does move the encoder (and the decoder).
    full = tiny(autoencoder=None, encoder=encoder, fine_tune="all").fit(X, y_semi)
    moved = _state(full.module_.autoencoder)
    assert any(not torch.equal(moved[k], v) for k, v in _state(encoder.module_).items())


def test_transfer_starts_from_the_encoders_scaling(digits, encoder):
    X, _, y_semi = digits
    _, y, _ = digits
    clf = tiny(autoencoder=None, encoder=encoder).fit(X[150:], y[150:])
    np.testing.assert_array_equal(clf.offset_, encoder.offset_)
    np.testing.assert_array_equal(clf.scale_, encoder.scale_)
    assert clf.n_pretraining_iter_ == 0


def test_clone_keeps_the_fitted_encoder(digits, encoder):
    X, y, _ = digits
    clf = tiny(autoencoder=None, encoder=encoder)
    assert clone(clf).encoder is encoder
    assert clone(tiny()).autoencoder is not tiny().autoencoder
    scores = cross_val_score(clf, X, y, cv=2)
    assert scores.shape == (2,)
    assert encoder.module_ is not None


# -------------------------------------------------------- any autoencoder
@pytest.mark.parametrize(
    "autoencoder",
    [
        tiny_ae(AutoencoderTransformer),
        tiny_ae(pretraining="layerwise"),
        tiny_ae(SparseAE, sparsity="topk", n_components=12),
        tiny_ae(ContractiveAE),
        tiny_ae(VAE),
    ],
    ids=lambda ae: (
        type(ae).__name__ + ("-layerwise" if ae.get_params().get("pretraining") else "")
    ),
)
def test_any_skae_autoencoder_pretrains(digits, autoencoder):
    X, y, y_semi = digits
    clf = tiny(autoencoder=autoencoder).fit(X, y_semi)
    assert clf.architecture_["autoencoder_class"] == type(autoencoder).__name__
    assert clf.predict_proba(X).shape == (len(X), 10)
    assert autoencoder.__dict__.keys() == clone(autoencoder).__dict__.keys()  # unfitted


def test_same_seed_same_model_and_global_rngs_untouched(digits):
    X, _, y_semi = digits
    torch.manual_seed(123)
    np.random.seed(123)
    expected = torch.rand(1), np.random.rand()
    torch.manual_seed(123)
    np.random.seed(123)
    a = tiny().fit(X, y_semi).predict_proba(X)
    assert (torch.rand(1), np.random.rand()) == expected
    np.testing.assert_array_equal(tiny().fit(X, y_semi).predict_proba(X), a)
    assert not np.array_equal(tiny(random_state=1).fit(X, y_semi).predict_proba(X), a)


def test_early_stopping_holds_out_labeled_rows(digits):
    X, _, y_semi = digits
    clf = tiny(early_stopping=True, validation_fraction=0.2).fit(X, y_semi)
    assert len(clf.validation_loss_curve_) == clf.n_iter_
    with pytest.warns(UserWarning, match="too few"):
        tiny(early_stopping=True).fit(X, np.where(np.arange(300) < 4, y_semi, -1))


def test_reconstruction_weight_and_noise_change_the_fit(digits):
    X, _, y_semi = digits
    base = tiny().fit(X, y_semi).predict_proba(X)
    for params in ({"reconstruction_weight": 0.0}, {"fine_tune_noise": False}):
        assert not np.allclose(tiny(**params).fit(X, y_semi).predict_proba(X), base)


def _phase_objectives(monkeypatch):
    """(weight, corrupt_inputs) of every all-layer phase a fit runs."""
    seen = []
    run_phase = _classifier._BaseSupervisedAutoencoder._run_phase

    def spy(self, module, objective, *args, **kwargs):
        if objective.pretraining is not None:
            seen.append((objective.weight, objective.corrupt_inputs))
        return run_phase(self, module, objective, *args, **kwargs)

    monkeypatch.setattr(_classifier._BaseSupervisedAutoencoder, "_run_phase", spy)
    return seen


@pytest.mark.parametrize(
    "n_labeled, params, last_phases",
    [
        # Every row labeled: the regularized phase, then the polish.
        (300, {}, [(1.0, True), (0.0, False)]),
        # Half the rows: one pseudo-label round, then the polish.
        (150, {}, [(1.0, True), (1.0, True), (0.0, False)]),
        # Few labels: the regularizers stay to the end ("auto")...
        (100, {}, [(1.0, True), (1.0, True)]),
        # ...unless asked for; and never with polish=False.
        (100, {"polish": True}, [(1.0, True), (1.0, True), (0.0, False)]),
        (300, {"polish": False}, [(1.0, True)]),
        # No regularizer to take away: no second, identical phase.
        (
            300,
            {"reconstruction_weight": 0.0, "fine_tune_noise": False},
            [(0.0, False)],
        ),
    ],
)
def test_fine_tuning_ends_without_regularizers_when_most_rows_are_labeled(
    digits, monkeypatch, n_labeled, params, last_phases
):
    X, y, _ = digits
    y_semi = np.where(np.arange(300) < n_labeled, y, -1)
    seen = _phase_objectives(monkeypatch)
    clf = tiny(**params).fit(X, y_semi)
    assert seen == last_phases
    assert clf.n_iter_ == len(clf.loss_curve_)


def test_polish_fits_the_labeled_rows_better(digits):
    X, y, _ = digits
    params = {"max_iter": 30, "learning_rate": 1e-2}
    without = tiny(polish=False, **params).fit(X, y)
    polished = tiny(**params).fit(X, y)
    assert polished.n_iter_ > without.n_iter_
    assert polished.score(X, y) > without.score(X, y)


@pytest.mark.parametrize(
    "first, polish, warned",
    [
        ("degraded", "diverged", "diverged"),
        ("degraded", "interrupted", "interrupted by user"),
        ("degraded", "converged", "far above its best"),
        (None, "converged", "not converged"),
        ("converged", None, "not converged"),
    ],
)
def test_a_fit_warns_about_the_worse_of_its_phase_and_its_polish(
    digits, monkeypatch, first, polish, warned
):
    X, y, _ = digits
    run_phase = _classifier._BaseSupervisedAutoencoder._run_phase

    def ending_as_told(self, module, objective, *args, **kwargs):
        result = run_phase(self, module, objective, *args, **kwargs)
        if objective.pretraining is not None:  # phase 1, then the polish
            result.reason = first if objective.weight > 0 else polish
        return result

    monkeypatch.setattr(
        _classifier._BaseSupervisedAutoencoder, "_run_phase", ending_as_told
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny().fit(X, y)
    messages = [str(w.message) for w in caught if "fine-tuning" in str(w.message)]
    assert len(messages) == 1 and warned in messages[0], messages


def test_the_regressor_does_not_polish_by_default(monkeypatch):
    assert AutoencoderRegressor().polish is False
    rng = np.random.RandomState(0)
    X = rng.rand(60, 8)
    seen = _phase_objectives(monkeypatch)
    tiny(AutoencoderRegressor).fit(X, X @ rng.rand(8))
    assert seen == [(1.0, False)]


# -------------------------------------------------------------- regressor
def test_regressor_learns_with_nan_as_unlabeled():
    rng = np.random.RandomState(0)
    X = rng.rand(400, 8)
    y = 100 + 50 * (X @ rng.rand(8))
    y_semi = np.where(np.arange(400) < 150, y, np.nan)
    reg = tiny(AutoencoderRegressor, max_iter=100, learning_rate=1e-2).fit(X, y_semi)
    assert reg.score(X[150:], y[150:]) > 0.8
    assert abs(reg.y_mean_ - y[:150].mean()) < 1e-9
    assert reg.predict(X).shape == (400,)


# ------------------------------------------------------------ persistence
def _fitted_models(digits, encoder):
    X, y, y_semi = digits
    names = np.array(["a", "b", "c"])[y % 3]
    y_reg = np.where(np.arange(300) < 100, y.astype(float), np.nan)
    return [
        tiny().fit(X, y_semi),
        tiny(autoencoder=None, max_iter=2).fit(X, names),
        tiny(autoencoder=tiny_ae(SparseAE, sparsity="topk", n_components=12)).fit(
            X, y_semi
        ),
        tiny(autoencoder=None, encoder=encoder, head_layer_sizes=(4,)).fit(X, y_semi),
        tiny(AutoencoderRegressor).fit(X, y_reg),
    ]


def test_save_load_and_pickle_are_bit_identical(digits, encoder, tmp_path):
    X, _, _ = digits
    for model in _fitted_models(digits, encoder):
        path = tmp_path / "model.skae"
        skae.save(model, path)
        loaded = skae.load(path)
        assert type(loaded) is type(model)
        joblib.dump(model, tmp_path / "model.joblib")
        copies = [
            loaded,
            pickle.loads(pickle.dumps(model)),
            copy.deepcopy(model),
            joblib.load(tmp_path / "model.joblib"),
        ]
        for copied in copies:
            np.testing.assert_array_equal(copied.predict(X), model.predict(X))
            if hasattr(model, "predict_proba"):
                np.testing.assert_array_equal(
                    copied.predict_proba(X), model.predict_proba(X)
                )
        params, loaded_params = model.get_params(), loaded.get_params()
        for name in ("autoencoder", "encoder"):
            # Nested autoencoders come back with their parameters, unfitted.
            a, b = params.pop(name), loaded_params.pop(name)
            assert (a is None) == (b is None)
            if a is not None:
                assert b.get_params() == a.get_params()
                assert not hasattr(b, "module_")
        assert params == loaded_params


def _edit(path, edit):
    import json

    payload = torch.load(path, weights_only=True)
    header = json.loads(payload["header"])
    edit(header)
    payload["header"] = json.dumps(header)
    payload["sha256"] = skae._persistence._digest(payload)
    torch.save(payload, path)


def _arch(header):
    return header["attributes"]["architecture_"]["__dict__"]


CRAFTED = {
    "another autoencoder class": (
        lambda h: _arch(h).update({"autoencoder_class": "DictionaryLearner"}),
        "not one of skae's autoencoders",
    ),
    "outputs unlike classes_": (
        lambda h: _arch(h).update({"n_outputs": 3}),
        "outputs, expected 10",
    ),
    "unsorted classes_": (
        lambda h: h["attributes"].update(
            {"classes_": {"__object_array__": [2, 1, 0, 3, 4, 5, 6, 7, 8, 9]}}
        ),
        "sorted, distinct labels",
    ),
    "a nested parameter of another kind": (
        lambda h: h["params"].update(
            {"autoencoder": {"__estimator__": {"class": "os.system", "params": {}}}}
        ),
        "not an skae autoencoder",
    ),
    "a head of other sizes": (
        lambda h: _arch(h).update({"head_layer_sizes": {"__tuple__": [7]}}),
        "weights do not fit",
    ),
}


@pytest.mark.parametrize("edit, match", CRAFTED.values(), ids=CRAFTED.keys())
def test_crafted_files_fail_clearly(digits, tmp_path, edit, match, monkeypatch):
    X, _, y_semi = digits
    path = tmp_path / "model.skae"
    skae.save(tiny().fit(X, y_semi), path)
    _edit(path, edit)

    def refuse(self, states, device):
        raise AssertionError("a module was built before the file was validated")

    monkeypatch.setattr(
        _classifier._BaseSupervisedAutoencoder, "_restore_modules", refuse
    )
    with pytest.raises(ValueError, match=match):
        skae.load(path)


# ------------------------------------------------- label-propagation pseudo-labels
def test_knn_graph_is_the_symmetric_normalized_affinity():
    # Two tight pairs far apart; each row's one neighbour is its partner.
    codes = torch.tensor([[1.0, 0.1], [1.0, 0.3], [-1.0, 0.1], [-1.0, 0.4]])
    graph = propagation.knn_graph(codes, 1).toarray()
    np.testing.assert_array_equal(graph, graph.T)
    np.testing.assert_array_equal(np.diag(graph), 0.0)
    # By hand: centred, normalized codes; a = max(0, cos)^3, W = A + A^T,
    # D^{-1/2} W D^{-1/2} for pairs that are each other's only neighbour gives
    # 2a / sqrt(2a * 2a) = 1.
    np.testing.assert_allclose(graph[0, 1], 1.0)
    np.testing.assert_allclose(graph[2, 3], 1.0)
    assert graph[0, 2] == graph[1, 3] == 0.0
    # With two neighbours, rows 0 and 1 also reach one row of the other pair
    # (clipped cosine > 0), and the values follow the closed form.
    centred = codes.double() - codes.double().mean(0)
    unit = centred / centred.norm(dim=1, keepdim=True)
    cos = (unit @ unit.T).numpy()
    graph = propagation.knn_graph(codes, 2).toarray()
    affinity = np.zeros((4, 4))
    for i in range(4):
        others = [j for j in np.argsort(-cos[i]) if j != i][:2]
        affinity[i, others] = np.clip(cos[i, others], 0, None) ** 3
    w = affinity + affinity.T
    d = w.sum(1)
    expected = w / np.sqrt(np.outer(d, d))
    np.testing.assert_allclose(graph, expected, rtol=1e-6)


def test_propagation_labels_a_hand_made_graph():
    # Two chains, 0-1-2 and 3-4-5, with a weak bridge 2-3; row 0 is labeled
    # class 0 and row 5 class 1: each chain takes its end's label.
    w = np.zeros((6, 6))
    for i, j, value in [(0, 1, 1), (1, 2, 1), (2, 3, 0.01), (3, 4, 1), (4, 5, 1)]:
        w[i, j] = w[j, i] = value
    d = w.sum(1)
    graph = scipy.sparse.csr_matrix(w / np.sqrt(np.outer(d, d)))
    seeds = np.array([0, -1, -1, -1, -1, 1])
    scores = propagation.propagate(graph, seeds, 2)
    # The closed form of Zhou et al.: Z = (I - alpha W)^{-1} Y.
    y = np.eye(2)[[0, 0, 0, 0, 0, 1]] * (seeds >= 0)[:, None]
    np.testing.assert_allclose(
        scores, np.linalg.solve(np.eye(6) - 0.99 * graph.toarray(), y), rtol=1e-4
    )
    targets, weights = propagation.pseudo_labels(scores, seeds)
    np.testing.assert_array_equal(targets, [0, 0, 0, 1, 1, 1])
    assert weights[0] == weights[5] == 1.0
    # Rows near a labeled end are surer than rows at the bridge.
    assert weights[1] > weights[2] > 0 and weights[4] > weights[3] > 0
    # A third class nobody reaches and an isolated row: weight 0.
    scores3 = propagation.propagate(
        scipy.sparse.block_diag([graph, scipy.sparse.csr_matrix((1, 1))]).tocsr(),
        np.append(seeds, -1),
        3,
    )
    _, weights3 = propagation.pseudo_labels(scores3, np.append(seeds, -1))
    assert weights3[6] == 0.0


def test_pseudo_label_weights_are_certainty_times_class_balance():
    scores = np.array([[1.0, 0.0], [0.9, 0.0], [0.8, 0.0], [0.1, 0.7], [0.0, 0.0]])
    seeds = np.array([0, -1, -1, -1, -1])
    targets, weights = propagation.pseudo_labels(scores, seeds)
    np.testing.assert_array_equal(targets[:4], [0, 0, 0, 1])
    p = np.array([0.125, 0.875])
    certainty = 1 + (p * np.log(p)).sum() / np.log(2)
    # 3 reached unlabeled rows: class 0 twice (balance 3/4), class 1 once (3/2).
    np.testing.assert_allclose(weights, [1.0, 0.75, 0.75, 1.5 * certainty, 0.0])


def test_weighted_loss_weighs_each_row():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    weight = torch.tensor([1.0, 0.5, 0.0])
    rows = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    torch.testing.assert_close(
        _classifier._cross_entropy(logits, y, weight), (rows * weight).mean()
    )


def test_unlabeled_rows_are_pseudo_labeled_by_propagation(digits, monkeypatch):
    X, y, y_semi = digits
    seen = []
    original = AutoencoderClassifier._with_pseudo_labels

    def spy(self, train, pool, labeled):
        rows = original(self, train, pool, labeled)
        seen.append(rows)
        return rows

    monkeypatch.setattr(AutoencoderClassifier, "_with_pseudo_labels", spy)
    ae = DenoisingAE(n_components=32, hidden_layer_sizes=(64,), max_iter=20)
    clf = tiny(autoencoder=ae, max_iter=200).fit(X, y_semi)
    assert len(seen) == clf.propagation_rounds == 1
    rows = seen[0]
    index = rows.index.cpu().numpy()
    # The 100 true labels with weight 1, then unlabeled rows with weights in
    # (0, 1.x], pseudo-labels far above chance.
    np.testing.assert_array_equal(index[:100], np.arange(100))
    assert set(index[100:]) <= set(range(100, 300)) and len(index) > 200
    weight = rows.weight.cpu().numpy()
    np.testing.assert_array_equal(weight[:100], 1.0)
    assert (weight[100:] > 0).all()
    pseudo = rows.y.cpu().numpy()[100:]
    # Measured: 0.75 (chance: 0.1).
    assert (pseudo == y[index[100:]]).mean() > 0.6
    # Off: plain fine-tuning, and a different model.
    plain = tiny(max_iter=20, semi_supervised=None).fit(X, y_semi)
    assert len(seen) == 1
    assert not np.allclose(plain.predict_proba(X), clf.predict_proba(X))
    # Two rounds propagate twice.
    tiny(max_iter=20, propagation_rounds=2).fit(X, y_semi)
    assert len(seen) == 3


def test_all_labeled_data_skip_propagation(digits, monkeypatch):
    X, y, _ = digits

    def fail(*args):
        raise AssertionError("propagation ran without unlabeled rows")

    monkeypatch.setattr(AutoencoderClassifier, "_with_pseudo_labels", fail)
    on = tiny().fit(X, y)
    off = tiny(semi_supervised=None).fit(X, y)
    np.testing.assert_array_equal(on.predict_proba(X), off.predict_proba(X))


def test_held_out_rows_are_not_propagation_seeds(digits, monkeypatch):
    X, _, y_semi = digits
    seen = []
    original = AutoencoderClassifier._with_pseudo_labels

    def spy(self, train, pool, labeled):
        rows = original(self, train, pool, labeled)
        seen.append((train.index.cpu().numpy(), rows.index.cpu().numpy()))
        return rows

    monkeypatch.setattr(AutoencoderClassifier, "_with_pseudo_labels", spy)
    tiny(early_stopping=True, validation_fraction=0.2).fit(X, y_semi)
    seeds, rows = seen[0]
    held_out = set(range(100)) - set(seeds)
    assert len(held_out) == 20
    assert not held_out & set(rows)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"propagation_rounds": 0}, "propagation_rounds"),
        ({"semi_supervised": "self_training"}, "semi_supervised"),
    ],
)
def test_bad_propagation_parameters_fail_clearly(digits, params, match):
    X, _, y_semi = digits
    with pytest.raises(ValueError, match=match):
        tiny(**params).fit(X, y_semi)
