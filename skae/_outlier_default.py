"""The default scorer of :class:`skae.OutlierDetector`, and how each kind of
estimator's score splits into per-feature reconstruction errors.

Kept apart from :mod:`skae._outlier`, which only needs ``fit`` and
``score_samples``: this module is the one place that decides what skae
recommends for anomaly detection with no tuning
(:class:`AutoencoderEnsemble`; the protocol that chose it is in the user
guide, ``doc/anomaly.rst``), and the one place that knows how a score is
built from reconstruction errors (:func:`reconstruction_weights`).
"""

import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from skae._autoencoder import AutoencoderTransformer
from skae._base import BaseAutoencoder
from skae._dictionary import DictionaryLearner
from skae._vae import VAE

#: Smallest per-feature scale, relative to the largest: a feature that is
#: (almost) constant in training gets this scale instead of its own.
_SCALE_FLOOR = 1e-3


class AutoencoderEnsemble(BaseEstimator):
    r"""Ensemble of small autoencoders scoring distances from and along them.

    Each of ``n_estimators`` autoencoders (one hidden layer of
    ``hidden_layer_size`` ReLU units, a code of ``ceil(code_fraction *
    n_features)`` numbers, MSE, ``n_steps`` Adam steps from its own random
    start) is fitted to the scaled rows :math:`s = D^{-1}(x - c)`. Member
    :math:`m` reconstructs :math:`\hat s_m`; a row's anomaly score is

    .. math::

        -\text{score}(x) = \frac{1}{M} \sum_{m=1}^{M} \frac{
            \lVert s - \hat s_m \rVert^2
            + \lVert \hat s_m - \hat r_{m,(k)} \rVert^2}{c_m} ,

    where :math:`\hat r_{m,(k)}` is the :math:`k`-th nearest of the
    reconstructed training rows to :math:`\hat s_m` and :math:`c_m` the mean
    of the numerator over the training rows (each left out of its own
    neighbours). The first term is the squared distance *from* what member
    :math:`m` learned, the second the squared distance *along* it to the
    :math:`k`-th nearest training row: for a linear autoencoder the two are
    the legs of a right triangle, and their sum the squared distance to that
    training row's projection. A row is unusual if the model cannot
    reconstruct it, or if it reconstructs it somewhere no training row lies.
    :math:`k` is ``neighbor_fraction`` of the training rows, a radius that
    holds a fixed share of the training mass (so a subsample gives the same
    radius). The per-member division by :math:`c_m` puts the members on one
    scale; a typical training row scores about -1.

    The reconstruction part, :math:`\frac1M\sum_m \lVert s - \hat s_m
    \rVert^2 / c_m`, equals ``feature_scores(X) @ feature_weights()``, with
    :meth:`feature_scores` in X's squared units.

    Read more in the :ref:`User Guide <anomaly>`, which gives the protocol
    that chose these defaults.

    Parameters
    ----------
    n_estimators : int, default=5
        Number of autoencoders.
    code_fraction : float, default=0.5
        Code size as a share of the number of features (rounded up).
    hidden_layer_size : int or None, default=64
        Width of the hidden layer of encoder and decoder; None gives linear
        autoencoders.
    n_steps : int, default=1000
        Adam steps per autoencoder: ``ceil(n_steps * batch_size / n_samples)``
        epochs, with no early stopping (a fixed budget).
    batch_size : int, default=64
        Mini-batch size.
    learning_rate : float, default=1e-3
        Adam step size.
    scaling : {"minmax", "standard"}, default="minmax"
        Per-feature scaling :math:`D`, :math:`c` before the networks: the
        training range, or the standard deviation. Scales below
        ``1e-3`` times the largest are raised to it.
    neighbor_fraction : float, default=0.02
        :math:`k` as a share of the reference rows (at least 1).
    max_reference_samples : int, default=5000
        Most training rows kept as the neighbours' reference (a random subset
        in ``fit``; the most recent rows in a ``partial_fit`` stream).
    random_state : int, RandomState instance or None, default=None
        Seeds the networks and the reference subset.

    Attributes
    ----------
    estimators_ : list of AutoencoderTransformer
        The fitted autoencoders.
    center_ : ndarray of shape (n_features_in_,)
        :math:`c`, the per-feature offset of the scaling.
    scale_ : ndarray of shape (n_features_in_,)
        The diagonal of :math:`D`.
    data_min_, data_max_ : ndarray of shape (n_features_in_,)
        Per-feature range of every training row seen (updated by
        ``partial_fit``): the ``"minmax"`` scaling.
    data_mean_, data_var_ : ndarray of shape (n_features_in_,)
        Per-feature mean and variance of the same rows: the ``"standard"``
        scaling.
    n_samples_seen_ : int
        Number of training rows the statistics cover.
    reference_ : ndarray of shape (n_reference, n_features_in_)
        Training rows (in X's units) whose reconstructions are the
        neighbours.
    n_neighbors_ : int
        :math:`k`.
    normalizers_ : ndarray of shape (n_estimators,)
        :math:`c_m`.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    skae.OutlierDetector : Thresholds, p-values and explanations over this
        scorer (its default) or any other.

    References
    ----------
    .. [1] S. Ramaswamy, R. Rastogi and K. Shim, "Efficient algorithms for
       mining outliers from large data sets", SIGMOD 2000 (the distance to
       the k-th nearest neighbour as an outlier score).

    Examples
    --------
    >>> import numpy as np
    >>> from skae._outlier_default import AutoencoderEnsemble
    >>> X = np.random.RandomState(0).normal(size=(200, 6))
    >>> ens = AutoencoderEnsemble(n_estimators=2, n_steps=50, random_state=0)
    >>> ens.fit(X).score_samples(X[:3]).shape
    (3,)
    """

    _parameter_constraints = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "code_fraction": [Interval(Real, 0, 1, closed="right")],
        "hidden_layer_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "scaling": [StrOptions({"minmax", "standard"})],
        "neighbor_fraction": [Interval(Real, 0, 1, closed="right")],
        "max_reference_samples": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_estimators=5,
        *,
        code_fraction=0.5,
        hidden_layer_size=64,
        n_steps=1000,
        batch_size=64,
        learning_rate=1e-3,
        scaling="minmax",
        neighbor_fraction=0.02,
        max_reference_samples=5000,
        random_state=None,
    ):
        self.n_estimators = n_estimators
        self.code_fraction = code_fraction
        self.hidden_layer_size = hidden_layer_size
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.scaling = scaling
        self.neighbor_fraction = neighbor_fraction
        self.max_reference_samples = max_reference_samples
        self.random_state = random_state

    # ----------------------------------------------------------------- parts
    def _update_statistics(self, X, reset):
        """Per-feature min, max, mean and variance of every row seen (a
        stream's batches merged with Chan et al.'s update), then the scaling
        they give."""
        n = len(X)
        lo, hi, mean, var = X.min(axis=0), X.max(axis=0), X.mean(axis=0), X.var(axis=0)
        if not reset:
            m = self.n_samples_seen_
            delta = mean - self.data_mean_
            lo, hi = np.minimum(lo, self.data_min_), np.maximum(hi, self.data_max_)
            var = (m * self.data_var_ + n * var + delta**2 * m * n / (m + n)) / (m + n)
            mean = self.data_mean_ + delta * n / (m + n)
            n = m + n
        self.n_samples_seen_ = n
        self.data_min_, self.data_max_ = lo, hi
        self.data_mean_, self.data_var_ = mean, var
        if self.scaling == "standard":
            center, scale = mean, np.sqrt(var)
        else:
            center, scale = lo, hi - lo
        # A feature (almost) constant in training gets the floor: a change in
        # it is then very unusual, but not infinitely so.
        floor = _SCALE_FLOOR * float(scale.max()) if scale.max() > 0 else 1.0
        self.center_ = center.astype(np.float64)
        self.scale_ = np.maximum(scale, floor).astype(np.float64)
        if not (np.all(np.isfinite(self.center_)) and np.all(np.isfinite(self.scale_))):
            raise ValueError(
                "Input contains values too large to scale (the per-feature spread "
                "overflows float64); rescale X before fitting."
            )

    def _scaled(self, X):
        return (X - self.center_) / self.scale_

    def _member(self, n_features, seed, epochs):
        hidden = () if self.hidden_layer_size is None else (self.hidden_layer_size,)
        return AutoencoderTransformer(
            n_components=max(1, math.ceil(self.code_fraction * n_features)),
            hidden_layer_sizes=hidden,
            activation="relu" if hidden else "identity",
            loss="mse",
            scaling="none",
            alpha=0.0,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            max_iter=epochs,
            # Every parameter that shapes training is pinned, so that a change
            # of AutoencoderTransformer's defaults cannot change the detector:
            # a fixed budget (no stopping rule, no held-out split) from a
            # random start (the members must differ).
            tol=0.0,
            n_iter_no_change=epochs,
            early_stopping=False,
            init="random",
            shuffle=True,
            dropout=0.0,
            pretraining=None,
            random_state=seed,
            device="cpu",
        )

    @staticmethod
    def _reconstruct(member, S):
        return member.inverse_transform(member.transform(S))

    def _set_reference(self, rows):
        """Reconstructions of the reference rows, ``n_neighbors_`` and the
        normalizers :math:`c_m` (each reference row left out of its own
        neighbours)."""
        self.reference_ = rows
        S = self._scaled(rows)
        n_ref = len(S)
        self.n_neighbors_ = max(1, round(self.neighbor_fraction * n_ref))
        self._neighbors = []
        normalizers = []
        for member in self.estimators_:
            S_hat = self._reconstruct(member, S)
            index = NearestNeighbors().fit(S_hat)
            self._neighbors.append(index)
            k = min(self.n_neighbors_ + 1, n_ref)
            along = index.kneighbors(S_hat, n_neighbors=k)[0][:, -1] ** 2
            total = ((S - S_hat) ** 2).sum(axis=1) + along
            normalizers.append(_positive_mean(total))
        self.normalizers_ = np.array(normalizers)

    def _index_reference(self):
        """Rebuild the neighbours' indices from ``reference_`` (runtime state:
        :func:`skae.load` calls this once the members are restored)."""
        S = self._scaled(self.reference_)
        self._neighbors = [
            NearestNeighbors().fit(self._reconstruct(member, S))
            for member in self.estimators_
        ]

    # --------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the autoencoders and the neighbours' reference.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, raw (scaled internally); it may contain outliers.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted ensemble.
        """
        X = validate_data(self, X, dtype=np.float64)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_estimators)
        self._update_statistics(X, reset=True)
        S = self._scaled(X)
        batch = min(self.batch_size, len(S))
        epochs = max(1, math.ceil(self.n_steps * batch / len(S)))
        with warnings.catch_warnings():
            # A fixed step budget is the design, not a convergence failure.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.estimators_ = [
                self._member(X.shape[1], int(seed), epochs).fit(S) for seed in seeds
            ]
        if len(X) > self.max_reference_samples:
            rows = rng.choice(len(X), self.max_reference_samples, replace=False)
            X = X[np.sort(rows)]
        self._set_reference(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One more epoch of every autoencoder on the batch X.

        The scaling follows every row seen (running min, max, mean and
        variance, merged batch by batch), so a first batch that is not
        representative is corrected as the stream goes on; the networks,
        trained on at every call, follow the change. The neighbours'
        reference is the ``max_reference_samples`` most recent rows, and the
        normalizers are recomputed on it at every call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated ensemble.
        """
        first = not hasattr(self, "estimators_")
        X = validate_data(self, X, dtype=np.float64, reset=first)
        self._update_statistics(X, reset=first)
        if first:
            rng = check_random_state(self.random_state)
            seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_estimators)
            self.estimators_ = [
                self._member(X.shape[1], int(seed), 1) for seed in seeds
            ]
            self.reference_ = np.zeros((0, X.shape[1]))
        S = self._scaled(X)
        for member in self.estimators_:
            member.set_params(batch_size=min(self.batch_size, len(S)))
            member.partial_fit(S)
        reference = np.concatenate([self.reference_, X])
        self._set_reference(reference[-self.max_reference_samples :])
        return self

    # ------------------------------------------------------------- inference
    def _parts(self, X):
        """Per-row (reconstruction part, along part) of ``-score_samples``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        S = self._scaled(X)
        k = min(self.n_neighbors_, len(self.reference_))
        reconstruction, along = np.zeros(len(S)), np.zeros(len(S))
        for member, index, c in zip(
            self.estimators_, self._neighbors, self.normalizers_
        ):
            S_hat = self._reconstruct(member, S)
            reconstruction += ((S - S_hat) ** 2).sum(axis=1) / c
            along += index.kneighbors(S_hat, n_neighbors=k)[0][:, -1] ** 2 / c
        M = len(self.estimators_)
        return reconstruction / M, along / M

    def score_samples(self, X):
        """Negative anomaly score: higher means more normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score, in the units seen in ``fit``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            About -1 for a typical training row.
        """
        reconstruction, along = self._parts(X)
        return -(reconstruction + along)

    def feature_scores(self, X):
        """Squared reconstruction error per feature, in X's squared units.

        The members' errors :math:`(x_j - \\hat x_{mj})^2` averaged with
        weights proportional to :math:`1 / c_m`, so that ``feature_scores(X)
        @ feature_weights()`` is the reconstruction part of
        ``-score_samples(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to explain, in the units seen in ``fit``.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        S = self._scaled(X)
        weights = 1.0 / self.normalizers_
        out = np.zeros_like(S)
        for member, weight in zip(self.estimators_, weights / weights.sum()):
            # In X's units: scale the scaled residual back.
            out += weight * ((S - self._reconstruct(member, S)) * self.scale_) ** 2
        return out

    def feature_weights(self):
        """Per-feature weights from :meth:`feature_scores` to the score.

        Returns
        -------
        weights : ndarray of shape (n_features_in_,)
            ``mean(1 / c_m) / scale_**2``.
        """
        check_is_fitted(self)
        return np.mean(1.0 / self.normalizers_) / self.scale_**2

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _positive_mean(values):
    """The mean, or a tiny positive stand-in when every value is zero."""
    mean = float(np.mean(values))
    return mean if mean > 0 and np.isfinite(mean) else 1e-12


def reconstruction_weights(estimator, n_features):
    """Weights turning squared errors in X's units into an estimator's score.

    For the fitted ``estimator``, the per-feature weights :math:`w` such that
    :math:`\\sum_j w_j (x_j - \\hat x_j)^2`, with :math:`\\hat x` the
    estimator's reconstruction, is the reconstruction part of
    ``-estimator.score_samples(x)``; None when its score has no such part.

    Parameters
    ----------
    estimator : fitted estimator
    n_features : int

    Returns
    -------
    weights : ndarray of shape (n_features,) or None

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from skae._outlier_default import reconstruction_weights
    >>> pca = PCA(n_components=1).fit(np.random.RandomState(0).rand(20, 3))
    >>> reconstruction_weights(pca, 3).shape
    (3,)
    """
    from sklearn.decomposition import PCA

    if isinstance(estimator, AutoencoderEnsemble):
        return estimator.feature_weights()
    if isinstance(estimator, VAE):
        return None  # an ELBO, not a reconstruction error
    if isinstance(estimator, BaseAutoencoder):
        if estimator.loss_ != "mse":
            return None
        # score = -mean_j ((x_j - x_hat_j) / scale_j)^2
        return 1.0 / (n_features * estimator.scale_**2)
    if isinstance(estimator, DictionaryLearner):
        # score = -(0.5 ||x - x_hat||^2 + the code's penalty)
        return np.full(n_features, 0.5)
    if isinstance(estimator, PCA):
        # -log-likelihood = ||x - x_hat||^2 / (2 sigma^2) + (code part) + const
        sigma2 = float(getattr(estimator, "noise_variance_", 0.0))
        if sigma2 > 0:
            return np.full(n_features, 0.5 / sigma2)
    return None
