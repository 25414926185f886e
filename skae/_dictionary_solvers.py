"""Batched torch solvers for the two half-steps of dictionary learning.

Every function here is pure torch (no scikit-learn, no validation): it takes
tensors on one device and dtype and returns tensors on the same. Rows of ``X``
are samples, rows of ``D`` are atoms, so the model is ``X ~ Z @ D``.

Code steps solve, one row at a time but batched, ``min_z f(z)`` with ``D``
fixed; dictionary steps update ``D`` from the sufficient statistics
``A = Z.T @ Z`` and ``B = Z.T @ X``, which is all the atoms need:
``0.5 ||X - Z D||^2 = 0.5 tr(D.T A D) - tr(D.T B) + const``.
"""

import math

import torch

# A_jj below this is an atom no sample uses (same threshold as SPAMS/sklearn).
_UNUSED_ATOM = 1e-6

# Rows * n_components**2 per chunk of the active-set lasso (~128 MiB in float64
# for each of its few block-sized tensors).
_LASSO_CHUNK_ENTRIES = 2**24


def soft_threshold(x, threshold):
    """Proximal operator of ``threshold * ||.||_1``."""
    return torch.sign(x) * torch.clamp(x.abs() - threshold, min=0)


def _row_done(Z_new, Z_old, tol):
    """Per-row stopping rule: largest coordinate change <= tol * largest |z|.

    It reads one row at a time, so whether a row stops never depends on the
    other rows of the batch (transforming rows one by one must match the batch).
    """
    change = (Z_new - Z_old).abs().amax(dim=1)
    scale = Z_new.abs().amax(dim=1)
    return change <= tol * scale


def fista(B, G, alpha, *, Z0=None, max_iter=200, tol=1e-6):
    """Solve ``min_z 0.5 ||x - z D||^2 + alpha ||z||_1`` for every row at once.

    Accelerated proximal gradient (FISTA) with per-row adaptive restart
    (O'Donoghue & Candes, 2015) and per-row stopping: converged rows are
    frozen and dropped from the active set, so the work shrinks as rows settle
    and a row's result does not depend on its batch.

    Parameters
    ----------
    B : tensor of shape (n_samples, n_components)
        ``X @ D.T``.
    G : tensor of shape (n_components, n_components)
        Gram matrix ``D @ D.T``.
    alpha : float
        L1 penalty (0 gives least squares).
    Z0 : tensor of shape (n_samples, n_components), default=None
        Warm start; zeros when None.
    max_iter : int, default=200
        Iterations per row.
    tol : float, default=1e-6
        Per-row relative tolerance on the largest coordinate change.

    Returns
    -------
    Z : tensor of shape (n_samples, n_components)
    """
    n_samples, n_components = B.shape
    Z = torch.zeros_like(B) if Z0 is None else Z0.clone()
    if n_samples == 0 or n_components == 0:
        return Z
    # Step 1/L with L the largest eigenvalue of G, the gradient's Lipschitz
    # constant; the floor keeps an all-zero dictionary from dividing by zero.
    lipschitz = torch.linalg.eigvalsh(G)[-1].clamp_min(torch.finfo(G.dtype).tiny)
    step = 1.0 / lipschitz
    threshold = alpha * step
    active = torch.arange(n_samples, device=B.device)
    Z_act, Y, B_act = Z, Z.clone(), B
    t = torch.ones(n_samples, 1, dtype=B.dtype, device=B.device)
    for _ in range(max_iter):
        Z_new = soft_threshold(Y - step * (Y @ G - B_act), threshold)
        done = _row_done(Z_new, Z_act, tol)
        # Restart momentum on rows whose step went uphill (gradient test).
        uphill = ((Y - Z_new) * (Z_new - Z_act)).sum(dim=1, keepdim=True) > 0
        t_new = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
        momentum = torch.where(uphill, 0.0, (t - 1.0) / t_new)
        t = torch.where(uphill, torch.ones_like(t), t_new)
        Y = Z_new + momentum * (Z_new - Z_act)
        Z_act = Z_new
        if bool(done.any()):
            Z[active[done]] = Z_act[done]
            keep = ~done
            active, Z_act, Y, B_act, t = (
                active[keep],
                Z_act[keep],
                Y[keep],
                B_act[keep],
                t[keep],
            )
            if active.numel() == 0:
                break
    if active.numel():
        Z[active] = Z_act
    return Z


