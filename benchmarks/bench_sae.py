"""Sparse autoencoders on data with a known answer: features in superposition.

Data (``superposition``): ``--n-true`` = 512 unit feature directions in
``--n-features`` = 128 dimensions (4x more features than dimensions), drawn
uniformly on the sphere; each row switches every feature on independently
with probability ``--l0 / --n-true`` (true L0 = 4 on average) with a
coefficient uniform in [0.5, 1.5], and is the sum of its active features.
20000 training rows and 5000 held-out rows; the seed of the data and of every
model is the run's seed (``--seeds``, 0 1 2).

Every method learns ``--n-true`` latents (4x overcomplete with respect to the
input), and is reported on the held-out rows:

- ``mmcs``: mean over the learned dictionary columns (unit-normalized) of
  their largest absolute cosine similarity to a true feature;
- ``recovered``: the same from the true features' side (mean over true
  features of the best learned column);
- ``l0``, ``fve`` (fraction of variance explained), ``dead`` (share of
  latents never active on the held-out rows), ``shrinkage`` (norm of the
  centred reconstruction over the norm of the centred row), all from
  :func:`skae.metrics.sparse_code_metrics`;
- ``fit_s``: wall time of ``fit``.

Methods: each ``SparseAE`` kind at its defaults except the sizes, 45 epochs of
batches of 256 rows at learning rate 3e-3 (``batchtopk`` with and without
AuxK at k = true L0, ``matryoshka`` at k = true L0, ``jumprelu`` at its
default weight, ``topk`` at k = true L0, ``l1`` at two weights that bracket
the true L0: its L0 jumps from ~47 to below 1 between them),
``DictionaryLearner(code="sparse")`` (online, alternating lasso) and
scikit-learn's ``MiniBatchDictionaryLearning`` with OMP codes of exactly L0
non-zeros. Means and standard deviations over the
seeds.

Run: ``python benchmarks/bench_sae.py --plot benchmarks/sae.png`` (3 seeds,
~11 minutes on 2 cores) or ``--quick`` (1 seed, 10 epochs, ~1.5 minutes).
"""

import argparse
import sys
import warnings

import numpy as np
from _common import machine_line, print_table, timed
from sklearn.decomposition import MiniBatchDictionaryLearning
from sklearn.exceptions import ConvergenceWarning

from skae import SparseAE
from skae._dictionary import DictionaryLearner
from skae.metrics import sparse_code_metrics


def superposition(n_rows, n_features, n_true, l0, rng, directions=None):
    """Rows that are sparse non-negative sums of unit feature directions."""
    if directions is None:
        directions = rng.normal(size=(n_true, n_features))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    active = rng.random((n_rows, n_true)) < l0 / n_true
    coefficients = active * rng.uniform(0.5, 1.5, size=(n_rows, n_true))
    return coefficients @ directions, directions


def learned_directions(model):
    """Unit-norm dictionary columns as rows, shape (n_latents, n_features)."""
    if isinstance(model, SparseAE):
        module = model.module_
        if hasattr(module.decoder, "directions"):
            D = module.decoder.directions().detach().cpu().numpy().T
        else:  # the MLP kinds: the decoder's one linear layer
            D = module.decoder[0].weight.detach().cpu().numpy().T
        # One scale for all features ("global" scaling): directions unchanged.
    else:
        D = np.asarray(model.components_)
    norms = np.linalg.norm(D, axis=1, keepdims=True)
    return D / np.where(norms > 0, norms, 1)


def methods(args):
    k = int(round(args.l0))
    sae = dict(
        n_components=args.n_true,
        batch_size=256,
        learning_rate=3e-3,
        max_iter=args.epochs,
        tol=0,
    )
    return {
        "SparseAE batchtopk + AuxK": lambda s: SparseAE(
            sparsity="batchtopk", k=k, random_state=s, **sae
        ),
        "SparseAE batchtopk, no AuxK": lambda s: SparseAE(
            sparsity="batchtopk", k=k, aux_weight=0.0, random_state=s, **sae
        ),
        "SparseAE matryoshka + AuxK": lambda s: SparseAE(
            sparsity="matryoshka", k=k, random_state=s, **sae
        ),
        "SparseAE jumprelu + AuxK": lambda s: SparseAE(
            sparsity="jumprelu", random_state=s, **sae
        ),
        "SparseAE topk": lambda s: SparseAE(
            sparsity="topk", k=k, random_state=s, **sae
        ),
        "SparseAE l1 (weight 0.03)": lambda s: SparseAE(
            sparsity="l1", sparsity_weight=0.03, random_state=s, **sae
        ),
        "SparseAE l1 (weight 0.06)": lambda s: SparseAE(
            sparsity="l1", sparsity_weight=0.06, random_state=s, **sae
        ),
        'DictionaryLearner(code="sparse")': lambda s: DictionaryLearner(
            args.n_true,
            code="sparse",
            alpha=args.dl_alpha,
            batch_size=256,
            max_iter=args.dl_epochs,
            random_state=s,
        ),
        "sklearn MiniBatchDictionaryLearning (OMP)": lambda s: (
            MiniBatchDictionaryLearning(
                args.n_true,
                alpha=args.dl_alpha,
                batch_size=256,
                max_iter=args.dl_epochs,
                transform_algorithm="omp",
                transform_n_nonzero_coefs=k,
                random_state=s,
            )
        ),
    }


