"""OutlierDetector: scikit-learn's outlier-detector contract over any scorer.

A fitted model with ``score_samples`` (higher = more normal) is only half a
detector: someone still has to choose the cut-off. :class:`OutlierDetector`
holds out part of the training data, scores it with the fitted model and turns
those held-out scores into conformal p-values, so that the cut-off follows
from a false-alarm rate the user chooses instead of from a guess of the
contamination. The same held-out scores give the Benjamini-Hochberg procedure
for a false-discovery rate across a batch. The model itself is any estimator
with ``fit`` and ``score_samples`` (every skae autoencoder, ``PCA``, ...); with
``estimator=None`` it is skae's default detector,
:class:`skae._outlier_default.AutoencoderEnsemble`.
"""

import contextlib
import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    OutlierMixin,
    _fit_context,
    clone,
)
from sklearn.utils import check_random_state, metadata_routing
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from skae._outlier_default import AutoencoderEnsemble, reconstruction_weights
from skae.utils._warnings import warn_user


def conformal_p_values(calibration_scores, scores):
    r"""Conformal p-values of ``scores`` against held-out ``calibration_scores``.

    .. math::

        p(x) = \frac{1 + \#\{j : s_j \le s(x)\}}{n + 1},

    where :math:`s_1, \dots, s_n` are the scores of held-out normal rows and
    higher scores are more normal. When :math:`x` and the held-out rows are
    exchangeable (drawn alike, the model fitted on other rows),
    :math:`P(p(x) \le \alpha) \le \alpha` for every level :math:`\alpha`
    (Vovk, Gammerman and Shafer, 2005; Bates et al., 2023). Ties count against
    :math:`x`, which keeps the guarantee without a random tie-break.

    Parameters
    ----------
    calibration_scores : ndarray of shape (n_calibration,)
        Scores of the held-out rows, sorted in increasing order.
    scores : ndarray of shape (n_samples,)
        Scores to turn into p-values.

    Returns
    -------
    p_values : ndarray of shape (n_samples,)
        Values in ``[1 / (n + 1), 1]``; small means unusual.

    Examples
    --------
    >>> import numpy as np
    >>> from skae._outlier import conformal_p_values
    >>> conformal_p_values(np.array([1.0, 2.0, 3.0]), np.array([0.0, 2.0, 9.0]))
    array([0.25, 0.75, 1.  ])
    """
    n = len(calibration_scores)
    below = np.searchsorted(calibration_scores, scores, side="right")
    return (1.0 + below) / (n + 1.0)


def benjamini_hochberg(p_values, level):
    """Rows rejected by the Benjamini-Hochberg procedure at ``level``.

    Sort the m p-values, find the largest i with ``p_(i) <= i * level / m``
    and reject the i smallest. For conformal p-values sharing one
    calibration set this controls the false-discovery rate at ``level``
    (Bates et al., 2023, who show these p-values are PRDS).

    Parameters
    ----------
    p_values : ndarray of shape (n_samples,)
    level : float
        Target false-discovery rate.

    Returns
    -------
    rejected : ndarray of shape (n_samples,), dtype bool

    Examples
    --------
    >>> import numpy as np
    >>> from skae._outlier import benjamini_hochberg
    >>> benjamini_hochberg(np.array([0.001, 0.02, 0.5, 0.04]), 0.1)
    array([ True,  True, False,  True])
    """
    m = len(p_values)
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p_values, kind="stable")
    passed = p_values[order] <= level * np.arange(1, m + 1) / m
    rejected = np.zeros(m, dtype=bool)
    if passed.any():
        n_rejected = np.flatnonzero(passed)[-1] + 1
        rejected[order[:n_rejected]] = True
    return rejected


def _estimator_has(method):
    """``available_if`` test: the (default or given) estimator has ``method``."""

    def check(self):
        estimator = getattr(self, "estimator_", None)
        if estimator is None:
            estimator = self._base_estimator()
        return hasattr(estimator, method)

    return check


def _can_explain(self):
    estimator = getattr(self, "estimator_", None)
    if estimator is None:
        estimator = self._base_estimator()
    return hasattr(estimator, "feature_scores") or (
        hasattr(estimator, "transform") and hasattr(estimator, "inverse_transform")
    )