def _support_blocks(signs):
    """Per-row support indices, padded to the widest support.

    Returns ``idx`` of shape (n_samples, width), support columns first in
    increasing order then padding columns, and ``valid`` marking the support.
    """
    on_support = signs != 0
    sizes = on_support.sum(dim=1)
    width = int(sizes.max())
    order = torch.argsort(
        on_support.to(torch.int8), dim=1, descending=True, stable=True
    )
    idx = order[:, :width]
    valid = torch.arange(width, device=signs.device) < sizes[:, None]
    return idx, valid


def _newton_on_support(B, G, alpha, signs):
    """Solve each row's stationarity condition on its support and signs.

    ``z_S G_SS = b_S - alpha s_S``: the reduced systems, one per row, padded to
    the widest support with an identity block, by batched Cholesky.

    Returns ``idx``, ``valid``, the blocks ``G_sub`` and ``b_sub``, the signs
    ``s_sub``, the solutions ``target`` (all of shape (n_samples, width) but
    ``G_sub``), and ``singular``, the rows whose block is not positive definite.
    """
    idx, valid = _support_blocks(signs)
    width = idx.shape[1]
    pairs = valid[:, :, None] & valid[:, None, :]
    eye = torch.eye(width, dtype=G.dtype, device=G.device)
    G_sub = torch.where(pairs, G[idx[:, :, None], idx[:, None, :]], eye)
    b_sub = torch.where(valid, B.gather(1, idx), 0.0)
    s_sub = signs.gather(1, idx)
    chol, info = torch.linalg.cholesky_ex(G_sub)
    target = torch.cholesky_solve((b_sub - alpha * s_sub).unsqueeze(-1), chol)
    target = torch.where(valid, target.squeeze(-1), 0.0)
    singular = (info != 0) | ~torch.isfinite(target).all(dim=1)
    return idx, valid, G_sub, b_sub, s_sub, target, singular


def _optimality_slack(B, alpha):
    """Per-row tolerance of the optimality test: a few hundred ulps of scale."""
    return 1e3 * torch.finfo(B.dtype).eps * (alpha + B.abs().amax(dim=1))


def exact_on_support(B, G, alpha, Z):
    """Exact lasso codes for the rows whose support and signs ``Z`` has right.

    Solves each row on the support and signs of its ``Z`` (a guess: earlier
    codes, or a few gradient steps) and keeps the solution where it satisfies
    the lasso's optimality conditions: same signs, and
    ``|b_j - (z G)_j| <= alpha`` off the support. Those rows are then solved
    exactly in one linear solve.

    Returns
    -------
    Z_exact : tensor of shape (n_samples, n_components)
        The solutions (meaningless on rows that fail).
    exact : bool tensor of shape (n_samples,)
        Rows whose solution is the lasso minimizer.
    """
    signs = torch.sign(Z)
    idx, valid, _, _, s_sub, target, singular = _newton_on_support(B, G, alpha, signs)
    Z_exact = torch.zeros_like(Z).scatter_(1, idx, target)
    residual = B - Z_exact @ G
    off_support = torch.where(signs != 0, -math.inf, residual.abs() - alpha)
    exact = (
        ~singular
        & torch.where(valid, target * s_sub > 0, True).all(dim=1)
        & (off_support.amax(dim=1) <= _optimality_slack(B, alpha))
    )
    return Z_exact, exact


