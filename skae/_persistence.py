"""A safe, checked file format for fitted skae estimators.

A file is an archive written by :func:`torch.save` and read back with
``torch.load(weights_only=True)``, which only rebuilds tensors and plain
containers: no code from a file ever runs. The archive holds one dictionary
(format version 3)::

    format          "skae-estimator"
    format_version  3
    skae_version    the skae release that wrote it
    header          JSON text: the estimator's class name, its parameters,
                    its public fitted attributes, and which tensors hold the
                    weights of its torch module and its optimizer's moments
    tensors         every array and weight, as CPU tensors, by name
    sha256          SHA-256 of all the above (header and tensor bytes)

What a file keeps (the persistence contract, held by a test for every
estimator): the parameters (an estimator given as a parameter, such as
``AutoencoderClassifier``'s ``autoencoder`` or ``OutlierDetector``'s
``estimator``, by its class and parameters: not its fitted state); every
public fitted attribute (names ending in ``_``, including the fitted network's
description ``architecture_`` and the root of the random streams
``random_seed_``); the weights of the fitted torch module; and the optimizer's
moment estimates (Adam's ``exp_avg``, ``exp_avg_sq`` and step count per
parameter, keyed by parameter name). A fitted estimator held by another
(``OutlierDetector.estimator_``, the default ensemble's ``estimators_``) is
kept whole, the same way: a header of its own inside its holder's, its
tensors named under its attribute (``attr.estimator_.``...). So
``load(path).partial_fit(X)`` takes exactly the step the saved estimator would
have taken. Runtime caches (private attributes) are not kept; those a model
needs (the default ensemble's neighbour indices) are rebuilt on load from the
fitted attributes. An ``OutlierDetector`` around another library's estimator
(``PCA``, ...) is refused by :func:`save`: its state has no code-free form. A
model holding networks of the user's own (``encoder=``/``decoder=`` torch
modules or classes) is refused with a TypeError: rebuilding them would need
their code; pickle or joblib keep such models.

What :func:`load` checks, in order, before it builds anything a file's
contents could make large (a file that fails any check raises one
``ValueError`` naming what is wrong):

1. the archive: at most ``max_bytes`` bytes; every member stored, not
   compressed, and no larger than the file (so nothing inflates); a bounded
   number of pickle instructions per member (so the unpickler cannot turn a
   small file into a large structure);
2. the contents: only dense, contiguous CPU tensors of plain dtypes, each
   referenced exactly once by the header; the SHA-256 matches (a damaged file
   never loads with different output);
3. the estimator: the class is one of skae's or one passed in ``classes``,
   looked up by name, never imported; the parameters are exactly that class's
   and pass its own validation; the fitted attributes are the ones that class
   produces, with types, sizes and values consistent with each other;
   ``architecture_`` has the entries the class's networks have, with values
   its parameters accept; its network (built on PyTorch's ``meta`` device,
   which allocates nothing) has exactly the stored weights' names, shapes and
   dtypes and maps ``n_features_in_`` inputs to ``n_components_`` codes; the
   weights and the optimizer's moments are finite and match each other;
4. a nested fitted estimator (a detector's ``estimator_``, an ensemble's
   members): of a class its holder can hold, through all of 3. itself,
   reading only tensors under its own prefix, and consistent with its holder
   (the same ``n_features_in_``; for a detector, held-out rows of that width,
   their sorted scores, a threshold that is not NaN).

A ``GraphAutoencoder`` has no module (its fitted model is plain arrays): its
arrays must have sizes that fit together and finite values.

Only then is the module built (the nested ones first), on the CPU or
``device``, from the stored weights. :func:`save` runs the same checks on what
it is about to write, so it refuses what :func:`load` would refuse, and
replaces the destination atomically.
"""

import contextlib
import hashlib
import json
import os
import pickletools
import secrets
import zipfile

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from skae._autoencoder import AutoencoderTransformer
from skae._base import BaseAutoencoder
from skae._classifier import _BaseSupervisedAutoencoder
from skae._outlier import OutlierDetector
from skae._outlier_default import AutoencoderEnsemble
from skae._user_network import is_user_network
from skae.nn import ACTIVATIONS

FORMAT_NAME = "skae-estimator"
FORMAT_VERSION = 3

#: Default largest file :func:`load` reads (4 GiB); ``load(max_bytes=...)``.
MAX_BYTES = 4 * 2**30

# Pickle instructions allowed per archive member (plus a fixed allowance). An
# skae file needs about 30 per tensor and each tensor has its own member; the
# bound keeps the unpickler from building millions of objects out of a small
# file (measured: 4 MB of one-byte instructions became 300 MB of dicts).
_PICKLE_OPS_BASE = 1024
_PICKLE_OPS_PER_MEMBER = 64

_PAYLOAD_KEYS = {"format", "format_version", "skae_version", "header", "tensors"}
_HEADER_KEYS = {"class", "params", "attributes", "modules", "optimizer"}
# Plain dtypes only (no quantized or other special ones); the unsigned
# 16- to 64-bit types exist from torch 2.3.
_DTYPES = {
    getattr(torch, name)
    for name in (
        "bool uint8 int8 int16 int32 int64 uint16 uint32 uint64 float16 bfloat16 "
        "float32 float64 complex64 complex128"
    ).split()
    if hasattr(torch, name)
}
_DEVICE_TYPES = {"cpu", "cuda", "mps"}
_MAX_COUNT = 2**63  # counters, seeds and sizes stay int64


class _BadFile(ValueError):
    """What is wrong with a file's contents; the caller adds the file's name."""


