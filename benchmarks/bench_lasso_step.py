"""One sparse-coding step: skae's lasso solvers vs scikit-learn's LARS, one run.

The code step of ``DictionaryLearner(code="sparse")`` on one batch of 256
standardised 8x8 ``china.jpg`` patches, for 100 atoms from a
``MiniBatchDictionaryLearning`` trained one pass over 5000 patches (a partly
trained, overcomplete dictionary). Reports the time per call (mean of 5, after
a warm-up) and the largest per-row excess of the lasso objective
``0.5 ||x - z D||^2 + alpha ||z||_1`` over a reference solved by FISTA to a
1e-13 tolerance.

Run: ``cd benchmarks && python bench_lasso_step.py`` (about 30 s).
"""

import time
import warnings

import numpy as np
import torch
from _common import machine_line, print_table
from bench_dictionary import load_patches
from sklearn.decomposition import MiniBatchDictionaryLearning, sparse_encode

from skae import _dictionary_solvers as solvers


def timed_mean(fn, repeats=5):
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        result = fn()
    return result, (time.perf_counter() - start) / repeats


def main():
    torch.set_num_threads(1)
    alpha = 1.0
    X = load_patches(20000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dictionary = MiniBatchDictionaryLearning(
            100, alpha=alpha, batch_size=256, max_iter=1, random_state=0
        ).fit(X[:5000])
    D = torch.tensor(dictionary.components_)
    rows = np.random.default_rng(0).permutation(len(X))[:256]
    batch = torch.tensor(X[rows])
    B, G = batch @ D.T, D @ D.T

    def objective(Z):
        Z = torch.as_tensor(Z)
        return 0.5 * ((batch - Z @ D) ** 2).sum(dim=1) + alpha * Z.abs().sum(dim=1)

    best = objective(solvers.fista(B, G, alpha, max_iter=5000, tol=1e-13))
    methods = {
        "skae lasso (active set)": lambda: solvers.lasso(B, G, alpha),
        "skae fista (300 it, tol 1e-6)": lambda: solvers.fista(
            B, G, alpha, max_iter=300, tol=1e-6
        ),
        "sklearn sparse_encode(lasso_lars)": lambda: sparse_encode(
            batch.numpy(), D.numpy(), algorithm="lasso_lars", alpha=alpha
        ),
    }
    print(f"# 256 patches, 100 atoms, alpha={alpha}; {machine_line()}")
    table = []
    for name, fn in methods.items():
        Z, seconds = timed_mean(fn)
        table.append(
            {
                "method": name,
                "ms per batch": 1e3 * seconds,
                "worst row excess": float((objective(Z) - best).max()),
                "mean support": float((torch.as_tensor(Z) != 0).sum(1).double().mean()),
            }
        )
    print_table(table, ["method", "ms per batch", "worst row excess", "mean support"])


if __name__ == "__main__":
    main()
