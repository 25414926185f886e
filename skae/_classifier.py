"""Autoencoders that teach a predictor: pretrain on every row, fine-tune on the labeled.

:class:`AutoencoderClassifier` and :class:`AutoencoderRegressor` compose an
skae autoencoder with a small prediction head. ``fit(X, y)`` runs

    validate → pretraining (the inner autoencoder's own ``fit`` on every row,
    or a copy of an already fitted ``encoder``) → the head alone on the frozen
    codes of the labeled rows → optionally the whole network on the labeled
    rows, with the autoencoder's own objective on all rows as a regularizer

where both fine-tuning phases are :class:`skae._phases.EndToEnd` phases run by
:func:`skae._engine.build_net`, the same engine, stopping rule, divergence
handling and random streams as every autoencoder's fit. Only the rows differ:
:class:`LabeledRows` are training rows (see :mod:`skae._sources`) whose
batches carry targets, and draw a batch of rows for the regularizer with each.
"""

import copy
import math
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit, softmax
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_random_state, metadata_routing
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from skae import _engine, _random
from skae._base import (
    _PHASE_STREAM,
    _SHUFFLE_STREAM,
    _SPLIT_STREAM,
    _TORCH_STREAM,
    BaseAutoencoder,
    _rollback_on_error,
    _stream_seed,
    _to_cpu,
)
from skae._denoising import DenoisingAE
from skae._objectives import ReconstructionObjective
from skae._phases import EndToEnd, TrainingSession
from skae._propagation import knn_graph, propagate, pseudo_labels
from skae._sources import ArraySource, _Pass
from skae.nn import ACTIVATIONS, make_mlp
from skae.utils import all_estimators
from skae.utils._device import resolve_device
from skae.utils._float_mode import flush_subnormals
from skae.utils._threads import threads_sized_to
from skae.utils._warnings import warn_user

_FLOAT_DTYPES = [np.float64, np.float32]
#: Rows per inference batch (bounds the activations held at once).
INFERENCE_BATCH_SIZE = 4096
#: The random stream of the pretraining fit (after those of skae._base).
_PRETRAINING_STREAM = 4
#: Label of an unlabeled row (scikit-learn's semi-supervised convention).
UNLABELED = -1
ROUNDS_DEFAULT = 1
#: Most epochs of a pseudo-labeling round (passes over every row, not only the
#: labeled: it starts from a fine-tuned network, and its rows are many).
PSEUDO_LABEL_EPOCHS = 10
#: How a phase's ending ranks when two phases' endings are reported as one:
#: the fit warns about the worst (a phase that never converged is worse than
#: one that did, a failure worse than either).
_SEVERITY = {"converged": 0, None: 1, "degraded": 2, "diverged": 3, "interrupted": 4}

#: ``polish="auto"`` polishes from this share of labeled rows up (issue 18,
#: round 6 in benchmarks/RESULTS.md: chosen with every row or half of them
#: labeled; the few-label settings keep their regularizers to the end).
POLISH_FROM_LABELED_SHARE = 0.5


# ------------------------------------------------------------ training rows
class LabeledBatch:
    """A mini-batch of labeled rows, and rows for the regularizer.

    ``len`` is the number of labeled rows: the engine weighs each batch's
    loss by it when averaging an epoch.
    """

    __slots__ = ("x", "y", "pool", "weight")

    def __init__(self, x, y, pool=None, weight=None):
        self.x = x
        self.y = y
        self.pool = pool
        self.weight = weight

    def __len__(self):
        return len(self.y)


class LabeledRows:
    """Training rows with targets, plus an optional pool of rows to reconstruct.

    The interface of :mod:`skae._sources` training rows (``len``,
    ``rows``, ``batches``, ``split``), whose batches are
    :class:`LabeledBatch`. With a ``pool``, every batch also carries
    ``pool_batch_size`` rows of the pool drawn at random (with replacement,
    from the pass's generator): the regularizer sees the unlabeled rows at
    the pace of the labeled ones, however few these are.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Scaled inputs on the training device.
    y : torch.Tensor of shape (n_samples,) or (n_samples, n_outputs)
        Targets: class indices (int64) or scaled values (float32).
    pool : torch.Tensor of shape (n_pool, n_features), default=None
        Scaled rows for the regularizer.
    pool_batch_size : int, default=200
    stratify : bool, default=False
        ``split`` keeps each class's share (``y`` holds class indices).
    weight : torch.Tensor of shape (n_samples,), default=None
        Per-row weights of the task loss (pseudo-labels); None weighs every
        row 1.
    index : torch.Tensor of shape (n_samples,), default=None
        Position of each row in the pool (kept by ``split``).

    Examples
    --------
    >>> import torch
    >>> from skae._classifier import LabeledRows
    >>> rows = LabeledRows(torch.zeros(5, 2), torch.arange(5), torch.ones(9, 2), 3)
    >>> [(len(b), len(b.pool)) for b in rows.batches(2)]
    [(2, 3), (2, 3), (1, 3)]
    """

    def __init__(
        self,
        X,
        y,
        pool=None,
        pool_batch_size=200,
        *,
        stratify=False,
        weight=None,
        index=None,
    ):
        self.X = X
        self.y = y
        self.pool = pool
        self.pool_batch_size = pool_batch_size
        self.stratify = stratify
        self.weight = weight
        self.index = index

    def __len__(self):
        return len(self.X)

    def rows(self, start, stop):
        return self.X[start:stop]

    def batches(self, batch_size, shuffle=False, generator=None):
        return _Pass(self._iter_batches, len(self), batch_size, shuffle, generator)

    def _iter_batches(self, batch_size, shuffle, generator):
        X, y, weight = self.X, self.y, self.weight
        if shuffle:
            order = torch.randperm(len(X), generator=generator).to(X.device)
            X, y = X.index_select(0, order), y.index_select(0, order)
            if weight is not None:
                weight = weight.index_select(0, order)
        for start in range(0, len(X), batch_size):
            pool = None
            if self.pool is not None:
                drawn = torch.randint(
                    len(self.pool), (self.pool_batch_size,), generator=generator
                )
                pool = self.pool.index_select(0, drawn.to(X.device))
            yield LabeledBatch(
                X[start : start + batch_size],
                y[start : start + batch_size],
                pool,
                None if weight is None else weight[start : start + batch_size],
            )

    def split(self, n_valid, generator):
        """A random held-out part of about ``n_valid`` rows (no pool) and the rest.

        Stratified rows keep at least one row of every class for training.
        Weights are dropped: only rows of true labels (weight 1) are split.
        """
        if self.stratify:
            held_out = []
            for label in torch.unique(self.y):
                members = torch.nonzero(self.y == label).flatten().cpu()
                members = members[torch.randperm(len(members), generator=generator)]
                share = round(n_valid * len(members) / len(self))
                held_out.append(members[: min(share, len(members) - 1)])
            mask = torch.zeros(len(self), dtype=torch.bool)
            mask[torch.cat(held_out)] = True
            valid, train = torch.nonzero(mask).flatten(), torch.nonzero(~mask).flatten()
        else:
            order = torch.randperm(len(self), generator=generator)
            valid, train = order[:n_valid], order[n_valid:]
        train, valid = train.to(self.X.device), valid.to(self.X.device)

        def positions(part):
            return None if self.index is None else self.index[part]

        return (
            LabeledRows(
                self.X[train],
                self.y[train],
                self.pool,
                self.pool_batch_size,
                stratify=self.stratify,
                index=positions(train),
            ),
            LabeledRows(
                self.X[valid],
                self.y[valid],
                stratify=self.stratify,
                index=positions(valid),
            ),
        )


