"""Where training rows come from: one small interface, one class per kind of data.

The training template never asks what type its data is. It sees two objects:

- a **source** (the validated input, raw units): ``n_samples``,
  ``n_features``, ``statistics()`` (per-feature min, max, mean and standard
  deviation in one pass), ``shard(rank, world_size)`` (the rows of one
  process of a data-parallel job) and ``training_rows(offset, scale, device)``;
- **training rows** (scaled, float32, on the training device): ``len``,
  ``rows(start, stop)``, ``batches(batch_size, shuffle, generator)`` (one
  pass of mini-batches) and ``split(n_valid, generator)`` (a training part and
  a held-out validation part, itself training rows).

Implementations: :class:`ArraySource` for NumPy arrays, whose rows become a
:class:`TensorRows` on the device, or a :class:`HostRows` for an
``np.memmap`` (read batch by batch, never copied whole); the dask source lives
in :mod:`skae._dask`, so that dask is imported only when dask input is seen.
:func:`skae._input.as_source` is the one place that looks at the input's
type.
"""

import math
from typing import NamedTuple

import numpy as np
import torch

#: Rows scaled at a time into the float32 training copy (bounds the float64
#: temporaries of scaling to a few MB for typical widths).
_SCALING_BLOCK_ROWS = 4096


class FeatureStatistics(NamedTuple):
    """Per-feature statistics of the training data, float64."""

    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def pooled_statistics(stats, shape, channel_axis):
    """Per-feature statistics pooled over every position of each channel.

    The features are read as an array of ``shape`` (an image's
    ``(channels, height, width)``, a sequence's ``(n_steps, n_channels)``)
    whose axis ``channel_axis`` holds the channels. Each feature gets its
    channel's minimum, maximum, mean and standard deviation over all its
    positions and rows: every position holds the same number of rows, so the
    channel's mean is the mean of the positions' means and its variance the
    mean of their variances plus the variance of their means (the law of
    total variance). A scaler fitted on them scales per channel.

    Examples
    --------
    >>> import numpy as np
    >>> from skae._sources import chunked_statistics, pooled_statistics
    >>> X = np.array([[0.0, 2.0, 10.0, 10.0], [0.0, 2.0, 10.0, 10.0]])
    >>> pooled = pooled_statistics(chunked_statistics(X), (2, 2), channel_axis=0)
    >>> pooled.mean.tolist(), pooled.std.tolist(), pooled.max.tolist()
    ([1.0, 1.0, 10.0, 10.0], [1.0, 1.0, 0.0, 0.0], [2.0, 2.0, 10.0, 10.0])
    """

    def by_channel(values):  # (n_channels, n_positions)
        grid = np.asarray(values, dtype=np.float64).reshape(shape)
        return np.moveaxis(grid, channel_axis, 0).reshape(shape[channel_axis], -1)

    def per_feature(values):  # one value per channel, back at every position
        moved = [shape[channel_axis], *np.delete(shape, channel_axis)]
        spread = np.broadcast_to(values.reshape(-1, *[1] * (len(shape) - 1)), moved)
        return np.moveaxis(spread, 0, channel_axis).reshape(-1).copy()

    mean, std = by_channel(stats.mean), by_channel(stats.std)
    channel_mean = mean.mean(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):  # the scaler reports it
        variance = (std**2 + (mean - channel_mean[:, None]) ** 2).mean(axis=1)
    return FeatureStatistics(
        per_feature(by_channel(stats.min).min(axis=1)),
        per_feature(by_channel(stats.max).max(axis=1)),
        per_feature(channel_mean),
        per_feature(np.sqrt(variance)),
    )


#: Bytes of float64 rows read at once by the one-pass statistics.
STATISTICS_CHUNK_BYTES = 16 * 2**20


