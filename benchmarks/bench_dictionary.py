"""Sparse dictionary learning on image patches: skae vs scikit-learn, one run.

Data: 8x8 patches of ``load_sample_image("china.jpg")`` (grey levels), each
pixel standardised over the patches, as in scikit-learn's image-denoising
example. Every method learns ``--n-atoms`` atoms at the same ``--alpha``; each
learned dictionary is then judged the same way, by the documented
``DictionaryLearning`` objective

    0.5 * ||X - Z D||_Fro^2 + alpha * ||Z||_1,1   (unit-norm atoms)

with Z the exact lasso codes of X for that dictionary (scikit-learn's
``sparse_encode(algorithm="lasso_cd")``, not timed). Wall times are for
``fit`` only. Each skae mode is compared with its scikit-learn counterpart:
the online mode (``batch_size``) with ``MiniBatchDictionaryLearning`` at the
same batch size, the full-batch mode with ``DictionaryLearning`` at the same
number of alternations (both start from the same SVD dictionary).

Run: ``python benchmarks/bench_dictionary.py`` (about 4 minutes on 2 cores,
most of it ``DictionaryLearning``). ``--threads 1`` limits torch and the BLAS
to one thread each, for a fair comparison beside another job.
"""

import argparse
import os
import warnings

import numpy as np
import torch
from _common import machine_line, print_table, timed
from sklearn.datasets import load_sample_image
from sklearn.decomposition import (
    DictionaryLearning,
    MiniBatchDictionaryLearning,
    sparse_encode,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.image import extract_patches_2d
from threadpoolctl import threadpool_limits

from skae._dictionary import DictionaryLearner


def load_patches(n_patches, seed=0):
    image = load_sample_image("china.jpg").mean(axis=2) / 255.0
    patches = extract_patches_2d(
        image, (8, 8), max_patches=n_patches, random_state=seed
    ).reshape(n_patches, -1)
    patches -= patches.mean(axis=0)
    patches /= patches.std(axis=0)
    return patches


def objective(X, D, alpha):
    """Documented DictionaryLearning objective at exact lasso codes for D."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        Z = sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha, max_iter=2000)
    return 0.5 * np.sum((X - Z @ D) ** 2) + alpha * np.abs(Z).sum()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-patches", type=int, default=20000)
    parser.add_argument("--n-atoms", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--dl-max-iter",
        type=int,
        default=10,
        help="cap on DictionaryLearning's iterations (its lars code step costs "
        "~10 s per pass over 20000 patches here)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch and BLAS threads (default: one per core)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)

    X = load_patches(args.n_patches)
    k, alpha, bs = args.n_atoms, args.alpha, args.batch_size
    print(f"# {X.shape[0]} patches x {X.shape[1]} pixels, {k} atoms, alpha={alpha}")
    print(
        f"# {machine_line()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}"
    )
    print(f"# load average before: {os.getloadavg()[0]:.2f}")

    skae_online = f"skae DictionaryLearner(batch_size={bs})"
    skae_full = f"skae DictionaryLearner(max_iter={args.dl_max_iter})"
    sklearn_online = f"sklearn MiniBatchDictionaryLearning(batch_size={bs})"
    sklearn_full = f"sklearn DictionaryLearning(max_iter={args.dl_max_iter})"
    methods = [
        (
            skae_online,
            sklearn_online,
            DictionaryLearner(
                k, alpha=alpha, batch_size=bs, max_iter=2, tol=1e-3, random_state=0
            ),
        ),
        (
            skae_full,
            sklearn_full,
            DictionaryLearner(
                k, alpha=alpha, max_iter=args.dl_max_iter, tol=0.0, random_state=0
            ),
        ),
        (
            sklearn_online,
            None,
            MiniBatchDictionaryLearning(k, alpha=alpha, batch_size=bs, random_state=0),
        ),
        (
            sklearn_full,
            None,
            DictionaryLearning(
                k, alpha=alpha, max_iter=args.dl_max_iter, random_state=0
            ),
        ),
    ]
    rows = {}
    for name, counterpart, model in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, seconds = timed(model.fit, X)
        rows[name] = {
            "method": name,
            "counterpart": counterpart,
            "n_atoms": k,
            # A string: the table's 4 significant digits hide the gaps.
            "objective": f"{objective(X, model.components_, alpha):.1f}",
            "wall time (s)": seconds,
            "passes": getattr(model, "n_iter_", ""),
        }
        print(f"# done: {name} in {seconds:.1f} s", flush=True)
    for row in rows.values():
        other = rows.get(row.pop("counterpart"))
        row["time / sklearn counterpart"] = (
            row["wall time (s)"] / other["wall time (s)"] if other else ""
        )
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    print_table(
        list(rows.values()),
        [
            "method",
            "n_atoms",
            "objective",
            "wall time (s)",
            "time / sklearn counterpart",
            "passes",
        ],
    )


if __name__ == "__main__":
    main()