# ------------------------------------------------------------------ modules
class SupervisedAutoencoder(torch.nn.Module):
    """An autoencoder module with a prediction head on its code.

    Follows :class:`skae.nn.AutoencoderModule` (``encoder``, ``decoder``,
    ``encode``, ``decode``) and adds ``head``; ``forward`` is the prediction
    ``head(encode(x))``. An encoder that returns ``(mean, log_variance)``
    (the VAE's) is read through its mean.

    Examples
    --------
    >>> import torch
    >>> from skae.nn import MLPAutoencoder, make_mlp
    >>> from skae._classifier import SupervisedAutoencoder
    >>> net = SupervisedAutoencoder(MLPAutoencoder(6, 2, (4,)), make_mlp([2, 3]))
    >>> net(torch.zeros(5, 6)).shape
    torch.Size([5, 3])
    """

    def __init__(self, autoencoder, head):
        super().__init__()
        self.autoencoder = autoencoder
        self.head = head

    @property
    def encoder(self):
        return self.autoencoder.encoder

    @property
    def decoder(self):
        return self.autoencoder.decoder

    def encode(self, x):
        code = self.autoencoder.encode(x)
        return code[0] if isinstance(code, tuple) else code

    def decode(self, z):
        return self.autoencoder.decode(z)

    def forward(self, x):
        return self.head(self.encode(x))


class HeadOnCodes(torch.nn.Module):
    """The head alone, trained on precomputed codes (``encode`` is the identity).

    The head-only phase trains this module: the encoder's parameters are not
    in it, so no optimizer ever sees them.
    """

    def __init__(self, head):
        super().__init__()
        self.head = head

    def encode(self, x):
        return x


class SupervisedObjective(ReconstructionObjective):
    """``task(head(encode(x~)), y) + weight * pretraining(autoencoder, pool)``.

    ``pretraining`` is the pretrained autoencoder's own training objective
    (reconstruction, with its corruption or penalty), applied to the batch's
    pool rows; with ``corrupt_inputs`` the labeled inputs are also corrupted
    as it corrupts them (``x~``). Both only while training: validation scores
    the task loss of clean inputs. The schedule hooks are handed on to
    ``pretraining``.

    Parameters
    ----------
    task : callable
        ``task(output, target) -> scalar``.
    pretraining : ReconstructionObjective or None, default=None
    weight : float, default=0.0
    corrupt_inputs : bool, default=False

    Examples
    --------
    >>> import torch
    >>> from skae.nn import MLPAutoencoder, make_mlp
    >>> from skae._classifier import (
    ...     LabeledBatch, SupervisedAutoencoder, SupervisedObjective, _cross_entropy
    ... )
    >>> net = SupervisedAutoencoder(MLPAutoencoder(6, 2), make_mlp([2, 3]))
    >>> batch = LabeledBatch(torch.zeros(4, 6), torch.tensor([0, 1, 2, 0]))
    >>> SupervisedObjective(_cross_entropy)(net, batch).ndim
    0
    """

    def __init__(self, task, pretraining=None, weight=0.0, corrupt_inputs=False):
        super().__init__(loss=None)
        self.task = task
        self.pretraining = pretraining
        self.weight = weight
        self.corrupt_inputs = corrupt_inputs

    def begin_epoch(self, epoch):
        if self.pretraining is not None:
            self.pretraining.begin_epoch(epoch)

    def epoch_statistics(self):
        if self.pretraining is None:
            return {}
        return self.pretraining.epoch_statistics()

    def forward(self, module, batch, training=True):
        x = batch.x
        if training and self.corrupt_inputs:
            x = self.pretraining.corrupt(x)
        output = module.head(module.encode(x))
        if training and batch.weight is not None:
            value = self.task(output, batch.y, batch.weight)
        else:
            value = self.task(output, batch.y)
        if training and self.weight > 0 and batch.pool is not None:
            value = value + self.weight * self.pretraining(
                module.autoencoder, batch.pool, training=True
            )
        return value


def _cross_entropy(logits, y, weight=None):
    if weight is None:
        return F.cross_entropy(logits, y)
    # The batch mean of weighted row losses (Iscen et al.'s weighted loss).
    return (F.cross_entropy(logits, y, reduction="none") * weight).mean()


def _squared_error(output, y, weight=None):
    if weight is None:
        return F.mse_loss(output.squeeze(-1), y)
    return ((output.squeeze(-1) - y) ** 2 * weight).mean()


def _autoencoder_class(name):
    """skae's autoencoder class ``name`` (classes are looked up, never imported)."""
    found = dict(all_estimators()).get(name)
    if found is None or not issubclass(found, BaseAutoencoder):
        raise ValueError(f"{name!r} is not one of skae's autoencoder classes.")
    return found


def _check_rebuildable(autoencoder, parameter):
    """The fitted network names its autoencoder's class, to be rebuilt from it
    by pickle and skae.load: only skae's own classes can be named."""
    try:
        known = _autoencoder_class(type(autoencoder).__name__) is type(autoencoder)
    except ValueError:
        known = False
    if not known:
        raise ValueError(
            f"{parameter}= must be one of skae's autoencoder classes (e.g. "
            f"DenoisingAE, SparseAE), got {type(autoencoder).__name__}: the fitted "
            "network is rebuilt from the class's name."
        )
    if getattr(autoencoder, "encoder", None) is not None or (
        getattr(autoencoder, "decoder", None) is not None
    ):
        raise ValueError(
            f"{parameter}= holds your own encoder/decoder networks, which "
            f"{parameter}'s class cannot rebuild from its name: use an autoencoder "
            "with skae's own network here."
        )