def chunked_statistics(X, chunk_bytes=None):
    """Per-feature min, max, mean and (population) standard deviation.

    Reads about ``chunk_bytes`` (default: ``STATISTICS_CHUNK_BYTES``) of rows
    as float64 at a time and merges the moments with Chan et al.'s pairwise
    update, so an ``np.memmap`` is never copied whole and the extra memory,
    one chunk, does not grow with the rows or, per chunk, with the features.

    Examples
    --------
    >>> import numpy as np
    >>> from skae._sources import chunked_statistics
    >>> stats = chunked_statistics(np.array([[0.0, 1.0], [2.0, 1.0]]), chunk_bytes=8)
    >>> stats.mean.tolist(), stats.std.tolist(), stats.max.tolist()
    ([1.0, 1.0], [1.0, 0.0], [2.0, 1.0])
    """
    if chunk_bytes is None:
        chunk_bytes = STATISTICS_CHUNK_BYTES
    n_samples, n_features = X.shape
    rows = max(1, chunk_bytes // (8 * n_features))
    n_total = 0
    mean, m2 = np.zeros(n_features), np.zeros(n_features)
    lo, hi = np.full(n_features, np.inf), np.full(n_features, -np.inf)
    # Overflowing moments become inf, which the scaler refuses with a message.
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n_samples, rows):
            # Always a copy (even of float64 rows, which asarray would view):
            # the squared deviations are then formed in place, so that one
            # chunk is all the extra memory.
            block = np.array(X[start : start + rows], dtype=np.float64)
            n = len(block)
            lo = np.minimum(lo, block.min(axis=0))
            hi = np.maximum(hi, block.max(axis=0))
            block_mean = block.mean(axis=0)
            block -= block_mean
            block *= block
            block_m2 = block.sum(axis=0)
            delta = block_mean - mean
            total = n_total + n
            mean = mean + delta * n / total
            m2 = m2 + block_m2 + delta**2 * n_total * n / total
            n_total = total
            del block  # else the next chunk is read while this one is alive
    return FeatureStatistics(lo, hi, mean, np.sqrt(m2 / n_total))


def shard_bounds(n_samples, rank, world_size):
    """Rows ``[start, stop)`` of the contiguous shard of ``rank``.

    Every shard has ``ceil(n_samples / world_size)`` rows, so that every
    process runs the same number of steps; ``stop`` may pass ``n_samples``,
    the missing rows being taken again from the start (as
    :class:`torch.utils.data.DistributedSampler` pads).

    Examples
    --------
    >>> from skae._sources import shard_bounds
    >>> [shard_bounds(5, r, 2) for r in range(2)]
    [(0, 3), (3, 6)]
    """
    size = math.ceil(n_samples / world_size)
    return rank * size, (rank + 1) * size


def shard_rows(X, rank, world_size):
    """The rows of ``shard_bounds`` (a slice of an ``np.memmap`` or dask array
    stays out-of-core; a padded shard wraps around to the first rows)."""
    start, stop = shard_bounds(X.shape[0], rank, world_size)
    if stop <= X.shape[0]:
        return X[start:stop]
    return X[np.arange(start, stop) % X.shape[0]]


# ------------------------------------------------------------- training rows
class TensorRows:
    """Training rows held as one tensor on the training device.

    Batches are contiguous slices of a once-per-pass shuffled copy: one
    gather per epoch, then every batch is a view. Every row is used in every
    pass (no ``drop_last``), so data smaller than one batch still trains.

    Examples
    --------
    >>> import torch
    >>> from skae._sources import TensorRows
    >>> [len(b) for b in TensorRows(torch.zeros(5, 2)).batches(2)]
    [2, 2, 1]
    """

    def __init__(self, X):
        self.X = X

    def __len__(self):
        return len(self.X)

    def rows(self, start, stop):
        return self.X[start:stop]

    def batches(self, batch_size, shuffle=False, generator=None):
        one = len(self) <= batch_size
        iterate = self._one_batch if one else self._iter_batches
        return _Pass(iterate, len(self), batch_size, shuffle, generator)

    def _iter_batches(self, batch_size, shuffle, generator):
        X = self.X
        if not shuffle:
            for start in range(0, len(X), batch_size):
                yield X[start : start + batch_size]
            return
        # Each batch gathers its own rows: a shuffled copy of all rows would
        # add the data's size to every epoch's peak memory.
        order = torch.randperm(len(X), generator=generator).to(X.device)
        for start in range(0, len(X), batch_size):
            yield X.index_select(0, order[start : start + batch_size])

    def _one_batch(self, batch_size, shuffle, generator):
        """The pass of rows that fit in one batch, without a generator: on
        small data an epoch is this one step."""
        X = self.X
        if not shuffle:
            return iter((X,))
        order = torch.randperm(len(X), generator=generator).to(X.device)
        return iter((X.index_select(0, order),))

    def split(self, n_valid, generator):
        """A random held-out part of ``n_valid`` rows and the rest."""
        order = torch.randperm(len(self), generator=generator).to(self.X.device)
        return TensorRows(self.X[order[n_valid:]]), TensorRows(self.X[order[:n_valid]])


