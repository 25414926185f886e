"""The shared base class of every skae autoencoder estimator.

``BaseAutoencoder`` owns everything that is the same for all models: parameter
validation, input checks and internal scaling, seeding, the training template
(through :mod:`skae._engine`), batched inference, feature names, tags and
persistence. A model subclass supplies only what differs:

- ``_build_module(n_features)``: the torch module (default: an MLP autoencoder);
- ``_make_objective()``: the training objective ``(module, X, training) -> loss``;
- optionally ``_encode``, ``_decode`` and ``_score_batch`` for inference, and
  ``_validate_model_params(n_features)`` for checks that need the data.
"""

import contextlib
import copy
import functools
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from skae import _engine
from skae._dask import DaskDispatchMixin
from skae._losses import reconstruction_loss
from skae.nn import ACTIVATIONS, MLPAutoencoder, output_activation
from skae.utils._device import resolve_device

#: Rows per inference batch: bounds the activations held at once.
INFERENCE_BATCH_SIZE = 4096


def _keeps_fitted_state(method):
    """Undo every attribute change when ``method`` raises: a failed call must
    never leave a fitted model half-modified."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        saved = self.__dict__.copy()
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return wrapper


def _to_cpu(obj):
    """Copy every tensor in a nested dict/list structure to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _chunked_mean_std(X, chunk=65536):
    """Per-feature mean and standard deviation in float64, reading ``chunk``
    rows at a time (Chan et al.'s pairwise update), so an ``np.memmap`` is
    never copied whole."""
    n_total = 0
    mean = np.zeros(X.shape[1])
    m2 = np.zeros(X.shape[1])
    for start in range(0, X.shape[0], chunk):
        block = np.asarray(X[start : start + chunk], dtype=np.float64)
        n = len(block)
        block_mean = block.mean(axis=0)
        block_m2 = ((block - block_mean) ** 2).sum(axis=0)
        delta = block_mean - mean
        total = n_total + n
        mean = mean + delta * n / total
        m2 = m2 + block_m2 + delta**2 * n_total * n / total
        n_total = total
    return mean, np.sqrt(m2 / n_total)


class ReconstructionObjective(torch.nn.Module):
    """Mean reconstruction loss of ``decode(encode(corrupt(x)))`` against ``x``.

    Subclasses add a ``penalty(code, x_in, module)`` or a ``corrupt(x)``; the
    target is always the clean input.
    """

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def corrupt(self, x):
        return x

    def penalty(self, code, x_in, module):
        return None

    def forward(self, module, x, training=True):
        x_in = self.corrupt(x) if training else x
        code = module.encode(x_in)
        value = reconstruction_loss(module.decode(code), x, self.loss).mean()
        extra = self.penalty(code, x_in, module)
        return value if extra is None else value + extra