# ----------------------------------------------------------------- encoding
def _encode(value, tensors, key):
    """Turn ``value`` into JSON-able data, moving arrays into ``tensors``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, BaseEstimator):
        if _family(type(value)) is None:
            raise TypeError(
                f"Cannot save {key.split('.')[-1]!r}, a {type(value).__name__}: the "
                "safe format holds skae's own estimators only. Save the whole model "
                "with joblib (or pickle, for files you trust) instead."
            )
        # An estimator given as a parameter (AutoencoderClassifier's
        # autoencoder= or encoder=, OutlierDetector's estimator=): its class
        # and parameters, not its fitted state (what a fitted encoder taught
        # is in the weights of module_; OutlierDetector fits a clone).
        params = value.get_params(deep=False)
        return {
            "__estimator__": {
                "class": type(value).__name__,
                "params": {
                    k: _encode(v, tensors, f"{key}.{k}") for k, v in params.items()
                },
            }
        }
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return {"__object_array__": [_encode(v, tensors, key) for v in value]}
        if value.dtype.kind == "U":  # e.g. classes_ of string labels
            return {"__str_array__": [str(v) for v in value.ravel()]}
        _put(tensors, key, torch.from_numpy(np.ascontiguousarray(value)))
        return {"__ndarray__": key}
    if isinstance(value, torch.Tensor):
        _put(tensors, key, value)
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
        f"Cannot save attribute {key.split('.')[1]!r} of type {type(value).__name__} "
        "in the safe format (e.g. random_state must be an int or None)."
    )


def _put(tensors, key, tensor):
    # A compact CPU copy: a view would drag its whole base storage into the
    # file, and a non-contiguous tensor would be refused on load.
    if key in tensors:
        raise TypeError(f"Two values would be saved under the same name {key!r}.")
    tensors[key] = tensor.detach().cpu().contiguous().clone()


class _Tensors:
    """The file's tensors, handed out by name, each at most once.

    A fitted estimator nested in another (``OutlierDetector.estimator_``)
    reads through a view of the same store restricted to its own key prefix;
    the views share which tensors are used, and ``pending``: what to build,
    in order, once the whole file has passed its checks.
    """

    def __init__(self, tensors, known=None, *, prefix="", used=None, pending=None):
        self.tensors = tensors
        self.used = set() if used is None else used
        self.known = known or {}
        self.prefix = prefix
        self.pending = [] if pending is None else pending

    def nested(self, prefix):
        """The view of a nested estimator's tensors, all named ``prefix...``."""
        return _Tensors(
            self.tensors,
            self.known,
            prefix=prefix,
            used=self.used,
            pending=self.pending,
        )

    def take(self, key):
        if not isinstance(key, str) or key not in self.tensors:
            raise _BadFile(f"the header refers to a missing tensor {key!r}")
        if not key.startswith(self.prefix):
            raise _BadFile(
                f"tensor {key!r} lies outside its estimator's prefix {self.prefix!r}"
            )
        if key in self.used:
            raise _BadFile(f"the header refers to tensor {key!r} twice")
        self.used.add(key)
        return self.tensors[key]

    def array(self, key):
        tensor = self.take(key)
        if tensor.dtype == torch.bfloat16:
            raise _BadFile(f"tensor {key!r} is bfloat16, which no attribute is")
        return tensor.numpy()

    def check_all_used(self):
        unused = sorted(set(self.tensors) - self.used)
        if unused:
            raise _BadFile(f"tensors {unused[:5]} belong to nothing in the header")

    def decode(self, value):
        """The value ``_encode`` turned into ``value``."""
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict) or len(value) != 1:
            raise _BadFile(f"unexpected structure {_short(value)} in the header")
        ((tag, payload),) = value.items()
        if tag == "__ndarray__":
            return self.array(payload)
        if tag == "__tensor__":
            return self.take(payload)
        if tag == "__device__" and isinstance(payload, str):
            try:
                return torch.device(payload)
            except (RuntimeError, TypeError, ValueError):
                raise _BadFile(f"{payload!r} is not a torch device") from None
        if tag == "__object_array__" and isinstance(payload, list):
            array = np.empty(len(payload), dtype=object)
            for i, item in enumerate(payload):
                array[i] = self.decode(item)
            return array
        if tag == "__str_array__" and isinstance(payload, list):
            if not all(isinstance(v, str) for v in payload):
                raise _BadFile(f"unexpected structure {_short(value)} in the header")
            return np.array(payload, dtype=str)
        if tag == "__estimator__" and isinstance(payload, dict):
            return self.estimator(payload)
        if tag == "__tuple__" and isinstance(payload, list):
            return tuple(self.decode(v) for v in payload)
        if tag == "__dict__" and isinstance(payload, dict):
            return {k: self.decode(v) for k, v in payload.items()}
        raise _BadFile(f"unexpected structure {_short(value)} in the header")

    def estimator(self, payload):
        """An unfitted estimator given as a parameter, checked by its class."""
        name = payload.get("class")
        cls = self.known.get(name) if isinstance(name, str) else None
        if set(payload) != {"class", "params"} or _family(cls) is None:
            raise _BadFile(
                f"a parameter names {_short(name)}, which is not an skae autoencoder "
                "or another estimator skae stores"
            )
        params = payload["params"]
        if not isinstance(params, dict):
            raise _BadFile(f"the parameters of {name} are not a mapping")
        return _check_params(cls, {k: self.decode(v) for k, v in params.items()})


def _reason(exc):
    return str(exc).strip().rstrip(".")


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _digest(payload):
    """SHA-256 of everything in ``payload`` but the digest itself."""
    h = hashlib.sha256()

    def feed(data):
        # Length-prefixed, so that no two different contents hash the same
        # sequence of bytes.
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)

    for key in ("format", "format_version", "skae_version", "header"):
        feed(str(payload[key]).encode())
    tensors = payload["tensors"]
    for key in sorted(tensors):
        tensor = tensors[key]
        feed(json.dumps([key, str(tensor.dtype), list(tensor.shape)]).encode())
        # An empty tensor (a detector's first, empty window of held-out
        # rows) has no bytes, and torch cannot view it as bytes.
        flat = tensor.reshape(-1)
        feed(memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else b"")
    return h.hexdigest()


# ----------------------------------------------------------------- families
def _skae_classes():
    """skae's own estimator classes by name (looked up, never imported)."""
    from skae.utils import all_estimators

    # The default scorer of OutlierDetector is private but stored like the
    # public estimators: it is the fitted estimator_ of a default detector.
    return {**dict(all_estimators()), "AutoencoderEnsemble": AutoencoderEnsemble}


def _family(cls):
    """Which kind of fitted state ``cls`` has: its schema, or None."""
    import skae

    if not isinstance(cls, type):
        return None
    if issubclass(cls, BaseAutoencoder):
        return "autoencoder"
    if issubclass(cls, _BaseSupervisedAutoencoder):
        return "supervised"
    if issubclass(cls, skae.DictionaryLearner):
        return "dictionary"
    if issubclass(cls, OutlierDetector):
        return "detector"
    if issubclass(cls, AutoencoderEnsemble):
        return "ensemble"
    if issubclass(cls, skae.GraphAutoencoder):
        return "graph"
    return None


def _known_classes(classes):
    known = _skae_classes()
    for cls in classes:
        if _family(cls) is None:
            raise TypeError(
                f"classes must hold skae estimator classes (subclasses of an skae "
                f"estimator or of skae._base.BaseAutoencoder), got {cls!r}."
            )
        known[cls.__name__] = cls
    return known


