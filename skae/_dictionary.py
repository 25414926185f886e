"""Dictionary learning as a linear-decoder autoencoder: ``X ~ Z @ components_``.

One estimator covers PCA, NMF, k-means and sparse coding; the constraint on the
codes (and atoms) picks which. The math of each half-step lives in
:mod:`skae._dictionary_solvers`; this module validates, seeds, and alternates.
"""

import contextlib
import math
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

from skae import _dictionary_solvers as solvers
from skae.utils._device import resolve_device

_CODES = ("sparse", "nonnegative", "onehot", "orthogonal")

# Code step inside fit. Loose codes bias the atom update (measured on image
# patches: 50 iterations at 1e-3 stalled 0.7% above the exact-code solution),
# so the codes are solved nearly exactly; warm starts keep that cheap.
_FIT_CODE_MAX_ITER = 300
_FIT_CODE_TOL = 1e-6
# transform solves each row's code problem to a tight tolerance.
_TRANSFORM_MAX_ITER = 1000
_TRANSFORM_TOL = 1e-6

# Below this many entries per block (rows x atoms) a second intra-op thread
# only adds barrier waits: measured on 2 shared cores, 256 x 100 mini-batches
# ran ~20x slower with 2 threads than with 1 while other jobs were running.
_PARALLEL_MIN_WORK = 2**18

_FIT_STATE = (
    "components_",
    "mean_",
    "n_iter_",
    "n_steps_",
    "n_samples_seen_",
    "objective_",
    "device_",
    "n_features_in_",
    "feature_names_in_",
    "_A",
    "_B",
    "_counts",
    "_scatter",
)


