"""The batched lasso solvers behind DictionaryLearner(code="sparse")."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LassoLars

from skae import _dictionary_solvers as solvers


def lasso_problem(n_samples=40, n_components=30, n_features=20, seed=0, zero_atoms=0):
    """An overcomplete dictionary (more atoms than features), unit-norm atoms."""
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    D[n_components - zero_atoms :] = 0.0
    X = rng.normal(size=(n_samples, n_features))
    return torch.tensor(X), torch.tensor(D)


def objective(X, D, Z, alpha):
    return 0.5 * ((X - Z @ D) ** 2).sum(dim=1) + alpha * Z.abs().sum(dim=1)


def reference_codes(X, D, alpha):
    """LARS solves the lasso exactly; scikit-learn scales alpha by n_features."""
    n_features = X.shape[1]
    model = LassoLars(alpha=alpha / n_features, fit_intercept=False, max_iter=500)
    return torch.tensor(model.fit(D.numpy().T, X.numpy().T).coef_)


@pytest.mark.parametrize("alpha", [0.1, 0.3, 1.0])
def test_lasso_matches_lars(alpha):
    X, D = lasso_problem()
    Z = solvers.lasso(X @ D.T, D @ D.T, alpha)
    Z_ref = reference_codes(X, D, alpha)
    np.testing.assert_allclose(
        objective(X, D, Z, alpha), objective(X, D, Z_ref, alpha), rtol=1e-10
    )
    np.testing.assert_allclose(Z, Z_ref, atol=1e-7)


def test_supports_as_large_as_the_rank_fall_back_to_fista():
    # At a tiny alpha a row's support fills all 20 dimensions; a 21st atom
    # makes its block singular, and FISTA finishes such rows from there.
    X, D = lasso_problem()
    alpha = 0.02
    Z = solvers.lasso(X @ D.T, D @ D.T, alpha, fallback_iter=20000, tol=1e-12)
    assert torch.isfinite(Z).all()
    Z_ref = reference_codes(X, D, alpha)
    np.testing.assert_allclose(
        objective(X, D, Z, alpha), objective(X, D, Z_ref, alpha), rtol=1e-7
    )


def test_lasso_meets_optimality_conditions():
    X, D = lasso_problem(seed=1)
    alpha = 0.2
    B, G = X @ D.T, D @ D.T
    Z = solvers.lasso(B, G, alpha)
    residual = B - Z @ G
    on = Z != 0
    # Stationary on the support, no violator off it.
    np.testing.assert_allclose(residual[on], alpha * torch.sign(Z[on]), atol=1e-10)
    assert residual[~on].abs().max() <= alpha + 1e-10
    assert on.any()


def test_lasso_beats_fista_at_its_tolerance():
    X, D = lasso_problem(seed=2, n_components=60)
    alpha = 0.1
    B, G = X @ D.T, D @ D.T
    exact = objective(X, D, solvers.lasso(B, G, alpha), alpha)
    approx = objective(X, D, solvers.fista(B, G, alpha, max_iter=100), alpha)
    assert torch.all(exact <= approx + 1e-12)
    assert torch.any(exact < approx - 1e-6)


def test_rows_do_not_depend_on_their_batch():
    X, D = lasso_problem(seed=3)
    B, G = X @ D.T, D @ D.T
    Z = solvers.lasso(B, G, 0.3)
    rows = torch.cat([solvers.lasso(B[i : i + 1], G, 0.3) for i in range(len(B))])
    np.testing.assert_allclose(rows, Z, rtol=1e-9, atol=1e-12)


def test_zero_atoms_and_large_alpha():
    # Unused (zero) atoms make the Gram matrix singular; they must stay unused.
    X, D = lasso_problem(zero_atoms=5)
    Z = solvers.lasso(X @ D.T, D @ D.T, 0.3)
    assert torch.all(Z[:, -5:] == 0)
    assert torch.isfinite(Z).all()
    # Past alpha_max = max |x.d| every code is exactly zero.
    alpha_max = float((X @ D.T).abs().max())
    assert torch.all(solvers.lasso(X @ D.T, D @ D.T, alpha_max * 1.01) == 0)


def test_guess_with_the_right_support_is_solved_in_one_step():
    X, D = lasso_problem(seed=4)
    alpha = 0.3
    B, G = X @ D.T, D @ D.T
    Z = solvers.lasso(B, G, alpha)
    # A perturbed copy keeps supports and signs: every row is recovered exactly.
    guess = Z * 1.5
    Z_exact, exact = solvers.exact_on_support(B, G, alpha, guess)
    assert exact.all()
    np.testing.assert_allclose(Z_exact, Z, atol=1e-10)
    # Dropping a code breaks the optimality test on that row only.
    row, col = torch.nonzero(Z)[0]
    wrong = guess.clone()
    wrong[row, col] = 0.0
    _, exact = solvers.exact_on_support(B, G, alpha, wrong)
    assert not exact[row] and exact.sum() == len(B) - 1
    np.testing.assert_allclose(solvers.lasso(B, G, alpha, guess=wrong), Z, atol=1e-10)


def test_unfinished_rows_fall_back_to_fista():
    X, D = lasso_problem(seed=5)
    alpha = 0.1
    B, G = X @ D.T, D @ D.T
    # One active-set round cannot finish rows needing several codes: FISTA
    # takes over from where they stopped and still gets close.
    Z = solvers.lasso(B, G, alpha, max_rounds=1, fallback_iter=5000, tol=1e-12)
    exact = objective(X, D, solvers.lasso(B, G, alpha), alpha)
    np.testing.assert_allclose(objective(X, D, Z, alpha), exact, rtol=1e-6)


def test_float32():
    X, D = lasso_problem(seed=6)
    alpha = 0.3
    Z64 = solvers.lasso(X @ D.T, D @ D.T, alpha)
    X32, D32 = X.float(), D.float()
    Z32 = solvers.lasso(X32 @ D32.T, D32 @ D32.T, alpha)
    assert Z32.dtype == torch.float32
    np.testing.assert_allclose(Z32.double(), Z64, atol=1e-4)


def test_chunked_solve_equals_one_block(monkeypatch):
    # Memory is bounded by solving chunks of rows; the result must not change.
    X, D = lasso_problem(n_samples=50, seed=7)
    B, G = X @ D.T, D @ D.T
    whole = solvers.lasso(B, G, 0.3, guess=solvers.lasso(B, G, 0.3) * 2)
    monkeypatch.setattr(solvers, "_LASSO_CHUNK_ENTRIES", 7 * D.shape[0] ** 2)
    chunked = solvers.lasso(B, G, 0.3, guess=whole * 2)
    np.testing.assert_allclose(chunked, whole, rtol=1e-9, atol=1e-12)
    assert torch.count_nonzero(whole) > 0


def test_rows_out_of_rounds_continue_from_their_codes(monkeypatch):
    # The FISTA fallback must start from the active-set codes, not from zero.
    X, D = lasso_problem(seed=8)
    B, G = X @ D.T, D @ D.T
    starts = []
    fista = solvers.fista

    def recording_fista(B_, G_, alpha, **kwargs):
        starts.append(kwargs["Z0"].clone())
        return fista(B_, G_, alpha, **kwargs)

    monkeypatch.setattr(solvers, "fista", recording_fista)
    solvers.lasso(B, G, 0.1, max_rounds=3)
    assert len(starts) == 1 and torch.count_nonzero(starts[0]) > 0
