"""Sparse dictionary learning on image patches: skae vs scikit-learn, one run.

Data: 8x8 patches of ``load_sample_image("china.jpg")`` (grey levels), each
pixel standardised over the patches, as in scikit-learn's image-denoising
example. Every method learns ``--n-atoms`` atoms at the same ``--alpha``; each
learned dictionary is then judged the same way, by the documented
``DictionaryLearning`` objective

    0.5 * ||X - Z D||_Fro^2 + alpha * ||Z||_1,1   (unit-norm atoms)

with Z the exact lasso codes of X for that dictionary (scikit-learn's
``sparse_encode(algorithm="lasso_cd")``, not timed). Wall times are for
``fit`` only. Every estimator runs with its defaults, as a user would, except
the sizes (``n_components``, ``alpha``, ``batch_size``) and the seed. Each skae
mode is compared with its scikit-learn counterpart: the online mode
(``batch_size``) with ``MiniBatchDictionaryLearning`` at the same batch size,
the full-batch mode with ``DictionaryLearning`` (whose iterations on patches
are capped by ``--dl-max-iter``: its lars code step costs ~10 s per pass over
20000 patches; on ``--data digits`` it runs uncapped). ``--seeds`` repeats
everything per seed.

Run: ``python benchmarks/bench_dictionary.py`` (about 5 minutes on 2 cores,
most of it ``DictionaryLearning``); ``--data digits`` for scikit-learn's
digits (1797 x 64, standardised pixels). ``--threads 1`` limits torch and the
BLAS to one thread each, for a fair comparison beside another job.
``--methods full dl --dl-max-iter 1000`` runs only the full-batch pair, with
``DictionaryLearning`` at its own default (an hour or more on the patches); it
prints its cost every five alternations, so a run cut short still shows how
far it got.
"""

import argparse
import os
import time
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


def load_digits_scaled():
    from sklearn.datasets import load_digits

    X = load_digits().data
    X = X - X.mean(axis=0)
    std = X.std(axis=0)
    return X / np.where(std > 0, std, 1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["patches", "digits"], default="patches")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n-patches", type=int, default=20000)
    parser.add_argument("--n-atoms", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--dl-max-iter",
        type=int,
        default=None,
        help="cap on DictionaryLearning's iterations (default: 10 on patches, "
        "its own default of 1000 on digits)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        default=list(METHODS),
        help="which fits to run (default: all four); a ratio is printed when "
        "both sides of a pair ran",
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

    X = load_patches(args.n_patches) if args.data == "patches" else load_digits_scaled()
    dl_max_iter = args.dl_max_iter or (10 if args.data == "patches" else 1000)
    k, alpha, bs = args.n_atoms, args.alpha, args.batch_size
    print(f"# {X.shape[0]} {args.data} rows x {X.shape[1]}, {k} atoms, alpha={alpha}")
    print(
        f"# {machine_line()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}"
    )
    print(f"# load average before: {os.getloadavg()[0]:.2f}")

    skae_online = f"skae DictionaryLearner(batch_size={bs})"
    skae_full = "skae DictionaryLearner()"
    sklearn_online = f"sklearn MiniBatchDictionaryLearning(batch_size={bs})"
    sklearn_full = f"sklearn DictionaryLearning(max_iter={dl_max_iter})"

    def methods(seed):
        every = [
            (
                skae_online,
                sklearn_online,
                DictionaryLearner(k, alpha=alpha, batch_size=bs, random_state=seed),
            ),
            (
                skae_full,
                sklearn_full,
                DictionaryLearner(k, alpha=alpha, random_state=seed),
            ),
            (
                sklearn_online,
                None,
                MiniBatchDictionaryLearning(
                    k, alpha=alpha, batch_size=bs, random_state=seed
                ),
            ),
            (
                sklearn_full,
                None,
                DictionaryLearning(
                    k,
                    alpha=alpha,
                    max_iter=dl_max_iter,
                    random_state=seed,
                    callback=_print_progress,
                ),
            ),
        ]
        chosen = [METHODS.index(m) for m in args.methods]
        return [every[i] for i in chosen]

    runs = {}
    for seed in args.seeds:
        for name, counterpart, model in methods(seed):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                _, seconds = timed(model.fit, X)
            run = runs.setdefault(name, {"counterpart": counterpart, "runs": []})
            run["runs"].append(
                {
                    "objective": objective(X, model.components_, alpha),
                    "seconds": seconds,
                    "passes": getattr(model, "n_iter_", float("nan")),
                }
            )
            print(f"# done: {name}, seed {seed}, in {seconds:.1f} s", flush=True)
    rows = []
    for name, run in runs.items():
        other = runs.get(run["counterpart"])
        per_seed = run["runs"]
        row = {
            "method": name,
            "n_atoms": k,
            # Strings: the table's 4 significant digits hide the gaps.
            "objective": _spread([r["objective"] for r in per_seed], "{:.1f}"),
            "wall time (s)": _spread([r["seconds"] for r in per_seed], "{:.2f}"),
            "passes": _spread([r["passes"] for r in per_seed], "{:.3g}"),
            "objective / counterpart": "",
            "time / counterpart": "",
            "seeds at or below counterpart's objective": "",
        }
        if other:
            pairs = list(zip(per_seed, other["runs"], strict=True))
            row["objective / counterpart"] = _spread(
                [a["objective"] / b["objective"] for a, b in pairs], "{:.4f}"
            )
            row["time / counterpart"] = _spread(
                [a["seconds"] / b["seconds"] for a, b in pairs], "{:.3f}"
            )
            at_or_below = sum(a["objective"] <= b["objective"] for a, b in pairs)
            row["seeds at or below counterpart's objective"] = (
                f"{at_or_below}/{len(pairs)}"
            )
        rows.append(row)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    print_table(
        rows,
        [
            "method",
            "n_atoms",
            "objective",
            "wall time (s)",
            "passes",
            "objective / counterpart",
            "time / counterpart",
            "seeds at or below counterpart's objective",
        ],
    )


METHODS = ("online", "full", "mbdl", "dl")


def _print_progress(state):
    """DictionaryLearning's callback (every 5 alternations): its own cost so far.

    A run of hours that is cut short still leaves its trajectory in the log.
    """
    print(
        f"#   DictionaryLearning: alternation {state['ii'] + 1}, "
        f"{time.time() - state['t0']:.0f} s, cost {state['current_cost']:.1f}",
        flush=True,
    )


def _spread(values, fmt):
    """Mean, and +- the standard deviation when there are several seeds."""
    values = np.asarray(values, dtype=float)
    text = fmt.format(values.mean())
    if len(values) > 1:
        text += " ± " + fmt.format(values.std(ddof=1))
    return text


if __name__ == "__main__":
    main()