class DictionaryLearner(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    r"""Learn a dictionary and codes with ``X ~ Z @ components_``, on torch.

    A linear-decoder autoencoder: the decoder is the dictionary
    :math:`\Phi` (``components_``, one atom per row) and the encoder solves a
    small optimisation problem per sample. The constraint on the codes
    :math:`Z` (and on the atoms) decides which classic model is fitted, by
    alternating minimisation (fix :math:`\Phi`, solve :math:`Z`; fix
    :math:`Z`, solve :math:`\Phi`):

    ``code="sparse"`` (sparse coding, scikit-learn's ``DictionaryLearning``)::

        (Z*, Phi*) = argmin 0.5 ||X - Z Phi||_Fro^2 + alpha ||Z||_1
                     with ||Phi_k||_2 <= 1 for all 0 <= k < n_components

    ``code="nonnegative"`` (``NMF`` with the Frobenius loss)::

        (Z*, Phi*) = argmin 0.5 ||X - Z Phi||_Fro^2   with Z >= 0, Phi >= 0

    ``code="onehot"`` (``KMeans``; each row of Z is a standard basis vector)::

        (Z*, Phi*) = argmin 0.5 ||X - Z Phi||_Fro^2   with Z_i in {e_1..e_k}

    ``code="orthogonal"`` (``PCA``; the data are centred by ``mean_``)::

        (Z*, Phi*) = argmin 0.5 ||X - mean - Z Phi||_Fro^2
                     with Phi Phi^T = I

    Here :math:`||.||_{Fro}` is the Frobenius norm and :math:`||Z||_1` the
    sum of absolute values of the entries of Z.

    Read more in the :doc:`User Guide </dictionary_learning>`.

    Parameters
    ----------
    n_components : int, default=8
        Number of atoms (rows of ``components_``). May exceed ``n_features``
        (an overcomplete dictionary) for ``"sparse"`` codes.

    code : {"sparse", "nonnegative", "onehot", "orthogonal"}, default="sparse"
        The constraint on the codes, see above.

    alpha : float, default=1.0
        Weight of the L1 penalty on the codes. Used by ``code="sparse"`` only.

    max_iter : int, default=200
        Maximum number of alternations (full batch) or of passes over the data
        (mini-batch).

    tol : float, default=1e-5
        Full batch: stop when the objective decreases by less than ``tol``
        times its value from one iteration to the next. Mini-batch: stop when
        a pass changes the dictionary by less than ``tol`` times its norm
        (Frobenius).

    batch_size : int, default=None
        ``None`` alternates on the full data set. An int uses the online
        (mini-batch) algorithm of Mairal et al. (2009): codes of one batch at
        a time, atoms updated from running statistics; :meth:`partial_fit`
        performs one such step.

    n_init : int, default=1
        Number of initialisations tried; the one with the lowest objective is
        kept. ``"orthogonal"`` is solved exactly and ignores it.

    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the mini-batch order and the resampling of
        unused atoms. Pass an int for reproducible results.

    device : str or torch.device, default="auto"
        Torch device to compute on; ``"auto"`` uses CUDA when available.

    verbose : int, default=0
        Print the objective at every iteration when > 0.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The dictionary :math:`\Phi`, one atom per row.

    mean_ : ndarray of shape (n_features,)
        Per-feature mean removed before coding. Only for ``"orthogonal"``.

    n_iter_ : int
        Number of alternations (or passes) run by the kept initialisation.

    n_steps_ : int
        Number of mini-batch steps run so far (0 after a full-batch fit).

    n_samples_seen_ : int
        Number of samples the current fit has processed (counting repeats).

    objective_ : float
        Objective (summed over samples) at the end of training; for
        mini-batch training, summed over the batches of the last pass.

    device_ : torch.device
        The device the model was fitted on.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.decomposition.DictionaryLearning : Sparse coding, full batch.
    sklearn.decomposition.MiniBatchDictionaryLearning : Sparse coding, online.
    sklearn.decomposition.NMF : Non-negative matrix factorisation.
    sklearn.decomposition.PCA : Principal component analysis.
    sklearn.cluster.KMeans : K-means clustering.

    Notes
    -----
    Code steps are batched over rows: for the L1 problem an exact active-set
    solver (feature-sign search, Lee et al., 2007: Newton steps on each row's
    support with a line search over sign changes, one code added per round,
    like LARS) with FISTA as the fallback for rows whose support outgrows the
    rank of the atoms, or for ``alpha=0``; exact coordinate descent (HALS)
    for non-negative codes, nearest atom for one-hot codes and a projection
    for orthogonal atoms. Atom steps
    are one block-coordinate sweep on ``A = Z^T Z`` and ``B = Z^T X`` with
    the constraint projected per atom; unused atoms are resampled from the
    data. For ``"orthogonal"`` the alternation ``Z = (X - mean) Phi^T``,
    ``Phi = polar(Z^T (X - mean))`` has the top right singular vectors as its
    fixed point, so they are computed directly (an SVD; in mini-batch mode,
    an eigendecomposition of the running scatter matrix, which is exact).

    :meth:`transform` solves each row's code problem on its own, so a row's
    code does not depend on the rest of the batch. Float64 input is computed
    in float64, float32 in float32.

    References
    ----------
    J. Mairal, F. Bach, J. Ponce, G. Sapiro, 2009: Online dictionary learning
    for sparse coding. https://www.di.ens.fr/~fbach/mairal_icml09.pdf

    A. Beck, M. Teboulle, 2009: A fast iterative shrinkage-thresholding
    algorithm for linear inverse problems. SIAM J. Imaging Sciences.

    H. Lee, A. Battle, R. Raina, A. Y. Ng, 2007: Efficient sparse coding
    algorithms. NIPS.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import DictionaryLearner
    >>> X = load_digits().data[:300] / 16.0
    >>> model = DictionaryLearner(
    ...     n_components=16, code="sparse", alpha=0.5, random_state=0
    ... ).fit(X)
    >>> model.components_.shape
    (16, 64)
    >>> Z = model.transform(X)
    >>> Z.shape, bool((Z == 0).mean() > 0.3)
    ((300, 16), True)
    >>> model.inverse_transform(Z).shape
    (300, 64)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "code": [StrOptions(set(_CODES))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=8,
        *,
        code="sparse",
        alpha=1.0,
        max_iter=200,
        tol=1e-5,
        batch_size=None,
        n_init=1,
        random_state=None,
        device="auto",
        verbose=0,
    ):
        self.n_components = n_components
        self.code = code
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.n_init = n_init
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the dictionary from X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with _restore_on_error(self):
            device = resolve_device(self.device)
            X = self._validate_fit_input(X, reset=True)
            self._check_sizes(X.shape[0], X.shape[1])
            rng = check_random_state(self.random_state)
            Xt = _as_tensor(X, device)
            block = self.batch_size or X.shape[0]
            with _threads_for(block * self.n_components, device):
                state = self._fit(Xt, rng)
            state["device_"] = device
            state["n_samples_seen_"] = state.get("n_samples_seen_", X.shape[0])
            self._set_state(state)
        return self

    def _fit(self, Xt, rng):
        """Dispatch to the solver of ``code``; keep the best of ``n_init``."""
        if self.code == "orthogonal" and self.batch_size is None:
            return self._fit_orthogonal(Xt)
        if self.code == "orthogonal":
            return self._fit_orthogonal_streaming(Xt)
        best = None
        for init in range(self.n_init):
            if self.batch_size is None:
                state = self._fit_full_batch(Xt, rng, init)
            else:
                state = self._fit_minibatch(Xt, rng, init)
            if best is None or state["objective_"] < best["objective_"]:
                best = state
        return best

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the dictionary with one mini-batch.

        The first call initialises the model from this batch; later calls
        take one online step (codes of the batch, then an atom update from
        the running statistics). After a full-batch :meth:`fit`, the online
        statistics start afresh from the fitted dictionary.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One mini-batch.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first = not hasattr(self, "components_")
        with _restore_on_error(self):
            device = resolve_device(self.device) if first else self._device()
            X = self._validate_fit_input(X, reset=first)
            Xt = _as_tensor(X, device)
            rng = check_random_state(self.random_state)
            if first:
                self._check_sizes(X.shape[0], X.shape[1], partial=True)
                state = self._init_online_state(Xt, rng, init=0)
            else:
                state = self._get_online_state(Xt)
            with _threads_for(X.shape[0] * self.n_components, device):
                state["objective_"] = self._minibatch_step(Xt, state, rng)
            state["device_"] = device
            self._set_state(state)
        return self

    # ----------------------------------------------------------- inference

    def transform(self, X):
        """Encode X: solve each sample's code problem with the atoms fixed.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            The codes, in the float dtype of X (one-hot rows for
            ``"onehot"``).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        Xt = _as_tensor(X, self._device())
        with _threads_for(X.shape[0] * self.n_components, Xt.device):
            return _finite(self._encode(Xt).cpu().numpy(), "codes")

    def inverse_transform(self, X):
        """Decode codes: ``X @ components_`` (plus ``mean_`` when centred).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The reconstruction.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.components_.shape[0]:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform is expecting "
                f"{self.components_.shape[0]} features (n_components) as input."
            )
        X_rec = Z @ self.components_.astype(Z.dtype, copy=False)
        if self.mean_ is not None:
            X_rec = X_rec + self.mean_.astype(Z.dtype, copy=False)
        return _finite(X_rec, "reconstructions")

    def score_samples(self, X):
        """Negative per-sample objective at the optimal code (higher is better).

        ``-(0.5 ||x - decode(encode(x))||^2 + alpha ||encode(x)||_1)``, the
        L1 term for ``code="sparse"`` only.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Negative objective of each sample.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        Xt = _as_tensor(X, self._device())
        with _threads_for(X.shape[0] * self.n_components, Xt.device):
            Z = self._encode(Xt)
            D = torch.as_tensor(self.components_, device=Xt.device).to(Xt.dtype)
            objective = self._per_sample_objective(Xt - self._mean(Xt), Z, D)
        return _finite(-objective.cpu().numpy(), "scores")

    @property
    def _n_features_out(self):
        """Number of transformed output features."""
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.positive_only = self.code == "nonnegative"
        return tags

    # ------------------------------------------------------------- helpers

    def _validate_fit_input(self, X, reset):
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        # Squared errors of larger values overflow the compute dtype.
        if X.size and np.abs(X).max() > np.sqrt(np.finfo(X.dtype).max) / X.shape[1]:
            raise ValueError(
                f"Input contains values too large for {X.dtype} arithmetic (squared "
                "errors overflow); rescale X or pass float64 data."
            )
        if self.code == "nonnegative" and X.size and X.min() < 0:
            raise ValueError(
                "Negative values in data passed to DictionaryLearner with "
                "code='nonnegative'; non-negative codes and atoms can only "
                "reconstruct non-negative data."
            )
        return X

    def _check_sizes(self, n_samples, n_features, partial=False):
        k = self.n_components
        if self.code == "onehot" and n_samples < k:
            raise ValueError(
                f"n_samples={n_samples} should be >= n_components={k} for "
                "code='onehot' (each atom starts at a distinct sample)."
            )
        if self.code == "orthogonal":
            limit = n_features if partial else min(n_samples, n_features)
            if k > limit:
                raise ValueError(
                    f"n_components={k} must be <= min(n_samples, n_features)="
                    f"{limit} for code='orthogonal' (n_samples={n_samples}, "
                    f"n_features={n_features})."
                )

    def _device(self):
        # A model fitted on CUDA and loaded where there is none still works.
        if self.device_.type == "cuda" and not torch.cuda.is_available():
            return torch.device("cpu")
        return self.device_

    def _mean(self, Xt):
        if self.mean_ is None:
            return torch.zeros((), dtype=Xt.dtype, device=Xt.device)
        return torch.as_tensor(self.mean_, device=Xt.device).to(Xt.dtype)

    def _per_sample_objective(self, Xc, Z, D):
        obj = 0.5 * ((Xc - Z @ D) ** 2).sum(dim=1)
        if self.code == "sparse":
            obj = obj + self.alpha * Z.abs().sum(dim=1)
        return obj

    def _encode(self, Xt, Z0=None, *, max_iter=_TRANSFORM_MAX_ITER, tol=None):
        """Codes of the rows of ``Xt`` for the fitted ``components_``."""
        D = torch.as_tensor(self.components_, device=Xt.device).to(Xt.dtype)
        return _encode(
            Xt - self._mean(Xt),
            D,
            self.code,
            self.alpha,
            Z0=Z0,
            max_iter=max_iter,
            # float32 cannot resolve changes much below its epsilon.
            tol=max(
                _TRANSFORM_TOL if tol is None else tol,
                10 * torch.finfo(Xt.dtype).eps,
            ),
        )

    def _set_state(self, state):
        """Assign a fit's results at once (defaults for what it did not set)."""
        values = {
            "mean_": None,
            "n_steps_": 0,
            "_A": None,
            "_B": None,
            "_counts": None,
            "_scatter": None,
        }
        values.update(_to_numpy_state(state))
        for name in _FIT_STATE:
            if name in values:
                setattr(self, name, values[name])

    def _log(self, it, objective):
        if self.verbose:
            print(f"[DictionaryLearner] iteration {it}: objective {objective:.6g}")

    # ----------------------------------------------------- full-batch fits

    def _fit_orthogonal(self, Xt):
        mean = Xt.mean(dim=0)
        Xc = Xt - mean
        D, _ = solvers.top_right_singular_vectors(Xc, self.n_components)
        objective = float(self._per_sample_objective(Xc, Xc @ D.T, D).sum())
        self._log(1, objective)
        return {
            "components_": D,
            "mean_": mean,
            "n_iter_": 1,
            "objective_": objective,
            "_scatter": Xc.T @ Xc,
        }

    def _fit_orthogonal_streaming(self, Xt):
        # One pass is exact: the running scatter matrix is the full one.
        state = self._init_online_state(Xt, None, init=0)
        for start in range(0, Xt.shape[0], self.batch_size):
            self._orthogonal_step(Xt[start : start + self.batch_size], state)
        state["n_iter_"] = 1
        self._log(1, state["objective_"])
        return state

    def _fit_full_batch(self, Xt, rng, init):
        D, Z = _initial_dictionary(Xt, self.n_components, self.code, rng, init)
        code = self.code
        if code == "onehot":
            return self._lloyd(Xt, D, rng)
        objective_prev = math.inf
        converged = False
        if code == "sparse" and self.alpha > 0:
            # The initial codes are dense, a poor guess of the lasso's
            # supports. A few proximal-gradient steps from zero are a good
            # one: for the orthonormal SVD atoms of the start they are exact.
            Z = solvers.fista(Xt @ D.T, D @ D.T, self.alpha, max_iter=3, tol=0.0)
        for it in range(1, self.max_iter + 1):
            # Code step (rows batched, warm-started from the previous codes).
            Z = _encode(
                Xt,
                D,
                code,
                self.alpha,
                Z0=Z,
                max_iter=_FIT_CODE_MAX_ITER if code == "sparse" else 1,
                tol=_FIT_CODE_TOL,
                fit=True,
            )
            # Atom step: one block-coordinate sweep from the sufficient stats.
            A, B = Z.T @ Z, Z.T @ Xt
            _update_dictionary(D, A, B, code, Xt, rng)
            objective = float(self._per_sample_objective(Xt, Z, D).sum())
            self._log(it, objective)
            if objective_prev - objective <= self.tol * abs(objective):
                converged = True
                break
            objective_prev = objective
        if not converged:
            _warn_not_converged(self.max_iter)
        return {"components_": D, "n_iter_": it, "objective_": objective}

    def _lloyd(self, Xt, D, rng):
        """K-means as alternation: nearest atom, then atom = cluster mean."""
        labels_prev = None
        objective_prev = math.inf
        converged = False
        for it in range(1, self.max_iter + 1):
            labels = solvers.nearest_atom(Xt, D)
            dist = solvers.squared_distance_to(Xt, D, labels)
            objective = 0.5 * float(dist.sum())
            self._log(it, objective)
            if labels_prev is not None and (
                torch.equal(labels, labels_prev)
                or objective_prev - objective <= self.tol * abs(objective)
            ):
                converged = True
                break
            _cluster_means(D, Xt, labels, dist)
            labels_prev, objective_prev = labels, objective
        if not converged:
            _warn_not_converged(self.max_iter)
        labels = solvers.nearest_atom(Xt, D)
        dist = solvers.squared_distance_to(Xt, D, labels)
        counts = torch.bincount(labels, minlength=D.shape[0]).to(Xt.dtype)
        return {
            "components_": D,
            "n_iter_": it,
            "objective_": 0.5 * float(dist.sum()),
            "_counts": counts,
        }

    # ------------------------------------------------------ mini-batch fits

    def _fit_minibatch(self, Xt, rng, init):
        n_samples = Xt.shape[0]
        state = self._init_online_state(Xt, rng, init)
        converged = False
        for it in range(1, self.max_iter + 1):
            order = torch.as_tensor(rng.permutation(n_samples), device=Xt.device)
            D_prev = state["components_"].clone()
            objective = 0.0
            for start in range(0, n_samples, self.batch_size):
                batch = Xt[order[start : start + self.batch_size]]
                objective += self._minibatch_step(batch, state, rng)
            self._log(it, objective)
            # Summed batch objectives are noisy (each batch is coded with the
            # atoms of its time), so convergence is read off the atoms.
            change = torch.linalg.matrix_norm(state["components_"] - D_prev)
            if change <= self.tol * torch.linalg.matrix_norm(D_prev):
                converged = True
                break
        if not converged:
            _warn_not_converged(self.max_iter)
        state["n_iter_"] = it
        state["objective_"] = objective
        return state

    def _init_online_state(self, Xt, rng, init):
        n_features = Xt.shape[1]
        state = {"n_steps_": 0, "n_samples_seen_": 0, "n_iter_": 0}
        zeros = dict(dtype=Xt.dtype, device=Xt.device)
        if self.code == "orthogonal":
            state["mean_"] = torch.zeros(n_features, **zeros)
            state["_scatter"] = torch.zeros(n_features, n_features, **zeros)
            state["components_"] = torch.zeros(self.n_components, n_features, **zeros)
            return state
        D, _ = _initial_dictionary(Xt, self.n_components, self.code, rng, init)
        state["components_"] = D
        k = self.n_components
        if self.code == "onehot":
            state["_counts"] = torch.zeros(k, **zeros)
        else:
            state["_A"] = torch.zeros(k, k, **zeros)
            state["_B"] = torch.zeros(k, n_features, **zeros)
        return state

    def _get_online_state(self, Xt):
        """The fitted state as tensors, ready for one more online step."""
        dt = dict(dtype=Xt.dtype, device=Xt.device)

        def tensor(value):
            # A copy: online steps update in place, the fitted arrays must not
            # change until the step has succeeded.
            return None if value is None else torch.tensor(value, **dt)

        state = {
            "components_": tensor(self.components_),
            "n_steps_": self.n_steps_,
            "n_samples_seen_": self.n_samples_seen_,
            "n_iter_": self.n_iter_,
        }
        k, n_features = self.components_.shape
        if self.code == "orthogonal":
            state["mean_"] = tensor(self.mean_)
            state["_scatter"] = tensor(self._scatter)
        elif self.code == "onehot":
            state["_counts"] = tensor(self._counts)
        else:
            # A full-batch fit keeps no online statistics: start them afresh.
            A, B = self._A, self._B
            state["_A"] = tensor(A) if A is not None else torch.zeros(k, k, **dt)
            state["_B"] = (
                tensor(B) if B is not None else torch.zeros(k, n_features, **dt)
            )
        return state

    def _minibatch_step(self, batch, state, rng):
        """One online step on ``batch`` (in place); returns the batch objective."""
        if self.code == "orthogonal":
            self._orthogonal_step(batch, state)
            return state["objective_"]
        D = state["components_"]
        m = batch.shape[0]
        state["n_steps_"] += 1
        state["n_samples_seen_"] += m
        if self.code == "onehot":
            labels = solvers.nearest_atom(batch, D)
            dist = solvers.squared_distance_to(batch, D, labels)
            # Running means per atom (MiniBatchKMeans without reassignment).
            counts_b = torch.bincount(labels, minlength=D.shape[0]).to(batch.dtype)
            sums = torch.zeros_like(D).index_add_(0, labels, batch)
            counts = state["_counts"].add_(counts_b)
            used = counts_b > 0
            D[used] += (sums[used] - counts_b[used, None] * D[used]) / counts[
                used, None
            ]
            return 0.5 * float(dist.sum())
        Z = _encode(
            batch,
            D,
            self.code,
            self.alpha,
            max_iter=_FIT_CODE_MAX_ITER if self.code == "sparse" else 10,
            tol=_FIT_CODE_TOL,
            fit=True,
        )
        objective = float(self._per_sample_objective(batch, Z, D).sum())
        # Forgetting schedule of scikit-learn's MiniBatchDictionaryLearning.
        step = state["n_steps_"] - 1
        if step < m - 1:
            theta = (step + 1) * m
        else:
            theta = m**2 + step + 1 - m
        beta = (theta + 1 - m) / (theta + 1)
        state["_A"].mul_(beta).add_(Z.T @ Z / m)
        state["_B"].mul_(beta).add_(Z.T @ batch / m)
        _update_dictionary(D, state["_A"], state["_B"], self.code, batch, rng)
        return objective

    def _orthogonal_step(self, batch, state):
        """Merge a batch into the running mean and scatter (Chan et al.).

        The top eigenvectors of the scatter matrix are then exactly the PCA
        atoms of all samples seen so far.
        """
        n_old, n_new = state["n_samples_seen_"], batch.shape[0]
        n_tot = n_old + n_new
        mean_b = batch.mean(dim=0)
        centred = batch - mean_b
        delta = mean_b - state["mean_"]
        state["_scatter"] += centred.T @ centred + torch.outer(delta, delta) * (
            n_old * n_new / n_tot
        )
        state["mean_"] += delta * (n_new / n_tot)
        state["n_samples_seen_"] = n_tot
        state["n_steps_"] += 1
        D = solvers.top_eigenvectors(state["_scatter"], self.n_components)
        state["components_"] = D
        state["objective_"] = _orthogonal_objective(state["_scatter"], D)


