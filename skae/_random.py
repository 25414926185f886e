"""Random draws of one fit, from that fit's own ``torch.Generator``.

Training draws noise (corruption, dropout, the VAE's reparameterization and
binarization, dead-unit resampling). Drawing it from torch's global generator
would make fits in concurrent threads (``GridSearchCV`` with the threading
backend, a user's thread pool) consume each other's numbers, and would touch
the caller's global state. Instead a fit opens :func:`generator_scope` with a
generator seeded from its own random stream; the helpers below draw from the
generator of the innermost scope of the *current thread* (a ``ContextVar``),
and from torch's global generator only outside any scope (e.g. a user calling
an skae module directly).

Weight initialization is the one place that must use torch's global generator
(``nn.Linear`` and user modules initialize themselves from it):
:func:`seeded_global_rng` does it inside ``torch.random.fork_rng`` under a
process-wide lock, so the few milliseconds of initialization of concurrent
fits cannot interleave, and the caller's global state is restored.
"""

import contextlib
import contextvars
import threading

import torch

_GENERATOR = contextvars.ContextVar("skae_generator", default=None)
_GLOBAL_RNG_LOCK = threading.Lock()


@contextlib.contextmanager
def generator_scope(generator):
    """Draw this thread's skae noise from ``generator`` inside the block."""
    token = _GENERATOR.set(generator)
    try:
        yield generator
    finally:
        _GENERATOR.reset(token)


@contextlib.contextmanager
def seeded_global_rng(seed, device):
    """torch's global RNG seeded with ``seed`` inside the block, restored after;
    one thread at a time."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _generator_for(device):
    generator = _GENERATOR.get()
    if generator is not None and generator.device.type != torch.device(device).type:
        raise RuntimeError(
            f"skae's generator lives on {generator.device}, the tensor on {device}."
        )
    return generator


def rand_like(x):
    """Uniform [0, 1) noise shaped like ``x``."""
    return torch.rand(
        x.shape, dtype=x.dtype, device=x.device, generator=_generator_for(x.device)
    )


def randn_like(x):
    """Standard normal noise shaped like ``x``."""
    return torch.randn(
        x.shape, dtype=x.dtype, device=x.device, generator=_generator_for(x.device)
    )


def randn(*shape, like):
    """Standard normal noise of ``shape``, with ``like``'s dtype and device."""
    generator = _generator_for(like.device)
    return torch.randn(shape, dtype=like.dtype, device=like.device, generator=generator)


def bernoulli(p):
    """Independent Bernoulli draws with probabilities ``p``."""
    return torch.bernoulli(p, generator=_generator_for(p.device))
