"""Dask input (skae._dask): streamed training, lazy inference, dask-ml wrappers.

Tolerances: with ``shuffle=False`` a dask fit sees the same mini-batches as the
in-memory fit; only the scaling statistics differ in rounding (dask reduces
per chunk), so after a few float32 epochs codes agree to ``ATOL``.
"""

import warnings

import numpy as np
import pytest
import torch

da = pytest.importorskip(
    "dask.array", reason="dask is not installed (pip install skae[dask])"
)
dd = pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")

import pandas as pd  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from skae import _dask  # noqa: E402
from skae._autoencoder import AutoencoderTransformer  # noqa: E402
from skae._contractive import ContractiveAE  # noqa: E402
from skae._denoising import DenoisingAE  # noqa: E402
from skae._sparse import SparseAE  # noqa: E402
from skae._vae import VAE  # noqa: E402

#: Agreement of a dask fit with the in-memory fit (codes are O(1)).
ATOL = 1e-5


COMMON = dict(
    n_components=3,
    hidden_layer_sizes=(16,),
    max_iter=4,
    batch_size=64,
    shuffle=False,
    early_stopping=False,
    random_state=0,
    device="cpu",
)
ESTIMATORS = [
    AutoencoderTransformer(**COMMON),
    SparseAE(**COMMON),
    DenoisingAE(**COMMON),
    ContractiveAE(**COMMON),
    VAE(**COMMON),
]


def _data(n=700, d=6, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, d) @ rng.randn(d, d) + 3.0


def _ids(est):
    return type(est).__name__


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _clone(est, **params):
    from sklearn.base import clone

    return clone(est).set_params(**params)


# ------------------------------------------------------------ the adapters
def test_dask_rows_compute_each_chunk_once_per_pass():
    X = _data(500, 4)
    Xd = da.from_array(X, chunks=(120, 4))
    rows = _dask.DaskRows(Xd, np.zeros(4), np.ones(4), torch.device("cpu"))
    batches = list(rows.batches(50))
    assert rows.n_chunks_computed == 5
    # Same batches as in-memory batching: 50 rows each, across chunk ends.
    assert [len(b) for b in batches] == [50] * 10
    np.testing.assert_allclose(torch.cat(batches).numpy(), X.astype(np.float32))
    np.testing.assert_allclose(
        rows.rows(110, 250).numpy(), X[110:250].astype(np.float32)
    )

    gen = torch.Generator().manual_seed(0)
    shuffled = torch.cat(list(rows.batches(50, shuffle=True, generator=gen))).numpy()
    assert rows.n_chunks_computed <= 5 + 5 + 3  # one pass + the rows() reads
    assert not np.allclose(shuffled, X.astype(np.float32))
    np.testing.assert_allclose(
        np.sort(shuffled, axis=0), np.sort(X.astype(np.float32), axis=0)
    )