# ---------------------------------------------------------------- estimator
class _BaseSupervisedAutoencoder(BaseEstimator):
    """Shared by the classifier and the regressor; not for direct use."""

    # ``score`` takes sample_weight when called directly, but metadata routing
    # does not send it: ``fit`` weighs no rows, so weighting only the score in
    # a routed search would rank models by a criterion they were not fitted on.
    __metadata_request__score = {"sample_weight": metadata_routing.UNUSED}

    _parameter_constraints = {
        "autoencoder": [BaseAutoencoder, None],
        "encoder": [BaseAutoencoder, None],
        "fine_tune": [StrOptions({"all", "head"})],
        "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
        "fine_tune_noise": ["boolean"],
        "polish": [StrOptions({"auto"}), "boolean"],
        "head_layer_sizes": ["array-like"],
        "head_activation": [StrOptions(set(ACTIVATIONS))],
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

    def __init__(
        self,
        autoencoder=None,
        *,
        encoder=None,
        fine_tune="all",
        reconstruction_weight=1.0,
        fine_tune_noise=True,
        polish="auto",
        head_layer_sizes=(),
        head_activation="relu",
        alpha=1e-4,
        learning_rate=1e-3,
        batch_size="auto",
        max_iter=200,
        shuffle=True,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        self.autoencoder = autoencoder
        self.encoder = encoder
        self.fine_tune = fine_tune
        self.reconstruction_weight = reconstruction_weight
        self.fine_tune_noise = fine_tune_noise
        self.polish = polish
        self.head_layer_sizes = head_layer_sizes
        self.head_activation = head_activation
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ----------------------------------------------------------- task hooks
    def _validate_targets(self, X, y):
        """Validated ``(X, labeled mask, targets of the labeled rows)``; sets
        the task's fitted attributes (``classes_``, ...)."""
        raise NotImplementedError

    def _n_outputs(self):
        raise NotImplementedError

    def _task_loss(self):
        raise NotImplementedError

    def _stratify(self):
        return False

    # ------------------------------------------------------------ the parts
    def __sklearn_clone__(self):
        # A fitted ``encoder`` is data this estimator reads and never
        # modifies: clone keeps it, as it would a FrozenEstimator, instead
        # of replacing it with an unfitted copy (which would silently turn
        # transfer into pretraining from scratch in cross-validation).
        new = super().__sklearn_clone__()
        new.encoder = self.encoder
        return new

    def _default_autoencoder(self):
        return DenoisingAE(
            n_components=64,
            hidden_layer_sizes=(512, 256),
            noise="masking",
            noise_level=0.3,
            max_iter=50,
        )

    def _pretrained(self, X):
        """The fitted autoencoder whose network starts the fine-tuning."""
        if self.encoder is not None:
            _check_rebuildable(self.encoder, "encoder")
            if self.autoencoder is not None:
                raise ValueError(
                    "Pass either autoencoder= (an unfitted autoencoder, pretrained "
                    "here on every row of X) or encoder= (an already fitted one, "
                    "transferred), not both."
                )
            encoder = self.encoder
            check_is_fitted(
                encoder,
                msg=(
                    "encoder= must be a fitted skae autoencoder; this "
                    f"{type(encoder).__name__} is not fitted. To pretrain it here, "
                    "pass it as autoencoder= instead."
                ),
            )
            if encoder.n_features_in_ != X.shape[1]:
                raise ValueError(
                    f"X has {X.shape[1]} features, but the encoder "
                    f"({type(encoder).__name__}) was fitted on "
                    f"{encoder.n_features_in_} features: transfer needs the same "
                    "features, in the units the encoder was fitted on."
                )
            return encoder, 0
        template = self.autoencoder
        if template is None:
            template = self._default_autoencoder()
        _check_rebuildable(template, "autoencoder")
        seed = _stream_seed(self.random_seed_, 0, _PRETRAINING_STREAM)
        # One seed reproduces the whole fit: the pretraining's random state is
        # drawn from this estimator's, as scikit-learn's ensembles seed theirs.
        autoencoder = clone(template).set_params(random_state=seed, device=self.device_)
        autoencoder.fit(X)
        return autoencoder, autoencoder.n_iter_

    def _architecture(self, autoencoder):
        return {
            "autoencoder_class": type(autoencoder).__name__,
            "autoencoder": copy.deepcopy(autoencoder.architecture_),
            "n_features": int(autoencoder.n_features_in_),
            "n_components": int(autoencoder.n_components_),
            "head_layer_sizes": tuple(int(h) for h in self.head_layer_sizes),
            "head_activation": self.head_activation,
            "n_outputs": int(self._n_outputs()),
        }

    def _build_module(self, architecture):
        """The network of ``architecture``: the autoencoder's module, rebuilt
        by its own class from its own description, and the head."""
        inner = architecture["autoencoder"]
        probe = _autoencoder_class(architecture["autoencoder_class"])()
        probe.architecture_ = inner
        head = make_mlp(
            [
                architecture["n_components"],
                *architecture["head_layer_sizes"],
                architecture["n_outputs"],
            ],
            architecture["head_activation"],
        )
        return SupervisedAutoencoder(probe._build_module(inner), head)

    def _validate_head(self):
        sizes = self.head_layer_sizes
        if np.ndim(sizes) != 1 or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h >= 1
            for h in sizes
        ):
            raise ValueError(
                "head_layer_sizes must be a sequence of positive integers, got "
                f"{sizes!r}."
            )

    def _batch_size_for(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        return min(self.batch_size, n_samples)

    def _make_net(self, module, objective, n_rows, generator, max_epochs, monitor):
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
            verbose=self.verbose,
            max_epochs=max_epochs,
            epoch_offset=self.n_iter_,
        )

    def _n_parameters(self):
        return sum(p.numel() for p in self.module_.parameters())

    def _scaled(self, X):
        return (
            ArraySource(np.asarray(X))
            .training_rows(self.offset_, self.scale_, self.device_)
            .X
        )

    # ------------------------------------------------------------- template
    def _fit(self, X, y):
        with _rollback_on_error(self), flush_subnormals():
            self._validate_head()
            X, labeled, targets = self._validate_targets(X, y)
            self.device_ = resolve_device(self.device)
            self.random_seed_ = int(
                check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
            )
            for name in ("validation_loss_curve_", "module_"):
                self.__dict__.pop(name, None)
            pretrained, self.n_pretraining_iter_ = self._pretrained(X)
            self.loss_ = pretrained.loss_
            self.offset_ = pretrained.offset_.copy()
            self.scale_ = pretrained.scale_.copy()
            self.architecture_ = self._architecture(pretrained)
            self.n_components_ = self.architecture_["n_components"]
            self.loss_curve_, self.n_iter_, self.n_head_iter_ = [], 0, 0
            seed = _stream_seed(self.random_seed_, 0, _TORCH_STREAM)
            with _random.seeded_global_rng(seed, self.device_):
                module = self._build_module(self.architecture_)
            # The pretrained weights, copied: the autoencoder given as
            # encoder= is never modified.
            module.autoencoder.load_state_dict(pretrained.module_.state_dict())
            self.module_ = module.to(self.device_)
            work = self._batch_size_for(len(X)) * self._n_parameters()
            with (
                threads_sized_to(work, self.device_, self.n_jobs),
                _random.generator_scope(
                    torch.Generator(device=self.device_).manual_seed(seed)
                ),
            ):
                reason = self._fine_tune(X, labeled, targets, pretrained)
        self._report(reason)
        return self

    def _fine_tune(self, X, labeled, targets, pretrained):
        pool = self._scaled(X)
        index = torch.as_tensor(np.flatnonzero(labeled), device=pool.device)
        rows = LabeledRows(
            pool[index],
            torch.as_tensor(targets, device=self.device_),
            pool,
            self._batch_size_for(len(pool)),
            stratify=self._stratify(),
            index=index,
        )
        split = torch.Generator().manual_seed(
            _stream_seed(self.random_seed_, 0, _SPLIT_STREAM)
        )
        labeled_train, valid = self._split_validation(rows, split)
        if valid is not None:
            self.validation_loss_curve_ = []
        monitor = "train_loss" if valid is None else "valid_loss"
        train = labeled_train

        # The head first, on the frozen codes (a linear probe when the head
        # has no hidden layer): a random head's large early gradients would
        # otherwise distort the pretrained features before it learns anything.
        def codes(part):
            if part is None:
                return None
            return LabeledRows(self._encode_rows(part.X), part.y, weight=part.weight)

        head = HeadOnCodes(self.module_.head)
        result = self._run_phase(
            head,
            SupervisedObjective(self._task_loss()),
            codes(train),
            codes(valid),
            monitor,
            phase=0,
        )
        self.n_head_iter_ = len(result.rows)
        if self.fine_tune == "head" or result.reason in ("diverged", "interrupted"):
            return result.reason
        # The pretraining's own objective (its corruption, its penalty), made
        # by a shallow copy of the pretrained estimator set to this device
        # (copy.copy would pickle it, rebuilding its module).
        probe = object.__new__(type(pretrained))
        probe.__dict__.update(pretrained.__dict__, device_=self.device_)
        pretraining = probe._make_objective()
        objective = SupervisedObjective(
            self._task_loss(),
            pretraining,
            self.reconstruction_weight,
            # Objectives without a corruption step (the VAE's) have no noise.
            corrupt_inputs=self.fine_tune_noise and hasattr(pretraining, "corrupt"),
        )
        # Plain fine-tuning on the labeled rows, then (classifier) rounds of
        # Iscen et al.'s pseudo-labeling: propagate the labels in the code
        # space the fine-tuning has shaped, train on them, repeat.
        for phase in range(1, self._pseudo_label_rounds(labeled) + 2):
            epochs = self.max_iter
            if phase > 1:
                train = self._with_pseudo_labels(labeled_train, pool, labeled)
                epochs = min(epochs, PSEUDO_LABEL_EPOCHS)
            result = self._run_phase(
                self.module_, objective, train, valid, monitor, phase, epochs
            )
            if phase == 1:
                reason = result.reason
            elif result.reason not in (None, "converged"):
                # A round ends at its epoch cap by design: only a failure of
                # a round is news, not the cap.
                reason = result.reason
            if result.reason in ("diverged", "interrupted"):
                break
        if reason not in ("diverged", "interrupted") and self._polishes(
            labeled, objective
        ):
            # The regularizers steer fine-tuning to a good region but keep it
            # from fitting the labels it has; with many labels a last phase
            # without them (weight decay stays) fits them. Selection splits
            # (RESULTS.md, issue 18 round 6): digits, all labeled, 0.9726 ->
            # 0.9867; 5,000 MNIST images 0.9439 -> 0.9499 (all labeled),
            # 0.9354 -> 0.9371 (half). The pretraining objective rides along
            # (weight 0) for its epoch statistics.
            result = self._run_phase(
                self.module_,
                SupervisedObjective(self._task_loss(), pretraining, 0.0),
                labeled_train,
                valid,
                monitor,
                phase + 1,
            )
            # The polish's failure is the news (a divergence or an interrupt
            # after a degraded phase 1 must not be reported as degradation).
            reason = max(reason, result.reason, key=_SEVERITY.get)
        return reason

    def _pseudo_label_rounds(self, labeled):
        """Rounds of pseudo-labeling the unlabeled rows (0: none)."""
        return 0

    def _polishes(self, labeled, objective):
        """Whether fine-tuning ends with a phase without the regularizers."""
        if not (objective.weight > 0 or objective.corrupt_inputs):
            return False  # nothing to take away: it would repeat the last phase
        if isinstance(self.polish, str):  # "auto"
            return labeled.mean() >= POLISH_FROM_LABELED_SHARE
        return bool(self.polish)

    def _with_pseudo_labels(self, train, pool, labeled):
        """``train`` plus pseudo-labeled rows of the pool (see the classifier)."""
        raise NotImplementedError

    def _split_validation(self, rows, generator):
        if not self.early_stopping:
            return rows, None
        n = len(rows)
        n_valid = int(round(self.validation_fraction * n))
        if n_valid >= 1 and n - n_valid >= 1:
            train, valid = rows.split(n_valid, generator)
            if len(valid) >= 1:
                return train, valid
        warn_user(
            f"early_stopping=True but {n} labeled sample(s) are too few for a "
            f"validation_fraction={self.validation_fraction} split; training on "
            "all of them and monitoring the training loss instead."
        )
        return rows, None

    def _run_phase(self, module, objective, train, valid, monitor, phase, epochs=None):
        epochs = self.max_iter if epochs is None else epochs
        shuffle = torch.Generator().manual_seed(
            _stream_seed(self.random_seed_, 0, _SHUFFLE_STREAM, phase)
        )
        net = self._make_net(module, objective, len(train), shuffle, epochs, monitor)
        session = TrainingSession(
            net,
            train,
            valid,
            make_net=None,
            loss=None,
            patience=self.n_iter_no_change,
            seed=_stream_seed(self.random_seed_, 0, _PHASE_STREAM, phase),
        )
        result = EndToEnd(epochs).run(session)
        rows = result.rows
        self.loss_curve_ = self.loss_curve_ + [float(r["train_loss"]) for r in rows]
        if valid is not None:
            self.validation_loss_curve_ = self.validation_loss_curve_ + [
                float(r["valid_loss"]) for r in rows
            ]
        self.n_iter_ = len(self.loss_curve_)
        return result

    @torch.no_grad()
    def _encode_rows(self, X):
        module = self.module_
        was_training = module.training
        module.eval()
        codes = torch.cat(
            [
                module.encode(X[start : start + INFERENCE_BATCH_SIZE])
                for start in range(0, len(X), INFERENCE_BATCH_SIZE)
            ]
        )
        module.train(was_training)
        return codes

    def _report(self, reason):
        name = type(self).__name__
        if reason == "diverged":
            warn_user(
                f"{name}: the fine-tuning loss diverged (NaN, infinite or exploding) "
                f"at epoch {self.n_iter_}; training stopped and the best weights "
                "seen so far were restored. Lower learning_rate.",
                RuntimeWarning,
            )
        elif reason == "degraded":
            warn_user(
                f"{name}: the fine-tuning loss ended far above its best value; the "
                "best weights were restored. Lower learning_rate.",
                RuntimeWarning,
            )
        elif reason == "interrupted":
            warn_user(
                f"{name}: training interrupted by user after {self.n_iter_} "
                "fine-tuning epoch(s); the estimator is fitted with the best "
                "weights seen so far."
            )
        elif reason is None:
            warn_user(
                f"{name}: max_iter={self.max_iter} fine-tuning epochs reached and "
                "the optimization has not converged yet.",
                ConvergenceWarning,
            )

    # ------------------------------------------------------------ inference
    def _forward(self, X):
        """The head's output for X, float64, computed batch by batch.

        float64 input is computed in float64, so that results do not depend
        on how rows are batched; float32 input in float32.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOAT_DTYPES, reset=False)
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        module = self.module_
        if dtype == torch.float64:
            module = copy.deepcopy(module).double()
        module.eval()
        offset = torch.as_tensor(self.offset_, dtype=dtype, device=self.device_)
        scale = torch.as_tensor(self.scale_, dtype=dtype, device=self.device_)
        out = np.empty((X.shape[0], self.architecture_["n_outputs"]))
        work = min(INFERENCE_BATCH_SIZE, X.shape[0]) * self._n_parameters()
        with threads_sized_to(work, self.device_, self.n_jobs), torch.inference_mode():
            for start in range(0, X.shape[0], INFERENCE_BATCH_SIZE):
                # Always a copy: torch wants writable memory (read-only memmaps).
                chunk = np.array(X[start : start + INFERENCE_BATCH_SIZE], order="C")
                x = (
                    torch.as_tensor(chunk, device=self.device_).to(dtype) - offset
                ) / scale
                out[start : start + len(chunk)] = module(x).double().cpu().numpy()
        if not np.all(np.isfinite(out)):
            raise ValueError(
                f"{type(self).__name__} produced non-finite outputs: the input is "
                "far outside the range the model was trained on (values too large "
                "for float32)."
            )
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    # ---------------------------------------------------------- persistence
    def __getstate__(self):
        state = dict(super().__getstate__())
        # Weights travel as CPU tensors, so a CUDA model loads anywhere; the
        # module is rebuilt from ``architecture_``.
        if "module_" in state:
            state["module_"] = _to_cpu(state["module_"].state_dict())
        return state

    def __setstate__(self, state):
        weights = state.get("module_")
        super().__setstate__(state)
        if isinstance(weights, dict):
            self._restore_modules({"module_": weights}, None)

    def _restore_modules(self, states, device):
        """Rebuild ``module_`` from ``architecture_`` and a CPU state dict."""
        if device is None:
            device = getattr(self, "device_", torch.device("cpu"))
            if device.type == "cuda" and not torch.cuda.is_available():
                device = torch.device("cpu")
        self.device_ = resolve_device(device)
        # Layers initialize themselves from torch's global generator before
        # the stored weights replace them: fork it, the caller's is untouched.
        with _random.seeded_global_rng(0, torch.device("cpu")):
            module = self._build_module(self.architecture_)
        module.load_state_dict(states["module_"])
        self.module_ = module.to(self.device_)


def _labeled_mask(y):
    """Rows whose label is not ``UNLABELED`` (-1, in any numeric or object y;
    an array of strings cannot hold it, so all its rows are labeled)."""
    if y.dtype.kind in "US":
        return np.ones(len(y), dtype=bool)
    if y.dtype.kind == "O":
        return np.array([not (_is_number(v) and v == UNLABELED) for v in y], dtype=bool)
    return y != UNLABELED


def _is_number(value):
    return isinstance(value, (Integral, Real)) and not isinstance(value, bool)


class AutoencoderClassifier(ClassifierMixin, _BaseSupervisedAutoencoder):
    r"""Classifier pretrained as an autoencoder on every row, fine-tuned on the labeled.

    Semi-supervised learning in the recipe of stacked autoencoders (Hinton
    and Salakhutdinov, 2006; Bengio et al., 2007; Vincent et al., 2010): an
    skae autoencoder is first fitted on **all** rows of X, labeled or not
    (unlabeled rows carry ``y = -1``, scikit-learn's semi-supervised
    convention); a softmax head :math:`h` on its code then learns from the
    :math:`m` labeled rows, and the whole network is fine-tuned on them:

    .. math::

        \min_{f, h}\ \frac1m \sum_{i \le m}
        -\log \operatorname{softmax}\big(h(f(x_i))\big)_{y_i}
        \;+\; \lambda\, \mathbb E_{x \sim X}\, L_{\text{AE}}(x)
        \;+\; \frac{\alpha}{2} \sum_W \lVert W \rVert_F^2 ,

    where :math:`f` is the pretrained encoder, :math:`L_{\text{AE}}` the
    autoencoder's own training objective (its reconstruction loss, with its
    corruption or sparsity penalty) on rows drawn from all of X, and
    :math:`\lambda` = ``reconstruction_weight``. The reconstruction term keeps
    the features faithful to the many unlabeled rows while the few labels bend
    them; :math:`\lambda = 0` is plain fine-tuning.

    **Pseudo-labels by label propagation** (``semi_supervised=
    "label_propagation"``, the default; Iscen et al., 2019). With unlabeled
    rows, fine-tuning does not stop at the labeled ones: after it, every row
    of X is encoded with the fine-tuned encoder, the codes (centred,
    L2-normalized) are joined in a graph of their ``n_neighbors`` nearest
    neighbours, with affinities :math:`\max(0, \cos)^3`, symmetric and
    normalized (:math:`W_n = D^{-1/2} W D^{-1/2}`), and the known labels
    diffuse over it (Zhou et al., 2004): :math:`Z` solves
    :math:`(I - 0.99\, W_n) Z = Y` by conjugate gradients. Each unlabeled row
    gets the pseudo-label :math:`\hat y_i = \arg\max_j Z_{ij}` and the
    weight :math:`\omega_i = 1 - H(\hat z_i) / \log c` (one minus the
    normalized entropy of its row of :math:`Z`, so that uncertain rows count
    little), times the inverse frequency of its pseudo-class; then all layers
    are trained again on the true labels (weight 1) and the weighted
    pseudo-labels together, for at most 10 epochs over all rows, with the same
    reconstruction term and noise. ``propagation_rounds`` repeats this
    (propagate in the new code space, train). The graph lives in the code
    space because the codes are a better space than the pixels: on MNIST
    (20,000 rows, seed 0, pretrained codes before any fine-tuning) the
    propagated labels of the unlabeled rows were right for 92.6% of them
    with 100 labels and 95.4% with 1,000, against 89.9% and 93.7% for the
    same propagation on the pixels (10 neighbours; 50 neighbours did worse in
    both spaces). Without unlabeled rows, or with ``fine_tune="head"``,
    there is nothing to propagate, and ``semi_supervised=None`` turns it off
    (plain fine-tuning, the estimator's behaviour before this option).

    **Why these steps.** Fine-tuning follows the lecture recipe "pretrained as
    an autoencoder, trained as a simple classifier, fine-tuned as a deep
    network": the head alone is trained first on the frozen codes (a linear
    probe), then everything (``fine_tune="all"``). Training a random head and
    the encoder together lets the head's large early gradients distort the
    pretrained features before it has learned anything (Kumar et al., 2022);
    ``fine_tune="head"`` stops after the probe and leaves the encoder's
    weights bit for bit as pretrained. With most rows labeled
    (``polish="auto"``: at least half of X's rows), fine-tuning ends with a
    last phase on the labeled rows without the reconstruction term and the
    input noise (the weight decay ``alpha`` stays), stopped by the same
    rule: the regularizers lead fine-tuning to features that generalize but
    keep it from fitting the labels it has (on five digits splits with every
    row labeled the training accuracy stayed at 0.988-0.997 and the test
    accuracy rose from 0.973 to 0.987 with the polish; on 5,000 MNIST images
    from 0.944 to 0.950). With few labels the regularizers stay to the end.

    **Design.** The estimator composes an skae autoencoder instead of
    re-implementing one, so that there is one training template, not two:
    pretraining *is* that autoencoder's ``fit`` (any objective: plain,
    denoising, sparse, contractive, variational, and
    ``pretraining="layerwise"``), and the fine-tuning regularizer is that
    autoencoder's own objective, not a copy of it. Both fine-tuning phases
    are :class:`skae._phases.EndToEnd` phases on skae's training engine, with
    its stopping rule, divergence handling, Adam settings and seeding (one
    ``np.random.SeedSequence`` per fit, from which the autoencoder's
    ``random_state`` is drawn too); only the training rows are new: batches
    that carry labels, and rows of X drawn for the regularizer. The fitted
    network is described by plain values (``architecture_``: the
    autoencoder's class name and architecture, and the head's), so pickling
    and :func:`skae.save` rebuild it without the autoencoder estimator.
    Inputs are scaled as the autoencoder scaled them. A failed ``fit`` leaves
    the estimator as it was. The default autoencoder is a deep denoising
    one because depth is what helped most with few labels (MNIST, 20,000
    rows, 100 labels, one seed, while developing: test accuracy 0.77 with
    one hidden layer of 256 units, 0.80 with 512 and 256, 0.84 with 1000,
    500 and 250 at 2.5 times the pretraining time; the reconstruction
    weight, input noise and head size moved it by one to two points).

    **Transfer.** ``encoder=fitted_autoencoder`` starts from an autoencoder
    already fitted elsewhere (e.g. on a larger or related data set with the
    same features, in the same units); its network is copied, never
    modified, and X's rows are not used for pretraining. ``clone`` keeps
    the fitted encoder (it is data, not a setting), so cross-validation
    works unchanged. :func:`skae.save` stores ``autoencoder`` and ``encoder``
    by class and parameters only: a loaded classifier predicts as the saved
    one, but refitting it with transfer needs ``set_params(encoder=...)``.

    Read more in the :ref:`User Guide <semisupervised>`.

    Parameters
    ----------
    autoencoder : skae autoencoder or None, default=None
        An unfitted autoencoder (e.g. :class:`~skae.DenoisingAE`,
        :class:`~skae.SparseAE`, any estimator derived from
        ``skae._base.BaseAutoencoder``), cloned and fitted on every row of X;
        its ``random_state`` and ``device`` are replaced by this estimator's.
        None: ``DenoisingAE(n_components=64, hidden_layer_sizes=(512, 256),
        noise="masking", noise_level=0.3, max_iter=50)``.
    encoder : fitted skae autoencoder or None, default=None
        Transfer: start from this already fitted autoencoder instead of
        pretraining (then ``autoencoder`` must be None). Never modified.
    semi_supervised : {"label_propagation"} or None, \
            default="label_propagation"
        After fine-tuning all layers on the labeled rows, pseudo-label the
        unlabeled rows by label propagation on a kNN graph of their codes and
        fine-tune again on both (Iscen et al., 2019; see above). None: plain
        fine-tuning on the labeled rows only. No effect without unlabeled
        rows or with ``fine_tune="head"``.
    n_neighbors : int, default=10
        Neighbours of each row in the propagation graph.
    propagation_rounds : int, default=1
        Rounds of propagation and training on the pseudo-labels; each round
        propagates in the code space the previous one has shaped.
    fine_tune : {"all", "head"}, default="all"
        ``"all"``: train the head on the frozen codes, then the whole network.
        ``"head"``: only the head; the encoder stays exactly as pretrained.
    reconstruction_weight : float, default=1.0
        Weight :math:`\lambda` of the autoencoder's objective, on rows drawn
        from all of X, while fine-tuning all layers. 0 turns it off.
    fine_tune_noise : bool, default=True
        While fine-tuning all layers, corrupt the labeled inputs as the
        autoencoder corrupted its inputs in pretraining (a
        :class:`~skae.DenoisingAE`'s noise; no effect for an autoencoder
        without corruption): training with input noise is a regularizer
        (Bishop, 1995), which matters most when labels are few.
    polish : "auto" or bool, default="auto"
        End fine-tuning with a phase on the labeled rows without the
        reconstruction term and the input noise (``alpha`` stays), stopped
        by the same rule (see above). ``"auto"``: when at least half of X's
        rows are labeled. No effect when neither regularizer is on, or with
        ``fine_tune="head"``.
    head_layer_sizes : array-like of int, default=()
        Hidden layers of the head; ``()`` is a softmax (multinomial logistic)
        regression on the code.
    head_activation : {"relu", "tanh", "logistic", "elu", "gelu", \
            "identity"}, default="relu"
        Activation of the head's hidden layers.
    alpha : float, default=1e-4
        L2 penalty on the weight matrices while fine-tuning.
    learning_rate : float, default=1e-3
        Adam step size while fine-tuning.
    batch_size : int or "auto", default="auto"
        Labeled rows per mini-batch (and rows drawn for the reconstruction
        term); ``"auto"`` is ``min(200, n_labeled)``.
    max_iter : int, default=200
        Maximum epochs (passes over the labeled rows) of each fine-tuning
        phase.
    shuffle : bool, default=True
        Reshuffle the labeled rows each epoch.
    tol : float, default=1e-4
        Minimum improvement of the monitored loss, relative to its value at
        the start of the phase; a phase stops after ``n_iter_no_change``
        epochs without one.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the labeled rows (stratified),
        monitor their cross-entropy to stop, and keep the best weights.
    validation_fraction : float, default=0.1
        Share of the labeled rows held out when ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Patience, in epochs, of the stopping rule.
    random_state : int, RandomState instance or None, default=None
        Seeds every random draw of the fit: the pretraining (through the
        autoencoder's ``random_state``), the head's initialization,
        shuffling, the validation split and the training noise. The global
        RNGs are left untouched.
    device : str or torch.device, default="auto"
        ``"auto"`` trains on CUDA when available, else on the CPU.
    n_jobs : int or None, default=None
        Intra-op threads for fine-tuning and inference on the CPU, sized as
        the autoencoders' ``n_jobs`` is: None gives small networks one thread
        and large ones torch's setting, capped at the cores other processes
        leave idle; -1 uses every available core. The pretraining uses the
        autoencoder's own ``n_jobs``.
    verbose : int, default=0
        Show a progress bar with the loss per epoch when positive.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (``-1``, the unlabeled marker, is never one).
    module_ : torch.nn.Module
        The fitted network (:class:`skae._classifier.SupervisedAutoencoder`:
        the autoencoder's module and ``head``).
    architecture_ : dict
        The network's description: the autoencoder's class and architecture,
        and the head's.
    loss_ : str
        The autoencoder's reconstruction loss (``"mse"`` or ``"bce"``).
    offset_ : ndarray of shape (n_features_in_,)
        Per-feature offset subtracted before encoding (the autoencoder's).
    scale_ : ndarray of shape (n_features_in_,)
        Per-feature divisor applied before encoding (the autoencoder's).
    n_components_ : int
        Size of the code the head reads.
    device_ : torch.device
        Device the model lives on.
    random_seed_ : int
        Root of the fit's random streams.
    n_pretraining_iter_ : int
        Epochs of the pretraining fit (0 with ``encoder=``).
    n_head_iter_ : int
        Epochs of the head-only phase.
    n_iter_ : int
        Fine-tuning epochs, all phases.
    loss_curve_ : list of float
        Mean training loss per fine-tuning epoch (head phase first).
    validation_loss_curve_ : list of float
        Cross-entropy of the held-out labeled rows per epoch (only with
        ``early_stopping=True``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.semi_supervised.SelfTrainingClassifier : Pseudo-labels the
        unlabeled rows with a supervised classifier.
    sklearn.semi_supervised.LabelSpreading : Propagates labels on a
        similarity graph of all rows.
    sklearn.neural_network.MLPClassifier : The same network trained from
        scratch on the labeled rows only.
    AutoencoderRegressor : The same recipe for regression.

    References
    ----------
    G. E. Hinton and R. R. Salakhutdinov, "Reducing the dimensionality of
    data with neural networks", Science 313(5786), 2006.

    Y. Bengio, P. Lamblin, D. Popovici and H. Larochelle, "Greedy layer-wise
    training of deep networks", NeurIPS 19, 2007.

    P. Vincent, H. Larochelle, I. Lajoie, Y. Bengio and P.-A. Manzagol,
    "Stacked denoising autoencoders", JMLR 11, 2010.

    C. M. Bishop, "Training with noise is equivalent to Tikhonov
    regularization", Neural Computation 7(1), 1995.

    A. Kumar, A. Raghunathan, R. Jones, T. Ma and P. Liang, "Fine-tuning can
    distort pretrained features and underperform out-of-distribution",
    ICLR 2022.

    A. Iscen, G. Tolias, Y. Avrithis and O. Chum, "Label propagation for deep
    semi-supervised learning", CVPR 2019.

    D. Zhou, O. Bousquet, T. N. Lal, J. Weston and B. Schölkopf, "Learning
    with local and global consistency", NeurIPS 16, 2004.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderClassifier, DenoisingAE
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16.0
    >>> y_semi = np.full_like(y, -1)              # unlabeled ...
    >>> y_semi[:200] = y[:200]                     # ... but for 200 rows
    >>> clf = AutoencoderClassifier(
    ...     DenoisingAE(n_components=32, hidden_layer_sizes=(64,), max_iter=5),
    ...     max_iter=20, random_state=0,
    ... ).fit(X, y_semi)
    >>> clf.classes_
    array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> clf.predict_proba(X[-3:]).shape
    (3, 10)
    """

    _parameter_constraints = {
        **_BaseSupervisedAutoencoder._parameter_constraints,
        "semi_supervised": [StrOptions({"label_propagation"}), None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "propagation_rounds": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        autoencoder=None,
        *,
        encoder=None,
        semi_supervised="label_propagation",
        n_neighbors=10,
        propagation_rounds=ROUNDS_DEFAULT,
        fine_tune="all",
        reconstruction_weight=1.0,
        fine_tune_noise=True,
        polish="auto",
        head_layer_sizes=(),
        head_activation="relu",
        alpha=1e-4,
        learning_rate=1e-3,
        batch_size="auto",
        max_iter=200,
        shuffle=True,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            autoencoder,
            encoder=encoder,
            fine_tune=fine_tune,
            reconstruction_weight=reconstruction_weight,
            fine_tune_noise=fine_tune_noise,
            polish=polish,
            head_layer_sizes=head_layer_sizes,
            head_activation=head_activation,
            alpha=alpha,
            learning_rate=learning_rate,
            batch_size=batch_size,
            max_iter=max_iter,
            shuffle=shuffle,
            tol=tol,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            random_state=random_state,
            device=device,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        self.semi_supervised = semi_supervised
        self.n_neighbors = n_neighbors
        self.propagation_rounds = propagation_rounds

    # ------------------------------------------------------- pseudo-labels
    def _pseudo_label_rounds(self, labeled):
        if self.semi_supervised is None or labeled.all():
            return 0
        return self.propagation_rounds

    def _with_pseudo_labels(self, train, pool, labeled):
        """``train`` plus the unlabeled rows, labeled by label propagation.

        The graph joins the codes of every row of the pool under the current
        encoder; the known labels are those of ``train`` only (rows held out
        for early stopping are neither seeds nor pseudo-labeled). Rows the
        diffusion does not reach (weight 0) are left out.
        """
        graph = knn_graph(self._encode_rows(pool), self.n_neighbors)
        seeds = np.full(len(pool), UNLABELED)
        seeds[train.index.cpu().numpy()] = train.y.cpu().numpy()
        targets, weights = pseudo_labels(
            propagate(graph, seeds, len(self.classes_)), seeds
        )
        chosen = np.flatnonzero(~labeled & (weights > 0))
        index = torch.as_tensor(chosen, device=pool.device)
        device = train.y.device
        return LabeledRows(
            torch.cat([train.X, pool[index]]),
            torch.cat([train.y, torch.as_tensor(targets[chosen], device=device)]),
            train.pool,
            train.pool_batch_size,
            stratify=train.stratify,
            weight=torch.cat(
                [
                    torch.ones(len(train), device=device),
                    torch.as_tensor(
                        weights[chosen], dtype=torch.float32, device=device
                    ),
                ]
            ),
            index=torch.cat([train.index, index]),
        )

    # ------------------------------------------------------------ task hooks
    def _validate_targets(self, X, y):
        X, y = validate_data(self, X, y, dtype=_FLOAT_DTYPES)
        labeled = _labeled_mask(y)
        if not labeled.any():
            raise ValueError(
                f"Every row of y is unlabeled ({UNLABELED}): "
                f"{type(self).__name__} needs labeled rows to learn its classes."
            )
        check_classification_targets(y[labeled])
        self.classes_, targets = np.unique(y[labeled], return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"The labeled rows of y hold one class only ({self.classes_[0]!r}); "
                f"{type(self).__name__} needs at least two classes."
            )
        return X, labeled, targets.astype(np.int64)

    def _n_outputs(self):
        return len(self.classes_)

    def _task_loss(self):
        return _cross_entropy

    def _stratify(self):
        return True

    def _expected_failed_checks(self):
        """scikit-learn's checks this classifier fails by design."""
        return {
            "check_classifiers_classes": (
                "Its last case labels a binary problem with -1 and 1; -1 marks "
                "unlabeled rows here (scikit-learn's semi-supervised convention), "
                "so one class is left. The check exempts LabelSpreading and "
                "SelfTrainingClassifier by name for the same reason; string "
                "labels are tested in tests/test_classifier.py."
            )
        }

    # ------------------------------------------------------------ public API
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Pretrain on every row of X, then fine-tune on the labeled rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, raw: it is scaled as the autoencoder scales it.
        y : array-like of shape (n_samples,)
            Class labels; ``-1`` marks an unlabeled row (string labels have
            no unlabeled rows).

        Returns
        -------
        self : object
            The fitted classifier.
        """
        return self._fit(X, y)

    def decision_function(self, X):
        """Confidence scores: the head's logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            With two classes, the log-odds of ``classes_[1]`` (the difference
            of the two logits); else one logit per class.
        """
        logits = self._forward(X)
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X):
        """Class probabilities: the softmax of the logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            In the order of ``classes_``.
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = expit(scores)
            return np.column_stack([1.0 - positive, positive])
        return softmax(scores, axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predict the class of each row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of :meth:`predict` on X against y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            True labels (all rows labeled).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))


class AutoencoderRegressor(RegressorMixin, _BaseSupervisedAutoencoder):
    r"""Regressor pretrained as an autoencoder on every row, fine-tuned on the labeled.

    The regression twin of :class:`AutoencoderClassifier`: the same
    pretraining, head-first fine-tuning and reconstruction regularizer, with
    a linear head and the squared error on standardized targets:

    .. math::

        \min_{f, h}\ \frac1m \sum_{i \le m}
        \Big(h(f(x_i)) - \frac{y_i - \bar y}{s_y}\Big)^2
        \;+\; \lambda\, \mathbb E_{x \sim X}\, L_{\text{AE}}(x)
        \;+\; \frac{\alpha}{2} \sum_W \lVert W \rVert_F^2 ,

    with :math:`\bar y, s_y` the mean and standard deviation of the labeled
    targets. **Unlabeled rows carry** ``y = NaN`` (any real number, -1
    included, is a target). See :class:`AutoencoderClassifier` for the
    design, transfer with ``encoder=``, and the parameters.

    Read more in the :ref:`User Guide <semisupervised>`.

    Parameters
    ----------
    autoencoder : skae autoencoder or None, default=None
        An unfitted autoencoder, cloned and fitted on every row of X; its
        ``random_state`` and ``device`` are replaced by this estimator's.
        None: ``DenoisingAE(n_components=64, hidden_layer_sizes=(512, 256),
        noise="masking", noise_level=0.3, max_iter=50)``.
    encoder : fitted skae autoencoder or None, default=None
        Transfer: start from this already fitted autoencoder instead of
        pretraining (then ``autoencoder`` must be None). Never modified.
    fine_tune : {"all", "head"}, default="all"
        ``"all"``: train the head on the frozen codes, then the whole network.
        ``"head"``: only the head; the encoder stays exactly as pretrained.
    reconstruction_weight : float, default=1.0
        Weight :math:`\lambda` of the autoencoder's objective, on rows drawn
        from all of X, while fine-tuning all layers. 0 turns it off.
    fine_tune_noise : bool, default=False
        While fine-tuning all layers, corrupt the labeled inputs as the
        autoencoder corrupted its inputs in pretraining. Off by default,
        unlike the classifier's: a class rarely changes when a few inputs
        are masked, but a regression target that depends on every input
        does, so the noise acts as label noise (measured on a linear target
        in 8 features: R^2 0.24 with it, 0.61 without).
    polish : "auto" or bool, default=False
        As the classifier's (a last phase without the reconstruction term
        and the noise). Off by default: it was chosen on classification
        data only, and no regression benchmark has measured it yet.
    head_layer_sizes : array-like of int, default=()
        Hidden layers of the head; ``()`` is a linear regression on the code.
    head_activation : {"relu", "tanh", "logistic", "elu", "gelu", \
            "identity"}, default="relu"
        Activation of the head's hidden layers.
    alpha : float, default=1e-4
        L2 penalty on the weight matrices while fine-tuning.
    learning_rate : float, default=1e-3
        Adam step size while fine-tuning.
    batch_size : int or "auto", default="auto"
        Labeled rows per mini-batch (and rows drawn for the reconstruction
        term); ``"auto"`` is ``min(200, n_labeled)``.
    max_iter : int, default=200
        Maximum epochs (passes over the labeled rows) of each fine-tuning
        phase.
    shuffle : bool, default=True
        Reshuffle the labeled rows each epoch.
    tol : float, default=1e-4
        Minimum improvement of the monitored loss, relative to its value at
        the start of the phase; a phase stops after ``n_iter_no_change``
        epochs without one.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the labeled rows, monitor their
        squared error to stop, and keep the best weights.
    validation_fraction : float, default=0.1
        Share of the labeled rows held out when ``early_stopping=True``.
    n_iter_no_change : int, default=10
        Patience, in epochs, of the stopping rule.
    random_state : int, RandomState instance or None, default=None
        Seeds every random draw of the fit: the pretraining (through the
        autoencoder's ``random_state``), the head's initialization,
        shuffling, the validation split and the training noise. The global
        RNGs are left untouched.
    device : str or torch.device, default="auto"
        ``"auto"`` trains on CUDA when available, else on the CPU.
    n_jobs : int or None, default=None
        Intra-op threads for fine-tuning and inference on the CPU, sized as
        the autoencoders' ``n_jobs`` is: None gives small networks one thread
        and large ones torch's setting, capped at the cores other processes
        leave idle; -1 uses every available core. The pretraining uses the
        autoencoder's own ``n_jobs``.
    verbose : int, default=0
        Show a progress bar with the loss per epoch when positive.

    Attributes
    ----------
    y_mean_ : float
        Mean of the labeled targets.
    y_scale_ : float
        Standard deviation of the labeled targets (1 when they are constant).
    module_ : torch.nn.Module
        The fitted network.
    architecture_ : dict
        The network's description.
    loss_ : str
        The autoencoder's reconstruction loss (``"mse"`` or ``"bce"``).
    offset_ : ndarray of shape (n_features_in_,)
        Per-feature offset subtracted before encoding (the autoencoder's).
    scale_ : ndarray of shape (n_features_in_,)
        Per-feature divisor applied before encoding (the autoencoder's).
    n_components_ : int
        Size of the code the head reads.
    device_ : torch.device
        Device the model lives on.
    random_seed_ : int
        Root of the fit's random streams.
    n_pretraining_iter_ : int
        Epochs of the pretraining fit (0 with ``encoder=``).
    n_head_iter_ : int
        Epochs of the head-only phase.
    n_iter_ : int
        Fine-tuning epochs, all phases.
    loss_curve_ : list of float
        Mean training loss per fine-tuning epoch (head phase first).
    validation_loss_curve_ : list of float
        Squared error of the held-out labeled rows per epoch (only with
        ``early_stopping=True``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    AutoencoderClassifier : The same recipe for classification.
    sklearn.neural_network.MLPRegressor : The network trained from scratch on
        the labeled rows only.

    References
    ----------
    P. Vincent, H. Larochelle, I. Lajoie, Y. Bengio and P.-A. Manzagol,
    "Stacked denoising autoencoders", JMLR 11, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderRegressor, DenoisingAE
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(300, 8)
    >>> y = X @ rng.rand(8)
    >>> y[100:] = np.nan                            # unlabeled rows
    >>> reg = AutoencoderRegressor(
    ...     DenoisingAE(n_components=8, hidden_layer_sizes=(16,), max_iter=5),
    ...     max_iter=20, random_state=0,
    ... ).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    def __init__(
        self,
        autoencoder=None,
        *,
        encoder=None,
        fine_tune="all",
        reconstruction_weight=1.0,
        fine_tune_noise=False,
        polish=False,
        head_layer_sizes=(),
        head_activation="relu",
        alpha=1e-4,
        learning_rate=1e-3,
        batch_size="auto",
        max_iter=200,
        shuffle=True,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        # The classifier's parameters; fine_tune_noise's and polish's
        # defaults differ.
        super().__init__(
            autoencoder,
            encoder=encoder,
            fine_tune=fine_tune,
            reconstruction_weight=reconstruction_weight,
            fine_tune_noise=fine_tune_noise,
            polish=polish,
            head_layer_sizes=head_layer_sizes,
            head_activation=head_activation,
            alpha=alpha,
            learning_rate=learning_rate,
            batch_size=batch_size,
            max_iter=max_iter,
            shuffle=shuffle,
            tol=tol,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            random_state=random_state,
            device=device,
            n_jobs=n_jobs,
            verbose=verbose,
        )

    # ------------------------------------------------------------ task hooks
    def _validate_targets(self, X, y):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        X = validate_data(self, X, dtype=_FLOAT_DTYPES)
        y = check_array(
            y,
            ensure_2d=False,
            dtype=np.float64,
            ensure_all_finite="allow-nan",
            input_name="y",
        )
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        if np.isinf(y).any():
            raise ValueError(
                "Input y contains infinity; unlabeled rows are marked with NaN."
            )
        labeled = ~np.isnan(y)
        if not labeled.any():
            raise ValueError(
                "Every row of y is unlabeled (NaN): "
                f"{type(self).__name__} needs labeled rows to learn from."
            )
        values = y[labeled]
        self.y_mean_ = float(values.mean())
        spread = float(values.std())
        self.y_scale_ = spread if spread > 0 and math.isfinite(spread) else 1.0
        if not math.isfinite(self.y_mean_):
            raise ValueError("Input y holds values too large to standardize.")
        targets = (values - self.y_mean_) / self.y_scale_
        return X, labeled, targets.astype(np.float32)

    def _n_outputs(self):
        return 1

    def _task_loss(self):
        return _squared_error

    # ------------------------------------------------------------ public API
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Pretrain on every row of X, then fine-tune on the labeled rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, raw: it is scaled as the autoencoder scales it.
        y : array-like of shape (n_samples,)
            Targets; NaN marks an unlabeled row.

        Returns
        -------
        self : object
            The fitted regressor.
        """
        return self._fit(X, y)

    def predict(self, X):
        """Predict the target of each row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        return self._forward(X)[:, 0] * self.y_scale_ + self.y_mean_

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination (R^2) of :meth:`predict` on X against y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            True targets (all rows labeled).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        return float(r2_score(y, self.predict(X), sample_weight=sample_weight))