# ---------------------------------------------------------------- functions


def _encode(Xc, D, code, alpha, *, Z0=None, max_iter, tol, fit=False):
    """Codes of the (centred) rows of ``Xc`` for atoms ``D``."""
    if code == "orthogonal":
        return Xc @ D.T
    if code == "onehot":
        labels = solvers.nearest_atom(Xc, D)
        return solvers.one_hot(labels, D.shape[0], Xc.dtype)
    G = D @ D.T
    B = Xc @ D.T
    if code == "sparse" and alpha > 0:
        # Exact codes by an active-set method (FISTA only as its fallback),
        # trying the supports of Z0 (previous codes) first.
        return solvers.lasso(B, G, alpha, guess=Z0, fallback_iter=max_iter, tol=tol)
    if code == "sparse":
        return solvers.fista(B, G, alpha, Z0=Z0, max_iter=max_iter, tol=tol)
    if Z0 is None:
        Z0 = torch.zeros_like(B)
    # Non-negative least squares by exact coordinate descent. In fit one sweep
    # per alternation (as NMF's "cd" solver); elsewhere to convergence per row.
    if fit and max_iter == 1:
        Z = solvers.hals_codes(B, G, Z0, n_sweeps=1)
    else:
        Z = solvers.hals_codes(B, G, Z0, n_sweeps=max_iter, tol=tol)
    return Z


