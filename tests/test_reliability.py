"""Reliability of every skae estimator: bad input, faults, persistence, load.

Written once and parametrized over :func:`skae.utils.all_estimators`, so new
estimators are covered automatically.
"""

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

import skae
from skae._base import BaseAutoencoder
from skae._outlier_default import AutoencoderEnsemble
from skae.utils import all_estimators

sys.path.insert(0, str(Path(__file__).parent))
from bad_inputs import (  # noqa: E402
    bad_inputs,
    exercise,
    fit_input,
    output_method,
    targets_for,
)

ESTIMATORS = [cls for _, cls in all_estimators()]
AUTOENCODERS = [cls for cls in ESTIMATORS if issubclass(cls, BaseAutoencoder)]


def fast(cls, **params):
    est = cls()
    # image_shape: ConvAutoencoder reads rows of any width as 1-D signals.
    quick = {
        "max_iter": 3,
        "random_state": 0,
        "n_components": 2,
        "image_shape": (1, 1, -1),
    }
    est.set_params(**{k: v for k, v in quick.items() if k in est.get_params()})
    if isinstance(est, skae.OutlierDetector):
        # Its default scorer (five members of 1,000 Adam steps each) takes
        # ~10 s per fit, and these tests fit hundreds of times; the same
        # scorer with a small step budget runs the same code.
        est.set_params(
            estimator=AutoencoderEnsemble(n_estimators=2, n_steps=20, random_state=0)
        )
    return est.set_params(**params)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=bad_inputs())
def test_random_inputs_give_result_or_clear_error(cls, case):
    X, description = case
    X_good = fit_input(fast(cls), np.random.RandomState(1).rand(20, 3))
    fitted = fast(cls).fit(X_good, *targets_for(fast(cls), X_good))
    try:
        exercise(fast(cls), fitted, X)
    except AssertionError as exc:
        raise AssertionError(f"{cls.__name__} on {description}: {exc}") from exc


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_bad_parameter_values_name_the_parameter(cls):
    X = np.random.RandomState(0).rand(10, 3)
    params = fast(cls).get_params()
    for name in set(cls._parameter_constraints) & set(params):
        est = fast(cls).set_params(**{name: object()})
        with pytest.raises(ValueError, match=name):
            est.fit(X, *targets_for(est, X))


@pytest.mark.parametrize("cls", AUTOENCODERS, ids=lambda c: c.__name__)
def test_keyboard_interrupt_leaves_usable_model(cls, digits):
    X, _ = digits
    est = fast(cls, max_iter=50, batch_size=50)
    make_objective = est._make_objective
    calls = []

    def interrupting_objective():
        objective = make_objective()
        forward = objective.forward

        def counted(*args, **kwargs):
            calls.append(1)
            if len(calls) == 20:  # mid-way through epoch 3
                raise KeyboardInterrupt
            return forward(*args, **kwargs)

        objective.forward = counted
        return objective

    est._make_objective = interrupting_objective
    with pytest.warns(UserWarning, match="interrupted by user"):
        est.fit(X)
    assert est.n_iter_ == 2
    assert np.all(np.isfinite(est.transform(X)))


@pytest.mark.parametrize("cls", AUTOENCODERS, ids=lambda c: c.__name__)
def test_divergence_is_reported_and_weights_restored(cls, digits):
    X, _ = digits
    est = fast(cls, learning_rate=1e30, max_iter=20)
    with pytest.warns(RuntimeWarning, match="diverged"):
        est.fit(X * 1000)
    assert np.all(np.isfinite(est.transform(X)))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_pickle_joblib_and_safe_format_are_bit_identical(cls, digits, tmp_path):
    X, y = digits
    est = fast(cls)
    X = fit_input(est, X)
    est.fit(X, *targets_for(est, X))
    output = output_method(est)
    Z = getattr(est, output)(X)

    def same_outputs(other):
        np.testing.assert_array_equal(getattr(other, output)(X), Z)
        for method in ("score_samples", "p_values"):
            if hasattr(est, method):
                np.testing.assert_array_equal(
                    getattr(other, method)(X), getattr(est, method)(X)
                )

    same_outputs(pickle.loads(pickle.dumps(est)))
    joblib.dump(est, tmp_path / "model.joblib")
    same_outputs(joblib.load(tmp_path / "model.joblib"))
    skae.save(est, tmp_path / "model.skae")
    loaded = skae.load(tmp_path / "model.skae")
    assert type(loaded) is cls
    assert_same_params(loaded, est)
    same_outputs(loaded)


