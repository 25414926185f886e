"""Subnormal floats treated as zero around skae's own CPU computations.

Subnormal numbers (below about 1e-38 in float32) take a slow microcode path
in CPU arithmetic, tens of times slower than normal ones, and training meets
them as a matter of course: weights that only weight decay moves (those of
MNIST's always-blank border pixels, for one) shrink geometrically through
that range, and matrix products with them slow the whole step. Measured by
``benchmarks/bench_subnormals.py`` (3,000 MNIST images, one thread, three
seeds): an ``AutoencoderTransformer(loss="bce", init="random")`` fit (190-200
epochs) takes 87 s without flushing and 8.7 s with it; the default fit (MSE
from a PCA start, stopped early at 60-91 epochs) keeps about 20 subnormal
weights and is not slowed. Values change only below the smallest normal
float, where they become zero; training can still amplify such a change
(Adam scales a tiny gradient up to its step size), so a fit need not equal
an unflushed one, though the benchmark finds them equally good.

The mode is a per-thread CPU flag, so concurrent fits in threads each set
and restore their own, and a user's torch code outside skae's calls keeps
its setting. torch's intra-op worker threads keep theirs: with several
threads, only the calling thread's share of the work is flushed.
"""

import contextlib

import torch


def flushing_subnormals():
    """Whether this thread currently treats subnormal floats as zero."""
    # A subnormal survives a multiplication by one unless flushing is on.
    return torch.full((1,), 1e-40).mul(1.0).item() == 0.0


@contextlib.contextmanager
def flush_subnormals():
    """Treat subnormal floats as zero on this thread inside the block.

    The thread's previous mode is restored afterwards.

    Examples
    --------
    >>> import torch
    >>> from skae.utils._float_mode import flush_subnormals
    >>> with flush_subnormals():
    ...     inside = torch.full((1,), 1e-40).mul(1.0).item()
    >>> inside, torch.full((1,), 1e-40).mul(1.0).item() > 0
    (0.0, True)
    """
    switched = not flushing_subnormals() and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if switched:
            torch.set_flush_denormal(False)