def _feature_sign_step(B, G, alpha, Z, signs):
    """One Newton step on each row's support with its signs, then a line search.

    The step goes from ``z`` towards the solution on the orthant of ``s``
    (:func:`_newton_on_support`), to whichever of that point and the sign
    changes along the way has the lowest true objective (Lee et al., 2007,
    feature-sign search).

    Returns the new codes, and for each row whether the full step was taken
    (the codes are then optimal on their support) and whether it failed (a
    singular block, or no decrease).
    """
    idx, valid, G_sub, b_sub, s_sub, target, singular = _newton_on_support(
        B, G, alpha, signs
    )
    start = Z.gather(1, idx)
    direction = target - start
    # Along z(t) = start + t * direction the smooth part is a parabola,
    # q(t) = q(0) + t * slope + 0.5 * t^2 * curvature: O(width^2) per row,
    # then the l1 term is evaluated at each candidate t in O(width).
    gradient = torch.bmm(start.unsqueeze(1), G_sub).squeeze(1) - b_sub
    slope = (direction * gradient).sum(dim=1, keepdim=True)
    curvature = (torch.bmm(direction.unsqueeze(1), G_sub).squeeze(1) * direction).sum(
        dim=1, keepdim=True
    )
    # Sign changes on the way: t where a coordinate crosses zero, in [0, 1).
    crosses = valid & (target * s_sub < 0)
    t_cross = torch.where(crosses, start / (-direction).where(crosses, 1.0), 1.0)
    full = torch.ones(len(Z), 1, dtype=Z.dtype, device=Z.device)
    t = torch.cat([t_cross, full], dim=1)
    points = start[:, None, :] + t[:, :, None] * direction[:, None, :]
    # Coordinates that cross at the chosen t are exactly zero there.
    points = torch.where(
        crosses[:, None, :] & (t_cross[:, None, :] == t[:, :, None]), 0.0, points
    )
    values = t * slope + 0.5 * t * t * curvature + alpha * points.abs().sum(dim=2)
    best = values.argmin(dim=1)
    rows = torch.arange(len(Z), device=Z.device)
    Z_new = torch.zeros_like(Z).scatter_(1, idx, points[rows, best])
    before = alpha * start.abs().sum(dim=1)
    full_step = t[rows, best] == 1.0
    # No increase beyond rounding (values are differences from q(0)).
    rounding = 64 * torch.finfo(Z.dtype).eps * (before.abs() + 1.0)
    decrease = values[rows, best] <= before + rounding
    failed = singular | ~decrease | ~torch.isfinite(values[rows, best])
    return Z_new, full_step & ~failed, failed