def _update_dictionary(D, A, B, code, X, rng):
    """One projected block-coordinate sweep on the atoms (in place)."""

    def resample(j):
        # An atom no sample uses restarts at a random sample plus a little
        # noise, as scikit-learn's dictionary update does.
        row = X[int(rng.randint(X.shape[0]))]
        scale = float(row.std()) if row.numel() > 1 else 0.0
        noise = rng.normal(0.0, 0.01 * (scale or 1.0), size=row.shape[0])
        return row + torch.as_tensor(noise, dtype=X.dtype, device=X.device)

    if code == "sparse":
        solvers.update_atoms(D, A, B, constraint="unit_ball", resample=resample)
    else:
        solvers.update_atoms(D, A, B, constraint="nonnegative")


def _cluster_means(D, X, labels, dist):
    """Lloyd's atom update in place; empty clusters move to far samples."""
    k = D.shape[0]
    counts = torch.bincount(labels, minlength=k)
    sums = torch.zeros_like(D).index_add_(0, labels, X)
    used = counts > 0
    D[used] = sums[used] / counts[used, None].to(X.dtype)
    empty = torch.nonzero(~used).flatten()
    if empty.numel():
        # As scikit-learn's KMeans: the samples farthest from their centres.
        far = torch.argsort(dist, descending=True, stable=True)[: empty.numel()]
        D[empty] = X[far]


