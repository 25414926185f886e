"""The one training template: streams, persistence and fitted state.

Every streaming behaviour is checked on the three input kinds the template
reads (NumPy, ``np.memmap``, dask), since each has its own data source.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from _instances import CHECK_INSTANCES
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import skae
from skae import (
    VAE,
    AutoencoderTransformer,
    ContractiveAE,
    DenoisingAE,
    DictionaryLearner,
    SequenceAutoencoder,
    SparseAE,
)
from skae._sources import TensorRows

da = pytest.importorskip("dask.array", reason="dask is not installed")

KINDS = ["numpy", "memmap", "dask"]
SMALL = dict(n_components=3, hidden_layer_sizes=(8,), batch_size=32, random_state=0)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(n=160, d=6, seed=0):
    rng = np.random.RandomState(seed)
    # Non-negative, for DictionaryLearner(code="nonnegative").
    return np.abs(rng.randn(n, d) @ rng.randn(d, d) + 2.0)


def _as_kind(X, kind, tmp_path, name="X"):
    if kind == "numpy":
        return X
    if kind == "memmap":
        path = tmp_path / f"{name}.dat"
        mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
        mm[:] = X
        mm.flush()
        return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)
    return da.from_array(X, chunks=(50, X.shape[1]))


def _state(est):
    """Every attribute, with tensors and arrays copied, for exact comparison."""
    state = {}
    for name, value in vars(est).items():
        if isinstance(value, torch.nn.Module):
            value = {k: v.detach().clone() for k, v in value.state_dict().items()}
        state[name] = pickle.loads(pickle.dumps(value))
    return state


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_equal(_numpy(a[name]), _numpy(b[name]), err_msg=name)


def _numpy(value):
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {k: _numpy(v) for k, v in value.items()}
    return value


def _stream_instances():
    """One small configuration per estimator and per DictionaryLearner code."""
    autoencoders = [
        AutoencoderTransformer(**SMALL),
        SparseAE(**{**SMALL, "n_components": 12}, sparsity="topk"),
        DenoisingAE(**SMALL, noise="salt_and_pepper"),
        ContractiveAE(**SMALL),
        VAE(**SMALL, kl_warmup=3),
        SequenceAutoencoder(
            n_components=3, hidden_size=8, batch_size=32, random_state=0
        ),
    ]
    dictionaries = [
        clone(est).set_params(batch_size=32)
        for est in CHECK_INSTANCES[DictionaryLearner]
    ]
    return autoencoders + dictionaries


def _name(est):
    code = getattr(est, "code", None)
    return type(est).__name__ + (f"-{code}" if code else "")


def _output(est, X):
    return est.transform(X)


# ------------------------------------------------------------- persistence
@pytest.mark.parametrize("est", _stream_instances(), ids=_name)
def test_saved_model_continues_its_stream_exactly(est, tmp_path):
    X, X2 = _data(), _data(seed=1)
    est = clone(est)
    est.partial_fit(X).partial_fit(X2)
    path = tmp_path / "model.skae"
    skae.save(est, path)
    pickled = pickle.loads(pickle.dumps(est))
    loaded = skae.load(path)
    expected = _output(est.partial_fit(X), X)
    np.testing.assert_allclose(_output(pickled.partial_fit(X), X), expected, atol=1e-12)
    np.testing.assert_allclose(_output(loaded.partial_fit(X), X), expected, atol=1e-12)


@pytest.mark.parametrize("est", _stream_instances()[:6], ids=_name)
def test_saved_model_continues_after_a_full_fit(est, tmp_path):
    X = _data()
    est = clone(est).set_params(max_iter=2).fit(X)
    skae.save(est, tmp_path / "model.skae")
    loaded = skae.load(tmp_path / "model.skae")
    np.testing.assert_array_equal(
        loaded.partial_fit(X).transform(X), est.partial_fit(X).transform(X)
    )


# ----------------------------------------------------------------- streams
@pytest.mark.parametrize("kind", KINDS)
def test_partial_fit_reads_learning_rate_at_every_call(kind, tmp_path):
    X = _as_kind(_data(), kind, tmp_path)
    est = AutoencoderTransformer(**SMALL).partial_fit(X).partial_fit(X)
    before = [p.detach().clone() for p in est.module_.parameters()]
    est.set_params(learning_rate=1e-9).partial_fit(X)
    moved = max(
        (p.detach() - b).abs().max().item()
        for p, b in zip(est.module_.parameters(), before)
    )
    assert moved < 1e-6


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_pickling_between_partial_fit_calls_changes_nothing(kind, dropout, tmp_path):
    chunks = [_as_kind(_data(seed=s), kind, tmp_path, f"c{s}") for s in range(3)]
    params = {**SMALL, "dropout": dropout}
    straight = AutoencoderTransformer(**params)
    reloaded = AutoencoderTransformer(**params)
    for chunk in chunks:
        straight.partial_fit(chunk)
        reloaded = pickle.loads(pickle.dumps(reloaded.partial_fit(chunk)))
    assert reloaded.loss_curve_ == straight.loss_curve_
    X = _data()
    np.testing.assert_array_equal(reloaded.transform(X), straight.transform(X))


@pytest.mark.parametrize("kind", KINDS)
def test_failed_partial_fit_leaves_the_model_exactly_as_before(kind, tmp_path):
    X = _as_kind(_data(), kind, tmp_path)
    bad = _data(seed=1)
    bad[-1, 2] = np.nan  # in the last rows: dask meets it mid-epoch
    bad = _as_kind(bad, kind, tmp_path, "bad")
    est = VAE(**SMALL).partial_fit(X).partial_fit(X)
    twin = pickle.loads(pickle.dumps(est))
    before = _state(est)
    with pytest.raises(ValueError, match="NaN"):
        est.partial_fit(bad)
    _assert_same_state(_state(est), before)
    # The stream goes on as if the failed call had never happened.
    est.partial_fit(X)
    twin.partial_fit(X)
    np.testing.assert_array_equal(est.transform(_data()), twin.transform(_data()))


def test_every_call_gets_its_own_shuffle(monkeypatch):
    seeds = []
    batches = TensorRows.batches

    def spy(self, batch_size, shuffle=False, generator=None):
        if shuffle:
            seeds.append(generator.initial_seed())
        return batches(self, batch_size, shuffle, generator)

    monkeypatch.setattr(TensorRows, "batches", spy)
    X = _data()
    est = AutoencoderTransformer(**SMALL, max_iter=1).fit(X)
    est.partial_fit(X).partial_fit(X)
    assert len(seeds) == 3 and len(set(seeds)) == 3


# ----------------------------------------------------------- fitted state
CHANGES = [
    (AutoencoderTransformer(**SMALL), {"n_components": 2}),
    (AutoencoderTransformer(**SMALL), {"hidden_layer_sizes": (5, 4)}),
    (AutoencoderTransformer(**SMALL), {"activation": "tanh", "dropout": 0.5}),
    (SparseAE(**SMALL), {"sparsity": "topk", "k": 1}),
    (ContractiveAE(**SMALL), {"code_activation": "tanh"}),
    (VAE(**SMALL), {"likelihood": "bernoulli", "variance": "global"}),
]


@pytest.mark.parametrize(
    "est, change", CHANGES, ids=[f"{_name(e)}-{sorted(c)[0]}" for e, c in CHANGES]
)
def test_set_params_does_not_change_a_fitted_model(est, change, tmp_path):
    X = _data()
    est = clone(est).set_params(max_iter=3).fit(X)
    Z, X_hat, scores = est.transform(X), est.inverse_transform(est.transform(X)), None
    scores = est.score_samples(X)
    est.set_params(**change)
    for model in (
        est,
        pickle.loads(pickle.dumps(est)),
        skae.load(_saved(est, tmp_path)),
    ):
        np.testing.assert_array_equal(model.transform(X), Z)
        np.testing.assert_array_equal(model.inverse_transform(Z), X_hat)
        np.testing.assert_array_equal(model.score_samples(X), scores)
        assert model.get_feature_names_out().shape == (Z.shape[1],)
    # The stream continues with the fitted network; a refit takes the change.
    assert est.partial_fit(X).transform(X).shape == Z.shape
    if "n_components" in change:
        assert est.fit(X).transform(X).shape[1] == change["n_components"]


def _saved(est, tmp_path):
    path = tmp_path / "model.skae"
    skae.save(est, path)
    return path


def test_parameters_read_at_call_time_are_checked_then():
    X = _data()
    ae = AutoencoderTransformer(**SMALL, max_iter=1).fit(X)
    ae.set_params(n_jobs="many")
    with pytest.raises(ValueError, match="n_jobs"):
        ae.transform(X)
    vae = VAE(**SMALL, max_iter=1).fit(X)
    vae.set_params(n_importance_samples=(3, 2))
    with pytest.raises(ValueError, match="n_importance_samples"):
        vae.score_samples(X)


def test_a_dictionary_keeps_its_fitted_code_type():
    X = _data()
    dl = DictionaryLearner(n_components=3, code="sparse", random_state=0).fit(X)
    Z, scores = dl.transform(X), dl.score_samples(X)
    dl.set_params(code="onehot", n_components=5, alpha=100.0)
    np.testing.assert_array_equal(dl.transform(X), Z)
    np.testing.assert_array_equal(dl.score_samples(X), scores)
    assert dl.partial_fit(X).code_ == "sparse"
    assert dl.fit(X).transform(X).shape == (len(X), 5)


def test_rows_are_scaled_block_by_block_exactly_as_all_at_once(monkeypatch):
    import skae._sources as sources

    monkeypatch.setattr(sources, "_SCALING_BLOCK_ROWS", 7)
    rng = np.random.RandomState(0)
    X = rng.randn(50, 4).astype(np.float32) * 1000
    offset, scale = rng.randn(4), rng.rand(4) + 0.5
    rows = sources.ArraySource(X).training_rows(offset, scale, torch.device("cpu"))
    expected = ((X - offset) / scale).astype(np.float32)
    np.testing.assert_array_equal(rows.rows(0, len(rows)).numpy(), expected)
    # An overflow in a late block is still reported.
    X[45, 2] = 3e38
    with pytest.raises(ValueError, match="overflow float32"):
        sources.ArraySource(X).training_rows(
            offset, np.full(4, 1e-3), torch.device("cpu")
        )


def test_shuffled_batches_cover_every_row_once():
    X = torch.arange(23, dtype=torch.float32)[:, None]
    generator = torch.Generator().manual_seed(0)
    batches = list(TensorRows(X).batches(5, shuffle=True, generator=generator))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    seen = torch.cat(batches)[:, 0]
    assert sorted(seen.tolist()) == list(range(23))
    assert not torch.equal(seen, X[:, 0])
