"""The shared base class of every skae autoencoder estimator.

``BaseAutoencoder`` owns what is the same for all models: parameter and input
validation, internal scaling, seeding, the one training template, batched
inference, feature names, tags and persistence. ``fit`` and ``partial_fit``
are thin wrappers over :meth:`BaseAutoencoder._fit`, which runs

    validate → data source (:mod:`skae._sources`) → phases
    (:mod:`skae._phases`) → engine (:mod:`skae._engine`) → module → objective

for NumPy arrays, memory maps and dask collections alike, and for
``skae.distributed.fit_distributed``. A model supplies only what differs:

- ``_architecture(n_features)``: the fitted description of its network (a
  plain dict, kept as ``architecture_``), and ``_build_module(architecture)``
  the torch module it describes (see :mod:`skae.nn` for the module protocol;
  :class:`skae._mlp.MLPMixin` provides both for MLPs);
- ``_make_objective()``: the training objective (:mod:`skae._objectives`);
- optionally ``_phases()``, ``_extra_callbacks()``, ``_record_epochs(result)``,
  ``_after_training(rows)``, ``_encode``, ``_decode``, ``_score_batch`` and
  ``_validate_model_params(n_features)``.

Every fitted attribute a model needs at inference or to continue training is
set by the template from the data and the parameters *at fit time*: changing a
parameter with ``set_params`` does not change a fitted model until it is
refitted, as in scikit-learn.
"""

import contextlib
import copy
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
from sklearn.utils.validation import check_array, check_is_fitted

from skae import _engine, _random
from skae._dask import DaskDispatchMixin
from skae._input import as_source, validate_float_rows
from skae._losses import constant_prediction_loss, reconstruction_loss
from skae._objectives import ReconstructionObjective
from skae._phases import EndToEnd, TrainingSession
from skae.nn import output_activation
from skae.utils._device import resolve_device
from skae.utils._float_mode import flush_subnormals
from skae.utils._threads import threads_sized_to
from skae.utils._warnings import warn_user

#: Rows that estimate the loss of predicting the mean row (the divergence
#: test's floor, a scale, not a result): a training batch's worth, so that an
#: out-of-core fit reads no more at once than one of its steps.
LOSS_FLOOR_ROWS = 256

#: Rows per inference batch: bounds the activations held at once.
INFERENCE_BATCH_SIZE = 4096

# Random streams of a training call, as (last) spawn-key entries.
_TORCH_STREAM, _SHUFFLE_STREAM, _SPLIT_STREAM, _PHASE_STREAM = range(4)


def _stream_seed(entropy, *key):
    """A 32-bit seed for the independent random stream ``key`` of ``entropy``.

    Every stream of every call comes from one ``np.random.SeedSequence``
    (``fit``: key ``(0, stream)``; the partial_fit call after ``n`` epochs:
    ``(1, n, stream)``), never from ``seed + offset`` arithmetic, whose
    streams collide across calls.
    """
    sequence = np.random.SeedSequence(entropy, spawn_key=key)
    return int(sequence.generate_state(1)[0])


@contextlib.contextmanager
def _rollback_on_error(estimator):
    """Leave ``estimator`` exactly as it was when the block raises.

    Attributes are restored from a shallow copy (the template replaces
    containers rather than mutating them) and the module's weights, which
    training changes in place, from a copy taken on entry.
    """
    saved = dict(estimator.__dict__)
    module = saved.get("module_")
    weights = None
    if isinstance(module, torch.nn.Module):
        weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        if weights is not None:
            module.load_state_dict(weights)
        raise