def _initial_dictionary(X, k, code, rng, init):
    """Starting atoms (and codes where the code step warm-starts)."""
    n_samples, n_features = X.shape
    if code == "onehot":
        return _kmeans_plusplus(X, k, rng), None
    if code == "nonnegative":
        if init == 0 and k <= min(n_samples, n_features):
            Z, D = solvers.nndsvda(X, k)
            return D, Z
        # Random start scaled to the data, as NMF's init="random".
        avg = math.sqrt(float(X.mean()) / k)
        D = avg * np.abs(rng.standard_normal((k, n_features)))
        Z = avg * np.abs(rng.standard_normal((n_samples, k)))
        return (
            torch.as_tensor(D, dtype=X.dtype, device=X.device),
            torch.as_tensor(Z, dtype=X.dtype, device=X.device),
        )
    if init == 0:
        # The start of scikit-learn's DictionaryLearning: the top singular
        # directions scaled by their singular values (zero atoms past the rank
        # are resampled from the data by the first atom update).
        _, S, Vt = torch.linalg.svd(X, full_matrices=False)
        D = torch.zeros(k, n_features, dtype=X.dtype, device=X.device)
        r = min(k, S.shape[0])
        D[:r] = solvers.flip_signs(Vt[:r]) * S[:r, None]
        return D, None
    # Other restarts: atoms at randomly drawn samples, normalised.
    idx = rng.choice(n_samples, size=k, replace=n_samples < k)
    D = X[torch.as_tensor(idx, device=X.device)].clone()
    noise = rng.standard_normal((k, n_features)) * 1e-2 * (float(X.std()) or 1.0)
    D += torch.as_tensor(noise, dtype=X.dtype, device=X.device)
    D /= torch.linalg.vector_norm(D, dim=1, keepdim=True).clamp_min(
        torch.finfo(X.dtype).tiny
    )
    return D, None


