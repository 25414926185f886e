"""Resolve the ``device`` parameter shared by every skae estimator."""

import torch


def resolve_device(device):
    """Turn a ``device`` parameter value into a :class:`torch.device`.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"}, str or torch.device
        ``"auto"`` picks CUDA when :func:`torch.cuda.is_available` says so and
        the CPU otherwise; anything else is passed to :class:`torch.device`.

    Returns
    -------
    torch.device
        The device to compute on.

    Examples
    --------
    >>> from skae.utils import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'auto', 'cpu', "
            "'cuda' or 'cuda:N'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this "
            "machine; use device='auto' or 'cpu'."
        )
    if resolved.type == "mps" and not _mps_available():
        raise ValueError(
            f"device={device!r} was requested but Apple's MPS backend is not "
            "available on this machine; use device='auto' or 'cpu'."
        )
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"device={device!r}: skae runs on 'cpu', 'cuda' or 'mps' devices."
        )
    return resolved


def _mps_available():
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()