def lasso(B, G, alpha, *, guess=None, max_rounds=None, fallback_iter=1000, tol=1e-6):
    """Exact lasso codes for every row at once: a checked guess, then an active set.

    Solves ``min_z 0.5 ||x - z D||^2 + alpha ||z||_1`` row by row, batched.

    1. Rows whose ``guess`` (e.g. the codes of the previous alternation) has
       the right support and signs are solved in one linear solve and kept
       where they pass the optimality test (:func:`exact_on_support`).
    2. The other rows run a batched feature-sign search (Lee et al., 2007)
       from ``z = 0``: each round either takes a Newton step on the current
       support and signs, with a line search over the sign changes, or, once
       the codes are optimal on their support, adds the coordinate that most
       violates the optimality condition ``|b_j - (z G)_j| <= alpha``. A row
       stops when no coordinate violates it. Like LARS, it costs a few small
       linear solves per non-zero code, far less on sparse problems than the
       hundreds of gradient steps of FISTA; finished rows drop out.

    The result is the exact minimizer, not an approximation at a tolerance.
    Rows not finished after ``max_rounds`` rounds (default
    ``4 * n_components``), or whose support block turns singular, continue
    with :func:`fista` from their current codes.

    Parameters
    ----------
    B : tensor of shape (n_samples, n_components)
        ``X @ D.T``.
    G : tensor of shape (n_components, n_components)
        Gram matrix ``D @ D.T``.
    alpha : float
        L1 penalty, > 0.
    guess : tensor of shape (n_samples, n_components), default=None
        Candidate codes whose supports are tried first.
    max_rounds : int, default=None
        Cap on the active-set rounds per row.
    fallback_iter, tol : int, float
        ``max_iter`` and ``tol`` of the FISTA fallback.

    Returns
    -------
    Z : tensor of shape (n_samples, n_components)
    """
    n_samples, n_components = B.shape
    # The support blocks take O(rows * width^2) memory: solve in chunks of
    # rows (rows are independent, so chunking does not change the result).
    rows_per_chunk = max(1, _LASSO_CHUNK_ENTRIES // max(1, n_components**2))
    if n_samples > rows_per_chunk:
        return torch.cat(
            [
                lasso(
                    B[start : start + rows_per_chunk],
                    G,
                    alpha,
                    guess=None
                    if guess is None
                    else guess[start : start + rows_per_chunk],
                    max_rounds=max_rounds,
                    fallback_iter=fallback_iter,
                    tol=tol,
                )
                for start in range(0, n_samples, rows_per_chunk)
            ]
        )
    Z = torch.zeros_like(B)
    if n_samples == 0 or n_components == 0:
        return Z
    if max_rounds is None:
        max_rounds = 4 * n_components
    slack = _optimality_slack(B, alpha)
    active = torch.arange(n_samples, device=B.device)
    if guess is not None:
        Z_exact, exact = exact_on_support(B, G, alpha, guess)
        Z[exact] = Z_exact[exact]
        active = active[~exact]
    Z_act, B_act, slack_act = Z[active], B[active], slack[active]
    signs = torch.zeros_like(Z_act)
    optimal_on_support = torch.ones(len(active), dtype=torch.bool, device=B.device)
    stuck = []
    for _ in range(max_rounds):
        if active.numel() == 0:
            break
        # Rows optimal on their support: stop, or add the worst violator.
        residual = B_act - Z_act @ G
        violation = torch.where(signs != 0, -math.inf, residual.abs() - alpha)
        worst, worst_j = violation.max(dim=1)
        finished = optimal_on_support & (worst <= slack_act)
        grow = torch.nonzero(optimal_on_support & ~finished).flatten()
        signs[grow, worst_j[grow]] = torch.sign(residual[grow, worst_j[grow]])
        Z_next, full_step, failed = _feature_sign_step(B_act, G, alpha, Z_act, signs)
        failed &= ~finished
        # Failed rows keep their last good codes for the FISTA fallback.
        Z_act = torch.where((finished | failed)[:, None], Z_act, Z_next)
        signs = torch.sign(Z_act)
        optimal_on_support = full_step
        leave = finished | failed
        if bool(leave.any()):
            Z[active[leave]] = Z_act[leave]
            stuck.append(active[failed])
            keep = ~leave
            active, Z_act, B_act = active[keep], Z_act[keep], B_act[keep]
            slack_act, signs = slack_act[keep], signs[keep]
            optimal_on_support = optimal_on_support[keep]
    # Rows still open after max_rounds continue from where they stopped.
    Z[active] = Z_act
    stuck = torch.cat([*stuck, active])
    if stuck.numel():
        Z[stuck] = fista(
            B[stuck], G, alpha, Z0=Z[stuck], max_iter=fallback_iter, tol=tol
        )
    return Z


def hals_codes(B, G, Z0, *, n_sweeps=1, tol=None):
    """Non-negative codes by exact coordinate descent (HALS), rows batched.

    Solves ``min_{z >= 0} 0.5 ||x - z D||^2`` from ``Z0``. One sweep updates
    each column ``j`` in turn to its exact minimiser,
    ``z_j <- max(0, z_j + (b_j - z G_j) / G_jj)``, the scheme of
    scikit-learn's ``NMF(solver="cd")``.

    Without ``tol``, exactly ``n_sweeps`` sweeps. With ``tol`` set, sweeps
    continue (up to ``n_sweeps``) per row until :func:`_row_done` holds, and
    converged rows drop out.
    """
    Z = Z0.clone()
    n_samples, n_components = Z.shape
    if n_samples == 0:
        return Z
    diag = torch.diagonal(G).clamp_min(torch.finfo(G.dtype).tiny)
    active = torch.arange(n_samples, device=Z.device)
    # Work on a copy so that writing converged rows back into Z is safe.
    Z_act, B_act = (Z.clone() if tol is not None else Z), B
    for _ in range(n_sweeps):
        Z_old = Z_act.clone() if tol is not None else None
        for j in range(n_components):
            if G[j, j] <= 0:
                Z_act[:, j] = 0
                continue
            grad = Z_act @ G[:, j] - B_act[:, j]
            Z_act[:, j] = torch.clamp(Z_act[:, j] - grad / diag[j], min=0)
        if tol is None:
            continue
        done = _row_done(Z_act, Z_old, tol)
        if bool(done.any()):
            Z[active[done]] = Z_act[done]
            keep = ~done
            active, Z_act, B_act = active[keep], Z_act[keep], B_act[keep]
            if active.numel() == 0:
                break
    if tol is None:
        return Z_act
    if active.numel():
        Z[active] = Z_act
    return Z


def nearest_atom(X, D):
    """Index of the closest atom (squared Euclidean) for every row of ``X``."""
    # ||x - d||^2 = ||x||^2 - 2 x.d + ||d||^2; ||x||^2 does not change the argmin.
    scores = (D * D).sum(dim=1) - 2.0 * (X @ D.T)
    return scores.argmin(dim=1)


def squared_distance_to(X, D, labels):
    """Per-row ``||x - d_label||^2``, computed on the difference for accuracy."""
    return ((X - D[labels]) ** 2).sum(dim=1)


def one_hot(labels, n_components, dtype):
    """Rows of the identity picked by ``labels``."""
    Z = torch.zeros(labels.shape[0], n_components, dtype=dtype, device=labels.device)
    Z[torch.arange(labels.shape[0], device=labels.device), labels] = 1
    return Z


def update_atoms(D, A, B, *, constraint, resample=None):
    """One block-coordinate sweep over the atoms (in place), given A and B.

    Minimises ``0.5 tr(D.T A D) - tr(D.T B)`` atom by atom in closed form,
    ``d_j <- d_j + (b_j - A_j D) / A_jj``, then projects on the constraint:

    - ``"unit_ball"``: ``||d_j|| <= 1`` (sparse coding, as in Mairal et al.),
    - ``"nonnegative"``: ``d_j >= 0`` (HALS for NMF).

    ``resample(j)`` returns a replacement for an atom no sample uses; without
    it such an atom is left as is.
    """
    for j in range(D.shape[0]):
        if A[j, j] > _UNUSED_ATOM:
            D[j] += (B[j] - A[j] @ D) / A[j, j]
        elif resample is not None:
            D[j] = resample(j)
        else:
            continue
        if constraint == "nonnegative":
            D[j].clamp_(min=0)
        elif constraint == "unit_ball":
            D[j] /= torch.linalg.vector_norm(D[j]).clamp_min(1.0)


def top_right_singular_vectors(X, n_components):
    """Top right singular vectors of centred data, signs fixed.

    This is the closed-form fixed point of the orthogonal alternation
    (``Z = X D.T``; ``D = polar(Z.T X)``): the dominant subspace, i.e. PCA.
    """
    _, _, Vt = torch.linalg.svd(X, full_matrices=False)
    return flip_signs(Vt[:n_components])


def top_eigenvectors(scatter, n_components):
    """Top eigenvectors of a scatter matrix as rows, signs fixed."""
    _, V = torch.linalg.eigh(scatter)
    D = V[:, -n_components:].flip(1).T.contiguous()
    return flip_signs(D)


def flip_signs(D):
    """Make the largest-magnitude entry of each row positive (deterministic)."""
    idx = D.abs().argmax(dim=1)
    signs = torch.sign(D[torch.arange(D.shape[0], device=D.device), idx])
    signs[signs == 0] = 1
    return D * signs[:, None]


def nndsvda(X, n_components):
    """NNDSVDa initialisation for NMF (Boutsidis & Gallopoulos, 2008).

    Returns ``(Z, D)`` non-negative, zeros of NNDSVD filled with the mean of X,
    as scikit-learn's ``init="nndsvda"``.
    """
    U, S, Vt = torch.linalg.svd(X, full_matrices=False)
    n_samples, n_features = X.shape
    Z = torch.zeros(n_samples, n_components, dtype=X.dtype, device=X.device)
    D = torch.zeros(n_components, n_features, dtype=X.dtype, device=X.device)
    # The leading singular pair of a non-negative matrix can be taken >= 0.
    Z[:, 0] = torch.sqrt(S[0]) * U[:, 0].abs()
    D[0] = torch.sqrt(S[0]) * Vt[0].abs()
    for j in range(1, n_components):
        u, v = U[:, j], Vt[j]
        up, un = u.clamp(min=0), (-u).clamp(min=0)
        vp, vn = v.clamp(min=0), (-v).clamp(min=0)
        norm_up, norm_un = torch.linalg.vector_norm(up), torch.linalg.vector_norm(un)
        norm_vp, norm_vn = torch.linalg.vector_norm(vp), torch.linalg.vector_norm(vn)
        # Keep whichever sign pattern carries more of the singular pair.
        if norm_up * norm_vp >= norm_un * norm_vn:
            u_, v_, sigma = up / norm_up, vp / norm_vp, norm_up * norm_vp
        else:
            u_, v_, sigma = un / norm_un, vn / norm_vn, norm_un * norm_vn
        lbd = torch.sqrt(S[j] * sigma)
        Z[:, j] = lbd * u_
        D[j] = lbd * v_
    eps = 1e-6
    Z = torch.nan_to_num(Z)
    D = torch.nan_to_num(D)
    Z[Z < eps] = 0
    D[D < eps] = 0
    avg = X.mean()
    Z[Z == 0] = avg
    D[D == 0] = avg
    return Z, D


# ------------------------------------------------------------------- ICA


def whitening(eigenvalues, eigenvectors, n_keep):
    """Whitening and dewhitening maps from a covariance's eigenpairs.

    ``eigenvalues`` ascending, as ``torch.linalg.eigh`` returns them. Keeps
    the ``n_keep`` leading directions and returns ``K`` of shape
    (n_keep, n_features), with ``x_w = x_c @ K.T`` of unit covariance, and
    ``K_inv`` of the same shape, with ``x_c ~ x_w @ K_inv`` (exact on the
    kept subspace; ``K @ K_inv.T = I``).
    """
    values = eigenvalues.flip(0)[:n_keep]
    vectors = eigenvectors.flip(1)[:, :n_keep]
    # A direction with (almost) no variance would be blown up by rounding
    # noise: floor its variance at a few ulps of the largest one.
    floor = values[:1].clamp_min(torch.finfo(values.dtype).tiny)
    floor = floor * torch.finfo(values.dtype).eps * vectors.shape[0]
    scale = torch.sqrt(values.clamp_min(floor))
    return (vectors / scale).T.contiguous(), (vectors * scale).T.contiguous()


def symmetric_decorrelation(W):
    """``(W W^T)^{-1/2} W``: the orthonormal rows closest to those of ``W``."""
    values, vectors = torch.linalg.eigh(W @ W.T)
    values = values.clamp_min(torch.finfo(W.dtype).tiny)
    return (vectors / torch.sqrt(values)) @ vectors.T @ W


def tight_frame(W):
    """``W (W^T W)^{-1/2}``: rows forming a Parseval frame, ``W^T W = I``.

    For a square ``W`` this is :func:`symmetric_decorrelation`; for more rows
    than columns it is the overcomplete start of :func:`rica`, at which the
    reconstruction ``W^T W x`` is exact.
    """
    return symmetric_decorrelation(W.T).T


def fastica_step(Xw, W):
    """One symmetric fixed-point step of FastICA with ``G = log cosh``.

    ``w_j <- E[x g(w_j x)] - E[g'(w_j x)] w_j`` for every row at once, with
    ``g = tanh``, then :func:`symmetric_decorrelation` (Hyvarinen, 1999).
    ``Xw`` is whitened, of shape (n_samples, p); ``W`` of shape (p, p).
    """
    Y = Xw @ W.T
    g = torch.tanh(Y)
    g_prime = 1.0 - g * g
    W_new = g.T @ Xw / Xw.shape[0] - g_prime.mean(dim=0)[:, None] * W
    return symmetric_decorrelation(W_new)


def fastica(Xw, W, *, max_iter, tol):
    """Symmetric FastICA from ``W`` (orthonormal rows) on whitened ``Xw``.

    Stops when every row turned by less than ``tol``:
    ``max_j | |<w_j^new, w_j>| - 1 | < tol``, scikit-learn's rule.

    Returns ``(W, n_iter, converged)``.
    """
    for it in range(1, max_iter + 1):
        W_new = fastica_step(Xw, W)
        change = ((W_new * W).sum(dim=1).abs() - 1.0).abs().max()
        W = W_new
        if change < tol:
            return W, it, True
    return W, max_iter, False


def log_cosh(x):
    """``log(cosh(x))`` without overflow: ``|x| + log1p(exp(-2|x|)) - log 2``."""
    a = x.abs()
    return a + torch.log1p(torch.exp(-2.0 * a)) - math.log(2.0)


def rica_cost(Xw, W, alpha):
    """RICA's cost and its gradient in ``W`` (Le et al., 2011).

    ``J(W) = (alpha sum_ij g(w_j x_i) + sum_i ||W^T W x_i - x_i||^2) / n``
    with the smooth L1 penalty ``g = log cosh`` (``g' = tanh``). With
    ``Z = X W^T`` and the residual ``R = Z W - X``,
    ``dJ/dW = (alpha tanh(Z)^T X + 2 W (R^T X + X^T R)) / n``.
    """
    n = Xw.shape[0]
    Z = Xw @ W.T
    R = Z @ W - Xw
    cost = (alpha * log_cosh(Z).sum() + (R * R).sum()) / n
    grad = (alpha * torch.tanh(Z).T @ Xw + 2.0 * W @ (R.T @ Xw + Xw.T @ R)) / n
    return cost, grad


def rica_row_norm(n_components, n_whitened):
    """Norm of the rows of RICA's ``W``: ``sqrt(p / k)``, that of the rows of
    a Parseval frame of ``k`` equal rows in ``p`` dimensions."""
    return math.sqrt(n_whitened / n_components)


def equal_rows(V, norm):
    """``V`` with every row rescaled to Euclidean norm ``norm``."""
    lengths = torch.linalg.vector_norm(V, dim=1, keepdim=True)
    return norm * V / lengths.clamp_min(torch.finfo(V.dtype).tiny)


def rica_cost_equal_rows(Xw, V, alpha, norm):
    """:func:`rica_cost` at ``W = equal_rows(V, norm)``, gradient in ``V``.

    Without a fixed row norm the sparsity term shrinks rows of ``W`` to zero
    (measured: one of three filters went to norm 3e-7 on two mixtures of
    three sparse sources). With ``u_j = v_j / ||v_j||`` and ``G = dJ/dW``,
    ``dJ/dv_j = norm / ||v_j|| (G_j - (G_j . u_j) u_j)``.
    """
    lengths = torch.linalg.vector_norm(V, dim=1, keepdim=True).clamp_min(
        torch.finfo(V.dtype).tiny
    )
    U = V / lengths
    cost, G = rica_cost(Xw, norm * U, alpha)
    radial = (G * U).sum(dim=1, keepdim=True)
    return cost, norm * (G - radial * U) / lengths


def rica(Xw, W, alpha, *, max_iter, tol):
    """Minimise :func:`rica_cost` over ``W`` with rows of ``W``'s row norm.

    L-BFGS (strong Wolfe steps) on :func:`rica_cost_equal_rows`, from ``W``
    (whose rows should all have the norm to keep, e.g. a Parseval frame of
    :func:`tight_frame` rescaled by :func:`equal_rows`). Stops after
    ``max_iter`` iterations, or when the cost changes by less than ``tol``
    times its starting value (or the gradient vanishes).

    Returns ``(W, n_iter, converged)``.
    """
    norm = float(torch.linalg.vector_norm(W, dim=1).mean())
    param = torch.nn.Parameter(W.clone())
    scale = float(rica_cost(Xw, W, alpha)[0]) or 1.0
    optimizer = torch.optim.LBFGS(
        [param],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-7 * scale,
        tolerance_change=tol * scale,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        cost, grad = rica_cost_equal_rows(Xw, param.detach(), alpha, norm)
        param.grad = grad
        return cost

    optimizer.step(closure)
    n_iter = int(optimizer.state[param]["n_iter"])
    return equal_rows(param.detach(), norm), n_iter, n_iter < max_iter