# ------------------------------------------------------------------- public
def save(estimator, path):
    """Save a fitted skae estimator to ``path`` in a format that runs no code on load.

    The file is first written next to ``path`` under a temporary name, flushed
    to disk, then renamed over ``path`` in one step: if anything fails part
    way (a full disk, an interruption), an existing file at ``path`` is left
    as it was. Before writing, the contents get the same checks as in
    :func:`load`, so a file that would not load is not written.

    Parameters
    ----------
    estimator : skae estimator
        A fitted estimator from :mod:`skae`, or of a class derived from one.
        An :class:`~skae.OutlierDetector` is stored with its fitted
        ``estimator_`` when that is skae's own (the default scorer, an skae
        autoencoder or a :class:`~skae.DictionaryLearner`).
    path : str or path-like
        Destination file (conventionally ``*.skae``).

    Raises
    ------
    TypeError
        If ``estimator`` is not an skae estimator (e.g. scikit-learn's
        ``PCA``: save those with :mod:`joblib` or skops), is an
        ``OutlierDetector`` around an estimator of another library (the
        message names it; save those with :mod:`joblib`), holds networks of
        your own (``encoder=``/``decoder=``), or holds an attribute the format
        cannot store.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    ValueError
        If ``estimator`` is in a state :func:`load` would refuse (e.g. an
        invalid parameter set after fitting).

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
    if _family(type(estimator)) is None:
        raise TypeError(
            f"skae.save stores skae estimators; got {type(estimator).__name__}. "
            "Save other estimators with joblib or skops."
        )
    user = sorted(
        name
        for name, value in estimator.get_params(deep=True).items()
        if is_user_network(value)
    )
    if user:
        raise TypeError(
            f"skae.save does not store networks of your own (parameters {user}): "
            "its format never runs code, and rebuilding your modules needs their "
            "classes. Save the model with joblib or pickle (they import your "
            "classes on load: trusted files only), or save the weights with "
            "torch.save(model.module_.state_dict(), path) and load them into a "
            "model fitted with the same encoder and decoder."
        )
    check_is_fitted(estimator)
    payload = _payload(estimator)
    known = {**_skae_classes(), **_classes_in(estimator)}
    try:
        _rebuild(json.loads(payload["header"]), payload["tensors"], known)
    except _BadFile as exc:
        raise ValueError(
            f"Cannot save this {type(estimator).__name__}, its file would not load: "
            f"{_reason(exc)}."
        ) from None
    payload["sha256"] = _digest(payload)
    _write_atomically(path, payload)


def load(path, device=None, *, classes=(), max_bytes=MAX_BYTES):
    """Load an estimator written by :func:`save`, executing no code from the file.

    The file is checked before anything it describes is built (see Notes).
    Files of format version 2 (written by skae before these checks existed)
    are refused with a message naming the version: load them with the skae
    release that wrote them and save them again.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    device : str, torch.device or None, default=None
        Where to put the model. None keeps the saved device when it exists on
        this machine and falls back to the CPU otherwise.
    classes : sequence of classes, default=()
        Estimator classes of your own (subclasses of skae's estimators or of
        ``skae._base.BaseAutoencoder``) that the file may name, besides
        skae's. The file only names a class: it is looked up in skae's
        estimators and these, never imported. A class of your own may add
        fitted attributes; those of its skae base are checked.
    max_bytes : int or None, default=4 * 2**30
        Largest file to read (4 GiB by default); None reads any size. Loading
        takes about as much memory as the file's size, and the checks below
        keep it so, whatever the file claims.

    Returns
    -------
    estimator : skae estimator
        The fitted estimator.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not an skae file, is damaged (fails its integrity
        check), is larger than ``max_bytes``, is of another format version,
        or describes an estimator its class would not produce; the message
        names what is wrong.

    See Also
    --------
    save : Write the file.

    Notes
    -----
    The checks, in order: the file's size; the archive's directory (every
    member stored uncompressed within the file, so nothing inflates, and a
    bounded number of pickle instructions); ``torch.load(weights_only=True)``
    and only plain, dense tensors; the SHA-256 of the contents; the class,
    looked up by name; its parameters, exactly the class's and valid for it;
    its fitted attributes, exactly those the class produces, of consistent
    types and sizes; ``architecture_``, whose network is built on PyTorch's
    ``meta`` device (no memory) and must match the stored weights' names,
    shapes and dtypes and map ``n_features_in_`` inputs to ``n_components_``
    codes; finite weights and optimizer moments that match them. A fitted
    estimator held by another (an ``OutlierDetector``'s ``estimator_``)
    passes the same checks, reads only its own tensors and must agree with
    its holder. Only then is the network built for real.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skae import AutoencoderTransformer, load, save
    >>> X = np.random.RandomState(0).rand(50, 4)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skae")
    >>> save(AutoencoderTransformer(max_iter=2).fit(X), path)
    >>> load(path).transform(X).shape
    (50, 2)
    >>> with open(path, "rb") as f:
    ...     data = bytearray(f.read())
    >>> data[len(data) // 2] ^= 0xFF               # damage one byte in the middle
    >>> with open(path, "wb") as f:
    ...     _ = f.write(data)
    >>> load(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: ...failed its integrity check...
    """
    known = _known_classes(classes)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if max_bytes is not None and size > max_bytes:
            raise ValueError(
                f"{path} is {size} bytes, more than max_bytes={max_bytes}; pass a "
                "larger max_bytes to load(...) if you trust it to fit in memory."
            )
        try:
            _check_archive(f, size)
        except _BadFile as exc:
            raise ValueError(
                f"{path} is not a readable skae file: {_reason(exc)}."
            ) from None
        f.seek(0)
        payload = _torch_load(f, path)
    _check_version(payload, path)
    try:
        _check_payload(payload)
    except _BadFile as exc:
        raise ValueError(f"{path} is not a valid skae file: {_reason(exc)}.") from None
    if payload["sha256"] != _digest(payload):
        raise ValueError(
            f"{path} failed its integrity check: the SHA-256 of its contents does "
            "not match the one it records, so it is damaged or was modified. It "
            "was not loaded."
        )
    try:
        header = json.loads(payload["header"])
        estimator, pending = _rebuild(header, payload["tensors"], known)
    except (_BadFile, ValueError, RecursionError) as exc:
        raise ValueError(
            f"{path} does not hold a valid skae estimator: {_reason(exc)}."
        ) from None
    # Nested estimators first (a detector's estimator_, an ensemble's
    # members), then those that hold them.
    for build in pending:
        try:
            build(device)
        except (RuntimeError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(
                f"{path}: the weights could not be restored ({type(exc).__name__}: "
                f"{exc})."
            ) from None
    return estimator


# ------------------------------------------------------------------ writing
def _payload(estimator):
    """The dictionary a file holds, without its digest."""
    from skae import __version__

    tensors = {}
    header = _header(estimator, tensors, prefix="")
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "skae_version": __version__,
        "header": json.dumps(header),
        "tensors": tensors,
    }


def _header(estimator, tensors, prefix):
    """The header of ``estimator``, its tensors put in ``tensors`` under
    ``prefix`` (a nested fitted estimator's: its attribute's name)."""
    # Fitted estimators first: what a detector wraps decides whether it can
    # be stored, and the refusal should name it.
    param_values = estimator.get_params(deep=False)
    nested = _NESTED_ATTRIBUTES.get(_family(type(estimator)), {})
    attributes, modules = {}, {}
    for name, value in vars(estimator).items():
        if name.startswith("_") or name in param_values:
            continue  # parameters are stored above; private runtime state is not
        if isinstance(value, torch.nn.Module):
            modules[name] = {}
            for key, tensor in value.state_dict().items():
                modules[name][key] = f"{prefix}module.{name}.{key}"
                _put(tensors, modules[name][key], tensor)
            continue
        key = f"{prefix}attr.{name}"
        if name in nested:
            attributes[name] = _encode_fitted(
                estimator, name, value, nested[name], tensors, key
            )
        else:
            attributes[name] = _encode(value, tensors, key)
    optimizer = None
    moments = vars(estimator).get("_optimizer_moments")
    if moments is not None:
        optimizer = {}
        for param, state in moments.items():
            optimizer[param] = {}
            for key, tensor in state.items():
                optimizer[param][key] = f"{prefix}optimizer.{param}.{key}"
                _put(tensors, optimizer[param][key], tensor)
    params = {
        name: _encode(value, tensors, f"{prefix}param.{name}")
        for name, value in param_values.items()
    }
    return {
        "class": type(estimator).__name__,
        "params": params,
        "attributes": attributes,
        "modules": modules,
        "optimizer": optimizer,
    }


def _encode_fitted(owner, name, value, nesting, tensors, key):
    """A fitted estimator (or a list of them) held by ``owner.name``: each
    as a full header of its own, its tensors under ``key.`` (``key.i.``)."""
    many, accepts, what = nesting
    values = value if many else [value]
    if many and not isinstance(value, list):
        raise TypeError(f"Cannot save {name!r}: it is not a list of estimators.")
    for one in values:
        if not accepts(type(one)):
            raise TypeError(
                f"skae.save cannot store this {type(owner).__name__}: its {name} "
                f"is a fitted {type(one).__name__}, and the safe format stores "
                f"{type(owner).__name__} only when its {name} is {what}. Save it "
                "with joblib (or pickle, for files you trust) instead."
            )
    encoded = [
        {"__fitted__": _header(one, tensors, f"{key}.{i}." if many else f"{key}.")}
        for i, one in enumerate(values)
    ]
    return encoded if many else encoded[0]


def _classes_in(estimator):
    """``estimator``'s class and those of the fitted estimators it holds, by
    name (so that save checks a file of a user's classes as load would with
    ``classes=[...]``)."""
    found = {type(estimator).__name__: type(estimator)}
    for name in _NESTED_ATTRIBUTES.get(_family(type(estimator)), {}):
        value = getattr(estimator, name, None)
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, BaseEstimator):
                found.update(_classes_in(one))
    return found


def _write_atomically(path, payload):
    """Write to a new file beside ``path``, flush it to disk, rename it over."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(
        folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp"
    )
    try:
        # "x": a new file with the usual permissions, never someone else's.
        with open(temporary, "xb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    # The rename itself survives a crash only once the folder is on disk too.
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


# ------------------------------------------------------------------ reading
def _check_archive(f, size):
    """Check the zip directory before torch reads anything from the archive."""
    try:
        archive = zipfile.ZipFile(f)
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError):
        raise _BadFile(
            "it is not a torch archive (a plain pickle, a damaged file or another "
            "format)"
        ) from None
    if not members:
        raise _BadFile("the archive is empty")
    total = 0
    for info in members:
        # torch.save stores members uncompressed; a compressed member could
        # inflate far beyond the file's size before any other check.
        if info.compress_type != zipfile.ZIP_STORED:
            raise _BadFile(f"archive member {info.filename!r} is compressed")
        if info.file_size != info.compress_size or info.file_size > size:
            raise _BadFile(
                f"archive member {info.filename!r} declares {info.file_size} bytes "
                f"in a {size}-byte file"
            )
        total += info.file_size
    if total > size:
        raise _BadFile(f"the archive's members add up to more than its {size} bytes")
    budget = _PICKLE_OPS_BASE + _PICKLE_OPS_PER_MEMBER * len(members)
    for info in members:
        if not info.filename.endswith(".pkl"):
            continue
        try:
            with archive.open(info) as member:
                for count, _ in enumerate(pickletools.genops(member), start=1):
                    if count > budget:
                        raise _BadFile(
                            f"{info.filename!r} holds more than {budget} pickle "
                            "instructions, far more than an skae file needs"
                        )
        except _BadFile:
            raise
        except zipfile.BadZipFile as exc:  # e.g. its CRC-32 does not match
            raise _BadFile(
                f"archive member {info.filename!r} is damaged ({_reason(exc)})"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
            raise _BadFile(
                f"{info.filename!r} is not a valid pickle ({type(exc).__name__})"
            ) from None


def _torch_load(f, path):
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a foreign or damaged file
        # Never retry unsafely, and do not pass on torch's advice to do so.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights_only" in reason or "trust" in reason:
            reason = "it holds objects other than tensors and plain containers"
        raise ValueError(
            f"{path} is not a readable skae file: {type(exc).__name__}"
            + (f" ({reason})" if reason else "")
            + "."
        ) from None


def _check_version(payload, path):
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not an skae estimator file.")
    version = payload.get("format_version")
    if version != FORMAT_VERSION or type(version) is not int:
        raise ValueError(
            f"{path} uses skae file format version {_short(version)} (written by "
            f"skae {_short(payload.get('skae_version'))}); this skae reads version "
            f"{FORMAT_VERSION}. Load it with a matching skae release."
        )


def _check_payload(payload):
    """The top-level layout and every tensor, before anything is decoded."""
    if set(payload) != _PAYLOAD_KEYS | {"sha256"}:
        raise _BadFile(
            f"it holds entries {sorted(map(str, payload))}, expected "
            f"{sorted(_PAYLOAD_KEYS | {'sha256'})}"
        )
    for key in ("skae_version", "header", "sha256"):
        if not isinstance(payload[key], str):
            raise _BadFile(f"{key!r} is a {type(payload[key]).__name__}, not text")
    tensors = payload["tensors"]
    if not isinstance(tensors, dict):
        raise _BadFile("'tensors' is not a dictionary")
    for key, tensor in tensors.items():
        if not isinstance(key, str) or type(tensor) is not torch.Tensor:
            raise _BadFile(f"tensors entry {_short(key)} is not a plain tensor")
        # A tensor is refused unless its bytes lie in its own storage: a
        # zero-stride view can claim any shape over a few stored bytes.
        if (
            tensor.layout != torch.strided
            or tensor.device.type != "cpu"
            or tensor.dtype not in _DTYPES
            or tensor.requires_grad
            or not tensor.is_contiguous()
            or tensor.numel() * tensor.element_size()
            > tensor.untyped_storage().nbytes()
        ):
            raise _BadFile(
                f"tensor {key!r} is not a dense, contiguous CPU tensor of a plain "
                "dtype within its stored bytes"
            )


# --------------------------------------------------------------- validation
def _rebuild(header, tensors, known):
    """The estimator a file describes, checked against its class.

    Returns ``(estimator, pending)``: the estimator with its parameters and
    fitted attributes set, and what the caller builds once everything has
    passed, in order (``pending(device)``: the modules from their state
    dicts, the optimizer's moments, then what the estimators holding them
    derive from them). Nothing is allocated beyond the file's own tensors:
    networks are only built on PyTorch's ``meta`` device.
    """
    store = _Tensors(tensors, known)
    estimator = _rebuild_one(store, header)
    store.check_all_used()
    return estimator, store.pending


def _rebuild_one(store, header):
    """One estimator of the file (the top one or a nested one), checked
    against its class; its pending steps are added to ``store.pending``."""
    if not isinstance(header, dict) or set(header) != _HEADER_KEYS:
        raise _BadFile(f"the header is not an skae header: {_short(header)}")
    name = header["class"]
    if not isinstance(name, str) or name not in store.known:
        raise _BadFile(
            f"it holds an unknown estimator {_short(name)}; pass your own "
            "estimator classes with load(path, classes=[...])"
        )
    cls = store.known[name]
    family = _family(cls)
    try:
        estimator = _check_params(
            cls, _decode_mapping(store, header["params"], "params")
        )
        # The names first: a nested estimator is only decoded (and checked)
        # where the class has one.
        names = header["attributes"]
        if not isinstance(names, dict):
            raise _BadFile("the header's attributes are not a mapping")
        skae_class = cls in _skae_classes().values()
        _check_attribute_names(cls, family, names, strict=skae_class)
        attributes = _decode_mapping(
            store, names, "attributes", _NESTED_ATTRIBUTES.get(family)
        )
    except RecursionError:
        raise _BadFile("the header is nested too deeply") from None
    modules = _tensor_tree(store, header["modules"], "modules", depth=2)
    moments = header["optimizer"]
    if moments is not None:
        moments = _tensor_tree(store, moments, "optimizer", depth=2)
    _CHECKS[family](estimator, attributes, modules, moments)
    if modules:
        store.pending.append(lambda device: estimator._restore_modules(modules, device))
    if moments is not None:
        store.pending.append(
            lambda device: setattr(estimator, "_optimizer_moments", moments)
        )
    if family == "ensemble":
        # The neighbours' indices are runtime state, rebuilt from reference_
        # by the restored members.
        store.pending.append(lambda device: estimator._index_reference())
    return estimator


def _decode_mapping(store, mapping, part, nested=None):
    if not isinstance(mapping, dict):
        raise _BadFile(f"the header's {part} are not a mapping")
    nested = nested or {}
    return {
        name: _decode_fitted(store, name, value, nested[name])
        if name in nested
        else store.decode(value)
        for name, value in mapping.items()
    }


def _decode_fitted(store, name, value, nesting):
    """The fitted estimator(s) an attribute such as ``estimator_`` holds, each
    checked exactly as a file of its own, with its tensors under its prefix."""
    many, accepts, what = nesting
    if many and not (isinstance(value, list) and value):
        raise _BadFile(f"{name} must be a non-empty list of fitted estimators")
    fitted = []
    for i, one in enumerate(value if many else [value]):
        where = f"{name}[{i}]" if many else name
        if not (
            isinstance(one, dict)
            and set(one) == {"__fitted__"}
            and isinstance(one["__fitted__"], dict)
        ):
            raise _BadFile(f"{where} must be a fitted estimator, got {_short(one)}")
        header = one["__fitted__"]
        class_name = header.get("class")
        cls = store.known.get(class_name) if isinstance(class_name, str) else None
        if not accepts(cls):
            raise _BadFile(f"{where} must be {what}, got {_short(class_name)}")
        prefix = f"{store.prefix}attr.{name}." + (f"{i}." if many else "")
        try:
            fitted.append(_rebuild_one(store.nested(prefix), header))
        except _BadFile as exc:
            raise _BadFile(f"{where} ({class_name}): {_reason(exc)}") from None
    return fitted if many else fitted[0]


def _tensor_tree(store, tree, part, depth):
    """``{name: {key: tensor}}`` from ``{name: {key: tensor name}}``."""
    if not isinstance(tree, dict):
        raise _BadFile(f"the header's {part} are not a mapping")
    if depth == 1:
        return {k: store.take(v) for k, v in tree.items()}
    return {k: _tensor_tree(store, v, part, depth - 1) for k, v in tree.items()}


def _check_params(cls, params):
    """An estimator of ``cls`` with ``params``, validated by ``cls`` itself."""
    try:
        expected = set(cls._get_param_names())
    except Exception as exc:  # noqa: BLE001 - e.g. a class with **kwargs
        raise _BadFile(f"{cls.__name__} does not list its parameters ({exc})") from None
    if set(params) != expected:
        missing, extra = sorted(expected - set(params)), sorted(set(params) - expected)
        raise _BadFile(
            f"its parameters are not those of {cls.__name__} (missing {missing}, "
            f"unexpected {extra})"
        )
    try:
        estimator = cls(**params)
        estimator._validate_params()
    except (ValueError, TypeError) as exc:
        raise _BadFile(f"invalid parameters for {cls.__name__}: {exc}") from None
    return estimator


# Checks of single fitted values: ``check(value, ctx, name)`` raises _BadFile.
# ``ctx`` holds the class and the sizes the other attributes must agree with.
def _nonneg(value, ctx, name):
    _expect(_is_int(value) and 0 <= value < _MAX_COUNT, name, value, "a count >= 0")


def _positive(value, ctx, name):
    _expect(_is_int(value) and 1 <= value < _MAX_COUNT, name, value, "an int >= 1")


def _real(value, ctx, name):
    _expect(_is_real(value), name, value, "a real number")


def _fraction(value, ctx, name):
    _expect(_is_real(value) and 0 <= value <= 1, name, value, "a number in [0, 1]")


def _curve(value, ctx, name):
    _expect(
        isinstance(value, list) and all(_is_real(v) for v in value),
        name,
        value,
        "a list of numbers",
    )


def _device(value, ctx, name):
    _expect(
        isinstance(value, torch.device) and value.type in _DEVICE_TYPES,
        name,
        value,
        f"a torch.device of type {sorted(_DEVICE_TYPES)}",
    )


def _resolved(parameter):
    """A fitted value of ``parameter`` (e.g. ``loss_``): one the parameter
    accepts, other than ``"auto"``; read from the class's constraints, so a
    new option needs no change here."""

    def check(value, ctx, name):
        constraints = {
            **BaseAutoencoder._parameter_constraints,
            **ctx["cls"]._parameter_constraints,
        }
        try:
            validate_parameter_constraints(
                {parameter: constraints[parameter]},
                {parameter: value},
                caller_name=ctx["cls"].__name__,
            )
        except (ValueError, TypeError):
            value_ok = False
        else:
            value_ok = isinstance(value, str) and value != "auto"
        _expect(value_ok, name, value, f"a resolved value of {parameter!r}")

    return check


def _vector(size, *, kind="f", positive=False, optional=False):
    """A finite 1-D array of ``ctx[size]`` entries of dtype kind ``kind``."""

    def check(value, ctx, name):
        if optional and value is None:
            return
        _check_array(value, name, (ctx[size],), kind)
        if kind == "f":
            _expect(np.all(np.isfinite(value)), name, "...", "finite")
            if positive:
                _expect(np.all(value > 0), name, "...", "positive")

    return check


def _is_finite_real(value):
    # A JSON integer may be too large for a float (np.isfinite would raise).
    try:
        return _is_real(value) and np.isfinite(float(value))
    except OverflowError:
        return False


def _atoms_like(value, ctx, name):
    """None, or a finite float array shaped like ``components_``."""
    if value is None:
        return
    _check_array(value, name, (ctx["n_components"], ctx["n_features"]), "f")
    _expect(np.all(np.isfinite(value)), name, "...", "finite")


def _finite(value, ctx, name):
    _expect(_is_finite_real(value), name, value, "a finite number")


def _positive_finite(value, ctx, name):
    _expect(
        _is_finite_real(value) and value > 0,
        name,
        value,
        "a finite number > 0",
    )


def _labels(value, ctx, name):
    """``classes_``: sorted distinct labels (numbers, booleans or strings)."""
    plain = isinstance(value, np.ndarray) and value.ndim == 1 and len(value) >= 2
    if plain and value.dtype.kind == "O":
        plain = all(isinstance(v, (str, int, float, bool)) for v in value)
    if plain and value.dtype.kind in "biufUO":
        try:
            plain = np.array_equal(np.unique(value), value)
        except TypeError:  # unorderable, e.g. strings mixed with numbers
            plain = False
    _expect(
        plain and value.dtype.kind in "biufUO",
        name,
        value,
        "a 1-D array of at least two sorted, distinct labels",
    )


def _names(value, ctx, name):
    _expect(
        isinstance(value, np.ndarray)
        and value.shape == (ctx["n_features"],)
        and all(isinstance(v, str) for v in value),
        name,
        value,
        f"an array of {ctx['n_features']} feature names",
    )


def _threshold(value, ctx, name):
    # -inf is the threshold of too few held-out rows: nothing is flagged.
    _expect(
        _is_real(value) and not np.isnan(value) and value != np.inf,
        name,
        value,
        "a number below +inf (-inf: too few held-out rows)",
    )


def _seed(value, ctx, name):
    _expect(_is_int(value) and 0 <= value < 2**64, name, value, "a seed in [0, 2**64)")


def _random_state(value, ctx, name):
    # What RandomState.get_state() returns; set_state itself accepts keys of
    # other lengths and dtypes, which would continue another stream.
    _expect(
        isinstance(value, tuple)
        and len(value) == 5
        and value[0] == "MT19937"
        and isinstance(value[1], np.ndarray)
        and value[1].dtype == np.uint32
        and value[1].shape == (624,)
        and _is_int(value[2])
        and 0 <= value[2] <= 624
        and value[3] in (0, 1)
        and _is_real(value[4]),
        name,
        value,
        "a numpy RandomState state (MT19937)",
    )


# What each estimator produces when fitted, by name (the names are public,
# see the developer guide's persistence contract), with the check of each
# value (None: checked with the others it must agree with). When a fit starts
# setting a new public attribute, add it here: until then save and load
# refuse the model, naming the attribute.
_AUTOENCODER_ATTRIBUTES = {
    "n_features_in_": _positive,
    "device_": _device,
    "random_seed_": _seed,
    "loss_": _resolved("loss"),
    "scaling_": _resolved("scaling"),
    "offset_": _vector("n_features"),
    "scale_": _vector("n_features", positive=True),
    "architecture_": None,  # checked against the class's own network
    "n_components_": _positive,
    "loss_curve_": _curve,
    "n_iter_": _nonneg,
    "n_pretraining_iter_": _nonneg,
}
_DICTIONARY_ATTRIBUTES = {
    "n_features_in_": _positive,
    "code_": _resolved("code"),
    "alpha_": _real,
    "components_": None,  # sets the sizes, checked first
    "mean_": _vector("n_features", optional=True),
    "unmixing_": _atoms_like,  # code="independent" only, else None
    "inner_stats_": None,  # checked against the code type's own statistics
    "n_iter_": _nonneg,
    "n_steps_": _nonneg,
    "n_samples_seen_": _nonneg,
    "objective_": _real,
    "rng_state_": _random_state,
    "device_": _device,
}
_SUPERVISED_ATTRIBUTES = {
    "n_features_in_": _positive,
    "device_": _device,
    "random_seed_": _seed,
    "loss_": _resolved("loss"),
    "offset_": _vector("n_features"),
    "scale_": _vector("n_features", positive=True),
    "architecture_": None,  # checked against the autoencoder class's network
    "n_components_": _positive,
    "loss_curve_": _curve,
    "n_iter_": _nonneg,
    "n_head_iter_": _nonneg,
    "n_pretraining_iter_": _nonneg,
}
_DETECTOR_ATTRIBUTES = {
    "n_features_in_": _positive,
    "estimator_": None,  # a fitted estimator, checked by its own class
    "calibration_data_": None,  # checked with calibration_scores_
    "calibration_scores_": None,
    "offset_": _threshold,
    "feature_weights_": _vector("n_features", optional=True),
    "random_seed_": _seed,
    "n_batches_": _nonneg,
}
_ENSEMBLE_ATTRIBUTES = {
    "n_features_in_": _positive,
    "estimators_": None,  # fitted autoencoders, each checked by its class
    "center_": _vector("n_features"),
    "scale_": _vector("n_features", positive=True),
    "data_min_": _vector("n_features"),
    "data_max_": _vector("n_features"),
    "data_mean_": _vector("n_features"),
    "data_var_": _vector("n_features"),
    "n_samples_seen_": _positive,
    "reference_": None,  # checked against n_features_in_
    "n_neighbors_": _positive,
    "normalizers_": None,  # one per member
}
#: GraphAutoencoder: plain arrays, no torch module (torch trains it only).
_GRAPH_ATTRIBUTES = {
    "n_features_in_": _positive,
    "n_node_features_": _nonneg,
    "n_components_": _positive,
    "scale_": _positive_finite,
    "pos_weight_": _positive_finite,
    "device_": _device,
    "loss_curve_": _curve,
    "n_iter_": _nonneg,
    # Sizes checked against each other in _check_graph.
    "hidden_weights_": None,
    "output_weights_": None,
    "embedding_": None,
    "degree_": None,
    "projected_features_": None,
    "hidden_": None,
}
_FAMILY_ATTRIBUTES = {
    "autoencoder": _AUTOENCODER_ATTRIBUTES,
    "graph": _GRAPH_ATTRIBUTES,
    "dictionary": _DICTIONARY_ATTRIBUTES,
    "supervised": _SUPERVISED_ATTRIBUTES,
    "detector": _DETECTOR_ATTRIBUTES,
    "ensemble": _ENSEMBLE_ATTRIBUTES,
}
#: Present only for some inputs or settings.
_OPTIONAL_ATTRIBUTES = {
    "feature_names_in_": _names,  # fitted on a DataFrame
    "validation_loss_curve_": _curve,  # early_stopping=True
}
#: What an skae estimator adds to its family's attributes, by class name.
_EXTRA_ATTRIBUTES = {
    "SparseAE": {
        "k_": None,  # checked against architecture_
        "dead_units_": _vector("n_components", kind="b"),
        "dead_fraction_": _fraction,
    },
    "AutoencoderClassifier": {"classes_": _labels},
    "AutoencoderRegressor": {"y_mean_": _finite, "y_scale_": _positive_finite},
    "ConvAutoencoder": {
        "data_min_": _vector("n_features"),
        "data_max_": _vector("n_features"),
    },
    "DenoisingAE": {
        "data_min_": _vector("n_features"),
        "data_max_": _vector("n_features"),
    },
    "VAE": {
        "reconstruction_curve_": _curve,
        "kl_curve_": _curve,
        "elbo_curve_": _curve,
        "kl_weight_curve_": _curve,
    },
}


def _schema(cls, family):
    """Required attributes of a fitted ``cls`` and their checks."""
    schema = dict(_FAMILY_ATTRIBUTES[family])
    skae = _skae_classes()
    for name, extra in _EXTRA_ATTRIBUTES.items():
        if issubclass(cls, skae[name]):
            schema.update(extra)
    return schema


def _check_attribute_names(cls, family, attributes, *, strict):
    for name in attributes:
        # Fitted attributes are public data: a file must not replace a
        # method, a property or private state.
        if name.startswith("_") or not name.endswith("_") or hasattr(cls, name):
            raise _BadFile(
                f"{name!r} is not a fitted attribute {cls.__name__} can have"
            )
    schema = _schema(cls, family)
    missing = sorted(set(schema) - set(attributes))
    if missing:
        raise _BadFile(f"fitted attributes {missing} of {cls.__name__} are missing")
    # A class of the user's own may add attributes of its own.
    unexpected = sorted(set(attributes) - set(schema) - set(_OPTIONAL_ATTRIBUTES))
    if strict and unexpected:
        raise _BadFile(
            f"{cls.__name__} has no fitted attributes {unexpected[:5]} (a file of "
            "another class?)"
        )


def _check_values(cls, family, attributes, ctx):
    checks = {**_OPTIONAL_ATTRIBUTES, **_schema(cls, family)}
    for name, value in attributes.items():
        check = checks.get(name)
        if check is not None:
            check(value, ctx, name)


def _check_autoencoder(estimator, attributes, modules, moments):
    cls = type(estimator)
    _positive(attributes["n_features_in_"], None, "n_features_in_")
    _positive(attributes["n_components_"], None, "n_components_")
    ctx = {
        "cls": cls,
        "n_features": attributes["n_features_in_"],
        "n_components": attributes["n_components_"],
    }
    _check_values(cls, "autoencoder", attributes, ctx)
    if set(modules) != {"module_"}:
        raise _BadFile(f"it holds modules {sorted(modules)}, expected ['module_']")
    weights = modules["module_"]
    architecture = attributes["architecture_"]
    _check_architecture(
        estimator, architecture, attributes, ctx, n_tensors=len(weights)
    )
    if "k_" in attributes and attributes["k_"] != architecture.get("k"):
        raise _BadFile(
            f"k_={_short(attributes['k_'])} differs from the architecture's "
            f"k={_short(architecture.get('k'))}"
        )
    for name, value in attributes.items():
        setattr(estimator, name, value)
    network = _meta_network(estimator, architecture)
    _check_weights(network, weights)
    _check_forward(estimator, network, ctx)
    if moments is not None:
        _check_moments(network, moments)


def _check_architecture(estimator, architecture, attributes, ctx, n_tensors):
    """``architecture_`` describes a network of the class's own kind.

    Its entries are those the class's ``_architecture`` returns, and the
    entries that name a parameter hold values that parameter accepts: they
    are given to a fresh instance (other parameters at their defaults, the
    fitted attributes as stored), which must validate them. Whether the
    class can build that network with the stored weights is checked next.
    """
    cls = type(estimator)
    _expect(
        isinstance(architecture, dict)
        and all(isinstance(k, str) for k in architecture),
        "architecture_",
        architecture,
        "a dict",
    )
    for key, value in architecture.items():
        # Each entry of a sequence (a layer's width, ...) has weights of its
        # own, so a longer one than there are tensors cannot describe them;
        # this bounds the work of building the network below.
        if isinstance(value, (list, tuple)) and len(value) > n_tensors:
            raise _BadFile(
                f"architecture_[{key!r}] has {len(value)} entries for {n_tensors} "
                "stored weight tensors"
            )
        # Likewise every recurrent layer has weight tensors of its own.
        if key == "num_layers" and _is_int(value) and value > n_tensors:
            raise _BadFile(
                f"architecture_['num_layers']={value} for {n_tensors} stored weight "
                "tensors"
            )
    n_features = ctx["n_features"]
    for key, size in (
        ("n_features", n_features),
        ("n_components", ctx["n_components"]),
    ):
        if key in architecture and architecture[key] != size:
            raise _BadFile(
                f"architecture_[{key!r}]={_short(architecture[key])} differs from "
                f"{key}_{'in_' if key == 'n_features' else ''}={size}"
            )
    try:
        defaults = cls().get_params(deep=False)
        named = {k: v for k, v in architecture.items() if k in defaults}
        probe = cls(**{**defaults, **named})
        for name, value in attributes.items():
            setattr(probe, name, value)
        probe._validate_params()
        probe._validate_model_params(n_features)
        entries = set(probe._architecture(n_features))
    except Exception as exc:  # noqa: BLE001 - the class's own verdict, reported
        raise _BadFile(
            f"architecture_ is not one {cls.__name__} builds ({type(exc).__name__}: "
            f"{_reason(exc)})"
        ) from None
    # Only the entries are compared, not every value: a value may come from a
    # parameter the architecture does not name (set_params after fitting may
    # have changed it since), and the network is rebuilt from the values.
    if entries != set(architecture):
        raise _BadFile(
            f"architecture_ has entries {sorted(architecture)}, but {cls.__name__} "
            f"describes its network by {sorted(entries)}"
        )


def _meta_network(estimator, architecture):
    """The class's network for ``architecture``, with no memory behind it."""
    try:
        with torch.device("meta"):
            network = estimator._build_module(architecture)
        _expect(
            isinstance(network, torch.nn.Module), "the network", network, "a module"
        )
    except _BadFile:
        raise
    except Exception as exc:  # noqa: BLE001 - reported, with its reason
        raise _BadFile(
            f"{type(estimator).__name__} cannot build the network of architecture_ "
            f"({type(exc).__name__}: {exc})"
        ) from None
    return network.eval()


def _check_weights(network, weights):
    expected = network.state_dict()
    if set(expected) != set(weights):
        missing = sorted(set(expected) - set(weights))
        extra = sorted(set(weights) - set(expected))
        raise _BadFile(
            f"the weights do not fit the network of architecture_ (missing "
            f"{missing[:5]}, unexpected {extra[:5]})"
        )
    for key, tensor in expected.items():
        stored = weights[key]
        if stored.shape != tensor.shape or stored.dtype != tensor.dtype:
            raise _BadFile(
                f"weight {key!r} is {stored.dtype} of shape {tuple(stored.shape)}; "
                f"the network of architecture_ has {tensor.dtype} of shape "
                f"{tuple(tensor.shape)}"
            )
        # Training never keeps non-finite weights (a diverged step is undone).
        if stored.is_floating_point() and not torch.isfinite(stored).all():
            raise _BadFile(f"weight {key!r} is not finite")


def _check_forward(estimator, network, ctx):
    """The network maps n_features_in_ inputs to n_components_ codes and back."""
    n_features, n_components = ctx["n_features"], ctx["n_components"]
    dtype = next((p.dtype for p in network.parameters()), torch.float32)
    x = torch.empty(2, n_features, device="meta", dtype=dtype)
    try:
        with torch.no_grad():
            z = estimator._encode(network, x)
            x_hat = estimator._decode(network, z)
    except Exception as exc:  # noqa: BLE001 - reported, with its reason
        raise _BadFile(
            f"the network of architecture_ does not run on {n_features} features "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if tuple(z.shape) != (2, n_components) or tuple(x_hat.shape) != (2, n_features):
        raise _BadFile(
            f"the network of architecture_ maps {n_features} features to codes of "
            f"shape {tuple(z.shape)[1:]} and back to {tuple(x_hat.shape)[1:]}; "
            f"expected ({n_components},) and ({n_features},)"
        )


def _check_moments(network, moments):
    """Every parameter's optimizer state has the same entries, each of them
    a finite float scalar for every parameter (a step count) or shaped like
    every parameter (a moment estimate)."""
    parameters = dict(network.named_parameters())
    kinds = {}
    for name, state in moments.items():
        if name not in parameters:
            raise _BadFile(f"optimizer moments for {name!r}, which the network lacks")
        parameter = parameters[name]
        if kinds and set(state) != set(kinds):
            raise _BadFile(
                f"the optimizer state of {name!r} has entries {sorted(state)}, "
                f"others have {sorted(kinds)}"
            )
        for key, tensor in state.items():
            like_parameter = (
                tensor.shape == parameter.shape and tensor.dtype == parameter.dtype
            )
            scalar = tensor.dim() == 0 and tensor.is_floating_point()
            kind = kinds.setdefault(key, "scalar" if scalar else "like the parameter")
            if not (scalar if kind == "scalar" else like_parameter):
                raise _BadFile(
                    f"optimizer moment {key!r} of {name!r} is {tensor.dtype} of shape "
                    f"{tuple(tensor.shape)}; expected {kind} "
                    f"({parameter.dtype}, shape {tuple(parameter.shape)})"
                )
            if not torch.isfinite(tensor).all():
                raise _BadFile(f"optimizer moment {key!r} of {name!r} is not finite")


def _check_dictionary(estimator, attributes, modules, moments):
    if modules or moments is not None:
        raise _BadFile(f"{type(estimator).__name__} has no torch module or optimizer")
    _positive(attributes["n_features_in_"], None, "n_features_in_")
    n_features = attributes["n_features_in_"]
    components = attributes["components_"]
    _check_array(components, "components_", None, "f", ndim=2)
    n_components = components.shape[0]
    _expect(
        components.shape[1] == n_features and n_components >= 1,
        "components_",
        f"shape {components.shape}",
        f"of shape (n_components, n_features_in_={n_features})",
    )
    _expect(np.all(np.isfinite(components)), "components_", "...", "finite")
    ctx = {
        "cls": type(estimator),
        "n_features": n_features,
        "n_components": n_components,
    }
    _check_values(type(estimator), "dictionary", attributes, ctx)
    # The running statistics the code type keeps, sized on the meta device.
    stats = attributes["inner_stats_"]
    try:
        code = attributes["code_"]
        expected = estimator._code_type(code=code).new_stats(
            n_components, n_features, device="meta", dtype=torch.float64
        )
    except Exception as exc:  # noqa: BLE001 - reported, with its reason
        raise _BadFile(f"no running statistics for this code ({exc})") from None
    _expect(
        isinstance(stats, dict) and set(stats) == set(expected),
        "inner_stats_",
        stats,
        f"a dict with keys {sorted(expected)}",
    )
    for key, tensor in expected.items():
        _check_array(stats[key], f"inner_stats_[{key!r}]", tuple(tensor.shape), "f")
    # A fit computes in the dtype of its data throughout.
    for name, value in [
        ("mean_", attributes["mean_"]),
        ("unmixing_", attributes["unmixing_"]),
        *stats.items(),
    ]:
        if value is not None and (
            value.dtype != components.dtype or not np.all(np.isfinite(value))
        ):
            raise _BadFile(
                f"{name} must be finite {components.dtype}, like components_"
            )
    for name, value in attributes.items():
        setattr(estimator, name, value)


def _check_graph(estimator, attributes, modules, moments):
    """A GraphAutoencoder's arrays: sizes that fit together, finite values."""
    cls = type(estimator)
    if modules or moments is not None:
        raise _BadFile(f"{cls.__name__} has no torch module or optimizer")
    for name in ("n_features_in_", "n_components_"):
        _positive(attributes[name], None, name)
    _nonneg(attributes["n_node_features_"], None, "n_node_features_")
    n_nodes = attributes["n_features_in_"]
    n_components = attributes["n_components_"]
    n_inputs = attributes["n_node_features_"] or n_nodes
    hidden_weights = attributes["hidden_weights_"]
    _check_array(hidden_weights, "hidden_weights_", None, "f", ndim=2)
    width = hidden_weights.shape[1]
    shapes = {
        "hidden_weights_": (n_inputs, width),
        "output_weights_": (width, n_components),
        "embedding_": (n_nodes, n_components),
        "degree_": (n_nodes,),
        "projected_features_": (n_nodes, width),
        "hidden_": (n_nodes, width),
    }
    for name, shape in shapes.items():
        _check_array(attributes[name], name, shape, "f")
        _expect(np.all(np.isfinite(attributes[name])), name, "...", "finite")
    _expect(np.all(attributes["degree_"] >= 1), "degree_", "...", ">= 1 (A + I)")
    _expect(np.all(attributes["hidden_"] >= 0), "hidden_", "...", ">= 0 (a relu)")
    ctx = {"cls": cls, "n_features": n_nodes, "n_components": n_components}
    _check_values(cls, "graph", attributes, ctx)
    for name, value in attributes.items():
        setattr(estimator, name, value)


#: ``architecture_`` of a classifier or regressor: the autoencoder's own
#: (checked by its class) and the head's.
_SUPERVISED_ARCHITECTURE = {
    "autoencoder_class",
    "autoencoder",
    "n_features",
    "n_components",
    "head_layer_sizes",
    "head_activation",
    "n_outputs",
}


def _check_supervised(estimator, attributes, modules, moments):
    """A classifier's or regressor's file: an autoencoder's network, checked by
    the autoencoder's class, with a head of the stored sizes."""
    if moments is not None:
        raise _BadFile(f"{type(estimator).__name__} keeps no optimizer state")
    if set(modules) != {"module_"}:
        raise _BadFile(f"it holds modules {sorted(modules)}, expected ['module_']")
    _positive(attributes["n_features_in_"], None, "n_features_in_")
    _positive(attributes["n_components_"], None, "n_components_")
    architecture = attributes["architecture_"]
    _expect(
        isinstance(architecture, dict)
        and set(architecture) == _SUPERVISED_ARCHITECTURE,
        "architecture_",
        architecture,
        f"a dict with entries {sorted(_SUPERVISED_ARCHITECTURE)}",
    )
    n_outputs = architecture["n_outputs"]
    _positive(n_outputs, None, "architecture_['n_outputs']")
    ctx = {
        "cls": type(estimator),
        "n_features": attributes["n_features_in_"],
        "n_components": attributes["n_components_"],
        "n_outputs": n_outputs,
    }
    _check_values(type(estimator), "supervised", attributes, ctx)
    expected = len(attributes["classes_"]) if "classes_" in attributes else 1
    if n_outputs != expected:
        raise _BadFile(f"architecture_ has {n_outputs} outputs, expected {expected}")
    for key in ("n_features", "n_components"):
        if architecture[key] != ctx[key]:
            raise _BadFile(
                f"architecture_[{key!r}]={_short(architecture[key])} differs from "
                f"the fitted {key}"
            )
    n_tensors = len(modules["module_"])
    sizes = architecture["head_layer_sizes"]
    _expect(
        isinstance(sizes, tuple)
        and len(sizes) <= n_tensors
        and all(_is_int(h) and 1 <= h < _MAX_COUNT for h in sizes),
        "architecture_['head_layer_sizes']",
        sizes,
        "a tuple of positive ints",
    )
    _expect(
        architecture["head_activation"] in ACTIVATIONS,
        "architecture_['head_activation']",
        architecture["head_activation"],
        f"one of {sorted(ACTIVATIONS)}",
    )
    inner = _skae_classes().get(architecture["autoencoder_class"])
    if _family(inner) != "autoencoder":
        raise _BadFile(
            f"architecture_ names {_short(architecture['autoencoder_class'])}, "
            "which is not one of skae's autoencoders"
        )
    _check_architecture(
        inner(),
        architecture["autoencoder"],
        {"loss_": attributes["loss_"]},
        ctx,
        n_tensors=n_tensors,
    )
    for name, value in attributes.items():
        setattr(estimator, name, value)
    network = _meta_network(estimator, architecture)
    _check_weights(network, modules["module_"])
    x = torch.empty(2, ctx["n_features"], device="meta")
    try:
        with torch.no_grad():
            code, output = network.encode(x), network(x)
    except Exception as exc:  # noqa: BLE001 - reported, with its reason
        raise _BadFile(
            f"the network of architecture_ does not run on {ctx['n_features']} "
            f"features ({type(exc).__name__}: {exc})"
        ) from None
    if tuple(code.shape) != (2, ctx["n_components"]) or tuple(output.shape) != (
        2,
        n_outputs,
    ):
        raise _BadFile(
            f"the network of architecture_ maps {ctx['n_features']} features to "
            f"codes of shape {tuple(code.shape)[1:]} and outputs of shape "
            f"{tuple(output.shape)[1:]}; expected ({ctx['n_components']},) and "
            f"({n_outputs},)"
        )


# ------------------------------------------------------------------ helpers
def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _expect(condition, name, value, what):
    if not condition:
        raise _BadFile(f"{name} must be {what}, got {_short(value)}")


def _check_array(value, name, shape, kind, ndim=None):
    if not isinstance(value, np.ndarray) or value.dtype.kind != kind:
        kinds = {"f": "floating-point", "b": "boolean"}
        raise _BadFile(f"{name} must be a {kinds[kind]} array, got {_short(value)}")
    if ndim is not None and value.ndim != ndim:
        raise _BadFile(f"{name} must be {ndim}-D, got shape {value.shape}")
    if shape is not None and value.shape != shape:
        raise _BadFile(f"{name} must have shape {shape}, got {value.shape}")


def _no_modules(estimator, modules, moments):
    if modules or moments is not None:
        raise _BadFile(
            f"{type(estimator).__name__} has no torch module or optimizer of its "
            "own (its estimators have)"
        )


def _check_detector(estimator, attributes, modules, moments):
    """An OutlierDetector: its fitted estimator (already checked by its own
    class) and held-out rows and scores of consistent sizes."""
    _no_modules(estimator, modules, moments)
    n_features = attributes["n_features_in_"]
    _positive(n_features, None, "n_features_in_")
    ctx = {"cls": type(estimator), "n_features": n_features}
    _check_values(type(estimator), "detector", attributes, ctx)
    inner = attributes["estimator_"]
    if getattr(inner, "n_features_in_", None) != n_features:
        raise _BadFile(
            f"estimator_ has {_short(getattr(inner, 'n_features_in_', None))} "
            f"features, the detector n_features_in_={n_features}"
        )
    data = attributes["calibration_data_"]
    _expect(
        isinstance(data, np.ndarray)
        and data.dtype in (np.float32, np.float64)
        and data.ndim == 2
        and data.shape[1] == n_features,
        "calibration_data_",
        data if not isinstance(data, np.ndarray) else f"{data.dtype} {data.shape}",
        f"a float32 or float64 array of shape (n_calibration, {n_features})",
    )
    _expect(np.all(np.isfinite(data)), "calibration_data_", "...", "finite")
    scores = attributes["calibration_scores_"]
    _check_array(scores, "calibration_scores_", (len(data),), "f")
    # p-values search the scores by bisection: they must be sorted numbers.
    _expect(
        scores.dtype == np.float64
        and not np.any(np.isnan(scores))
        and np.all(scores[:-1] <= scores[1:]),
        "calibration_scores_",
        "...",
        "sorted float64 scores, without NaN",
    )
    for name, value in attributes.items():
        setattr(estimator, name, value)


def _check_ensemble(estimator, attributes, modules, moments):
    """AutoencoderEnsemble: fitted members (already checked by their class)
    over the ensemble's features, one normalizer each, and reference rows."""
    _no_modules(estimator, modules, moments)
    n_features = attributes["n_features_in_"]
    _positive(n_features, None, "n_features_in_")
    ctx = {"cls": type(estimator), "n_features": n_features}
    _check_values(type(estimator), "ensemble", attributes, ctx)
    members = attributes["estimators_"]
    for i, member in enumerate(members):
        if member.n_features_in_ != n_features:
            raise _BadFile(
                f"estimators_[{i}] has {member.n_features_in_} features, the "
                f"ensemble n_features_in_={n_features}"
            )
    _expect(np.all(attributes["data_var_"] >= 0), "data_var_", "...", "non-negative")
    normalizers = attributes["normalizers_"]
    _check_array(normalizers, "normalizers_", (len(members),), "f")
    _expect(
        np.all(np.isfinite(normalizers)) and np.all(normalizers > 0),
        "normalizers_",
        "...",
        "finite and positive",
    )
    reference = attributes["reference_"]
    _check_array(reference, "reference_", None, "f", ndim=2)
    _expect(
        reference.shape[0] >= 1 and reference.shape[1] == n_features,
        "reference_",
        f"shape {reference.shape}",
        f"of shape (n_reference >= 1, {n_features})",
    )
    _expect(np.all(np.isfinite(reference)), "reference_", "...", "finite")
    for name, value in attributes.items():
        setattr(estimator, name, value)


_CHECKS = {
    "autoencoder": _check_autoencoder,
    "dictionary": _check_dictionary,
    "supervised": _check_supervised,
    "detector": _check_detector,
    "ensemble": _check_ensemble,
    "graph": _check_graph,
}


def _any_skae_scorer(cls):
    return _family(cls) in {"autoencoder", "dictionary", "ensemble"}


def _ensemble_member(cls):
    # What AutoencoderEnsemble._member builds.
    return cls is AutoencoderTransformer


#: Attributes holding fitted estimators, stored recursively (each as a file
#: of its own would be, its tensors under the attribute's name), by family:
#: ``name: (a list of them?, which classes, those classes in words)``.
_NESTED_ATTRIBUTES = {
    "detector": {
        "estimator_": (
            False,
            _any_skae_scorer,
            "an skae autoencoder, a DictionaryLearner or the default "
            "AutoencoderEnsemble",
        )
    },
    "ensemble": {
        "estimators_": (True, _ensemble_member, "a fitted AutoencoderTransformer")
    },
}
