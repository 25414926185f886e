"""Dictionary learning as a linear-decoder autoencoder: ``X ~ Z @ components_``.

One estimator covers PCA, NMF, k-means, ICA and sparse coding; the constraint on
the codes (and atoms) picks which. Each value of ``code`` is one small class here
(its start, code step, atom step and running statistics), registered in
``_CODE_TYPES``, as scikit-learn's NMF keeps one function per solver. The
estimator validates, seeds, stores the fitted state and asks its code type for
the rest; the batched torch math of each half-step lives in
:mod:`skae._dictionary_solvers`.
"""

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
from skae._input import validate_float_rows
from skae.utils._device import resolve_device
from skae.utils._threads import follow_the_load, threads_sized_to

# Code step inside fit. Loose codes bias the atom update (measured on image
# patches: 50 iterations at 1e-3 stalled 0.7% above the exact-code solution),
# so the codes are solved nearly exactly; warm starts keep that cheap.
_FIT_CODE_MAX_ITER = 300
_FIT_CODE_TOL = 1e-6
# Coordinate-descent sweeps per online code step of "nonnegative" (from zero
# codes; each row stops early once it changes by less than _FIT_CODE_TOL).
_ONLINE_NNLS_SWEEPS = 10
# L-BFGS iterations per online step of overcomplete "independent" codes: a
# few, warm-started, so that one batch does not pull the filters all the way.
_ONLINE_RICA_ITER = 10
# transform solves each row's code problem to a tight tolerance.
_TRANSFORM_MAX_ITER = 1000
_TRANSFORM_TOL = 1e-6

# Bytes of rows (inputs or codes, whichever is wider) that transform,
# inverse_transform and score_samples process at once.
INFERENCE_BATCH_BYTES = 8 * 2**20

#: Work (block rows x atoms x features) from which a dictionary fit may use
#: more than one intra-op thread. Lower than the autoencoders' threshold: a
#: code step iterates many times over the same block, so each unit of this
#: work carries more arithmetic. On a quiet 2-core machine every fit measured
#: from 2^20.6 up (digits, 16 to 128 atoms full batch, batch 256 of 100
#: atoms; MNIST) ran 1.12-1.47x faster on both cores
#: (benchmarks/bench_threads.py --dictionary); on a busy one the idle-core
#: cap keeps them on one thread.
PARALLEL_MIN_WORK = 2**20

# What fit and partial_fit write, all at once and only on success. Every name
# is public, so skae.save keeps all that partial_fit needs to continue.
_FIT_STATE = (
    "code_",
    "alpha_",
    "components_",
    "mean_",
    "unmixing_",
    "inner_stats_",
    "n_iter_",
    "n_steps_",
    "n_samples_seen_",
    "objective_",
    "rng_state_",
    "device_",
)


# ------------------------------------------------------------- code types