class BaseAutoencoder(
    DaskDispatchMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Base class for skae autoencoders. Not for direct use: use a subclass."""

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "loss": [StrOptions({"auto", "mse", "bce"})],
        "scaling": [StrOptions({"auto", "standard", "minmax", "none"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "pretraining": [StrOptions({"layerwise"}), None],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ hooks
    def _validate_model_params(self, n_features):
        """Check parameters against the data; raise ValueError naming them."""
        sizes = self.hidden_layer_sizes
        if np.ndim(sizes) != 1 or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h >= 1
            for h in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a sequence of positive integers, got "
                f"{sizes!r}."
            )

    def _code_activation(self):
        return None

    def _build_module(self, n_features):
        return MLPAutoencoder(
            n_features,
            self.n_components,
            tuple(self.hidden_layer_sizes),
            activation=self.activation,
            code_activation=self._code_activation(),
            dropout=self.dropout,
        )

    def _make_objective(self):
        return ReconstructionObjective(self.loss_)

    def _extra_callbacks(self):
        """Additional skorch callbacks as ``(name, callback)`` pairs."""
        return []

    def _encode(self, module, x):
        return module.encode(x)

    def _decode(self, module, z):
        return output_activation(self.loss_)(module.decode(z))

    def _score_batch(self, module, x):
        """Per-sample score, higher = more normal: the negative loss."""
        return -reconstruction_loss(module(x), x, self.loss_)

    # ------------------------------------------------------------ fit helpers
    def _resolve_loss_and_scaling(self, X):
        in_unit_interval = bool(X.min() >= 0 and X.max() <= 1)
        loss = self.loss
        if loss == "auto":
            loss = "bce" if in_unit_interval else "mse"
        scaling = self.scaling
        if scaling == "auto":
            scaling = "minmax" if loss == "bce" else "standard"
        if loss == "bce" and scaling == "standard":
            raise ValueError(
                "loss='bce' needs targets in [0, 1]: use scaling='minmax', 'auto' "
                "or 'none' with it, not scaling='standard'."
            )
        return loss, scaling, in_unit_interval

    def _fit_scaler(self, X, scaling, in_unit_interval):
        n_features = X.shape[1]
        offset = np.zeros(n_features)
        scale = np.ones(n_features)
        if scaling == "standard":
            # Dask input arrives as precomputed statistics (skae._dask.DaskStats).
            if hasattr(X, "mean_std"):
                offset, scale = X.mean_std()
            else:
                offset, scale = _chunked_mean_std(X)
        elif scaling == "minmax" and not in_unit_interval:
            offset = X.min(axis=0).astype(np.float64)
            scale = X.max(axis=0).astype(np.float64) - offset
        # Constant features keep scale 1, as StandardScaler does.
        scale[~(scale > 1e-12 * np.maximum(1.0, np.abs(offset)))] = 1.0
        if not (np.all(np.isfinite(offset)) and np.all(np.isfinite(scale))):
            raise ValueError(
                "Input contains values too large to scale (the per-feature mean or "
                "spread overflows float64); rescale X before fitting."
            )
        self.offset_ = offset
        self.scale_ = scale

    def _training_data(self, X):
        """The training rows, scaled: a device tensor, or for an ``np.memmap`` a
        host-side view read batch by batch (the data never sits in memory whole)."""
        if isinstance(X, np.memmap):
            return _engine.HostArray(X, self.offset_, self.scale_, self.device_)
        Xs = ((X - self.offset_) / self.scale_).astype(np.float32)
        if not np.all(np.isfinite(Xs)):
            raise ValueError(
                "Input contains values that overflow float32 after scaling; "
                "training runs in float32, rescale X before fitting."
            )
        return torch.from_numpy(Xs).to(self.device_)

    def _split_validation(self, data, generator):
        if not self.early_stopping:
            return data, None
        n = len(data)
        n_valid = int(round(self.validation_fraction * n))
        if n_valid < 1 or n - n_valid < 1:
            warnings.warn(
                f"early_stopping=True but {n} sample(s) are too few for a "
                f"validation_fraction={self.validation_fraction} split; training "
                "on all samples and monitoring the training loss instead.",
                UserWarning,
                stacklevel=4,
            )
            return data, None
        if isinstance(data, _engine.HostArray):
            # Out-of-core: hold out the last rows, so reads stay contiguous.
            X = data.X
            train = _engine.HostArray(
                X[: n - n_valid], data.offset, data.scale, data.device
            )
            return train, data.rows(n - n_valid, n)
        order = torch.randperm(n, generator=generator).to(data.device)
        return data[order[n_valid:]], data[order[:n_valid]]

    def _batch_size_for(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        return min(self.batch_size, n_samples)

    @contextlib.contextmanager
    def _seed_context(self, seed):
        """Seed torch's global RNG (init, dropout, noise) inside a fork, so the
        caller's RNG state is left exactly as it was."""
        devices = [self.device_.index or 0] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def _start_training(self, X, seed):
        """Build module, objective and skorch net for a fresh fit."""
        n_features = X.shape[1]
        self.loss_, self.scaling_, in_unit = self._resolve_loss_and_scaling(X)
        self._fit_scaler(X, self.scaling_, in_unit)
        # Initialization draws from the RNG that _seed_context seeded.
        self.module_ = self._build_module(n_features).to(self.device_)
        self.loss_curve_ = []
        self.n_iter_ = 0

    def _make_net(self, n_samples, seed, max_epochs, monitor):
        generator = torch.Generator().manual_seed(seed + 1)
        return _engine.build_net(
            self.module_,
            self._make_objective(),
            learning_rate=self.learning_rate,
            weight_decay=self.alpha,
            batch_size=self._batch_size_for(n_samples),
            shuffle=self.shuffle,
            generator=generator,
            device=self.device_,
            tol=self.tol,
            patience=self.n_iter_no_change,
            monitor=monitor,
            restore_best=monitor == "valid_loss",
            verbose=self.verbose,
            max_epochs=max_epochs,
            extra_callbacks=self._extra_callbacks(),
        )

    def _train(self, net, X_train, X_valid, epochs):
        start = len(net.history)
        reason = _engine.run_epochs(net, X_train, X_valid, epochs)
        # An interrupted epoch leaves a history row without losses: skip it.
        new_epochs = [row for row in net.history[start:] if "train_loss" in row]
        self.loss_curve_ += [float(row["train_loss"]) for row in new_epochs]
        if X_valid is not None:
            self.validation_loss_curve_ = getattr(self, "validation_loss_curve_", [])
            self.validation_loss_curve_ += [
                float(row["valid_loss"]) for row in new_epochs
            ]
        self.n_iter_ = len(self.loss_curve_)
        if reason == "diverged":
            warnings.warn(
                f"{type(self).__name__}: the training loss became NaN or infinite "
                f"at epoch {self.n_iter_}; training stopped and the best weights "
                "seen so far were restored. Lower learning_rate, or check the "
                "scale of X.",
                RuntimeWarning,
                stacklevel=4,
            )
        elif reason == "interrupted":
            warnings.warn(
                f"{type(self).__name__}: training interrupted by user after "
                f"{self.n_iter_} epoch(s); the estimator is fitted with the best "
                "weights seen so far.",
                UserWarning,
                stacklevel=4,
            )
        return reason

    def _gen_seed(self):
        return int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )

    # ------------------------------------------------------------- public API
    @_keeps_fitted_state
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the autoencoder to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, raw: it is scaled internally.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X_input = X
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self._validate_model_params(X.shape[1])
        self.device_ = resolve_device(self.device)
        self.__dict__.pop("validation_loss_curve_", None)
        self.__dict__.pop("_optimizer_state", None)
        seed = self._gen_seed()
        with self._seed_context(seed):
            self._start_training(X, seed)
            X_t = self._training_data(X_input if isinstance(X_input, np.memmap) else X)
            X_train, X_valid = self._split_validation(
                X_t, torch.Generator().manual_seed(seed + 2)
            )
            monitor = "train_loss" if X_valid is None else "valid_loss"
            net = self._make_net(len(X_train), seed, self.max_iter, monitor)
            reason = self._fit_loop(net, X_train, X_valid)
        self._net = net
        if reason is None:
            warnings.warn(
                f"{type(self).__name__}: max_iter={self.max_iter} epochs reached "
                "and the optimization has not converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _fit_loop(self, net, X_train, X_valid):
        """Train: optional greedy layer-wise pretraining, then ``max_iter``
        epochs end to end (subclasses may add phases)."""
        # Imported here: _pretraining builds on this module's objective.
        from skae._pretraining import fit_loop_with_pretraining

        return fit_loop_with_pretraining(self, net, X_train, X_valid)

    @_keeps_fitted_state
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one more epoch on the batch X, keeping the optimizer state.

        The first call initializes the model, its loss and its input scaling
        from X; later calls continue training. ``learning_rate`` and
        ``batch_size`` are read at every call, so a schedule can be applied
        between calls with ``set_params`` (Adam's moment estimates are kept).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.
        """
        first_call = not hasattr(self, "module_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=first_call)
        if first_call:
            self._validate_model_params(X.shape[1])
            self.device_ = resolve_device(self.device)
            self._seed = self._gen_seed()
        seed = self._seed if hasattr(self, "_seed") else self._gen_seed()
        with self._seed_context(seed + self.n_iter_ if not first_call else seed):
            if first_call:
                self._start_training(X, seed)
            X_t = self._training_data(X)
            net = getattr(self, "_net", None)
            if net is None:
                net = self._make_net(len(X_t), seed, 1, "train_loss")
                saved = self.__dict__.pop("_optimizer_state", None)
                if saved is not None:
                    net.optimizer_.load_state_dict(saved)
                self._net = net
            # A stream has no fixed epoch count: only divergence stops it.
            dict(net.callbacks_)["monitor"].patience = None
            net.batch_size = self._batch_size_for(len(X_t))
            _engine.set_learning_rate(net, self.learning_rate)
            self._train(net, X_t, None, 1)
        return self

    def _iter_batches(self, X, fn, n_out, out_dtype, scale_input=True):
        """Apply ``fn(module, x)`` batch by batch under inference_mode.

        ``x`` is a batch of X on the model's device, internally scaled when
        ``scale_input``; only one batch of activations exists at a time.
        """
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        module = self.module_
        if dtype == torch.float64:
            # Compute float64 input in float64: results then do not depend on
            # how rows are batched (float32 gemm vs gemv differ by ~1e-6).
            module = copy.deepcopy(module).double()
        module.eval()
        offset = torch.as_tensor(self.offset_, dtype=dtype, device=self.device_)
        scale = torch.as_tensor(self.scale_, dtype=dtype, device=self.device_)
        out = np.empty((X.shape[0], *n_out), dtype=out_dtype)
        with torch.inference_mode():
            for start in range(0, X.shape[0], INFERENCE_BATCH_SIZE):
                chunk = X[start : start + INFERENCE_BATCH_SIZE]
                # A read-only memmap slice is copied: torch wants writable memory.
                if chunk.flags.writeable:
                    chunk = np.ascontiguousarray(chunk)
                else:
                    chunk = np.array(chunk, order="C")
                x = torch.as_tensor(chunk, device=self.device_).to(dtype)
                if scale_input:
                    x = (x - offset) / scale
                result = fn(module, x)
                out[start : start + len(chunk)] = result.cpu().numpy()
        return out

    def _check_output(self, out, what):
        if not np.all(np.isfinite(out)):
            raise ValueError(
                f"{type(self).__name__} produced non-finite {what}: the input is "
                "far outside the range the model was trained on (values too large "
                "for float32)."
            )
        return out

    def _validated_float(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def transform(self, X):
        """Encode X into the latent space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data in the units seen in ``fit``.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Codes, in X's float dtype.
        """
        X = self._validated_float(X)
        Z = self._iter_batches(X, self._encode, (self.n_components,), X.dtype)
        return self._check_output(Z, "codes")

    def inverse_transform(self, X):
        """Decode codes back to the input space, in the original units.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            Reconstructions in the units of the training data.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform is expecting "
                f"{self.n_components} features (n_components) as input."
            )

        X_hat = self._iter_batches(
            Z, self._decode, (self.n_features_in_,), Z.dtype, scale_input=False
        )
        X_hat = X_hat * self.scale_.astype(Z.dtype) + self.offset_.astype(Z.dtype)
        return self._check_output(X_hat, "reconstructions")

    def score_samples(self, X):
        """Per-sample score: higher means more normal.

        For deterministic autoencoders this is the negative mean reconstruction
        loss (MSE or BCE, as trained) of each sample, in the internally scaled
        space, so it can be used directly as an anomaly score.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        X = self._validated_float(X)
        scores = self._iter_batches(X, self._score_batch, (), X.dtype)
        return self._check_output(scores, "scores")

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`: higher is better.

        This makes ``GridSearchCV(estimator, ...)`` work with no ``scoring``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))

    # ------------------------------------------------------------ properties
    @property
    def _n_features_out(self):
        return self.n_components

    @property
    def encoder_(self):
        """The fitted torch encoder module."""
        return self.module_.encoder

    @property
    def decoder_(self):
        """The fitted torch decoder module."""
        return self.module_.decoder

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = False
        return tags

    # ----------------------------------------------------------- persistence
    def __getstate__(self):
        state = dict(super().__getstate__())  # may be self.__dict__ itself
        # The skorch net only carries optimizer state between partial_fit
        # calls; weights travel as CPU tensors so a CUDA model loads anywhere.
        net = state.pop("_net", None)
        if net is not None:
            # Adam's moments let partial_fit continue seamlessly after a reload.
            state["_optimizer_state"] = _to_cpu(net.optimizer_.state_dict())
        if "module_" in state:
            module = state["module_"]
            state["module_"] = {
                k: v.detach().cpu().clone() for k, v in module.state_dict().items()
            }
        return state

    def __setstate__(self, state):
        weights = state.get("module_")
        super().__setstate__(state)
        if isinstance(weights, dict):
            self._restore_modules({"module_": weights}, None)

    def _restore_modules(self, states, device):
        """Rebuild ``module_`` from a CPU state dict, on ``device`` (None: the
        saved device when this machine has it, else the CPU)."""
        if device is None:
            device = getattr(self, "device_", torch.device("cpu"))
            if device.type == "cuda" and not torch.cuda.is_available():
                device = torch.device("cpu")
        self.device_ = resolve_device(device)
        module = self._build_module(self.n_features_in_)
        module.load_state_dict(states["module_"])
        self.module_ = module.to(self.device_)
