"""Dask collections in and out of skae estimators, streamed chunk by chunk.

An skae estimator given a ``dask.array.Array`` or a dask ``DataFrame``:

- ``fit`` / ``partial_fit`` compute the per-feature statistics (min, max,
  mean, standard deviation, finiteness) in one dask pass, then train from
  :class:`DaskArrayRows`, which computes one dask chunk at a time and slices
  the mini-batches from it: the data never sits in memory whole, and each
  chunk is computed once per epoch (not once per batch);
- ``transform``, ``inverse_transform`` and ``score_samples`` return a lazy dask
  array, one ``map_blocks`` task per row chunk, as dask-ml's wrappers do.

The entry points take the estimator as first argument (``fit(estimator, X)``)
and are built only from :class:`~skae._base.BaseAutoencoder`'s hooks, so they
work for every subclass. :class:`DaskDispatchMixin` routes dask input of the
public methods to them. This module imports dask only when dask input is seen:
``import skae`` does not need dask.
"""

import functools
import math
import sys
import warnings

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from skae import _engine

_FLOAT_DTYPES = (np.float64, np.float32)


def is_dask_collection(X):
    """True for a dask collection; never imports dask itself."""
    if "dask" not in sys.modules:
        return False  # no dask object can exist without dask imported
    from dask.base import is_dask_collection as _is_dask

    return _is_dask(X)


# --------------------------------------------------------------- validation
def _as_dask_array(X, *, need_lengths):
    """A 2-D dask array of X (a dask Array or DataFrame) and X's column names.

    ``need_lengths`` computes a DataFrame's partition lengths (training needs
    the row count; lazy inference does not).
    """
    import dask.array as da

    columns = None
    if hasattr(X, "to_dask_array") and hasattr(X, "columns"):
        columns = np.asarray(X.columns, dtype=object)
        X = X.to_dask_array(lengths=True if need_lengths else None)
    elif not isinstance(X, da.Array):
        raise TypeError(
            "skae accepts a dask.array.Array or a dask DataFrame; got "
            f"{type(X).__module__}.{type(X).__name__}."
        )
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D dask array, got an array of shape {X.shape}; reshape "
            "your data, e.g. X.reshape(-1, 1) for a single feature."
        )
    if need_lengths and any(math.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    return X, columns


def _meta(X, Xa, columns):
    """A zero-row stand-in for X (a pandas frame keeps the column names), for
    scikit-learn's feature-count and feature-name checks without computing."""
    if columns is not None:
        import pandas as pd

        return pd.DataFrame(np.empty((0, len(columns)), Xa.dtype), columns=columns)
    return np.empty((0, Xa.shape[1]), dtype=Xa.dtype)


def _validated(estimator, X, *, reset, need_lengths):
    """Validate the dask input's shape, dtype and feature names (no compute)
    and return it as a float dask array, one chunk across the features."""
    Xa, columns = _as_dask_array(X, need_lengths=need_lengths)
    validate_data(
        estimator,
        _meta(X, Xa, columns),
        reset=reset,
        dtype=list(_FLOAT_DTYPES),
        ensure_min_samples=0,
    )
    if need_lengths and Xa.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={Xa.shape}) while a minimum of "
            "1 is required."
        )
    dtype = Xa.dtype if Xa.dtype in _FLOAT_DTYPES else np.dtype(np.float64)
    return Xa.astype(dtype).rechunk({1: -1}), columns