class _CodeType:
    """What one value of ``code`` means to the fit.

    A subclass holds one code type's start, code step (:meth:`encode`), atom
    step, full-batch fit (:meth:`fit`) and online step (:meth:`_online_update`)
    with the running statistics that step needs (:meth:`new_stats`); adding a
    code type is one subclass and one entry in ``_CODE_TYPES``. An instance
    carries the estimator's hyper-parameters for one call and no fitted state:
    states are dicts named like the estimator's fitted attributes, holding
    tensors.
    """

    code = None
    # ``tol="auto"``: the relative objective decrease at which a full-batch
    # fit of this code type has done its work (see each subclass).
    default_tol = 1e-5
    # X must be non-negative (scikit-learn's ``positive_only`` input tag).
    positive_only = False
    # Solved in closed form, so ``n_init`` restarts would all agree.
    exact = False

    def __init__(
        self, *, n_components, alpha, max_iter, tol, verbose, max_no_improvement=None
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = self.default_tol if tol == "auto" else tol
        self.verbose = verbose
        self.max_no_improvement = max_no_improvement

    def check_input(self, X):
        """Raise ValueError for data this code type cannot reconstruct."""

    def n_starts(self, n_init, n_features):
        """How many of the ``n_init`` starts a full fit tries."""
        return 1 if self.exact else n_init

    def check_sizes(self, n_samples, n_features, *, partial):
        """Raise ValueError when ``n_components`` does not fit the data."""

    def objective(self, Xc, Z, D):
        """Per-sample objective of the (centred) rows ``Xc`` at codes ``Z``."""
        return 0.5 * ((Xc - Z @ D) ** 2).sum(dim=1)

    def encode(self, Xc, D, *, max_iter, tol, Z0=None, unmixing=None):
        """Codes of the (centred) rows of ``Xc`` for atoms ``D``.

        ``unmixing`` is the fitted ``unmixing_``, the encoder of the code
        types whose codes are a linear map of their own (``"independent"``).
        """
        raise NotImplementedError

    def initial_dictionary(self, X, rng, init):
        """Starting atoms, and starting codes where the code step warm-starts."""
        raise NotImplementedError

    def fit(self, Xt, rng, init):
        """Full-batch fit from start number ``init``; returns the fitted state."""
        raise NotImplementedError

    def new_stats(self, n_components, n_features, **dt):
        """Zero running statistics, the ``inner_stats_`` of a fresh stream."""
        raise NotImplementedError

    def _online_update(self, batch, state, rng):
        """Update atoms and statistics from ``batch``; returns its objective.

        ``state["n_steps_"]`` and ``state["n_samples_seen_"]`` still count the
        steps and samples before this one.
        """
        raise NotImplementedError

    def start_stream(self, Xt, rng, init):
        """The online state before the first step: starting atoms, zero stats."""
        D, _ = self.initial_dictionary(Xt, rng, init)
        stats = self.new_stats(D.shape[0], Xt.shape[1], dtype=Xt.dtype, device=D.device)
        return _stream_start(D, stats)

    def step(self, batch, state, rng):
        """One online step on ``batch``, in place; returns the batch objective."""
        objective = self._online_update(batch, state, rng)
        state["n_steps_"] += 1
        state["n_samples_seen_"] += batch.shape[0]
        return objective

    def fit_stream(self, Xt, rng, init, batch_size):
        """Mini-batch fit: shuffled batches until the objective stops falling.

        Two stopping rules, as in scikit-learn's MiniBatchDictionaryLearning:
        the moving average of the per-row batch objective has not reached a
        new minimum for ``max_no_improvement`` batches in a row (checked after
        every batch, so a fit on many rows may stop within its first pass),
        or a whole pass changes the atoms by less than ``tol`` times their
        norm.
        """
        n_samples = Xt.shape[0]
        state = self.start_stream(Xt, rng, init)
        plateau = _Plateau(
            self.max_no_improvement,
            weight=batch_size / (n_samples + 1),
            # The first steps learn from statistics of a batch or two, so
            # their objectives say little: skip one pass, at most 100 steps.
            warmup=min(100, math.ceil(n_samples / batch_size)),
        )
        converged = False
        for it in range(1, self.max_iter + 1):
            order = torch.as_tensor(rng.permutation(n_samples), device=Xt.device)
            D_prev = state["components_"].clone()
            objective, rows = 0.0, 0
            for start in range(0, n_samples, batch_size):
                follow_the_load()
                batch = Xt[order[start : start + batch_size]]
                batch_objective = self.step(batch, state, rng)
                objective += batch_objective
                rows += batch.shape[0]
                if plateau.reached(batch_objective / batch.shape[0]):
                    converged = True
                    break
            # A pass cut short by the plateau rule is scaled to all rows, so
            # n_init restarts compare objectives over the same number of rows.
            objective *= n_samples / rows
            self.log(it, objective)
            if converged:
                break
            # Summed batch objectives are noisy (each batch is coded with the
            # atoms of its time), so the pass-level rule reads the atoms.
            change = torch.linalg.matrix_norm(state["components_"] - D_prev)
            if change <= self.tol * torch.linalg.matrix_norm(D_prev):
                converged = True
                break
        if not converged:
            _warn_not_converged(self.max_iter)
        state["n_iter_"] = it
        state["objective_"] = objective
        return state

    def log(self, it, objective):
        if self.verbose:
            print(f"[DictionaryLearner] iteration {it}: objective {objective:.6g}")


class _Plateau:
    """Has a noisy per-batch objective stopped falling?

    Keeps an exponentially weighted moving average of the per-row batch
    objective with weight ``weight`` per batch (the batch's share of the
    data, as scikit-learn's MiniBatchDictionaryLearning does, so one pass
    averages about the whole data set) and reports a plateau once the
    average has not reached a new minimum for ``patience`` batches in a row.
    The first ``warmup`` values are ignored. ``patience=None`` never reports
    a plateau.
    """

    def __init__(self, patience, *, weight, warmup):
        self.patience = patience
        self.weight = min(1.0, weight)
        self.warmup = warmup
        self.average = None
        self.best = math.inf
        self.stale = 0

    def reached(self, value):
        if self.warmup > 0:
            self.warmup -= 1
            return False
        if self.average is None:
            self.average = value
        else:
            self.average += self.weight * (value - self.average)
        if self.average < self.best:
            self.best, self.stale = self.average, 0
        else:
            self.stale += 1
        return self.patience is not None and self.stale >= self.patience


class _AlternatingCodes(_CodeType):
    """Codes, then atoms from ``A = Z^T Z`` and ``B = Z^T X``, in turn.

    Subclasses choose the start, the code steps and the atom constraint.
    Online, ``A`` and ``B`` are running statistics (Mairal et al., 2009).
    """

    def initial_codes(self, Xt, D, Z):
        """Codes the first full-batch code step starts from."""
        return Z

    def fit_codes(self, Xt, D, Z):
        """The code step of a full-batch alternation, warm-started at ``Z``."""
        raise NotImplementedError

    def online_codes(self, batch, D):
        """The code step of an online step."""
        raise NotImplementedError

    def update_atoms(self, D, A, B, X, rng):
        """One projected block-coordinate sweep on the atoms (in place)."""
        raise NotImplementedError

    def fit(self, Xt, rng, init):
        D, Z = self.initial_dictionary(Xt, rng, init)
        Z = self.initial_codes(Xt, D, Z)
        objective_prev = math.inf
        converged = False
        for it in range(1, self.max_iter + 1):
            follow_the_load()
            # Code step (rows batched, warm-started from the previous codes).
            Z = self.fit_codes(Xt, D, Z)
            # Atom step: one block-coordinate sweep from the sufficient stats.
            self.update_atoms(D, Z.T @ Z, Z.T @ Xt, Xt, rng)
            objective = float(self.objective(Xt, Z, D).sum())
            self.log(it, objective)
            if objective_prev - objective <= self.tol * abs(objective):
                converged = True
                break
            objective_prev = objective
        if not converged:
            _warn_not_converged(self.max_iter)
        # The full-batch A and B describe codes of atoms long gone: a later
        # partial_fit starts its statistics from zero at the fitted atoms.
        stats = self.new_stats(*D.shape, dtype=D.dtype, device=D.device)
        return {
            "components_": D,
            "inner_stats_": stats,
            "n_iter_": it,
            "objective_": objective,
        }

    def new_stats(self, n_components, n_features, **dt):
        return {
            "A": torch.zeros(n_components, n_components, **dt),
            "B": torch.zeros(n_components, n_features, **dt),
        }

    def _online_update(self, batch, state, rng):
        D, stats = state["components_"], state["inner_stats_"]
        m = batch.shape[0]
        Z = self.online_codes(batch, D)
        objective = float(self.objective(batch, Z, D).sum())
        beta = _forgetting_factor(state["n_steps_"], m)
        stats["A"].mul_(beta).add_(Z.T @ Z / m)
        stats["B"].mul_(beta).add_(Z.T @ batch / m)
        self.update_atoms(D, stats["A"], stats["B"], batch, rng)
        return objective


class _SparseCodes(_AlternatingCodes):
    """``code="sparse"``: lasso codes, atoms in the unit ball."""

    code = "sparse"
    # scikit-learn's DictionaryLearning's own: the same rule on the same
    # objective, and from the same SVD start our alternations follow its
    # trajectory, so both stop at the same place. On the 20,000 patches of
    # bench_dictionary.py it stopped at alternation 467 (objective 168123.7,
    # 5,772 s), ours at 470 (168123.7, 245 s); at 1e-7 ours stopped at 294,
    # 1.9e-5 above it (on digits within 1e-6), which is not its objective.
    default_tol = 1e-8

    def objective(self, Xc, Z, D):
        return super().objective(Xc, Z, D) + self.alpha * Z.abs().sum(dim=1)

    def encode(self, Xc, D, *, max_iter, tol, Z0=None, unmixing=None):
        G, B = D @ D.T, Xc @ D.T
        if self.alpha > 0:
            # Exact codes by an active-set method (FISTA only as its
            # fallback), trying the supports of Z0 (previous codes) first.
            return solvers.lasso(
                B, G, self.alpha, guess=Z0, fallback_iter=max_iter, tol=tol
            )
        return solvers.fista(B, G, self.alpha, Z0=Z0, max_iter=max_iter, tol=tol)

    def initial_dictionary(self, X, rng, init):
        k = self.n_components
        n_samples, n_features = X.shape
        if init == 0:
            # The start of scikit-learn's DictionaryLearning: the top singular
            # directions scaled by their singular values (zero atoms past the
            # rank are resampled from the data by the first atom update).
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

    def initial_codes(self, Xt, D, Z):
        if self.alpha == 0:
            return Z
        # The initial codes are dense, a poor guess of the lasso's supports. A
        # few proximal-gradient steps from zero are a good one: for the
        # orthonormal SVD atoms of the start they are exact.
        return solvers.fista(Xt @ D.T, D @ D.T, self.alpha, max_iter=3, tol=0.0)

    def fit_codes(self, Xt, D, Z):
        return self.encode(Xt, D, Z0=Z, max_iter=_FIT_CODE_MAX_ITER, tol=_FIT_CODE_TOL)

    def online_codes(self, batch, D):
        return self.encode(batch, D, max_iter=_FIT_CODE_MAX_ITER, tol=_FIT_CODE_TOL)

    def update_atoms(self, D, A, B, X, rng):
        def resample(j):
            # An atom no sample uses restarts at a random sample plus a little
            # noise, as scikit-learn's dictionary update does.
            row = X[int(rng.randint(X.shape[0]))]
            scale = float(row.std()) if row.numel() > 1 else 0.0
            noise = rng.normal(0.0, 0.01 * (scale or 1.0), size=row.shape[0])
            return row + torch.as_tensor(noise, dtype=X.dtype, device=X.device)

        solvers.update_atoms(D, A, B, constraint="unit_ball", resample=resample)


class _NonnegativeCodes(_AlternatingCodes):
    """``code="nonnegative"``: NMF, codes and atoms by HALS."""

    code = "nonnegative"
    # scikit-learn's NMF default: smaller steps barely move its objective
    # (0.5% from 1e-5 over 1000 alternations on digits) at 5x the time.
    default_tol = 1e-4
    positive_only = True

    def check_input(self, X):
        if X.size and X.min() < 0:
            raise ValueError(
                "Negative values in data passed to DictionaryLearner with "
                "code='nonnegative'; non-negative codes and atoms can only "
                "reconstruct non-negative data."
            )

    def encode(self, Xc, D, *, max_iter, tol, Z0=None, unmixing=None):
        """Non-negative least squares by exact coordinate descent (HALS).

        ``max_iter`` sweeps; with ``tol`` set, each row stops once it settles.
        """
        G, B = D @ D.T, Xc @ D.T
        if Z0 is None:
            Z0 = torch.zeros_like(B)
        return solvers.hals_codes(B, G, Z0, n_sweeps=max_iter, tol=tol)

    def initial_dictionary(self, X, rng, init):
        k = self.n_components
        n_samples, n_features = X.shape
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

    def fit_codes(self, Xt, D, Z):
        # One sweep per alternation, as NMF's "cd" solver.
        return self.encode(Xt, D, Z0=Z, max_iter=1, tol=None)

    def online_codes(self, batch, D):
        return self.encode(batch, D, max_iter=_ONLINE_NNLS_SWEEPS, tol=_FIT_CODE_TOL)

    def update_atoms(self, D, A, B, X, rng):
        # An atom no sample uses stays as it is (it is already non-negative).
        solvers.update_atoms(D, A, B, constraint="nonnegative")


class _OneHotCodes(_CodeType):
    """``code="onehot"``: k-means, by Lloyd's algorithm or running means."""

    code = "onehot"

    def check_sizes(self, n_samples, n_features, *, partial):
        k = self.n_components
        if n_samples < k:
            raise ValueError(
                f"n_samples={n_samples} should be >= n_components={k} for "
                "code='onehot' (each atom starts at a distinct sample)."
            )

    def encode(self, Xc, D, *, max_iter, tol, Z0=None, unmixing=None):
        labels = solvers.nearest_atom(Xc, D)
        return solvers.one_hot(labels, D.shape[0], Xc.dtype)

    def initial_dictionary(self, X, rng, init):
        return _kmeans_plusplus(X, self.n_components, rng), None

    def fit(self, Xt, rng, init):
        """Lloyd's algorithm: nearest atom, then atom = cluster mean."""
        D, _ = self.initial_dictionary(Xt, rng, init)
        labels_prev = None
        objective_prev = math.inf
        converged = False
        for it in range(1, self.max_iter + 1):
            follow_the_load()
            labels = solvers.nearest_atom(Xt, D)
            dist = solvers.squared_distance_to(Xt, D, labels)
            objective = 0.5 * float(dist.sum())
            self.log(it, objective)
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
            "inner_stats_": {"counts": counts},
            "n_iter_": it,
            "objective_": 0.5 * float(dist.sum()),
        }

    def new_stats(self, n_components, n_features, **dt):
        return {"counts": torch.zeros(n_components, **dt)}

    def _online_update(self, batch, state, rng):
        # Running means per atom (MiniBatchKMeans without reassignment).
        D = state["components_"]
        labels = solvers.nearest_atom(batch, D)
        dist = solvers.squared_distance_to(batch, D, labels)
        counts_b = torch.bincount(labels, minlength=D.shape[0]).to(batch.dtype)
        sums = torch.zeros_like(D).index_add_(0, labels, batch)
        counts = state["inner_stats_"]["counts"].add_(counts_b)
        used = counts_b > 0
        D[used] += (sums[used] - counts_b[used, None] * D[used]) / counts[used, None]
        return 0.5 * float(dist.sum())


