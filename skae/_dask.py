"""Dask collections in and out of skae estimators, streamed chunk by chunk.

An skae estimator given a ``dask.array.Array`` or a dask ``DataFrame``:

- ``fit`` / ``partial_fit`` (the one training template of
  :class:`~skae._base.BaseAutoencoder`) read it through :class:`DaskSource`:
  the per-feature statistics (min, max, mean, standard deviation,
  finiteness) in one dask pass, then :class:`DaskRows`, which computes one
  dask chunk at a time and slices the mini-batches from it: the data never
  sits in memory whole, and each chunk is computed once per epoch;
- ``transform``, ``inverse_transform`` and ``score_samples`` return a lazy dask
  array, one ``map_blocks`` task per row chunk, as dask-ml's wrappers do
  (:class:`DaskDispatchMixin` routes dask input of those methods here).

This module imports dask only when dask input is seen: ``import skae`` does
not need dask.
"""

import functools
import math
import sys
import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data

from skae._sources import HostRows

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


class DaskSource:
    """A validated dask array as a training source (see :mod:`skae._sources`).

    ``statistics()`` computes the per-feature min, max, mean and standard
    deviation, and checks finiteness, in one dask pass; the training rows
    (:class:`DaskRows`) compute one chunk at a time.
    """

    def __init__(self, X):
        self.X = X

    @classmethod
    def validated(cls, estimator, X, *, reset):
        """Check X's shape, dtype and feature names without computing it."""
        Xa, _ = _validated(estimator, X, reset=reset, need_lengths=True)
        return cls(Xa)

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    def statistics(self):
        import dask
        import dask.array as da

        from skae._sources import FeatureStatistics

        X64 = self.X.astype(np.float64)
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
        return FeatureStatistics(lo, hi, mean, std)

    def shard(self, rank, world_size):
        from skae._sources import shard_rows

        return DaskSource(shard_rows(self.X, rank, world_size))

    def training_rows(self, offset, scale, device):
        return DaskRows(self.X, offset, scale, device)


# ------------------------------------------------------------------ streaming
class DaskRows(HostRows):
    """Training rows of a dask array, scaled and moved one dask chunk at a time.

    ``rows(start, stop)`` is served from a cache of the last computed chunk;
    ``batches(...)`` streams a pass chunk by chunk: each chunk is computed once
    per pass, its rows shuffled within it and the chunk order shuffled,
    mini-batches spanning chunk boundaries as the in-memory batching does.

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

    def _iter_batches(self, size, shuffle, generator):
        n_chunks = len(self._bounds) - 1
        order = torch.arange(n_chunks)
        if shuffle:
            order = torch.randperm(n_chunks, generator=generator)
        carry = None
        for i in order.tolist():
            chunk = self._chunk(i)
            if shuffle:
                perm = torch.randperm(len(chunk), generator=generator)
                chunk = chunk.index_select(0, perm.to(chunk.device))
            if carry is not None:
                chunk = torch.cat([carry, chunk])
            n_full = len(chunk) // size * size
            for start in range(0, n_full, size):
                yield chunk[start : start + size]
            carry = chunk[n_full:] if n_full < len(chunk) else None
        if carry is not None:
            yield carry


# ---------------------------------------------------------------- inference
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
    """Route dask input of ``transform``, ``inverse_transform`` and
    ``score_samples`` to this module's lazy versions (training takes dask
    input through :class:`DaskSource`, in the one training template).

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