class DaskStats:
    """Per-feature statistics of a dask array, computed in one pass.

    Stands in for X in :meth:`BaseAutoencoder._start_training`: it has X's
    ``shape`` and ``dtype``, and ``min``/``max`` (over everything or per
    feature) and ``mean_std()`` answer from the precomputed values. Raises
    scikit-learn's ``ValueError`` when X holds NaN or infinity.
    """

    def __init__(self, X):
        import dask
        import dask.array as da

        X64 = X.astype(np.float64)
        # One compute: dask reads each chunk once for all five reductions
        # (NaN/inf make the moments warn before the finiteness check fails).
        with warnings.catch_warnings(), np.errstate(invalid="ignore", over="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            finite, lo, hi, mean, std = dask.compute(
                da.isfinite(X64).all(),
                X64.min(axis=0),
                X64.max(axis=0),
                X64.mean(axis=0),
                X64.std(axis=0),
            )
        if not finite:
            raise ValueError(
                "Input X contains NaN or infinity (found in the dask array); "
                "skae cannot train on NaN or infinite values."
            )
        self._X = X
        self.shape = X.shape
        self.dtype = X.dtype
        self.ndim = 2
        self._min, self._max = lo, hi
        self._mean, self._std = mean, std

    def min(self, axis=None):
        return self._min.copy() if axis == 0 else self._min.min()

    def max(self, axis=None):
        return self._max.copy() if axis == 0 else self._max.max()

    def mean_std(self):
        """Per-feature mean and (population) standard deviation, float64."""
        return self._mean.copy(), self._std.copy()

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        # Only reached through ``_chunked_mean_std`` while the base's
        # ``_fit_scaler`` does not use ``mean_std()``: correct, but a second
        # pass over the data.
        return np.asarray(self._X[key])


# ------------------------------------------------------------------ streaming
class DaskArrayRows(_engine.HostArray):
    """Training rows of a dask array, scaled and moved one dask chunk at a time.

    Offers :class:`skae._engine.HostArray`'s interface: ``len`` and
    ``rows(start, stop)`` (a scaled float32 tensor on ``device``), served from
    a cache of the last computed chunk, and ``batches(...)``, which streams an
    epoch chunk by chunk: each chunk is computed once per pass, its rows
    shuffled within it and the chunk order shuffled, mini-batches spanning
    chunk boundaries as the in-memory batching does.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Float data with one chunk across the features.
    offset, scale : ndarray of shape (n_features,)
        Scaling: rows are ``(x - offset) / scale``.
    device : torch.device
    """

    def __init__(self, X, offset, scale, device):
        super().__init__(X, offset, scale, device)
        self._bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)
        self._cached = (None, None)
        self.n_chunks_computed = 0

    def _chunk(self, i):
        """Chunk ``i``, scaled, as a float32 tensor on the device."""
        if self._cached[0] == i:
            return self._cached[1]
        start, stop = self._bounds[i], self._bounds[i + 1]
        block = np.asarray(self.X.blocks[i].compute(), dtype=np.float64)
        self.n_chunks_computed += 1
        tensor = torch.from_numpy(
            ((block - self.offset) / self.scale).astype(np.float32)
        ).to(self.device)
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"Input X contains NaN or infinity in rows {start}..{stop - 1}, or "
                "values that overflow float32 after scaling."
            )
        self._cached = (i, tensor)
        return tensor

    def rows(self, start, stop):
        stop = min(stop, len(self))
        first = int(np.searchsorted(self._bounds, start, side="right")) - 1
        parts = []
        i = first
        while i < len(self._bounds) - 1 and self._bounds[i] < stop:
            lo = max(start, self._bounds[i]) - self._bounds[i]
            hi = min(stop, self._bounds[i + 1]) - self._bounds[i]
            parts.append(self._chunk(i)[lo:hi])
            i += 1
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def batches(self, batch_size, shuffle=False, generator=None):
        """An iterable over one pass of mini-batches (see the class notes)."""
        return _DaskBatches(self, batch_size, shuffle, generator)

    def subset(self, start, stop):
        """Rows ``start:stop`` as a new :class:`DaskArrayRows`."""
        return DaskArrayRows(self.X[start:stop], self.offset, self.scale, self.device)