class _OrthogonalCodes(_CodeType):
    """``code="orthogonal"``: PCA, exact from an SVD or a running scatter.

    The alternation ``Z = (X - mean) Phi^T``, ``Phi = polar(Z^T (X - mean))``
    has the top right singular vectors as its fixed point, so they are
    computed directly.
    """

    code = "orthogonal"
    exact = True

    def check_sizes(self, n_samples, n_features, *, partial):
        # A stream's first batch may be small: its scatter matrix grows.
        k = self.n_components
        limit = n_features if partial else min(n_samples, n_features)
        if k > limit:
            raise ValueError(
                f"n_components={k} must be <= min(n_samples, n_features)="
                f"{limit} for code='orthogonal' (n_samples={n_samples}, "
                f"n_features={n_features})."
            )

    def encode(self, Xc, D, *, max_iter, tol, Z0=None, unmixing=None):
        return Xc @ D.T

    def fit(self, Xt, rng, init):
        mean = Xt.mean(dim=0)
        Xc = Xt - mean
        D = solvers.top_right_singular_vectors(Xc, self.n_components)
        objective = float(self.objective(Xc, Xc @ D.T, D).sum())
        self.log(1, objective)
        return {
            "components_": D,
            "mean_": mean,
            "inner_stats_": {"scatter": Xc.T @ Xc},
            "n_iter_": 1,
            "objective_": objective,
        }

    def new_stats(self, n_components, n_features, **dt):
        return {"scatter": torch.zeros(n_features, n_features, **dt)}

    def start_stream(self, Xt, rng, init):
        n_features = Xt.shape[1]
        dt = dict(dtype=Xt.dtype, device=Xt.device)
        D = torch.zeros(self.n_components, n_features, **dt)
        state = _stream_start(D, self.new_stats(self.n_components, n_features, **dt))
        state["mean_"] = torch.zeros(n_features, **dt)
        return state

    def fit_stream(self, Xt, rng, init, batch_size):
        # One pass is exact: the running scatter matrix is the full one.
        state = self.start_stream(Xt, rng, init)
        for start in range(0, Xt.shape[0], batch_size):
            state["objective_"] = self.step(Xt[start : start + batch_size], state, rng)
        state["n_iter_"] = 1
        self.log(1, state["objective_"])
        return state

    def _online_update(self, batch, state, rng):
        """Merge a batch into the running mean and scatter (Chan et al.).

        The top eigenvectors of the scatter matrix are then exactly the PCA
        atoms of all samples seen so far; the objective returned is theirs.
        """
        scatter = _merge_moments(batch, state)
        D = solvers.top_eigenvectors(scatter, state["components_"].shape[0])
        state["components_"] = D
        return _orthogonal_objective(scatter, D)