def _kmeans_plusplus(X, k, rng):
    """Greedy k-means++ seeding (as scikit-learn's, 2 + log(k) local trials)."""
    n_samples = X.shape[0]
    n_trials = 2 + int(math.log(k))
    sq_norms = (X * X).sum(dim=1)
    centers = [int(rng.randint(n_samples))]

    def sq_dist_to(idx):
        C = X[idx]
        d = sq_norms[None, :] - 2.0 * (C @ X.T) + (C * C).sum(dim=1, keepdim=True)
        return d.clamp_min(0)

    closest = sq_dist_to(torch.as_tensor(centers, device=X.device))[0]
    for _ in range(1, k):
        potential = float(closest.sum())
        cumulative = torch.cumsum(closest, dim=0)
        targets = torch.as_tensor(
            rng.uniform(size=n_trials) * potential, dtype=X.dtype, device=X.device
        )
        candidates = torch.searchsorted(cumulative, targets).clamp_max(n_samples - 1)
        dist = torch.minimum(closest[None, :], sq_dist_to(candidates))
        best = int(dist.sum(dim=1).argmin())
        centers.append(int(candidates[best]))
        closest = dist[best]
    return X[torch.as_tensor(centers, device=X.device)].clone()


def _finite(values, what):
    """Return ``values``, or raise a clear error instead of emitting inf/NaN."""
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"DictionaryLearner produced non-finite {what}: the input is too large "
            "for its dtype's arithmetic; rescale X or pass float64 data."
        )
    return values