class _DaskBatches:
    def __init__(self, data, batch_size, shuffle, generator):
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self):
        data, size = self.data, self.batch_size
        n_chunks = len(data._bounds) - 1
        order = torch.arange(n_chunks)
        if self.shuffle:
            order = torch.randperm(n_chunks, generator=self.generator)
        carry = None
        for i in order.tolist():
            chunk = data._chunk(i)
            if self.shuffle:
                perm = torch.randperm(len(chunk), generator=self.generator)
                chunk = chunk.index_select(0, perm.to(chunk.device))
            if carry is not None:
                chunk = torch.cat([carry, chunk])
            n_full = len(chunk) // size * size
            for start in range(0, n_full, size):
                yield chunk[start : start + size]
            carry = chunk[n_full:] if n_full < len(chunk) else None
        if carry is not None:
            yield carry


# --------------------------------------------------------------- estimators
def _keeps_fitted_state(function):
    """Undo every attribute change of the estimator when ``function`` raises."""

    @functools.wraps(function)
    def wrapper(estimator, *args, **kwargs):
        saved = estimator.__dict__.copy()
        try:
            return function(estimator, *args, **kwargs)
        except BaseException:
            estimator.__dict__.clear()
            estimator.__dict__.update(saved)
            raise

    return wrapper


def _split_validation(estimator, data):
    """Hold out the last rows for early stopping (reads stay chunk-contiguous),
    as the base class does for an ``np.memmap``."""
    if not estimator.early_stopping:
        return data, None
    n = len(data)
    n_valid = int(round(estimator.validation_fraction * n))
    if n_valid < 1 or n - n_valid < 1:
        warnings.warn(
            f"early_stopping=True but {n} sample(s) are too few for a "
            f"validation_fraction={estimator.validation_fraction} split; training "
            "on all samples and monitoring the training loss instead.",
            UserWarning,
            stacklevel=4,
        )
        return data, None
    return data.subset(0, n - n_valid), data.rows(n - n_valid, n)