class _IndependentCodes(_CodeType):
    """``code="independent"``: ICA, by FastICA (complete) or RICA (overcomplete).

    Both whiten the centred data with the covariance's eigenvectors (the
    leading ``n_components`` of them when complete, all when overcomplete),
    ``x_w = K (x - mean)``, and find a matrix ``W`` on the whitened data:
    codes ``z = W x_w`` and atoms mapped back by ``K_inv``, so that
    ``unmixing_ = W K`` encodes and ``components_ = W K_inv`` decodes.
    """

    code = "independent"

    def overcomplete(self, n_features):
        return self.n_components > n_features

    def n_starts(self, n_init, n_features):
        # Complete ICA only rotates within the PCA subspace: every start ends
        # at the same objective (the PCA residual), so restarts cannot be
        # told apart; FastICA's fixed point does not need them.
        return n_init if self.overcomplete(n_features) else 1

    def check_sizes(self, n_samples, n_features, *, partial):
        if n_samples < 2:
            raise ValueError(
                f"n_samples={n_samples} should be >= 2 for code='independent': "
                "whitening needs the data's covariance."
            )

    def objective(self, Xc, Z, D):
        value = super().objective(Xc, Z, D)
        if self.overcomplete(D.shape[1]):
            # RICA's sparsity term, on the codes (in the data's units).
            value = value + self.alpha * solvers.log_cosh(Z).sum(dim=1)
        return value

    def encode(self, Xc, D, *, max_iter, tol, Z0=None, unmixing=None):
        # A linear encoder: rows are coded independently, exactly.
        return Xc @ unmixing.T

    def _whitening(self, scatter, n_samples):
        n_features = scatter.shape[0]
        p = n_features if self.overcomplete(n_features) else self.n_components
        values, vectors = torch.linalg.eigh(scatter / n_samples)
        return solvers.whitening(values, vectors, p)

    def _random_unmixing(self, rng, K):
        W = rng.standard_normal((self.n_components, K.shape[0]))
        W = torch.as_tensor(W, dtype=K.dtype, device=K.device)
        # Orthonormal rows when complete. Overcomplete, a Parseval frame with
        # rows of equal norm, the norm RICA keeps: its reconstruction term is
        # then nearly zero from the start.
        W = solvers.tight_frame(W)
        if W.shape[0] > W.shape[1]:
            norm = solvers.rica_row_norm(*W.shape)
            W = solvers.tight_frame(solvers.equal_rows(W, norm))
            W = solvers.equal_rows(W, norm)
        return W

    def _solve(self, Xw, W, max_iter):
        if W.shape[0] > W.shape[1]:
            return solvers.rica(Xw, W, self.alpha, max_iter=max_iter, tol=self.tol)
        return solvers.fastica(Xw, W, max_iter=max_iter, tol=self.tol)

    def _state(self, Xc, W, K, K_inv):
        """Encoder, atoms and objective of ``W`` in the data's coordinates."""
        U, D = W @ K, W @ K_inv
        return U, D, float(self.objective(Xc, Xc @ U.T, D).sum())

    def fit(self, Xt, rng, init):
        n_samples = Xt.shape[0]
        mean = Xt.mean(dim=0)
        Xc = Xt - mean
        scatter = Xc.T @ Xc
        K, K_inv = self._whitening(scatter, n_samples)
        W, n_iter, converged = self._solve(
            Xc @ K.T, self._random_unmixing(rng, K), self.max_iter
        )
        if not converged:
            _warn_not_converged(self.max_iter)
        U, D, objective = self._state(Xc, W, K, K_inv)
        self.log(n_iter, objective)
        return {
            "components_": D,
            "mean_": mean,
            "unmixing_": U,
            "inner_stats_": {"scatter": scatter},
            "n_iter_": n_iter,
            "objective_": objective,
        }

    def fit_stream(self, Xt, rng, init, batch_size):
        # A fixed-point or L-BFGS iteration needs expectations over all the
        # rows, which are already in memory: the full-batch fit is exact.
        return self.fit(Xt, rng, init)

    def new_stats(self, n_components, n_features, **dt):
        return {"scatter": torch.zeros(n_features, n_features, **dt)}

    def start_stream(self, Xt, rng, init):
        state = super().start_stream(Xt, rng, init)
        state["mean_"] = torch.zeros_like(Xt[0])
        state["unmixing_"] = torch.zeros_like(state["components_"])
        return state

    def initial_dictionary(self, X, rng, init):
        # A stream's atoms are computed by its first step.
        dt = dict(dtype=X.dtype, device=X.device)
        return torch.zeros(self.n_components, X.shape[1], **dt), None

    def _online_update(self, batch, state, rng):
        """Whitening of all samples seen, then one step on the batch.

        Complete: a step towards the batch's FastICA fixed-point target,
        weighted by the batch's share of the samples seen. Overcomplete:
        ``_ONLINE_RICA_ITER`` L-BFGS iterations on the batch's RICA cost.
        Both start from the current unmixing, expressed in the whitened
        coordinates of all samples seen so far.
        """
        first = state["n_samples_seen_"] == 0
        scatter = _merge_moments(batch, state)
        K, K_inv = self._whitening(scatter, state["n_samples_seen_"] + len(batch))
        if first:
            W = self._random_unmixing(rng, K)
        else:
            # U = W_old K_old; K @ K_inv.T = I recovers W when K is unchanged.
            W = state["unmixing_"] @ K_inv.T
        Xc = batch - state["mean_"]
        Xw = Xc @ K.T
        if self.overcomplete(batch.shape[1]):
            W, _, _ = solvers.rica(
                Xw, W, self.alpha, max_iter=_ONLINE_RICA_ITER, tol=self.tol
            )
        else:
            W = solvers.symmetric_decorrelation(W)
            target = solvers.fastica_step(Xw, W)
            # One batch's fixed point is noisy (its sampling error): move
            # towards it with the batch's share of all samples seen, as the
            # running mean does, so the stream averages the batches' targets.
            # Rows come back with either sign; align them first.
            signs = torch.sign((target * W).sum(dim=1, keepdim=True))
            signs[signs == 0] = 1
            share = len(batch) / (state["n_samples_seen_"] + len(batch))
            W = solvers.symmetric_decorrelation(
                (1.0 - share) * W + share * signs * target
            )
        U, D, objective = self._state(Xc, W, K, K_inv)
        state["unmixing_"], state["components_"] = U, D
        return objective


