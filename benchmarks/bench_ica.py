"""ICA: ``DictionaryLearner(code="independent")`` beside scikit-learn's FastICA.

Complete ICA. Data: ``n_sources`` independent unit-variance sources, in
turn Laplace (super-Gaussian), uniform (sub-Gaussian) and a sine of random
phase (arcsine law, sub-Gaussian), mixed by a standard normal square matrix
``A`` plus a random offset, all from ``RandomState(seed)``. Both methods
whiten to unit variance and use ``G = log cosh`` with the same ``tol``
(1e-4, FastICA's default) and ``random_state``. Reported, mean ± standard
deviation over seeds: the Amari index of ``unmixing @ A`` (0 = perfect
separation up to order and sign), the Amari index between the two unmixings
(agreement), the iterations and the fit time.

Overcomplete ICA. Data: ``m`` sparse sources (Laplace, each active with
probability 0.2) mixed into ``d < m`` features by a standard normal ``A``
(``d, m`` = 4, 8 and 8, 16; 3,000 and 6,000 rows). Reported: how well the
learned atoms match the true mixing columns, the mean over true atoms of the
best absolute cosine, for RICA (``DictionaryLearner(n_components=m,
code="independent")``), for FastICA (which cannot go past ``d`` components:
asked for ``m``, it keeps ``d``, so its ``mixing_`` is the best complete
approximation), for sparse coding with ``m`` atoms
(``DictionaryLearner(code="sparse")``, another overcomplete model, for
reference) and for random atoms (chance, 200 draws per seed), with the
times of ``fit`` and of ``transform`` on the training rows.

Run: ``python benchmarks/bench_ica.py`` (about a minute on 2 cores);
``--quick`` runs 3 seeds of the smaller sizes only. Torch and the BLAS run
one thread each (``--threads``) so that the timings compare like with like.
"""

import argparse
import warnings

import numpy as np
import torch
from _common import machine_line, print_table, timed
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from skae import DictionaryLearner


def amari_index(P):
    """Amari index of a square matrix, in [0, 1]; 0 iff a scaled permutation."""
    P = np.abs(P)
    k = P.shape[0]
    rows = (P.sum(axis=1) / P.max(axis=1) - 1).sum()
    cols = (P.sum(axis=0) / P.max(axis=0) - 1).sum()
    return (rows + cols) / (2 * k * (k - 1))


def complete_mixture(n_sources, n_samples, seed):
    rng = np.random.RandomState(seed)
    makers = [
        lambda: rng.laplace(size=n_samples) / np.sqrt(2),
        lambda: rng.uniform(-np.sqrt(3), np.sqrt(3), size=n_samples),
        lambda: np.sqrt(2) * np.sin(2 * np.pi * rng.uniform(size=n_samples)),
    ]
    S = np.column_stack([makers[j % 3]() for j in range(n_sources)])
    A = rng.standard_normal((n_sources, n_sources))
    return S @ A.T + rng.uniform(-5, 5, size=n_sources), A


def sparse_mixture(n_features, n_sources, n_samples, seed):
    rng = np.random.RandomState(seed)
    active = rng.uniform(size=(n_samples, n_sources)) < 0.2
    S = rng.laplace(size=(n_samples, n_sources)) * active
    A = rng.standard_normal((n_features, n_sources))
    return S @ A.T, A, rng


def atom_recovery(A, D):
    """Mean over the true atoms (columns of A) of the best |cosine| in D."""
    A = A / np.linalg.norm(A, axis=0)
    D = D / np.linalg.norm(D, axis=1, keepdims=True)
    return float(np.abs(D @ A).max(axis=0).mean())


def mean_std(values):
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.4g} ± {values.std():.2g}"