@contextlib.contextmanager
def _threads_for(work, device):
    """One torch intra-op thread while working on small CPU blocks.

    The same idea as scikit-learn's KMeans, which limits BLAS threads around
    its Lloyd loop; the previous setting is restored on exit.
    """
    if device.type != "cpu" or work >= _PARALLEL_MIN_WORK:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _as_tensor(X, device):
    # torch cannot wrap read-only arrays (e.g. memmaps) safely: copy those.
    return torch.as_tensor(np.require(X, requirements="W"), device=device)


def _orthogonal_objective(scatter, D):
    """0.5 * residual sum of squares left by orthonormal atoms ``D``.

    ``||Xc - Xc D^T D||^2 = tr(S) - tr(D S D^T)`` with ``S = Xc^T Xc``.
    """
    return 0.5 * float(torch.trace(scatter) - torch.trace(D @ scatter @ D.T))


def _to_numpy_state(state):
    return {
        key: value.cpu().numpy() if isinstance(value, torch.Tensor) else value
        for key, value in state.items()
    }


def _warn_not_converged(max_iter):
    warnings.warn(
        f"DictionaryLearner did not converge within max_iter={max_iter} "
        "iterations; increase max_iter or tol.",
        ConvergenceWarning,
        stacklevel=3,
    )


class _restore_on_error:
    """Context manager: on any exception, put the fitted state back as it was.

    ``validate_data(reset=True)`` writes ``n_features_in_`` before we know the
    call will succeed; a failed ``fit`` or ``partial_fit`` must not leave a
    fitted model changed.
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def __enter__(self):
        # Shallow copy: fits replace attributes, they never mutate them.
        self.saved = dict(self.estimator.__dict__)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.estimator.__dict__.clear()
            self.estimator.__dict__.update(self.saved)
        return False