def _to_cpu(obj):
    """Copy every tensor in a nested dict/list structure to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


class BaseAutoencoder(
    DaskDispatchMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Base class for skae autoencoders. Not for direct use: use a subclass."""

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "loss": [StrOptions({"auto", "mse", "bce"})],
        "scaling": [StrOptions({"auto", "global", "standard", "minmax", "none"})],
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
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ hooks
    def _validate_model_params(self, n_features):
        """Check parameters against the data; raise ValueError naming them."""

    def _architecture(self, n_features):
        """The network's description, a dict of plain values (``architecture_``)."""
        raise NotImplementedError

    def _build_module(self, architecture):
        """The torch module described by ``architecture``."""
        raise NotImplementedError

    def _initialize_module(self, module, rows):
        """Model-specific initialization of a freshly built module, which may
        look at the (scaled) training rows."""

    def _make_objective(self):
        return ReconstructionObjective(self.loss_)

    def _extra_callbacks(self):
        """Additional skorch callbacks as ``(name, callback)`` pairs."""
        return []

    def _phases(self):
        """The training phases of ``fit``, in order (see :mod:`skae._phases`)."""
        return [EndToEnd(self.max_iter)]

    def _record_epochs(self, result):
        """Turn a phase's history rows into model-specific fitted curves."""

    def _after_training(self, rows):
        """Fitted statistics computed from the training rows after training."""

    def _encode(self, module, x):
        return module.encode(x)

    def _decode(self, module, z):
        return output_activation(self.loss_)(module.decode(z))

    def _score_batch(self, module, x):
        """Per-sample score, higher = more normal: the negative loss."""
        return -reconstruction_loss(module(x), x, self.loss_)

    # ------------------------------------------------------------ fit helpers
    def _auto_loss(self, in_unit_interval):
        """The loss ``loss="auto"`` resolves to: the Bernoulli likelihood
        (BCE) for data in [0, 1], the Gaussian (MSE) otherwise."""
        return "bce" if in_unit_interval else "mse"

    def _resolve_loss_and_scaling(self, stats):
        in_unit_interval = bool(stats.min.min() >= 0 and stats.max.max() <= 1)
        loss = self.loss
        if loss == "auto":
            loss = self._auto_loss(in_unit_interval)
        scaling = self.scaling
        if scaling == "auto":
            scaling = "minmax" if loss == "bce" else "global"
        if loss == "bce" and scaling in ("standard", "global"):
            raise ValueError(
                "loss='bce' needs targets in [0, 1]: use scaling='minmax', 'auto' "
                f"or 'none' with it, not scaling={scaling!r}."
            )
        if loss == "bce" and scaling == "none" and not in_unit_interval:
            raise ValueError(
                "loss='bce' needs targets in [0, 1], but X has values outside "
                "[0, 1] and scaling='none' leaves them there: use scaling='minmax' "
                "or 'auto', or loss='mse'."
            )
        return loss, scaling, in_unit_interval

    def _fit_scaler(self, stats, scaling, in_unit_interval):
        n_features = len(stats.mean)
        offset = np.zeros(n_features)
        scale = np.ones(n_features)
        if scaling == "standard":
            offset, scale = stats.mean.copy(), stats.std.copy()
        elif scaling == "global":
            # Centred, and one scale for all features (their root mean
            # variance): the features keep their relative weights, so the MSE
            # is PCA's objective up to a constant, in X's units.
            offset = stats.mean.copy()
            scale = np.full(n_features, np.sqrt(np.mean(stats.std**2)))
        elif scaling == "minmax" and not in_unit_interval:
            offset = stats.min.astype(np.float64)
            scale = stats.max.astype(np.float64) - offset
        # Constant features keep scale 1, as StandardScaler does. "Constant"
        # is relative to the feature's own magnitude (rounding noise), never
        # an absolute threshold: data in tiny units must scale like any other.
        constant = ~(scale > 10 * np.finfo(np.float64).eps * np.abs(offset))
        scale[constant | (scale == 0)] = 1.0
        if not (np.all(np.isfinite(offset)) and np.all(np.isfinite(scale))):
            raise ValueError(
                "Input contains values too large to scale (the per-feature mean or "
                "spread overflows float64); rescale X before fitting."
            )
        self.offset_ = offset
        self.scale_ = scale

    def _begin_training(self, stats, n_features, device, entropy):
        """Fitted attributes of a fresh fit, before any training step."""
        for name in ("validation_loss_curve_", "_optimizer_moments", "module_"):
            self.__dict__.pop(name, None)
        self.device_ = device
        self.random_seed_ = int(entropy)
        self.loss_, self.scaling_, in_unit = self._resolve_loss_and_scaling(stats)
        self._fit_scaler(stats, self.scaling_, in_unit)
        self.architecture_ = self._architecture(n_features)
        self.n_components_ = self.architecture_["n_components"]
        self.loss_curve_ = []
        self.n_iter_ = 0
        self.n_pretraining_iter_ = 0

    def _split_validation(self, rows, generator):
        if not self.early_stopping:
            return rows, None
        n = len(rows)
        n_valid = int(round(self.validation_fraction * n))
        if n_valid < 1 or n - n_valid < 1:
            warn_user(
                f"early_stopping=True but {n} sample(s) are too few for a "
                f"validation_fraction={self.validation_fraction} split; training "
                "on all samples and monitoring the training loss instead."
            )
            return rows, None
        return rows.split(n_valid, generator)

    def _batch_size_for(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        return min(self.batch_size, n_samples)

    def _generator(self, seed):
        """The call's own generator for training noise (see skae._random)."""
        return torch.Generator(device=self.device_).manual_seed(seed)

    def _make_net(
        self,
        module,
        objective,
        n_rows,
        generator,
        max_epochs,
        *,
        monitor="train_loss",
        loss_floor=0.0,
    ):
        """A net with this estimator's optimizer and stopping settings;
        ``loss_floor``: see :func:`skae._engine.build_net`."""
        main = module is self.module_
        return _engine.build_net(
            module,
            objective,
            learning_rate=self.learning_rate,
            weight_decay=self.alpha,
            batch_size=self._batch_size_for(n_rows),
            shuffle=self.shuffle,
            generator=generator,
            device=self.device_,
            tol=self.tol,
            patience=self.n_iter_no_change,
            monitor=monitor,
            restore_best=False,
            verbose=self.verbose if main else 0,
            max_epochs=max_epochs,
            extra_callbacks=self._extra_callbacks() if main else (),
            epoch_offset=self.n_iter_,
            loss_floor=loss_floor,
        )

    def _loss_floor(self, rows):
        """The loss scale below which a rise of the training loss is not
        divergence: the loss of predicting the mean row, estimated on the
        first ``LOSS_FLOOR_ROWS`` rows (a PCA start can sit far below it)."""
        first = next(iter(rows.batches(LOSS_FLOOR_ROWS)))
        return constant_prediction_loss(first, self.loss_)

    def _record(self, result):
        """Append a phase's epochs to the fitted curves."""
        rows = result.rows
        self.loss_curve_ = self.loss_curve_ + [float(r["train_loss"]) for r in rows]
        if any("valid_loss" in r for r in rows):
            self.validation_loss_curve_ = self.validation_loss_curve_ + [
                float(r["valid_loss"]) for r in rows
            ]
        if result.pretraining:
            self.n_pretraining_iter_ += len(rows)
        else:
            self._record_epochs(result)
        self.n_iter_ = len(self.loss_curve_)

    def _n_parameters(self, module=None):
        module = self.module_ if module is None else module
        return sum(p.numel() for p in module.parameters())

    def _gen_seed(self):
        return int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )

    # --------------------------------------------------------------- template
    def _fit(self, X, *, incremental, group=None):
        """The training template behind ``fit``, ``partial_fit`` and
        ``fit_distributed``.

        Parameters
        ----------
        X : array-like, np.memmap or dask collection
        incremental : bool
            False: a fresh fit, all phases. True: one more epoch over X with
            the optimizer's state carried over (the first call starts a fit).
        group : skae.distributed.ProcessGroup, default=None
            Data-parallel training: this process trains on its shard.
        """
        with _rollback_on_error(self), flush_subnormals():
            fresh = not (incremental and hasattr(self, "module_"))
            source = as_source(self, X, reset=fresh)
            if fresh:
                self._validate_model_params(source.n_features)
                device = resolve_device(self.device)
                entropy = self._gen_seed()
                if group is not None:
                    group.check_supported(self)
                    device, entropy = group.device(device), group.broadcast(entropy)
                stats = source.statistics()
                self._begin_training(stats, source.n_features, device, entropy)
            scaled = (self.offset_, self.scale_, self.device_)
            all_rows = source.training_rows(*scaled) if group is not None else None
            if group is not None:
                source = source.shard(group.rank, group.world_size)
            rows = source.training_rows(*scaled)
            # A data-driven start (e.g. PCA) looks at all rows, like the
            # scaling statistics: every process starts from the same model.
            start_rows = rows if all_rows is None else all_rows
            key = (1, self.n_iter_) if incremental else (0,)
            seed = _stream_seed(self.random_seed_, *key, _TORCH_STREAM)
            with contextlib.ExitStack() as threads:
                if fresh:
                    # Modules initialize themselves from torch's global generator.
                    with _random.seeded_global_rng(seed, self.device_):
                        module = self._build_module(self.architecture_)
                        # A data-driven start (the PCA start's eigh) computes
                        # as much as an epoch: its threads are sized too.
                        threads.enter_context(self._sized_threads(rows, module))
                        self._initialize_module(module, start_rows)
                    self.module_ = module.to(self.device_)
                else:
                    threads.enter_context(self._sized_threads(rows, self.module_))
                with _random.generator_scope(self._generator(seed)):
                    if incremental:
                        reason = self._train_one_epoch(rows, key)
                    else:
                        reason = self._train_phases(rows, key, group)
                    self._after_training(rows)
            if group is not None:
                group.check_same_weights(self.module_)
        self._report(reason, incremental)
        return self

    def _sized_threads(self, rows, module):
        """The intra-op threads for training ``module`` on ``rows``."""
        work = self._batch_size_for(len(rows)) * self._n_parameters(module)
        return threads_sized_to(work, self.device_, self.n_jobs)

    def _train_phases(self, rows, key, group):
        rank = () if group is None or group.rank == 0 else (group.rank,)
        split = torch.Generator().manual_seed(
            _stream_seed(self.random_seed_, *key, _SPLIT_STREAM, *rank)
        )
        train, valid = self._split_validation(rows, split)
        if valid is not None:
            self.validation_loss_curve_ = []
        shuffle = torch.Generator().manual_seed(
            _stream_seed(self.random_seed_, *key, _SHUFFLE_STREAM, *rank)
        )
        net = self._make_net(
            self.module_,
            self._make_objective(),
            len(train),
            shuffle,
            self.max_iter,
            monitor="train_loss" if valid is None else "valid_loss",
            loss_floor=self._loss_floor(train),
        )
        if group is not None:
            net = group.wrap(net)
        session = TrainingSession(
            net,
            train,
            valid,
            make_net=self._make_net,
            loss=self.loss_,
            patience=self.n_iter_no_change,
            seed=_stream_seed(self.random_seed_, *key, _PHASE_STREAM),
        )
        reason = None
        for phase in self._phases():
            result = phase.run(session)
            self._record(result)
            reason = result.reason
            if reason is not None:
                break
        # partial_fit continues from this fit's Adam moments.
        self._optimizer_moments = _engine.optimizer_moments(net)
        return reason

    def _train_one_epoch(self, rows, key):
        shuffle = torch.Generator().manual_seed(
            _stream_seed(self.random_seed_, *key, _SHUFFLE_STREAM)
        )
        net = self._make_net(
            self.module_,
            self._make_objective(),
            len(rows),
            shuffle,
            1,
            loss_floor=self._loss_floor(rows),
        )
        # A stream has no fixed epoch count: only divergence stops it, and the
        # restore point is the start of this call.
        dict(net.callbacks_)["monitor"].configure(patience=None, restore_best=False)
        _engine.load_optimizer_moments(net, getattr(self, "_optimizer_moments", {}))
        result = TrainingSession(
            net, rows, None, make_net=None, loss=self.loss_, patience=None, seed=None
        ).run_epochs(1)
        self._record(result)
        if result.reason != "diverged":
            # A diverged step is undone, moments included.
            self._optimizer_moments = _engine.optimizer_moments(net)
        return result.reason

    def _report(self, reason, incremental):
        name = type(self).__name__
        if reason == "diverged":
            undone = (
                "this call's epoch was undone"
                if incremental
                else "training stopped and the best weights seen so far were restored"
            )
            warn_user(
                f"{name}: the training loss diverged (NaN, infinite or exploding) "
                f"at epoch {self.n_iter_}; {undone}. Lower learning_rate, or check the "
                "scale of X.",
                RuntimeWarning,
            )
        elif reason == "degraded":
            warn_user(
                f"{name}: the training loss ended far above its best value (last "
                "epochs made the model worse); the best weights were restored. "
                "Lower learning_rate.",
                RuntimeWarning,
            )
        elif reason == "interrupted":
            warn_user(
                f"{name}: training interrupted by user after {self.n_iter_} "
                "epoch(s); the estimator is fitted with the best weights seen so far."
            )
        elif reason is None and not incremental:
            warn_user(
                f"{name}: max_iter={self.max_iter} epochs reached and the "
                "optimization has not converged yet.",
                ConvergenceWarning,
            )

    # ------------------------------------------------------------- public API
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the autoencoder to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, raw: it is scaled internally. An ``np.memmap`` is
            read batch by batch; a dask array or DataFrame chunk by chunk.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one more epoch on the batch X, keeping the optimizer state.

        The first call initializes the model, its loss and its input scaling
        from X; later calls continue training. ``learning_rate``, ``alpha``
        and ``batch_size`` are read at every call, so a schedule can be
        applied between calls with ``set_params`` (Adam's moment estimates
        are kept). A call whose epoch diverges is undone, with a warning.

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
        return self._fit(X, incremental=True)

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
        rows = min(INFERENCE_BATCH_SIZE, X.shape[0])
        work = rows * self._n_parameters()
        with (
            threads_sized_to(work, self.device_, self.n_jobs),
            flush_subnormals(),
            torch.inference_mode(),
        ):
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
        # A float np.memmap stays mapped: inference reads it batch by batch.
        return validate_float_rows(self, X, reset=False)

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
        Z = self._iter_batches(X, self._encode, (self.n_components_,), X.dtype)
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
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform is expecting "
                f"{self.n_components_} features (n_components_) as input."
            )

        X_hat = self._iter_batches(
            Z, self._decode, (self.n_features_in_,), Z.dtype, scale_input=False
        )
        X_hat = X_hat * self.scale_.astype(Z.dtype) + self.offset_.astype(Z.dtype)
        return self._check_output(X_hat, "reconstructions")

    def _scores_or_least_normal(self, scores):
        """Rows whose score overflows are as abnormal as can be: ``-inf``.

        An anomaly scorer must still score every other row when one row holds
        a value too large for float32 (e.g. 1e20), exactly when it meets an
        anomaly; it warns instead of raising.
        """
        bad = ~np.isfinite(scores)
        if bad.any():
            scores[bad] = -np.inf
            warn_user(
                f"{type(self).__name__}.score_samples: {int(bad.sum())} row(s) "
                "hold values too large to score (far outside the training range); "
                "they get the lowest possible score, -inf."
            )
        return scores

    def score_samples(self, X):
        """Per-sample score: higher means more normal.

        For deterministic autoencoders this is the negative mean reconstruction
        loss (MSE or BCE, as trained) of each sample, in the internally scaled
        space, so it can be used directly as an anomaly score. Rows too large
        to score (overflowing float32) get ``-inf``, with a warning.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        X = self._validated_float(X)
        scores = self._iter_batches(X, self._score_batch, (), X.dtype)
        return self._scores_or_least_normal(scores)

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
        return self.n_components_

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
        # Weights and Adam's moments travel as CPU tensors, so a CUDA model
        # loads anywhere; the module is rebuilt from ``architecture_``.
        if "module_" in state:
            state["module_"] = _to_cpu(state["module_"].state_dict())
        if "_optimizer_moments" in state:
            state["_optimizer_moments"] = _to_cpu(state["_optimizer_moments"])
        return state

    def __setstate__(self, state):
        weights = state.get("module_")
        super().__setstate__(state)
        if isinstance(weights, dict):
            self._restore_modules({"module_": weights}, None)

    def _restore_modules(self, states, device):
        """Rebuild ``module_`` from ``architecture_`` and a CPU state dict, on
        ``device`` (None: the saved device when this machine has it, else the
        CPU)."""
        if device is None:
            device = getattr(self, "device_", torch.device("cpu"))
            if device.type == "cuda" and not torch.cuda.is_available():
                device = torch.device("cpu")
        self.device_ = resolve_device(device)
        module = self._build_module(self.architecture_)
        module.load_state_dict(states["module_"])
        self.module_ = module.to(self.device_)