def run_complete(sizes, seeds):
    rows = []
    for n_sources, n_samples in sizes:
        res = {k: [] for k in ("skae", "sk", "agree", "skae_t", "sk_t", "it", "sk_it")}
        for seed in seeds:
            X, A = complete_mixture(n_sources, n_samples, seed)
            ours = DictionaryLearner(
                n_sources, code="independent", tol=1e-4, random_state=seed
            )
            ref = FastICA(
                n_sources, whiten="unit-variance", tol=1e-4, random_state=seed
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                _, t_ours = timed(ours.fit, X)
                _, t_ref = timed(ref.fit, X)
            res["skae"].append(amari_index(ours.unmixing_ @ A))
            res["sk"].append(amari_index(ref.components_ @ A))
            res["agree"].append(amari_index(ours.unmixing_ @ ref.mixing_))
            res["skae_t"].append(t_ours)
            res["sk_t"].append(t_ref)
            res["it"].append(ours.n_iter_)
            res["sk_it"].append(ref.n_iter_)
        rows.append(
            {
                "sources": n_sources,
                "rows": n_samples,
                "Amari skae": mean_std(res["skae"]),
                "Amari FastICA": mean_std(res["sk"]),
                "Amari skae vs FastICA": mean_std(res["agree"]),
                "worst skae": f"{max(res['skae']):.4f}",
                "iter skae / FastICA": f"{np.mean(res['it']):.3g} / "
                f"{np.mean(res['sk_it']):.3g}",
                "fit s skae": mean_std(res["skae_t"]),
                "fit s FastICA": mean_std(res["sk_t"]),
            }
        )
    return rows


def run_overcomplete(sizes, seeds, alpha):
    rows = []
    for n_features, n_sources, n_samples in sizes:
        res = {k: [] for k in ("rica", "fastica", "sparse", "chance")}
        times = {k: [] for k in ("rica", "fastica", "sparse")}
        encode = {k: [] for k in ("rica", "fastica", "sparse")}
        for seed in seeds:
            X, A, rng = sparse_mixture(n_features, n_sources, n_samples, seed)
            rica = DictionaryLearner(
                n_sources, code="independent", alpha=alpha, random_state=seed
            )
            fastica = FastICA(n_sources, whiten="unit-variance", random_state=seed)
            sparse = DictionaryLearner(
                n_sources, code="sparse", alpha=alpha, random_state=seed
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for name, model in (
                    ("rica", rica),
                    ("fastica", fastica),
                    ("sparse", sparse),
                ):
                    _, seconds = timed(model.fit, X)
                    times[name].append(seconds)
                    _, seconds = timed(model.transform, X)
                    encode[name].append(seconds)
            assert fastica.mixing_.shape[1] == n_features  # FastICA's limit
            res["rica"].append(atom_recovery(A, rica.components_))
            res["fastica"].append(atom_recovery(A, fastica.mixing_.T))
            res["sparse"].append(atom_recovery(A, sparse.components_))
            res["chance"].append(
                np.mean(
                    [
                        atom_recovery(A, rng.standard_normal((n_sources, n_features)))
                        for _ in range(200)
                    ]
                )
            )
        rows.append(
            {
                "d x m": f"{n_features} x {n_sources}",
                "rows": n_samples,
                "RICA": mean_std(res["rica"]),
                "FastICA (d kept)": mean_std(res["fastica"]),
                "sparse coding": mean_std(res["sparse"]),
                "random atoms": mean_std(res["chance"]),
                "fit s RICA / FastICA / sparse": " / ".join(
                    f"{np.mean(times[k]):.3g}" for k in ("rica", "fastica", "sparse")
                ),
                "transform s RICA / FastICA / sparse": " / ".join(
                    f"{np.mean(encode[k]):.2g}" for k in ("rica", "fastica", "sparse")
                ),
            }
        )
    return rows


COMPLETE_COLUMNS = (
    "sources",
    "rows",
    "Amari skae",
    "Amari FastICA",
    "Amari skae vs FastICA",
    "worst skae",
    "iter skae / FastICA",
    "fit s skae",
    "fit s FastICA",
)
OVERCOMPLETE_COLUMNS = (
    "d x m",
    "rows",
    "RICA",
    "FastICA (d kept)",
    "sparse coding",
    "random atoms",
    "fit s RICA / FastICA / sparse",
    "transform s RICA / FastICA / sparse",
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--alpha", type=float, default=0.5, help="RICA's weight")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    seeds = args.seeds[:3] if args.quick else args.seeds
    complete = (
        [(3, 2000), (6, 5000)] if args.quick else [(3, 2000), (6, 5000), (12, 20000)]
    )
    overcomplete = [(4, 8, 3000)] if args.quick else [(4, 8, 3000), (8, 16, 6000)]
    print(machine_line())
    print(f"\nComplete ICA, seeds {seeds}\n")
    print_table(run_complete(complete, seeds), COMPLETE_COLUMNS)
    print(f"\nOvercomplete ICA (alpha={args.alpha}), seeds {seeds}\n")
    print_table(
        run_overcomplete(overcomplete, seeds, args.alpha),
        OVERCOMPLETE_COLUMNS,
    )


if __name__ == "__main__":
    main()