def test_dask_stats_match_numpy():
    X = _data(900, 5)
    stats = _dask.DaskSource(da.from_array(X, chunks=(200, 5))).statistics()
    np.testing.assert_allclose(stats.mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, X.std(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(stats.min, X.min(axis=0))
    np.testing.assert_array_equal(stats.max, X.max(axis=0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_dask_fit_rejects_nan_and_inf(bad):
    X = _data(300, 4)
    X[250, 2] = bad
    est = AutoencoderTransformer(**COMMON)
    with pytest.raises(ValueError, match="NaN or infinity"):
        est.fit(da.from_array(X, chunks=(100, 4)))
    assert not hasattr(est, "module_")


def test_dask_fit_and_lazy_transform_match_in_memory():
    X = _data()
    ref = AutoencoderTransformer(**COMMON).fit(X)
    est = AutoencoderTransformer(**COMMON).fit(da.from_array(X, chunks=(150, 6)))
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-5)
    Z = _dask.transform(est, da.from_array(X, chunks=(150, 6)))
    assert isinstance(Z, da.Array)
    np.testing.assert_allclose(Z.compute(), ref.transform(X), atol=ATOL)


# ---------------------------------------------- through the public methods
@pytest.mark.parametrize("est", ESTIMATORS, ids=_ids)
def test_dask_fit_matches_in_memory(est):
    X = _data()
    Xd = da.from_array(X, chunks=(150, 6))
    ref = _clone(est).fit(X)
    fitted = _clone(est).fit(Xd)
    assert fitted.n_features_in_ == 6
    np.testing.assert_allclose(fitted.offset_, ref.offset_, rtol=1e-12)
    np.testing.assert_allclose(fitted.scale_, ref.scale_, rtol=1e-12)
    Z = fitted.transform(Xd)
    assert isinstance(Z, da.Array) and Z.chunks[0] == Xd.chunks[0]
    np.testing.assert_allclose(Z.compute(), ref.transform(X), atol=ATOL)
    S = fitted.score_samples(Xd)
    assert isinstance(S, da.Array) and S.ndim == 1
    np.testing.assert_allclose(S.compute(), ref.score_samples(X), atol=1e-4, rtol=1e-5)


def test_dask_inference_is_lazy_and_blockwise():
    X = _data()
    est = AutoencoderTransformer(**COMMON).fit(X)
    Xd = da.from_array(X, chunks=(100, 6))
    Z = est.transform(Xd)
    assert Z.shape == (700, 3) and Z.dtype == np.float64
    assert Z.npartitions == 7  # one task per row chunk, nothing computed yet
    np.testing.assert_allclose(Z.compute(), est.transform(X), atol=1e-12)
    X_hat = est.inverse_transform(Z)
    assert isinstance(X_hat, da.Array) and X_hat.shape == X.shape
    np.testing.assert_allclose(X_hat.compute(), est.inverse_transform(est.transform(X)))
    Zf = est.transform(Xd.astype(np.float32))
    assert Zf.dtype == np.float32 and Zf.compute().dtype == np.float32
    assert isinstance(est.fit_transform(Xd), da.Array)
    assert est.score(Xd) == pytest.approx(est.score(X))


def test_dask_inference_checks_features_and_values():
    X = _data()
    est = AutoencoderTransformer(**COMMON).fit(X)
    with pytest.raises(
        ValueError, match="X has 4 features, but AutoencoderTransformer"
    ):
        est.transform(da.from_array(X[:, :4], chunks=(100, 4)))
    bad = X.copy()
    bad[650, 0] = np.nan
    lazy = est.transform(da.from_array(bad, chunks=(100, 6)))  # lazy: no error yet
    with pytest.raises(ValueError, match="NaN"):
        lazy.compute()
    with pytest.raises(ValueError, match="NaN or infinity"):
        AutoencoderTransformer(**COMMON).fit(da.from_array(bad, chunks=(100, 6)))


def test_dask_dataframe_keeps_feature_names():
    X = _data()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    ddf = dd.from_pandas(df, npartitions=4)
    ref = AutoencoderTransformer(**COMMON).fit(df)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*feature names")
        est = AutoencoderTransformer(**COMMON).fit(ddf)
        Z = est.transform(ddf)
    assert list(est.feature_names_in_) == list(df.columns)
    assert isinstance(Z, da.Array)
    np.testing.assert_allclose(Z.compute(), ref.transform(df), atol=ATOL)
    renamed = dd.from_pandas(df.rename(columns={"f0": "g0"}), npartitions=2)
    with pytest.raises(ValueError, match="feature names"):
        est.transform(renamed)


def test_dask_partial_fit_matches_in_memory():
    X = _data()
    Xd = da.from_array(X, chunks=(200, 6))
    ref = AutoencoderTransformer(**COMMON)
    est = AutoencoderTransformer(**COMMON)
    for _ in range(2):
        ref.partial_fit(X)
        est.partial_fit(Xd)
    assert est.n_iter_ == 2
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(est.transform(X), ref.transform(X), atol=ATOL)
    with pytest.raises(ValueError, match="X has 5 features"):
        est.partial_fit(da.from_array(X[:, :5], chunks=(200, 5)))
    assert est.n_iter_ == 2


def test_dask_fit_shuffled_and_early_stopping():
    X = _data(900)
    Xd = da.from_array(X, chunks=(250, 6))
    est = AutoencoderTransformer(
        **{**COMMON, "shuffle": True, "early_stopping": True, "max_iter": 6}
    ).fit(Xd)
    assert len(est.validation_loss_curve_) == est.n_iter_
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    # Same seed, same chunking: the chunk-wise shuffle is reproducible.
    again = _clone(est).fit(Xd)
    np.testing.assert_array_equal(again.transform(X), est.transform(X))


# ---------------------------------------------------- a 2-worker LocalCluster
@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            processes=True,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_local_cluster_fit_matches_in_memory(client):
    X = _data(1200)
    Xd = da.from_array(X, chunks=(300, 6)).persist()  # chunks live on the workers
    assert len(client.scheduler_info()["workers"]) == 2
    ref = AutoencoderTransformer(**COMMON).fit(X)
    est = AutoencoderTransformer(**COMMON).fit(Xd)
    Z = est.transform(Xd)  # computed by the workers, the model shipped to them
    np.testing.assert_allclose(Z.compute(), ref.transform(X), atol=ATOL)
    np.testing.assert_allclose(
        est.score_samples(Xd).compute(), ref.score_samples(X), atol=1e-4, rtol=1e-5
    )


def test_parallel_post_fit_wrapper(client):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X = _data(1200)
    Xd = da.from_array(X, chunks=(300, 6))
    ref = AutoencoderTransformer(**COMMON).fit(X)
    model = wrappers.ParallelPostFit(AutoencoderTransformer(**COMMON)).fit(Xd)
    Z = model.transform(Xd)
    assert isinstance(Z, da.Array)
    np.testing.assert_allclose(Z.compute(), ref.transform(X), atol=ATOL)


def test_incremental_wrapper(client):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X = _data(1200)
    Xd = da.from_array(X, chunks=(300, 6))
    model = wrappers.Incremental(
        AutoencoderTransformer(**COMMON, init="random"), shuffle_blocks=False
    ).fit(Xd)
    # One partial_fit (one epoch) per block; the scaling comes from block 0.
    fitted = model.estimator_
    assert fitted.n_iter_ == 4
    np.testing.assert_allclose(fitted.offset_, X[:300].mean(axis=0))
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]
    Z = model.transform(Xd)
    assert isinstance(Z, da.Array)
    np.testing.assert_allclose(Z.compute(), fitted.transform(X), atol=1e-12)
    # Not compared with local partial_fit calls: the model travels between
    # tasks pickled, and pickling drops the Adam state (see issue 8 report).


def test_dictionary_learner_in_wrappers(client):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    from skae._dictionary import DictionaryLearner

    X = _data(600)
    Xd = da.from_array(X, chunks=(200, 6))
    params = dict(n_components=4, max_iter=20, random_state=0, device="cpu")
    ref = DictionaryLearner(**params).fit(X)
    post = wrappers.ParallelPostFit(DictionaryLearner(**params)).fit(X)
    Z = post.transform(Xd)
    assert isinstance(Z, da.Array)
    np.testing.assert_allclose(Z.compute(), ref.transform(X), atol=1e-6)
    if hasattr(DictionaryLearner, "partial_fit"):
        from skae.metrics import neg_reconstruction_error

        # DictionaryLearner has no ``score``: Incremental needs a scorer.
        inc = wrappers.Incremental(
            DictionaryLearner(**params),
            scoring=neg_reconstruction_error,
            shuffle_blocks=False,
        )
        inc.fit(Xd)
        assert inc.estimator_.components_.shape == (4, 6)
        assert isinstance(inc.transform(Xd), da.Array)