def assert_same_params(a, b):
    """Equal parameters, nested estimators compared by class and parameters."""
    params_a, params_b = a.get_params(deep=False), b.get_params(deep=False)
    assert params_a.keys() == params_b.keys()
    for name, value in params_b.items():
        if isinstance(value, BaseEstimator):
            assert type(params_a[name]) is type(value), name
            assert_same_params(params_a[name], value)
        else:
            assert params_a[name] == value, name


@pytest.mark.parametrize("cls", AUTOENCODERS, ids=lambda c: c.__name__)
@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU-only fallback")
def test_cuda_fitted_model_loads_on_cpu(cls, digits):
    X, _ = digits
    est = fast(cls).fit(X)
    Z = est.transform(X)
    est.device_ = torch.device("cuda", 0)  # as if it had been trained on a GPU
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.device_.type == "cpu"
    np.testing.assert_array_equal(loaded.transform(X), Z)


def test_safe_load_refuses_code_and_foreign_versions(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.skae"
    evil.write_bytes(pickle.dumps({"format": "skae-estimator", "x": Payload()}))
    with pytest.raises(ValueError, match="not a readable skae file"):
        skae.load(evil)
    assert not marker.exists()

    old = tmp_path / "old.skae"
    torch.save({"format": "skae-estimator", "format_version": 999}, old)
    with pytest.raises(ValueError, match="format version 999"):
        skae.load(old)


def test_memmap_fit_matches_in_memory_fit(digits, tmp_path):
    X, _ = digits
    X = X.astype(np.float32)
    mm = np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    mm = np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="r", shape=X.shape)
    params = dict(n_components=8, max_iter=40, batch_size=50, random_state=0)
    from_disk = skae.AutoencoderTransformer(**params).fit(mm)
    in_memory = skae.AutoencoderTransformer(**params).fit(X)
    # Batches differ (contiguous blocks vs shuffled rows) but the fit is as good.
    assert from_disk.score(X) > 1.25 * in_memory.score(X)
    np.testing.assert_allclose(from_disk.offset_, in_memory.offset_, rtol=1e-6)


def test_partial_fit_stream_approaches_full_fit(digits):
    X, _ = digits
    params = dict(n_components=8, batch_size=50, random_state=0)
    full = skae.AutoencoderTransformer(max_iter=30, tol=0.0, **params).fit(X)
    stream = skae.AutoencoderTransformer(**params)
    for _ in range(30):
        for chunk in np.array_split(X, 4):
            stream.partial_fit(chunk)
    assert stream.score(X) > 1.25 * full.score(X)


def test_grid_search_n_jobs_2_matches_n_jobs_1(digits):
    X, y = digits
    pipe = make_pipeline(skae.AutoencoderTransformer(max_iter=5, random_state=0), SVC())
    grid = {"autoencodertransformer__n_components": [2, 6]}
    serial = GridSearchCV(pipe, grid, cv=2, n_jobs=1).fit(X, y)
    parallel = GridSearchCV(clone(pipe), grid, cv=2, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(
        serial.cv_results_["mean_test_score"], parallel.cv_results_["mean_test_score"]
    )


def test_same_seed_same_result_in_a_fresh_process(digits):
    X, _ = digits
    code = (
        "import numpy as np, warnings; warnings.simplefilter('ignore');"
        "from sklearn.datasets import load_digits;"
        "from skae import AutoencoderTransformer;"
        "X = load_digits().data[:400] / 16.0;"
        "Z = AutoencoderTransformer(max_iter=5, random_state=7).fit_transform(X);"
        "print(repr(Z.tobytes().hex()[:4000]), Z.sum().hex())"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        for _ in range(2)
    ]
    assert runs[0].stdout == runs[1].stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Z = skae.AutoencoderTransformer(max_iter=5, random_state=7).fit_transform(X)
    assert runs[0].stdout.split()[-1] == Z.sum().hex()