@contextlib.contextmanager
def _restored_on_error(detector):
    """Leave the detector's attributes as they were when a fit raises.

    Its fitted attributes are replaced, never mutated, so a shallow copy
    suffices; the estimator is a fresh clone in ``fit``, and skae's own
    estimators undo a failed ``partial_fit`` themselves.
    """
    saved = dict(detector.__dict__)
    try:
        yield
    except BaseException:
        detector.__dict__.clear()
        detector.__dict__.update(saved)
        raise


class OutlierDetector(OutlierMixin, MetaEstimatorMixin, BaseEstimator):
    r"""Outlier detector with calibrated thresholds, over any anomaly scorer.

    Wraps an estimator whose ``score_samples`` is higher for more normal rows
    (every skae autoencoder, :class:`~sklearn.decomposition.PCA`, or by default
    skae's ensemble of small autoencoders) and gives it scikit-learn's
    outlier-detector API: ``decision_function``, ``predict`` (+1 inlier, -1
    outlier), ``fit_predict`` and ``offset_``.

    **Thresholds without guessing.** ``fit`` fits a clone of ``estimator`` on
    a random ``1 - calibration_fraction`` of the rows and scores the held-out
    rest (:math:`s_1 \le \dots \le s_n`, kept in ``calibration_scores_``). A
    row :math:`x` gets the conformal p-value

    .. math::

        p(x) = \frac{1 + \#\{j : s_j \le s(x)\}}{n + 1}

    (:meth:`p_values`). With ``contamination="auto"`` a row is an outlier
    when :math:`p(x) \le` ``level``: a new row drawn like the training data
    is then flagged with probability at most ``level``, whatever the model
    and whatever the data's distribution (the split-conformal guarantee;
    Vovk et al., 2005; Bates et al., 2023). This is the same as
    ``offset_`` :math:`= s_{(k)}` with :math:`k = \lfloor` ``level``
    :math:`(n + 1) \rfloor`. Outliers among the training rows only make the
    test more conservative: they sit among the lowest held-out scores and
    raise the p-values of normal rows. ``predict(X, fdr=q)`` instead flags
    the rows that the Benjamini-Hochberg procedure selects at
    false-discovery rate ``q`` across the batch X.

    A float ``contamination`` keeps scikit-learn's meaning: ``offset_`` is
    the score that this share of the training rows falls below.

    **Explanations.** :meth:`feature_scores` gives, for each row and feature,
    the squared reconstruction error :math:`(x_j - \hat x_j)^2` in X's units
    (for estimators that reconstruct: skae's models, PCA, the default).
    ``feature_weights_`` converts them into the score: ``feature_scores(X) @
    feature_weights_`` is the reconstruction part of ``-score_samples(X)``
    (all of it for skae autoencoders trained with MSE; the residual term of
    PCA's negative log-likelihood).

    **Streaming.** :meth:`partial_fit` updates the model with part of each
    batch and adds the rest to a window of the ``max_calibration_samples``
    most recent held-out rows, which are rescored by the updated model at
    every call, so the threshold and the p-values follow the model (the
    default scorer's scaling also follows every row seen; a skae
    autoencoder's is set by its first batch).

    Read more in the :ref:`User Guide <anomaly>`.

    Parameters
    ----------
    estimator : estimator object or None, default=None
        An unfitted estimator with ``fit`` and ``score_samples`` (higher =
        more normal); it is cloned, never modified. None: skae's default, an
        ensemble of five small autoencoders whose score adds each row's
        squared distance from what they learned (the reconstruction error)
        and along it (to the k-th nearest reconstructed training row), seeded
        by ``random_state``; the protocol that chose it is in
        :ref:`anomaly`.
    contamination : "auto" or float, default="auto"
        ``"auto"``: flag rows whose conformal p-value is at most ``level``
        (false-alarm rate control). A float in (0, 0.5]: the share of
        training rows to flag, as in scikit-learn's detectors.
    level : float, default=0.05
        The false-alarm rate that ``predict`` allows when
        ``contamination="auto"``: the probability that a new normal row is
        flagged. The held-out rows must number at least ``1 / level - 1``
        for any row to be flagged at all.
    calibration_fraction : float, default=0.2
        Share of the training rows held out to calibrate the p-values (at
        least one row, at most ``max_calibration_samples``; the estimator is
        fitted on the others).
    max_calibration_samples : int, default=10000
        Most held-out rows (in a :meth:`partial_fit` stream, the most recent
        ones are kept).
    random_state : int, RandomState instance or None, default=None
        Seeds the calibration split and the default estimator. A given
        ``estimator`` keeps its own ``random_state``.

    Attributes
    ----------
    estimator_ : estimator object
        The fitted clone of ``estimator`` (or the fitted default).
    offset_ : float
        The threshold: ``decision_function = score_samples - offset_``, and
        rows with a negative decision are outliers. ``-inf`` when the
        held-out rows are too few for ``level``.
    calibration_scores_ : ndarray of shape (n_calibration,)
        Scores of the held-out rows by ``estimator_``, sorted.
    calibration_data_ : ndarray of shape (n_calibration, n_features_in_)
        The held-out rows, kept so that :meth:`partial_fit` can rescore them.
    feature_weights_ : ndarray of shape (n_features_in_,) or None
        Weights that turn :meth:`feature_scores` into the reconstruction part
        of ``-score_samples``; None when the estimator's score has no such
        part (e.g. a VAE's ELBO, a BCE loss).
    random_seed_ : int
        Root of the random streams of this fit (and of a ``partial_fit``
        stream).
    n_batches_ : int
        Number of ``partial_fit`` calls since the last ``fit`` (0 after
        ``fit``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.ensemble.IsolationForest : A tree-ensemble detector.
    sklearn.neighbors.LocalOutlierFactor : A local-density detector.

    Notes
    -----
    Why these choices:

    - *A meta-estimator*, not a detector class per model: the threshold,
      the p-values and the explanations do not depend on how the score is
      made, so one wrapper serves every skae autoencoder, scikit-learn's scorers
      and a user's own, and the model's parameters stay tunable as
      ``estimator__*`` in a grid search.
    - *Split conformal calibration*: its guarantee holds in finite samples
      for any model and any distribution, and costs one fit. The price is
      the held-out share of the data, which the model does not see
      (``calibration_fraction``). Calibrating on the training rows instead
      would give p-values that are too small for an overfitted model.
    - *Benjamini-Hochberg as an argument of* ``predict``, not a parameter: a
      false-discovery rate is a property of a batch, so the labels depend on
      the other rows; scikit-learn's contract (``predict`` the sign of
      ``decision_function = score_samples - offset_``, row by row) holds for
      every configuration of the estimator.
    - *Explanations in X's units*, with ``feature_weights_`` to go to the
      score's: a squared error in pixels or millimetres can be read without
      knowing the model's internal scaling, and the weighted version says
      which features drove the decision (the two differ when the scaling
      weighs features unequally).

    References
    ----------
    .. [1] V. Vovk, A. Gammerman and G. Shafer, "Algorithmic Learning in a
       Random World", Springer, 2005.
    .. [2] S. Bates, E. Candès, L. Lei, Y. Romano and M. Sesia, "Testing for
       outliers with conformal p-values", Annals of Statistics 51(1), 2023.
    .. [3] Y. Benjamini and Y. Hochberg, "Controlling the false discovery
       rate", Journal of the Royal Statistical Society B 57(1), 1995.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from skae import OutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> W = rng.normal(size=(2, 5))  # rows near a plane in 5 dimensions
    >>> X = rng.normal(size=(500, 2)) @ W + 0.1 * rng.normal(size=(500, 5))
    >>> det = OutlierDetector(PCA(n_components=2), random_state=0).fit(X)
    >>> X_new = rng.normal(size=(3, 2)) @ W + 0.1 * rng.normal(size=(3, 5))
    >>> X_new = np.vstack([X_new, [1.0, -1.0, 1.0, -1.0, 1.0]])  # off the plane
    >>> det.predict(X_new)
    array([ 1,  1,  1, -1])
    >>> det.p_values(X_new).round(3)
    array([0.396, 0.337, 0.465, 0.01 ])
    >>> det.feature_scores(X_new).shape
    (4, 5)
    """

    # ``fdr`` is an option of the call, not data to route through a pipeline:
    # no ``set_predict_request``.
    __metadata_request__predict = {"fdr": metadata_routing.UNUSED}

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "score_samples"]), None],
        "contamination": [
            StrOptions({"auto"}),
            Interval(Real, 0, 0.5, closed="right"),
        ],
        "level": [Interval(Real, 0, 1, closed="neither")],
        "calibration_fraction": [Interval(Real, 0, 1, closed="neither")],
        "max_calibration_samples": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        contamination="auto",
        level=0.05,
        calibration_fraction=0.2,
        max_calibration_samples=10_000,
        random_state=None,
    ):
        self.estimator = estimator
        self.contamination = contamination
        self.level = level
        self.calibration_fraction = calibration_fraction
        self.max_calibration_samples = max_calibration_samples
        self.random_state = random_state

    # ----------------------------------------------------------------- helpers
    def _base_estimator(self):
        if self.estimator is None:
            return AutoencoderEnsemble()
        return self.estimator

    def _new_estimator(self):
        estimator = clone(self._base_estimator())
        if self.estimator is None:
            # The default is seeded from the detector's own random stream.
            estimator.set_params(random_state=self._stream_seed(0, 1))
        return estimator

    def _stream_seed(self, *key):
        """A 32-bit seed for stream ``key`` of this fit (``SeedSequence``
        children, as skae's models do, never ``seed + offset``)."""
        sequence = np.random.SeedSequence(self.random_seed_, spawn_key=key)
        return int(sequence.generate_state(1)[0])

    def _validate(self, X, *, reset):
        return validate_data(
            self, X, dtype=[np.float64, np.float32], reset=reset, ensure_min_samples=1
        )

    def _raw_scores(self, X):
        """``estimator_.score_samples`` of validated X, as float64."""
        return np.asarray(self.estimator_.score_samples(X), dtype=np.float64)

    def _calibrate(self, X_train=None, warn=True):
        """Rescore the held-out rows; set ``offset_`` from them (or, for a float
        ``contamination``, from the scores of ``X_train``)."""
        if len(self.calibration_data_) == 0:  # a stream's first rows
            self.calibration_scores_ = np.zeros(0)
            self.offset_ = -np.inf
            return
        self.calibration_scores_ = np.sort(self._raw_scores(self.calibration_data_))
        if self.contamination != "auto":
            reference = (
                self.calibration_scores_
                if X_train is None
                else self._raw_scores(X_train)
            )
            self.offset_ = float(np.percentile(reference, 100.0 * self.contamination))
            return
        n = len(self.calibration_scores_)
        k = math.floor(self.level * (n + 1) + 1e-9)
        if k < 1:
            if not warn:  # a stream's first batches: the window is still filling
                self.offset_ = -np.inf
                return
            warn_user(
                f"OutlierDetector: {n} held-out row(s) cannot support level="
                f"{self.level}: the smallest possible p-value is 1/{n + 1}, so no "
                "row will be flagged. Use more training rows, a larger "
                "calibration_fraction or a larger level."
            )
            self.offset_ = -np.inf
        else:
            # p(x) <= level  <=>  #{s_j <= s(x)} <= k - 1  <=>  s(x) < s_(k).
            self.offset_ = float(self.calibration_scores_[k - 1])

    def _set_weights(self):
        self.feature_weights_ = reconstruction_weights(
            self.estimator_, self.n_features_in_
        )

    # --------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the estimator on part of X and calibrate on the rest.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; it may contain some outliers.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted detector.
        """
        with _restored_on_error(self):
            return self._fit(X)

    def _fit(self, X):
        X = self._validate(X, reset=True)
        n = X.shape[0]
        if n < 2:
            raise ValueError(
                f"OutlierDetector needs at least 2 samples (one to fit the "
                f"estimator, one to calibrate), got n_samples = {n}."
            )
        self.random_seed_ = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        n_cal = round(self.calibration_fraction * n)
        n_cal = min(n - 1, max(1, n_cal), self.max_calibration_samples)
        order = np.random.default_rng(self._stream_seed(0, 0)).permutation(n)
        # Sorted indices keep the fitting rows in their original order.
        fit_rows, cal_rows = np.sort(order[n_cal:]), np.sort(order[:n_cal])
        self.estimator_ = self._new_estimator().fit(X[fit_rows])
        self.calibration_data_ = X[cal_rows]
        self.n_batches_ = 0
        self._set_weights()
        self._calibrate(X_train=X)
        return self

    @available_if(_estimator_has("partial_fit"))
    @_fit_context(prefer_skip_nested_validation=False)
    def partial_fit(self, X, y=None):
        """Update the detector with a batch of a stream.

        Each row of the batch goes, at random, to the estimator's
        ``partial_fit`` (share ``1 - calibration_fraction``) or to the window
        of held-out rows; the window (the ``max_calibration_samples`` most
        recent held-out rows) is then rescored by the updated estimator and
        ``offset_`` recomputed, so the threshold stays valid for the current
        model. For a float ``contamination`` the share is taken over the
        window. The first call starts a stream (after ``fit``, a call
        continues from the fitted state).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated detector.
        """
        with _restored_on_error(self):
            return self._partial_fit(X)

    def _partial_fit(self, X):
        first = not hasattr(self, "estimator_")
        X = self._validate(X, reset=first)
        if first:
            self.random_seed_ = int(
                check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
            )
            self.n_batches_ = 0
            self.estimator_ = self._new_estimator()
            self.calibration_data_ = X[:0]
        rng = np.random.default_rng(self._stream_seed(1, self.n_batches_))
        held_out = rng.random(X.shape[0]) < self.calibration_fraction
        if first and held_out.all():
            held_out[0] = False  # the estimator needs a row to start from
        if (~held_out).any():
            self.estimator_.partial_fit(X[~held_out])
        window = np.concatenate([self.calibration_data_, X[held_out]])
        self.calibration_data_ = window[-self.max_calibration_samples :]
        self.n_batches_ += 1
        self._set_weights()
        self._calibrate(warn=False)
        return self

    # ------------------------------------------------------------- inference
    def score_samples(self, X):
        """The estimator's score: higher means more normal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,), dtype float64
        """
        check_is_fitted(self)
        return self._raw_scores(self._validate(X, reset=False))

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        decision : ndarray of shape (n_samples,), dtype float64
        """
        return self.score_samples(X) - self.offset_

    def p_values(self, X):
        """Conformal p-values: small means unusual.

        For a new row drawn like the (normal) training rows, ``P(p <= a) <=
        a`` for every ``a``; see the class description.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        p_values : ndarray of shape (n_samples,)
            Values in ``[1 / (n_calibration + 1), 1]``.
        """
        scores = self.score_samples(X)  # checks that the detector is fitted
        return conformal_p_values(self.calibration_scores_, scores)

    def predict(self, X, *, fdr=None):
        """Label rows: +1 inlier, -1 outlier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        fdr : float in (0, 1) or None, default=None
            None: each row on its own, ``decision_function(X) < 0`` (with
            ``contamination="auto"``, a false-alarm rate of at most
            ``level`` per normal row). A float: flag the rows that the
            Benjamini-Hochberg procedure selects from the p-values of the
            whole batch, which keeps the expected share of normal rows among
            the flagged ones at most ``fdr``. A row's label then depends on
            the other rows of X.

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype int
        """
        if fdr is None:
            outlier = self.decision_function(X) < 0
        else:
            if not (isinstance(fdr, Real) and 0 < fdr < 1):
                raise ValueError(f"fdr must be a float in (0, 1) or None, got {fdr!r}.")
            outlier = benjamini_hochberg(self.p_values(X), fdr)
        return np.where(outlier, -1, 1)

    @available_if(_can_explain)
    def feature_scores(self, X):
        """Per-feature squared reconstruction error, in X's (squared) units.

        ``feature_scores(X)[i, j]`` is :math:`(x_{ij} - \\hat x_{ij})^2`, with
        :math:`\\hat x` the estimator's reconstruction; large values show the
        features that the model could not explain. ``feature_scores(X) @
        feature_weights_`` is the reconstruction part of ``-score_samples(X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        if hasattr(self.estimator_, "feature_scores"):
            return np.asarray(self.estimator_.feature_scores(X))
        reconstruction = self.estimator_.inverse_transform(self.estimator_.transform(X))
        return (X - reconstruction) ** 2

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
