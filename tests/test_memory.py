"""Streaming paths keep their extra memory O(batch), not O(rows).

``tracemalloc`` traces NumPy's allocations and Python objects, not torch's.
Each test runs one call on an array many batches long, with the batch (or
chunk) size lowered to keep the test fast, and bounds the peak of the traced
allocations by a fraction of the input: a call that copies all of X, or makes
a full-size temporary, fails, one that works batch by batch passes. The
figures at realistic sizes are in ``benchmarks/results/memory.md``.
"""

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.utils.validation import validate_data

import skae._dictionary
import skae._input
import skae._sources
import skae._vae
from skae import VAE, AutoencoderTransformer, DictionaryLearner
from skae._input import as_source

CHUNK = 256 * 2**10


def traced_peak(fn):
    """``fn()`` and the peak of the memory it allocated (traced), in bytes."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak - before


def read_only_memmap(path, X, order="C"):
    mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape, order=order)
    mm[:] = X
    mm.flush()
    del mm
    return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape, order=order)


@pytest.fixture
def small_chunks(monkeypatch):
    """Statistics, finiteness checks and dictionary inference in 256 KiB chunks.

    ``raising=False``: the test must fail on code without these settings by
    its memory bound, not by a missing attribute.
    """
    monkeypatch.setattr(skae._sources, "STATISTICS_CHUNK_BYTES", CHUNK)
    monkeypatch.setattr(skae._input, "FINITE_CHECK_CHUNK_BYTES", CHUNK, raising=False)
    monkeypatch.setattr(skae._dictionary, "INFERENCE_BATCH_BYTES", CHUNK, raising=False)


@pytest.fixture
def pixels(tmp_path):
    """A read-only memmap, 20,000 x 100 float32 (8 MB) in pixel units."""
    X = np.random.RandomState(0).rand(20_000, 100).astype(np.float32) * 255
    return read_only_memmap(tmp_path / "X.dat", X)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_memmap_fit_extra_memory_is_bounded(tmp_path, small_chunks, early_stopping):
    # Statistics are read in chunks, training batches one at a time, and the
    # held-out validation rows of a memmap stay on disk. A random start: the
    # training path alone, without the PCA start computed from the rows.
    X = np.random.RandomState(0).rand(20_000, 100).astype(np.float32)
    mm = read_only_memmap(tmp_path / "X.dat", X)

    def fit(rows):
        return AutoencoderTransformer(
            n_components=2,
            hidden_layer_sizes=(8,),
            loss="bce",
            init="random",
            max_iter=1,
            batch_size=128,
            early_stopping=early_stopping,
            random_state=0,
        ).fit(rows)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(mm[:500])  # imports and lazy initialisation are not counted
        _, peak = traced_peak(lambda: fit(mm))
    assert peak < mm.nbytes / 8, f"{peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("layout", ["fortran", "strided"])
def test_memmap_finiteness_check_is_chunked(tmp_path, small_chunks, layout):
    # Finite values whose sum overflows float32: scikit-learn's fast check
    # fails and falls back to full-size temporaries (a flattened copy of a
    # Fortran-ordered array, boolean masks of a strided one).
    X = np.full((20_000, 200), 1e36, dtype=np.float32)
    if layout == "fortran":
        mm = read_only_memmap(tmp_path / "X.dat", X, order="F")
    else:
        mm = read_only_memmap(tmp_path / "X.dat", X)[:, ::2]
    source, peak = traced_peak(
        lambda: as_source(AutoencoderTransformer(), mm, reset=True)
    )
    assert source.out_of_core
    assert peak < mm.nbytes / 8, f"{peak / 2**20:.1f} MiB"


@pytest.mark.parametrize(
    "values, match",
    [
        ({100: np.nan}, "NaN"),
        ({100: np.inf}, "infinity"),
        ({100: -np.inf, 15_000: np.nan}, "NaN"),  # NaN wins, as in scikit-learn
    ],
)
def test_memmap_non_finite_messages_are_scikit_learns(
    tmp_path, small_chunks, values, match
):
    X = np.random.RandomState(0).rand(20_000, 20).astype(np.float32)
    for row, value in values.items():
        X[row, 3] = value
    mm = read_only_memmap(tmp_path / "X.dat", X)
    with pytest.raises(ValueError, match=match) as chunked:
        AutoencoderTransformer(max_iter=1).fit(mm)
    with pytest.raises(ValueError) as whole:
        validate_data(AutoencoderTransformer(), X)
    assert str(chunked.value) == str(whole.value)


def test_vae_score_samples_memory_is_bounded(monkeypatch):
    # Row seeds are hashed per pass, one row at a time: no float64 copy of X,
    # no list of every row's seed.
    monkeypatch.setattr(skae._vae, "_SCORE_BUDGET", 1024)
    rng = np.random.RandomState(0)
    vae = VAE(n_components=2, hidden_layer_sizes=(8,), max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(rng.rand(200, 64))
    X = rng.rand(32_768, 64).astype(np.float32)
    scores, peak = traced_peak(lambda: vae.score_samples(X))
    assert peak - scores.nbytes < X.nbytes / 8, f"{peak / 2**20:.1f} MiB"


@pytest.mark.parametrize(
    "code, method",
    [
        ("orthogonal", "score_samples"),
        ("orthogonal", "transform"),
        ("sparse", "transform"),
        ("nonnegative", "score_samples"),
        ("onehot", "transform"),
    ],
)
def test_dictionary_inference_memory_is_bounded(pixels, small_chunks, code, method):
    # A read-only memmap used to be copied whole (torch wants writable
    # memory), then centred and its residuals formed at full size.
    dl = DictionaryLearner(n_components=4, code=code, max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dl.fit(np.array(pixels[:500]))
    out, peak = traced_peak(lambda: getattr(dl, method)(pixels))
    assert peak - out.nbytes < pixels.nbytes / 8, f"{peak / 2**20:.1f} MiB"


def test_dictionary_inverse_transform_allocates_only_its_output(small_chunks):
    rng = np.random.RandomState(0)
    dl = DictionaryLearner(n_components=4, code="orthogonal").fit(rng.rand(500, 100))
    Z = rng.rand(20_000, 4)
    X_rec, peak = traced_peak(lambda: dl.inverse_transform(Z))
    assert peak < 1.125 * X_rec.nbytes, f"{peak / X_rec.nbytes:.2f}x the output"


def test_memmap_inference_matches_in_memory(pixels, small_chunks):
    X = np.array(pixels)
    dl = DictionaryLearner(n_components=4, code="sparse", alpha=10.0, random_state=0)
    dl.fit(X[:500])
    np.testing.assert_array_equal(dl.transform(pixels), dl.transform(X))
    np.testing.assert_array_equal(dl.score_samples(pixels), dl.score_samples(X))
    vae = VAE(n_components=2, hidden_layer_sizes=(8,), max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae.fit(X[:500])
    np.testing.assert_array_equal(vae.score_samples(pixels), vae.score_samples(X))