def run(args):
    rows = []
    only = args.only
    for name, make in methods(args).items():
        if only and not any(o.lower() in name.lower() for o in only):
            continue
        per_seed = []
        for seed in args.seeds:
            rng = np.random.default_rng(seed)
            X, truth = superposition(
                args.n_rows, args.n_features, args.n_true, args.l0, rng
            )
            X_test, _ = superposition(
                args.n_test, args.n_features, args.n_true, args.l0, rng, truth
            )
            model = make(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                _, seconds = timed(model.fit, X)
            cos = np.abs(learned_directions(model) @ truth.T)
            metrics = sparse_code_metrics(model, X_test)
            per_seed.append(
                {
                    "mmcs": cos.max(axis=1).mean(),
                    "recovered": cos.max(axis=0).mean(),
                    "l0": metrics["l0"],
                    "fve": metrics["variance_explained"],
                    "dead": metrics["dead_fraction"],
                    "shrinkage": metrics["shrinkage"],
                    "fit_s": seconds,
                }
            )
            print(
                name,
                seed,
                {k: round(float(v), 4) for k, v in per_seed[-1].items()},
                file=sys.stderr,
                flush=True,
            )
        row = {"method": name}
        for key in per_seed[0]:
            values = np.array([r[key] for r in per_seed])
            row[key] = f"{values.mean():.4f} ± {values.std():.4f}"
            row["_" + key] = values
        rows.append(row)
    return rows


def plot(rows, path):
    """Variance explained against L0, and the dictionary's similarity to the
    true features, one mark per method (mean and spread over the seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for i, row in enumerate(rows):
        l0, fve = row["_l0"], row["_fve"]
        left.errorbar(
            l0.mean(),
            fve.mean(),
            xerr=l0.std(),
            yerr=fve.std(),
            fmt="o",
            label=row["method"],
            color=f"C{i}",
        )
    left.set_xscale("log")
    left.axvline(4, color="grey", lw=0.8, ls=":")
    left.set_xlabel("L0 (active latents per row, held-out)")
    left.set_ylabel("fraction of variance explained")
    left.legend(fontsize=7)
    names = [row["method"] for row in rows]
    means = [row["_mmcs"].mean() for row in rows]
    spread = [row["_mmcs"].std() for row in rows]
    right.barh(names, means, xerr=spread, color=[f"C{i}" for i in range(len(rows))])
    right.axvline(0.99, color="grey", lw=0.8, ls=":")
    right.set_xlim(0, 1)
    right.set_xlabel("mean max |cosine| of learned columns to true features")
    right.tick_params(axis="y", labelsize=7)
    right.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, fewer epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-features", type=int, default=128)
    parser.add_argument("--n-true", type=int, default=512)
    parser.add_argument("--l0", type=float, default=4.0)
    parser.add_argument("--n-rows", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=45)
    parser.add_argument("--dl-epochs", type=int, default=2)
    parser.add_argument("--dl-alpha", type=float, default=0.2)
    parser.add_argument("--only", nargs="*", help="substrings of method names")
    parser.add_argument("--plot", help="save the figure to this path")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.dl_epochs = args.seeds[:1], 10, 1
    print(machine_line())
    print(
        f"superposition: {args.n_true} true features in {args.n_features} dims, "
        f"true L0 {args.l0}, {args.n_rows} train / {args.n_test} test rows, "
        f"{args.epochs} epochs, seeds {args.seeds}"
    )
    rows = run(args)
    print_table(
        rows,
        ["method", "mmcs", "recovered", "l0", "fve", "dead", "shrinkage", "fit_s"],
    )
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