class HostRows:
    """Rows kept in host memory (e.g. an ``np.memmap``), scaled batch by batch.

    Only one batch at a time is read, scaled, cast to float32 and moved to the
    device. Batches are contiguous on disk; each pass visits them in a fresh
    random order (random rows would mean random reads).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    offset, scale : ndarray of shape (n_features,)
        Scaling: rows are ``(x - offset) / scale``.
    device : torch.device
    """

    def __init__(self, X, offset, scale, device):
        self.X = X
        self.offset = offset
        self.scale = scale
        self.device = device

    def __len__(self):
        return len(self.X)

    def rows(self, start, stop):
        batch = (
            np.asarray(self.X[start:stop], dtype=np.float64) - self.offset
        ) / self.scale
        batch = torch.from_numpy(batch.astype(np.float32)).to(self.device)
        if not bool(torch.isfinite(batch).all()):
            raise ValueError(
                f"Input X contains NaN or infinity in rows {start}..{stop - 1}, or "
                "values that overflow float32 after scaling."
            )
        return batch

    def batches(self, batch_size, shuffle=False, generator=None):
        return _Pass(self._iter_batches, len(self), batch_size, shuffle, generator)

    def _iter_batches(self, batch_size, shuffle, generator):
        starts = torch.arange(0, len(self), batch_size)
        if shuffle:
            starts = starts[torch.randperm(len(starts), generator=generator)]
        for start in starts.tolist():
            yield self.rows(start, start + batch_size)

    def head(self, stop):
        """The first ``stop`` rows, still out-of-core."""
        return type(self)(self.X[:stop], self.offset, self.scale, self.device)

    def split(self, n_valid, generator):
        """The last ``n_valid`` rows held out (reads stay contiguous).

        The held-out rows of an ``np.memmap`` stay on disk too (read batch by
        batch at each validation pass, so the memory does not grow with the
        rows); other host rows (e.g. a dask array, whose rows are recomputed
        at each read) are held out in memory.
        """
        n = len(self)
        if isinstance(self.X, np.memmap):
            held_out = HostRows(
                self.X[n - n_valid :], self.offset, self.scale, self.device
            )
            return self.head(n - n_valid), held_out
        return self.head(n - n_valid), TensorRows(self.rows(n - n_valid, n))


class _Pass:
    """One pass of mini-batches: ``len`` (the number of batches) and ``iter``."""

    def __init__(self, iterate, n_rows, batch_size, shuffle, generator):
        self._iterate = iterate
        self._n_rows = n_rows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return math.ceil(self._n_rows / self.batch_size)

    def __iter__(self):
        return self._iterate(self.batch_size, self.shuffle, self.generator)


# ------------------------------------------------------------------- sources
class ArraySource:
    """Validated NumPy rows (in memory, or an ``np.memmap`` read in chunks).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The rows, float32 or float64, finite.
    """

    def __init__(self, X):
        self.X = X

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    @property
    def out_of_core(self):
        return isinstance(self.X, np.memmap)

    def statistics(self):
        return chunked_statistics(self.X)

    def shard(self, rank, world_size):
        return ArraySource(shard_rows(self.X, rank, world_size))

    def training_rows(self, offset, scale, device):
        if self.out_of_core:
            return HostRows(self.X, offset, scale, device)
        # Scaled block by block into one float32 array: scaling all of X at
        # once made two float64 temporaries, 4x the size of a float32 X, which
        # set the fit's peak memory (benchmarks/bench_cost.py).
        Xs = np.empty(self.X.shape, dtype=np.float32)
        for start in range(0, self.X.shape[0], _SCALING_BLOCK_ROWS):
            block = slice(start, start + _SCALING_BLOCK_ROWS)
            with np.errstate(over="ignore"):  # overflow is reported just below
                Xs[block] = (self.X[block] - offset) / scale
            if not np.all(np.isfinite(Xs[block])):
                raise ValueError(
                    "Input contains values that overflow float32 after scaling; "
                    "training runs in float32, rescale X before fitting."
                )
        return TensorRows(torch.from_numpy(Xs).to(device))