# One entry per value of the ``code`` parameter.
_CODE_TYPES = {
    code_type.code: code_type
    for code_type in (
        _SparseCodes,
        _NonnegativeCodes,
        _OneHotCodes,
        _OrthogonalCodes,
        _IndependentCodes,
    )
}


# -------------------------------------------------------------- estimator


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

    ``code="independent"`` (ICA; the columns of Z, the sources, as independent
    as possible). The centred data are whitened, ``X_w = (X - mean) K^T`` with
    unit covariance, and the codes are ``Z = X_w W^T``. With ``n_components
    <= n_features`` (complete, ``FastICA``) ``W`` has orthonormal rows and
    maximises the negentropy approximation (``G = log cosh``)::

        W* = argmax sum_j (E[G(w_j x_w)] - E[G(nu)])^2,  W W^T = I,  nu ~ N(0, 1)

    and with ``n_components > n_features`` (overcomplete, RICA) it minimises
    the reconstruction-ICA cost, averaged over samples::

        W* = argmin E[ alpha sum_j log cosh(w_j x_w) + ||W^T W x_w - x_w||^2 ]
             with ||w_j|| = sqrt(n_features / n_components) for all j

    The atoms ``Phi = W K_inv`` (``K_inv`` undoes the whitening) decode the
    codes; complete ICA reconstructs exactly what PCA with as many components
    does.

    Here :math:`||.||_{Fro}` is the Frobenius norm and :math:`||Z||_1` the
    sum of absolute values of the entries of Z.

    Read more in the :doc:`User Guide </dictionary_learning>`.

    Parameters
    ----------
    n_components : int, default=8
        Number of atoms (rows of ``components_``). May exceed ``n_features``
        (an overcomplete dictionary) for ``"sparse"`` codes, and for
        ``"independent"`` ones (which then fit RICA).

    code : {"sparse", "nonnegative", "onehot", "orthogonal", "independent"}, \
            default="sparse"
        The constraint on the codes, see above.

    alpha : float, default=1.0
        Weight of the L1 penalty on the codes for ``code="sparse"``, and of
        the smooth L1 penalty ``log cosh`` of overcomplete
        ``code="independent"`` (RICA). Not used by the other code types.

    max_iter : int, default=1000
        Maximum number of alternations (full batch) or of passes over the data
        (mini-batch), as in scikit-learn's ``DictionaryLearning`` and
        ``MiniBatchDictionaryLearning``; of fixed-point iterations (complete)
        or L-BFGS iterations (overcomplete) for ``"independent"``. Fits
        normally stop well before it, by ``tol`` or ``max_no_improvement``.

    tol : float or "auto", default="auto"
        Full batch: stop when the objective decreases by less than ``tol``
        times its value from one iteration to the next. Mini-batch: stop when
        a pass changes the dictionary by less than ``tol`` times its norm
        (Frobenius). ``"independent"``: complete, stop when no row of ``W``
        turns by more than ``tol`` (``max_j ||<w_j^new, w_j>| - 1| < tol``, as
        ``FastICA``); overcomplete, when an L-BFGS step changes the cost by
        less than ``tol`` times its starting value. ``"auto"`` picks per code
        type the tolerance at which a fit has done its work: 1e-8 for
        ``"sparse"`` (``DictionaryLearning``'s, whose objective it reaches), 1e-4 for
        ``"nonnegative"`` (``NMF``'s default), 1e-5 otherwise.

    max_no_improvement : int or None, default=10
        Mini-batch only: stop when the moving average of the per-row batch
        objective has not improved for this many consecutive batches, as
        scikit-learn's ``MiniBatchDictionaryLearning`` does (same name, same
        default). ``None`` turns this rule off, leaving ``tol`` and
        ``max_iter``. Not used by ``"independent"``, which fits on all rows.

    batch_size : int, default=None
        ``None`` alternates on the full data set. An int uses the online
        (mini-batch) algorithm of Mairal et al. (2009): codes of one batch at
        a time, atoms updated from running statistics; :meth:`partial_fit`
        performs one such step. ``"independent"`` fits on the full data
        whatever ``batch_size`` (each of its iterations needs expectations
        over all rows); its :meth:`partial_fit` still streams.

    n_init : int, default=1
        Number of initialisations tried; the one with the lowest objective is
        kept. ``"orthogonal"`` is solved exactly and ignores it, and so does
        complete ``"independent"`` (every start reaches the same objective,
        the PCA residual).

    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the mini-batch order and the resampling of
        unused atoms. Pass an int for reproducible results.

    device : str or torch.device, default="auto"
        Torch device to compute on; ``"auto"`` uses CUDA when available.

    n_jobs : int or None, default=None
        Intra-op threads for fitting and inference on the CPU. None sizes them
        to the work (rows per block x atoms x features): one thread for small
        blocks (a second one only adds synchronisation, and is much slower on a
        busy machine), torch's setting for large ones, capped at the cores
        other processes leave idle (read at the call and again about every
        second of fitting). -1 uses every available core. The caller's torch
        setting is restored after each call.

    verbose : int, default=0
        Print the objective at every iteration when > 0.

    Attributes
    ----------
    code_ : str
        The code type the model was fitted with (``code`` at fit time).
        ``transform``, ``inverse_transform`` and ``score_samples`` use it and
        ``alpha_``, so parameters set after fitting change nothing until the
        next ``fit``; a ``partial_fit`` stream keeps it.
    alpha_ : float
        The sparsity penalty of the last fit or step, used to encode.
    components_ : ndarray of shape (n_components, n_features)
        The dictionary :math:`\Phi`, one atom per row.

    mean_ : ndarray of shape (n_features,) or None
        Per-feature mean removed before coding (of all samples seen, for a
        stream). Only for ``"orthogonal"`` and ``"independent"``; None
        otherwise.

    unmixing_ : ndarray of shape (n_components, n_features) or None
        The encoder of ``"independent"`` codes, ``Z = (X - mean_) @
        unmixing_.T`` (``W K``, what ``FastICA`` calls ``components_``).
        Complete, ``unmixing_.T`` is the pseudo-inverse of ``components_``.
        None for the other code types.

    inner_stats_ : dict of str to ndarray
        The running statistics :meth:`partial_fit` updates, by name:

        - ``"sparse"`` and ``"nonnegative"``: ``"A"`` of shape
          (n_components, n_components) and ``"B"`` of shape
          (n_components, n_features), the sums of :math:`Z_b^T Z_b / m` and
          :math:`Z_b^T X_b / m` over the mini-batches (of size :math:`m`),
          down-weighted by the forgetting schedule. Zeros after a full-batch
          fit: a later :meth:`partial_fit` starts them afresh at the fitted
          atoms.
        - ``"onehot"``: ``"counts"`` of shape (n_components,), the number of
          samples each atom has been the mean of.
        - ``"orthogonal"`` and ``"independent"``: ``"scatter"`` of shape
          (n_features, n_features), :math:`(X - mean)^T (X - mean)` over all
          samples seen (``"independent"`` whitens with it).

    n_iter_ : int
        Number of alternations (or passes) run by the kept initialisation;
        :meth:`partial_fit` leaves it as it was (0 for a stream).

    n_steps_ : int
        Number of mini-batch steps run so far (0 after a full-batch fit).

    n_samples_seen_ : int
        Number of samples the current fit has processed (counting repeats).

    objective_ : float
        Objective (summed over samples) at the end of training; for
        mini-batch training, summed over the batches of the last pass (scaled
        to all samples when the pass stopped early); after
        :meth:`partial_fit`, that of its batch. For ``"orthogonal"``
        mini-batch training and :meth:`partial_fit` give the exact objective
        over all samples seen.

    rng_state_ : tuple
        State of the random number generator after the last call, as
        ``numpy.random.RandomState.get_state()`` returns it. Each
        :meth:`partial_fit` continues this one stream (scikit-learn's
        ``MiniBatchDictionaryLearning`` keeps its ``RandomState`` the same
        way), so consecutive calls draw fresh numbers; :meth:`fit` starts
        again from ``random_state``.

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
    sklearn.decomposition.FastICA : Complete ICA by the fixed-point algorithm.
    sklearn.cluster.KMeans : K-means clustering.

    Notes
    -----
    Code steps are batched over rows: for the L1 problem an exact active-set
    solver (feature-sign search, Lee et al., 2007: Newton steps on each row's
    support with a line search over sign changes, one code added per round,
    like LARS) with FISTA as the fallback for rows whose support outgrows the
    rank of the atoms, or for ``alpha=0``; exact coordinate descent (HALS)
    for non-negative codes, nearest atom for one-hot codes and a projection
    on the atoms for orthogonal ones. Atom steps are one block-coordinate
    sweep on ``A = Z^T Z`` and ``B = Z^T X`` with the constraint projected
    per atom; for ``"sparse"``, unused atoms are resampled from the data. For
    ``"orthogonal"`` the alternation ``Z = (X - mean) Phi^T``,
    ``Phi = polar(Z^T (X - mean))`` has the top right singular vectors as its
    fixed point, so they are computed directly (an SVD; in mini-batch mode,
    an eigendecomposition of the running scatter matrix, which is exact).

    ``"independent"`` whitens with the eigendecomposition of the covariance
    (unit variance, as ``FastICA(whiten="unit-variance")``, so the codes have
    unit variance). Complete, it runs FastICA's symmetric fixed point with
    ``g = tanh`` from a random orthonormal ``W``,
    ``w_j <- E[x_w g(w_j x_w)] - E[g'(w_j x_w)] w_j`` then
    ``W <- (W W^T)^{-1/2} W``, which finds sub- and super-Gaussian sources
    alike. RICA's sparsity penalty only finds super-Gaussian (sparse) ones,
    so it is used where FastICA cannot go: overcomplete, minimised by L-BFGS
    from a random Parseval frame (``W^T W = I``) with the analytic gradient.
    The rows of ``W`` keep the norm of a Parseval frame's rows (as the UFLDL
    implementation of RICA normalises them): without it the sparsity term
    shrinks atoms to zero (measured: one of three went to norm 3e-7 on two
    mixtures of three sparse sources). RICA's atoms are also its filters
    (tied weights), so with strongly non-orthogonal sources they sit between
    the true directions; to recover those, sparse coding (``"sparse"``) does
    better, at the price of a lasso per sample in :meth:`transform`.
    A :meth:`partial_fit` step whitens with the running scatter and moves
    ``W`` towards the batch's fixed-point target by the batch's share of the
    samples seen (complete), or runs a few L-BFGS iterations on the batch's
    RICA cost (overcomplete). The codes are a linear map, so ``transform`` is
    exact and row-independent.

    :meth:`transform` solves each row's code problem on its own, so a row's
    code does not depend on the rest of the batch. Float64 input is computed
    in float64, float32 in float32.

    Every fitted attribute is public, so :func:`skae.save` keeps all that
    :meth:`partial_fit` needs: a saved (or pickled) model continues its
    stream exactly as the original would, running statistics and random
    stream included.

    References
    ----------
    J. Mairal, F. Bach, J. Ponce, G. Sapiro, 2009: Online dictionary learning
    for sparse coding. https://www.di.ens.fr/~fbach/mairal_icml09.pdf

    A. Beck, M. Teboulle, 2009: A fast iterative shrinkage-thresholding
    algorithm for linear inverse problems. SIAM J. Imaging Sciences.

    H. Lee, A. Battle, R. Raina, A. Y. Ng, 2007: Efficient sparse coding
    algorithms. NIPS.

    A. Hyvarinen, 1999: Fast and robust fixed-point algorithms for
    independent component analysis. IEEE Trans. Neural Networks 10(3).

    Q. V. Le, A. Karpenko, J. Ngiam, A. Y. Ng, 2011: ICA with reconstruction
    cost for efficient overcomplete feature learning. NIPS.

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

    Unmixing two independent sources (Laplace and uniform) from two mixtures:

    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> S = np.c_[rng.laplace(size=2000), rng.uniform(-1, 1, size=2000)]
    >>> X = S @ np.array([[1.0, 1.0], [0.5, 2.0]])
    >>> ica = DictionaryLearner(n_components=2, code="independent", random_state=0)
    >>> Z = ica.fit_transform(X)
    >>> corr = np.abs(np.corrcoef(Z.T, S.T)[:2, 2:])
    >>> bool(corr.max(axis=1).min() > 0.99)
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "code": [StrOptions(set(_CODE_TYPES))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "max_no_improvement": [Interval(Integral, 1, None, closed="left"), None],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=8,
        *,
        code="sparse",
        alpha=1.0,
        max_iter=1000,
        tol="auto",
        batch_size=None,
        max_no_improvement=10,
        n_init=1,
        random_state=None,
        device="auto",
        n_jobs=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.code = code
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.max_no_improvement = max_no_improvement
        self.n_init = n_init
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
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
            code_type = self._code_type()
            X = self._validate_fit_input(X, code_type, reset=True)
            code_type.check_sizes(*X.shape, partial=False)
            rng = check_random_state(self.random_state)
            Xt = _as_tensor(X, device)
            block = self.batch_size or X.shape[0]
            with self._sized_threads(block, self.n_components, X.shape[1], device):
                state = self._fit(code_type, Xt, rng)
            state.setdefault("n_samples_seen_", X.shape[0])
            self._set_state(state, rng, device, code_type)
        return self

    def _fit(self, code_type, Xt, rng):
        """Fit from ``n_init`` starts (one if exact); keep the lowest objective."""
        best = None
        for init in range(code_type.n_starts(self.n_init, Xt.shape[1])):
            if self.batch_size is None:
                state = code_type.fit(Xt, rng, init)
            else:
                state = code_type.fit_stream(Xt, rng, init, self.batch_size)
            if best is None or state["objective_"] < best["objective_"]:
                best = state
        return best

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the dictionary with one mini-batch.

        The first call initialises the model from this batch; later calls
        take one online step (codes of the batch, then an atom update from
        the running statistics ``inner_stats_``). After a full-batch
        :meth:`fit`, the running statistics start afresh from the fitted
        dictionary. Each call continues the random stream of the previous
        one (``rng_state_``).

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
            # A stream continues with the code type it was fitted with; alpha
            # and the solver settings are read at every call, as a schedule.
            code_type = self._code_type(code=None if first else self.code_)
            X = self._validate_fit_input(X, code_type, reset=first)
            Xt = _as_tensor(X, device)
            if first:
                code_type.check_sizes(*X.shape, partial=True)
                rng = check_random_state(self.random_state)
                state = code_type.start_stream(Xt, rng, init=0)
            else:
                rng = _rng_from_state(self.rng_state_)
                state = self._stream_state(Xt)
            n_atoms = code_type.n_components
            with self._sized_threads(X.shape[0], n_atoms, X.shape[1], device):
                state["objective_"] = code_type.step(Xt, state, rng)
            self._set_state(state, rng, device, code_type)
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
        X = validate_float_rows(self, X, reset=False)
        device = self._device()
        Z = np.empty((X.shape[0], self.components_.shape[0]), dtype=X.dtype)
        n_atoms, n_features = self.components_.shape
        with self._sized_threads(X.shape[0], n_atoms, n_features, device):
            for rows in _row_batches(X.shape[0], X.dtype, self._inference_width()):
                codes = self._encode(_as_tensor(X[rows], device)).cpu().numpy()
                Z[rows] = _finite(codes, "codes")
        return Z

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
        D = self.components_.astype(Z.dtype, copy=False)
        mean = None if self.mean_ is None else self.mean_.astype(Z.dtype, copy=False)
        # Written batch by batch into the output: no full-size temporary (a
        # sum or a finiteness mask) besides the reconstruction itself.
        X_rec = np.empty((Z.shape[0], D.shape[1]), dtype=Z.dtype)
        for rows in _row_batches(Z.shape[0], Z.dtype, self._inference_width()):
            block = np.matmul(Z[rows], D, out=X_rec[rows])
            if mean is not None:
                block += mean
            _finite(block, "reconstructions")
        return X_rec

    def score_samples(self, X):
        """Negative per-sample objective at the optimal code (higher is better).

        ``-(0.5 ||x - decode(encode(x))||^2 + alpha ||encode(x)||_1)``, the
        L1 term for ``code="sparse"`` only; overcomplete ``"independent"``
        adds ``alpha sum_j log cosh(z_j)`` instead (RICA's penalty, measured in
        the data's units rather than the whitened ones it is fitted in).

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
        X = validate_float_rows(self, X, reset=False)
        device = self._device()
        code_type = self._fitted_code_type()
        scores = np.empty(X.shape[0], dtype=X.dtype)
        n_atoms, n_features = self.components_.shape
        with self._sized_threads(X.shape[0], n_atoms, n_features, device):
            for rows in _row_batches(X.shape[0], X.dtype, self._inference_width()):
                Xt = _as_tensor(X[rows], device)
                Z = self._encode(Xt)
                D = torch.as_tensor(self.components_, device=device).to(Xt.dtype)
                objective = code_type.objective(Xt - self._mean(Xt), Z, D)
                scores[rows] = _finite(-objective.cpu().numpy(), "scores")
        return scores

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`: higher is better.

        Lets ``GridSearchCV`` compare dictionaries with no ``scoring``, as
        :meth:`sklearn.decomposition.PCA.score` does.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean negative objective per sample.

        Examples
        --------
        >>> import numpy as np
        >>> from skae import DictionaryLearner
        >>> X = np.random.RandomState(0).rand(40, 5)
        >>> dl = DictionaryLearner(n_components=3, code="orthogonal").fit(X)
        >>> bool(dl.score(X) == dl.score_samples(X).mean())
        True
        """
        return float(np.mean(self.score_samples(X)))

    @property
    def _n_features_out(self):
        """Number of transformed output features."""
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        # Tags are also read before validation, with an invalid ``code``.
        code_type = _CODE_TYPES.get(self.code, _CodeType)
        tags.input_tags.positive_only = code_type.positive_only
        return tags

    # ------------------------------------------------------------- helpers

    def _code_type(self, code=None, n_components=None, alpha=None):
        """The solver of ``code`` (default: the parameters) for a fit."""
        return _CODE_TYPES[self.code if code is None else code](
            n_components=self.n_components if n_components is None else n_components,
            alpha=self.alpha if alpha is None else alpha,
            max_iter=self.max_iter,
            tol=self.tol,
            verbose=self.verbose,
            max_no_improvement=self.max_no_improvement,
        )

    def _fitted_code_type(self):
        """The solver the model was fitted with: inference must not change
        when parameters are set after fitting."""
        return self._code_type(self.code_, self.components_.shape[0], self.alpha_)

    def _validate_fit_input(self, X, code_type, reset):
        X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        # Squared errors of larger values overflow the compute dtype.
        if X.size and np.abs(X).max() > np.sqrt(np.finfo(X.dtype).max) / X.shape[1]:
            raise ValueError(
                f"Input contains values too large for {X.dtype} arithmetic (squared "
                "errors overflow); rescale X or pass float64 data."
            )
        code_type.check_input(X)
        return X

    def _sized_threads(self, rows, n_atoms, n_features, device):
        """Intra-op threads for blocks of ``rows`` rows (see ``n_jobs``).

        The work of a step is the multiply-adds of decoding the block,
        ``rows x atoms x features``: the autoencoders' measure (rows x
        parameters), since a dictionary is a linear decoder.
        """
        work = rows * n_atoms * n_features
        return threads_sized_to(work, device, self.n_jobs, PARALLEL_MIN_WORK)

    def _device(self):
        # A model fitted on CUDA and loaded where there is none still works.
        if self.device_.type == "cuda" and not torch.cuda.is_available():
            return torch.device("cpu")
        return self.device_

    def _mean(self, Xt):
        if self.mean_ is None:
            return torch.zeros((), dtype=Xt.dtype, device=Xt.device)
        return torch.as_tensor(self.mean_, device=Xt.device).to(Xt.dtype)

    def _inference_width(self):
        """Values per row held by inference: inputs or atoms, the wider."""
        return max(self.components_.shape)

    def _encode(self, Xt):
        """Codes of the rows of ``Xt`` for the fitted ``components_``."""
        D = torch.as_tensor(self.components_, device=Xt.device).to(Xt.dtype)
        # float32 cannot resolve changes much below its epsilon.
        tol = max(_TRANSFORM_TOL, 10 * torch.finfo(Xt.dtype).eps)
        unmixing = None
        if self.unmixing_ is not None:
            unmixing = torch.as_tensor(self.unmixing_, device=Xt.device).to(Xt.dtype)
        return self._fitted_code_type().encode(
            Xt - self._mean(Xt),
            D,
            max_iter=_TRANSFORM_MAX_ITER,
            tol=tol,
            unmixing=unmixing,
        )

    def _stream_state(self, Xt):
        """The fitted state as tensors, ready for one more online step."""
        dt = dict(dtype=Xt.dtype, device=Xt.device)

        def tensor(value):
            # A copy: online steps update in place, the fitted arrays must not
            # change until the step has succeeded.
            return None if value is None else torch.tensor(value, **dt)

        return {
            "components_": tensor(self.components_),
            "mean_": tensor(self.mean_),
            "unmixing_": tensor(self.unmixing_),
            "inner_stats_": {k: tensor(v) for k, v in self.inner_stats_.items()},
            "n_iter_": self.n_iter_,
            "n_steps_": self.n_steps_,
            "n_samples_seen_": self.n_samples_seen_,
        }

    def _set_state(self, state, rng, device, code_type):
        """Assign a fit's results at once (defaults for what it did not set)."""
        values = {"mean_": None, "unmixing_": None, "n_steps_": 0}
        values["code_"] = code_type.code
        values["alpha_"] = float(code_type.alpha)
        values.update(_to_numpy(state))
        values["rng_state_"] = rng.get_state()
        values["device_"] = device
        for name in _FIT_STATE:
            setattr(self, name, values[name])


# ---------------------------------------------------------------- functions


def _stream_start(D, stats):
    """An online state before its first step."""
    return {
        "components_": D,
        "inner_stats_": stats,
        "n_iter_": 0,
        "n_steps_": 0,
        "n_samples_seen_": 0,
    }


def _merge_moments(batch, state):
    """Merge a batch into the running mean and scatter (Chan et al.), in place.

    Returns the scatter, ``(X - mean)^T (X - mean)`` over all samples seen.
    """
    scatter = state["inner_stats_"]["scatter"]
    n_old, n_new = state["n_samples_seen_"], batch.shape[0]
    n_tot = n_old + n_new
    mean_b = batch.mean(dim=0)
    centred = batch - mean_b
    delta = mean_b - state["mean_"]
    scatter += centred.T @ centred + torch.outer(delta, delta) * (n_old * n_new / n_tot)
    state["mean_"] += delta * (n_new / n_tot)
    return scatter


def _forgetting_factor(step, batch_size):
    """Weight of the running statistics before online step ``step`` (from 0).

    The forgetting schedule of scikit-learn's MiniBatchDictionaryLearning.
    """
    m = batch_size
    if step < m - 1:
        theta = (step + 1) * m
    else:
        theta = m**2 + step + 1 - m
    return (theta + 1 - m) / (theta + 1)


def _rng_from_state(state):
    """A RandomState that continues the stream ``get_state`` returned."""
    rng = np.random.RandomState()
    rng.set_state(state)
    return rng


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


def _row_batches(n_rows, dtype, width):
    """Slices of consecutive rows, each about ``INFERENCE_BATCH_BYTES`` of
    ``width`` values of ``dtype``.

    Inference codes each row on its own (per-row stopping rules), so batching
    changes no result beyond float rounding; it keeps the temporaries (a
    writable copy of a read-only batch, centred rows, residuals) O(batch)
    instead of several copies of X.
    """
    size = max(1, INFERENCE_BATCH_BYTES // (np.dtype(dtype).itemsize * width))
    for start in range(0, n_rows, size):
        yield slice(start, start + size)


def _as_tensor(X, device):
    # torch cannot wrap read-only arrays (e.g. memmaps) safely: copy those.
    return torch.as_tensor(np.require(X, requirements="W"), device=device)


def _orthogonal_objective(scatter, D):
    """0.5 * residual sum of squares left by orthonormal atoms ``D``.

    ``||Xc - Xc D^T D||^2 = tr(S) - tr(D S D^T)`` with ``S = Xc^T Xc``.
    """
    return 0.5 * float(torch.trace(scatter) - torch.trace(D @ scatter @ D.T))


def _to_numpy(value):
    """Tensors, also inside dicts, as numpy arrays (the fitted attributes' type)."""
    if isinstance(value, torch.Tensor):
        return value.cpu().numpy()
    if isinstance(value, dict):
        return {key: _to_numpy(item) for key, item in value.items()}
    return value


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
        # Shallow copy: fits replace attributes (inner_stats_ too, as a new
        # dict), they never mutate them.
        self.saved = dict(self.estimator.__dict__)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.estimator.__dict__.clear()
            self.estimator.__dict__.update(self.saved)
        return False