@_keeps_fitted_state
@_fit_context(prefer_skip_nested_validation=True)
def fit(estimator, X, y=None):
    """``estimator.fit(X)`` for a dask collection X: the base class's training
    template, fed chunk by chunk."""
    from skae.utils._device import resolve_device

    Xa, _ = _validated(estimator, X, reset=True, need_lengths=True)
    estimator._validate_model_params(Xa.shape[1])
    estimator.device_ = resolve_device(estimator.device)
    estimator.__dict__.pop("validation_loss_curve_", None)
    seed = estimator._gen_seed()
    stats = DaskStats(Xa)
    with estimator._seed_context(seed):
        estimator._start_training(stats, seed)
        data = DaskArrayRows(Xa, estimator.offset_, estimator.scale_, estimator.device_)
        X_train, X_valid = _split_validation(estimator, data)
        monitor = "train_loss" if X_valid is None else "valid_loss"
        net = estimator._make_net(len(X_train), seed, estimator.max_iter, monitor)
        reason = estimator._fit_loop(net, X_train, X_valid)
    estimator._net = net
    if reason is None:
        warnings.warn(
            f"{type(estimator).__name__}: max_iter={estimator.max_iter} epochs "
            "reached and the optimization has not converged yet.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return estimator


@_keeps_fitted_state
@_fit_context(prefer_skip_nested_validation=True)
def partial_fit(estimator, X, y=None):
    """``estimator.partial_fit(X)`` for a dask collection X: one more epoch over
    all of X, streamed chunk by chunk (the first call also sets the scaling
    from all of X)."""
    from skae.utils._device import resolve_device

    first_call = not hasattr(estimator, "module_")
    Xa, _ = _validated(estimator, X, reset=first_call, need_lengths=True)
    if first_call:
        estimator._validate_model_params(Xa.shape[1])
        estimator.device_ = resolve_device(estimator.device)
        estimator._seed = estimator._gen_seed()
        stats = DaskStats(Xa)
    seed = estimator._seed if hasattr(estimator, "_seed") else estimator._gen_seed()
    with estimator._seed_context(seed if first_call else seed + estimator.n_iter_):
        if first_call:
            estimator._start_training(stats, seed)
        data = DaskArrayRows(Xa, estimator.offset_, estimator.scale_, estimator.device_)
        net = getattr(estimator, "_net", None)
        if net is None:
            net = estimator._make_net(len(data), seed, 1, "train_loss")
            estimator._net = net
        # A stream has no fixed epoch count: only divergence stops it.
        dict(net.callbacks_)["monitor"].patience = None
        net.batch_size = estimator._batch_size_for(len(data))
        estimator._train(net, data, None, 1)
    return estimator


def _apply_block(block, estimator, method, columns, n_out):
    """One ``map_blocks`` task: ``estimator.<method>`` on a NumPy block."""
    if block.shape[0] == 0:
        return np.empty((0, *n_out), dtype=block.dtype)
    if columns is not None:
        import pandas as pd

        # The column names were checked when the task graph was built.
        block = pd.DataFrame(block, columns=columns)
    return np.asarray(getattr(estimator, method)(block))


def _lazy(estimator, X, method, n_in, n_out):
    """``estimator.<method>(X)`` as a lazy dask array, one task per row chunk."""
    check_is_fitted(estimator)
    if method == "inverse_transform":
        Xa, columns = _as_dask_array(X, need_lengths=False)
        if Xa.shape[1] != n_in:
            raise ValueError(
                f"X has {Xa.shape[1]} features, but inverse_transform is expecting "
                f"{n_in} features (n_components) as input."
            )
        dtype = Xa.dtype if Xa.dtype in _FLOAT_DTYPES else np.dtype(np.float64)
        Xa, columns = Xa.astype(dtype).rechunk({1: -1}), None
    else:
        Xa, columns = _validated(estimator, X, reset=False, need_lengths=False)
    dtype = Xa.dtype
    kwargs = {"chunks": (Xa.chunks[0], *((d,) for d in n_out))}
    if not n_out:
        kwargs["drop_axis"] = 1
    return Xa.map_blocks(
        _apply_block,
        estimator,
        method,
        columns,
        n_out,
        dtype=dtype,
        meta=np.empty((0,) * (1 + len(n_out)), dtype=dtype),
        **kwargs,
    )


def transform(estimator, X):
    """Lazy ``estimator.transform(X)``: a dask array of codes, X's row chunks."""
    return _lazy(estimator, X, "transform", None, (estimator._n_features_out,))


def inverse_transform(estimator, X):
    """Lazy ``estimator.inverse_transform(X)`` for dask codes X."""
    return _lazy(
        estimator,
        X,
        "inverse_transform",
        estimator.n_components,
        (estimator.n_features_in_,),
    )


def score_samples(estimator, X):
    """Lazy ``estimator.score_samples(X)``: a 1-D dask array, X's row chunks."""
    return _lazy(estimator, X, "score_samples", None, ())


_DASK_METHODS = {
    "fit": fit,
    "partial_fit": partial_fit,
    "transform": transform,
    "inverse_transform": inverse_transform,
    "score_samples": score_samples,
}


def _dispatching(name, method):
    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        if is_dask_collection(X):
            return _DASK_METHODS[name](self, X, *args, **kwargs)
        return method(self, X, *args, **kwargs)

    wrapper._skae_dask_dispatch = True
    return wrapper


class DaskDispatchMixin:
    """Route dask input of ``fit``, ``partial_fit``, ``transform``,
    ``inverse_transform`` and ``score_samples`` to this module.

    Every class deriving from it has those methods, where it defines them,
    wrapped (as scikit-learn's ``set_output`` wraps ``transform``), so a
    subclass overriding e.g. ``score_samples`` is covered too.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _DASK_METHODS:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_skae_dask_dispatch", False):
                setattr(cls, name, _dispatching(name, method))
