"""A safe file format for fitted skae estimators: no code runs on load.

A file holds one dictionary written by :func:`torch.save` and read back with
``torch.load(weights_only=True)``, which only rebuilds tensors and plain
containers. Hyper-parameters and small fitted attributes are JSON text,
arrays and weights are tensors, and the estimator class is looked up by name
among skae's own estimators, never imported from the file.

What a file keeps (the persistence contract, held by a test for every
estimator): the parameters; every public fitted attribute (names ending in
``_``, including the fitted network's description ``architecture_`` and the
root of the random streams ``random_seed_``); the weights of every fitted
torch module; and the optimizer's moment estimates (Adam's ``exp_avg``,
``exp_avg_sq`` and step count per parameter). So ``load(path).partial_fit(X)``
takes exactly the step the saved estimator would have taken. Runtime caches
(private attributes) are not kept.
"""

import json

import numpy as np
import torch

FORMAT_NAME = "skae-estimator"
FORMAT_VERSION = 2


def _encode(value, tensors, key):
    """Turn ``value`` into JSON-able data, moving arrays into ``tensors``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return {"__object_array__": [_encode(v, tensors, key) for v in value]}
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value))
        return {"__ndarray__": key}
    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().cpu()
        return {"__tensor__": key}
    if isinstance(value, tuple):
        return {
            "__tuple__": [
                _encode(v, tensors, f"{key}.{i}") for i, v in enumerate(value)
            ]
        }
    if isinstance(value, list):
        return [_encode(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {
            "__dict__": {k: _encode(v, tensors, f"{key}.{k}") for k, v in value.items()}
        }
    raise TypeError(
        f"Cannot save attribute {key.split('.')[0]!r} of type {type(value).__name__} "
        "in the safe format (e.g. random_state must be an int or None)."
    )


def _decode(value, tensors):
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    ((tag, payload),) = value.items()
    if tag == "__device__":
        return torch.device(payload)
    if tag == "__ndarray__":
        return tensors[payload].numpy()
    if tag == "__tensor__":
        return tensors[payload]
    if tag == "__object_array__":
        return np.array([_decode(v, tensors) for v in payload], dtype=object)
    if tag == "__tuple__":
        return tuple(_decode(v, tensors) for v in payload)
    if tag == "__dict__":
        return {k: _decode(v, tensors) for k, v in payload.items()}
    raise ValueError(f"Unknown tag {tag!r} in an skae file.")


def save(estimator, path):
    """Save a fitted skae estimator to ``path`` in a format that runs no code on load.

    Parameters
    ----------
    estimator : skae estimator
        A fitted estimator from :mod:`skae`.
    path : str or path-like
        Destination file (conventionally ``*.skae``).

    See Also
    --------
    load : Read the file back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skae import AutoencoderTransformer, load, save
    >>> X = np.random.RandomState(0).rand(50, 4)
    >>> ae = AutoencoderTransformer(max_iter=2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skae")
    >>> save(ae, path)
    >>> np.array_equal(load(path).transform(X), ae.transform(X))
    True
    >>> np.array_equal(                      # the stream continues exactly
    ...     load(path).partial_fit(X).transform(X), ae.partial_fit(X).transform(X)
    ... )
    True
    """
    from sklearn.utils.validation import check_is_fitted

    from skae import __version__

    check_is_fitted(estimator)
    tensors = {}
    params = _encode(estimator.get_params(deep=False), tensors, "param")
    attributes = {}
    module_state = {}
    for name, value in vars(estimator).items():
        if name.startswith("_") and name != "_n_features_out":
            continue  # runtime state (optimizer, caches) is not persisted
        if isinstance(value, torch.nn.Module):
            module_state[name] = {
                k: v.detach().cpu().clone() for k, v in value.state_dict().items()
            }
            continue
        attributes[name] = _encode(value, tensors, f"attr.{name}")
    torch.save(
        {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "skae_version": __version__,
            "class": type(estimator).__name__,
            "params": json.dumps(params),
            "attributes": json.dumps(attributes),
            "tensors": tensors,
            "modules": module_state,
            "optimizer": _optimizer_moments(estimator),
        },
        path,
    )


def load(path, device=None, *, classes=()):
    """Load an estimator written by :func:`save`, executing no code from the file.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    device : str, torch.device or None, default=None
        Where to put the model. None keeps the saved device when it exists on
        this machine and falls back to the CPU otherwise.
    classes : sequence of classes, default=()
        Estimator classes of your own (e.g. a subclass of an skae estimator)
        that the file may name, besides skae's. The file only names a class:
        it is looked up in skae's estimators and these, never imported.

    Returns
    -------
    estimator : skae estimator
        The fitted estimator.

    Examples
    --------
    See :func:`save`.
    """
    from skae.utils import all_estimators

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a foreign or damaged file: never retry unsafely
        raise ValueError(f"{path} is not a readable skae file: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not an skae estimator file.")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} uses skae file format version {payload.get('format_version')} "
            f"(written by skae {payload.get('skae_version')}); this skae reads "
            f"version {FORMAT_VERSION}. Load it with a matching skae release."
        )
    known = {**dict(all_estimators()), **{cls.__name__: cls for cls in classes}}
    if payload["class"] not in known:
        raise ValueError(
            f"{path} holds an unknown estimator {payload['class']!r}; pass your own "
            "estimator classes with load(path, classes=[...])."
        )
    tensors = payload["tensors"]
    estimator = known[payload["class"]](
        **_decode(json.loads(payload["params"]), tensors)
    )
    for name, value in json.loads(payload["attributes"]).items():
        setattr(estimator, name, _decode(value, tensors))
    if payload["modules"]:
        estimator._restore_modules(payload["modules"], device)
    if payload.get("optimizer") is not None:
        estimator._optimizer_moments = payload["optimizer"]
    return estimator


def _optimizer_moments(estimator):
    """The optimizer's per-parameter state as CPU tensors, or None."""
    moments = vars(estimator).get("_optimizer_moments")
    if moments is None:
        return None
    return {
        name: {k: v.detach().cpu().clone() for k, v in state.items()}
        for name, state in moments.items()
    }
