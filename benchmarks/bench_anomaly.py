"""skae's default outlier detector side by side with the usual baselines.

The 8 ODDS sets (``skae.datasets.ANOMALY_DATASETS``), PyOD's benchmark
protocol: for each seed a 60/40 train/test split (``train_test_split(X, y,
test_size=0.4, random_state=seed)``), an unsupervised fit on the training
part *including its outliers*, scores on the test part; ROC-AUC and average
precision (outliers as the positive class), mean and standard deviation over
the seeds, and the fit and score times. The baselines see features
standardized with the training statistics (as in PyOD's benchmark);
``skae.OutlierDetector()`` sees raw X (it scales each feature itself, so
standardizing first changes nothing but the floor of near-constant
features).

Methods: ``skae.OutlierDetector()`` with its defaults (the configuration and
the protocol that chose it are in ``doc/anomaly.rst``), IsolationForest,
LocalOutlierFactor (``novelty=True``), PCA reconstruction error (k =
ceil(p/4) components), and PyOD's AutoEncoder, KNN and ECOD with their
defaults. Without pyod installed the PyOD rows are printed as skipped.

Run (from the repository root; 3-5 min on 2 CPU cores with 5 seeds)::

    python benchmarks/bench_anomaly.py [--seeds 0 1 2 3 4] [--threads 1]
    python benchmarks/bench_anomaly.py --quick      # 1 seed, 3 sets, ~1 min
    python benchmarks/bench_anomaly.py --select     # the protocol, ~1 hour

``--select`` reruns the protocol that chose the default (``doc/anomaly.rst``):
every candidate configuration on the selection splits (seeds 1000-1002, which
the table does not use), the one with the best mean ROC-AUC, and the
leave-one-set-out estimate of how well that rule generalizes.

``--sets`` restricts the data sets, ``--methods`` the methods (by the names
in the table); ``--plot PATH`` draws the ROC-AUC per set (the figure of
``doc/anomaly.rst`` is ``--plot benchmarks/anomaly.png``).
"""

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import LocalOutlierFactor
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine_line  # noqa: E402

from skae import OutlierDetector  # noqa: E402
from skae.datasets import ANOMALY_DATASETS, data_available, load_anomaly  # noqa: E402

SKAE = "skae OutlierDetector()"
PYOD_METHODS = ("PyOD AutoEncoder", "PyOD KNN", "PyOD ECOD")


class _PCAReconstruction:
    """PCA with k = ceil(p/4) components; anomaly score = squared residual."""

    def __init__(self, n_features, seed):
        self.pca = PCA(
            n_components=max(1, math.ceil(n_features / 4)), random_state=seed
        )

    def fit(self, X):
        self.pca.fit(X)
        return self

    def anomaly_score(self, X):
        residual = X - self.pca.inverse_transform(self.pca.transform(X))
        return (residual**2).sum(axis=1)


def _pyod_models(seed):
    """PyOD's detectors with their defaults, or None when pyod is absent."""
    try:
        from pyod.models.auto_encoder import AutoEncoder
        from pyod.models.ecod import ECOD
        from pyod.models.knn import KNN
    except ImportError:
        return None
    return {
        "PyOD AutoEncoder": AutoEncoder(random_state=seed, verbose=0),
        "PyOD KNN": KNN(),
        "PyOD ECOD": ECOD(),
    }


def make_methods(n_features, seed, pyod):
    """``name -> (model, anomaly_score(model, X), standardize?)``."""
    methods = {
        SKAE: (
            OutlierDetector(random_state=seed),
            lambda m, X: -m.score_samples(X),
            False,
        ),
        "IsolationForest": (
            IsolationForest(random_state=seed),
            lambda m, X: -m.score_samples(X),
            True,
        ),
        "LOF": (
            LocalOutlierFactor(novelty=True),
            lambda m, X: -m.score_samples(X),
            True,
        ),
        "PCA rec. error": (
            _PCAReconstruction(n_features, seed),
            lambda m, X: m.anomaly_score(X),
            True,
        ),
    }
    models = _pyod_models(seed) if pyod else None
    if models is not None:
        for name, model in models.items():
            methods[name] = (model, lambda m, X: m.decision_function(X), True)
    return methods


def run(sets, seeds, only):
    pyod_present = _pyod_models(0) is not None
    results = {}  # method -> set -> list of (auc, ap, fit_s, score_s)
    for name in sets:
        X, y = load_anomaly(name)
        for seed in seeds:
            X_tr, X_te, _, y_te = train_test_split(
                X, y, test_size=0.4, random_state=seed
            )
            scaler = StandardScaler().fit(X_tr)
            Z_tr, Z_te = scaler.transform(X_tr), scaler.transform(X_te)
            for method, (model, score, standardize) in make_methods(
                X.shape[1], seed, pyod_present
            ).items():
                if only and method not in only:
                    continue
                A, B = (Z_tr, Z_te) if standardize else (X_tr, X_te)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(A)
                    fit_s = time.perf_counter() - start
                    start = time.perf_counter()
                    s = score(model, B)
                score_s = time.perf_counter() - start
                row = (
                    roc_auc_score(y_te, s),
                    average_precision_score(y_te, s),
                    fit_s,
                    score_s,
                )
                results.setdefault(method, {}).setdefault(name, []).append(row)
            print(f"  [{name} seed {seed} done]", file=sys.stderr, flush=True)
    return results, pyod_present


def _cell(values):
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def report(results, sets, seeds, pyod_present, only):
    methods = list(results)
    for title, index in (("ROC-AUC", 0), ("Average precision", 1)):
        print(f"\n#### {title} (mean ± standard deviation over {len(seeds)} seeds)\n")
        print("| set | " + " | ".join(methods) + " |")
        print("|---|" + "---|" * len(methods))
        for name in sets:
            cells = [_cell([r[index] for r in results[m][name]]) for m in methods]
            print(f"| {name} | " + " | ".join(cells) + " |")
        # The spread of the 8-set mean over seeds: seed-to-seed variation of
        # the summary figure itself.
        means, spreads = [], []
        for m in methods:
            per_seed = np.array([[r[index] for r in results[m][n]] for n in sets])
            means.append(per_seed.mean())
            spreads.append(per_seed.mean(axis=0).std())
        cells = [f"**{mu:.3f}** ± {sd:.3f}" for mu, sd in zip(means, spreads)]
        print("| **mean** | " + " | ".join(cells) + " |")
    print("\n#### Time per fit / per scoring of the test part, seconds (mean)\n")
    print("| set | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for name in sets:
        cells = [
            f"{np.mean([r[2] for r in results[m][name]]):.2f} / "
            f"{np.mean([r[3] for r in results[m][name]]):.3f}"
            for m in methods
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if not pyod_present:
        for method in PYOD_METHODS:
            if not only or method in only:
                print(
                    f"\n{method}: SKIPPED (pyod is not installed; `pip install pyod`)"
                )


def plot(results, sets, path):
    """ROC-AUC per set and method: bars at the seed mean, whiskers at +- one
    standard deviation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(results)
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(11, 4.4))
    x = np.arange(len(sets) + 1)
    for i, m in enumerate(methods):
        per_set = [[r[0] for r in results[m][n]] for n in sets]
        means = [np.mean(v) for v in per_set] + [np.mean(per_set)]
        spreads = [np.std(v) for v in per_set]
        spreads.append(np.std(np.mean(per_set, axis=0)))
        ax.bar(
            x + (i - len(methods) / 2 + 0.5) * width,
            means,
            width,
            yerr=spreads,
            label=m,
            capsize=1.5,
            error_kw={"lw": 0.6},
        )
    ax.set_xticks(x, list(sets) + ["mean"])
    ax.set_ylim(0.4, 1.0)
    ax.set_ylabel("ROC-AUC (test part)")
    ax.grid(axis="y", lw=0.3)
    ax.legend(
        ncol=len(methods), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1)
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nFigure: {path}")


# ------------------------------------------------------------- selection
SELECTION_SEEDS = (1000, 1001, 1002)
SELECTION_TOP = 15  # candidates printed
#: Networks of the candidate ensembles: (scaling, code_fraction,
#: hidden_layer_size, n_steps); each is an AutoencoderEnsemble of 5 members.
NETWORKS = [
    (scaling, code, hidden, 1000)
    for scaling in ("minmax", "standard")
    for code, hidden in ((0.25, 64), (0.5, 64), (0.5, None))
] + [("minmax", 0.5, 64, 300)]
#: Neighbour ranks: fixed, the classical sqrt(n), a fixed share of the rows.
K_RULES = {
    "k=10": lambda n: 10,
    "k=sqrt(n)": lambda n: max(1, round(math.sqrt(n))),
    "k=2%": lambda n: max(1, round(0.02 * n)),
}


def _kth_distance(reference, queries, k, leave_one_out):
    from sklearn.neighbors import NearestNeighbors

    k = min(k + leave_one_out, len(reference))
    index = NearestNeighbors(n_neighbors=k).fit(reference)
    return index.kneighbors(queries)[0][:, -1]


def candidate_scores(ensemble, X_tr, X_te, with_reference):
    """Anomaly scores (higher = more anomalous) of the test rows for every
    score form, from one fitted ensemble's members.

    Each member's term is divided by its spread over the training rows
    (each training row left out of its own neighbours), then averaged over
    the members, as the shipped scorer does; "from + along, reconstruction
    space" is exactly ``-AutoencoderEnsemble.score_samples`` with k = 2%.
    """
    S, T = ensemble._scaled(X_tr), ensemble._scaled(X_te)
    n = len(S)
    forms = {}

    def add(name, train, test, spread=np.std):
        forms.setdefault(name, []).append(test / max(spread(train), 1e-12))

    for member in ensemble.estimators_:
        Z_s, Z_t = member.transform(S), member.transform(T)
        H_s, H_t = member.inverse_transform(Z_s), member.inverse_transform(Z_t)
        rec_s, rec_t = ((S - H_s) ** 2).sum(1), ((T - H_t) ** 2).sum(1)
        add("from (reconstruction error)", rec_s, rec_t)
        for rule, k_of in K_RULES.items():
            k = k_of(n)
            dz_s, dz_t = (_kth_distance(Z_s, Q, k, Q is Z_s) for Q in (Z_s, Z_t))
            dh_s, dh_t = (_kth_distance(H_s, Q, k, Q is H_s) for Q in (H_s, H_t))
            add(f"along, code space, {rule}", dz_s, dz_t)
            add(f"along, reconstruction space, {rule}", dh_s, dh_t)
            add(
                f"from + along, code space, {rule}",
                np.sqrt(dz_s**2 + rec_s),
                np.sqrt(dz_t**2 + rec_t),
            )
            add(
                f"from + along, reconstruction space, {rule}",
                dh_s**2 + rec_s,
                dh_t**2 + rec_t,
                spread=np.mean,
            )
    scores = {name: np.mean(parts, axis=0) for name, parts in forms.items()}
    if with_reference:
        for rule, k_of in K_RULES.items():
            # A plain k-NN distance in the scaled input space, no network.
            scores[f"[reference] input-space k-NN, {rule}"] = _kth_distance(
                S, T, k_of(n), False
            )
    return scores


def select(sets):
    """Score every candidate on the selection splits; print the choice and
    the leave-one-set-out estimate."""
    from skae._outlier_default import AutoencoderEnsemble

    auc = {}  # candidate -> set -> list over seeds
    for name in sets:
        X, y = load_anomaly(name)
        for seed in SELECTION_SEEDS:
            X_tr, X_te, _, y_te = train_test_split(
                X, y, test_size=0.4, random_state=seed
            )
            with_reference = {scaling: True for scaling, *_ in NETWORKS}
            for scaling, code, hidden, steps in NETWORKS:
                ensemble = AutoencoderEnsemble(
                    scaling=scaling,
                    code_fraction=code,
                    hidden_layer_size=hidden,
                    n_steps=steps,
                    random_state=seed,
                ).fit(X_tr)
                network = f"{scaling}, code {code}p, hidden {hidden}, {steps} steps"
                scores = candidate_scores(ensemble, X_tr, X_te, with_reference[scaling])
                with_reference[scaling] = False
                for form, s in scores.items():
                    key = (network, form)
                    if form.startswith("[reference]"):
                        key = (f"{scaling} scaling, no network", form)
                    auc.setdefault(key, {}).setdefault(name, []).append(
                        roc_auc_score(y_te, s)
                    )
            print(f"  [{name} seed {seed} done]", file=sys.stderr, flush=True)
    keys = list(auc)
    table = np.array([[np.mean(auc[key][n]) for n in sets] for key in keys])
    eligible = np.array(["[reference]" not in key[1] for key in keys])
    order = np.argsort(-table.mean(axis=1))
    print(
        f"\n#### Candidates on the selection splits (seeds {list(SELECTION_SEEDS)})\n"
    )
    print(
        f"ROC-AUC, mean over the seeds: the best {SELECTION_TOP} of "
        f"{int(eligible.sum())} candidates, then the reference rows (not "
        "eligible: no autoencoder).\n"
    )
    print("| network | score | " + " | ".join(sets) + " | mean |")
    print("|---|---|" + "---|" * (len(sets) + 1))
    shown = [i for i in order if eligible[i]][:SELECTION_TOP]
    shown += [i for i in order if not eligible[i]]
    for i in shown:
        cells = " | ".join(f"{v:.3f}" for v in table[i])
        print(f"| {keys[i][0]} | {keys[i][1]} | {cells} | {table[i].mean():.4f} |")
    means = np.where(eligible, table.mean(axis=1), -np.inf)
    best = int(np.argmax(means))
    print(f"\nChosen (best mean ROC-AUC): {' / '.join(keys[best])}: {means[best]:.4f}")
    print("\nLeave one set out (choose on the other sets, score the held-out one):\n")
    held_out = []
    for j, name in enumerate(sets):
        others = [i for i in range(len(sets)) if i != j]
        pick = int(
            np.argmax(np.where(eligible, table[:, others].mean(axis=1), -np.inf))
        )
        held_out.append(table[pick, j])
        print(f"- {name}: chose {' / '.join(keys[pick])} -> {table[pick, j]:.3f}")
    print(
        f"\nLeave-one-set-out estimate: {np.mean(held_out):.4f} "
        f"(in-sample best: {means[best]:.4f})."
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--sets", nargs="+", default=list(ANOMALY_DATASETS))
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--plot", default=None, metavar="PATH")
    parser.add_argument("--select", action="store_true")
    args = parser.parse_args(argv)
    seeds, sets = args.seeds, args.sets
    if args.quick:
        seeds, sets = [0], ["wbc", "vowels", "cardio"]
    missing = [s for s in sets if not data_available(s)]
    if missing:
        print(f"ODDS sets not found: {missing}. Set SKAE_DATA_DIR (see the README).")
        return 1
    torch.set_num_threads(args.threads)
    command = "python benchmarks/bench_anomaly.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    with threadpool_limits(args.threads):
        pools = sorted(
            {f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()}
        )
        print(f"Command: `{command.strip()}`  ")
        print(f"Machine: {machine_line()}.  ")
        print(
            f"Threads: torch intra-op {torch.get_num_threads()}, BLAS/OpenMP "
            f"{', '.join(pools)} (threadpoolctl limit {args.threads}).  "
        )
        start = time.perf_counter()
        if args.select:
            print(
                f"Protocol: 60/40 split per seed, selection seeds "
                f"{list(SELECTION_SEEDS)}; each candidate fitted on the raw "
                "training part."
            )
            select(sets)
            print(f"\nTotal run time: {(time.perf_counter() - start) / 60:.1f} min.")
            return 0
        print(
            f"Protocol: 60/40 split per seed, seeds {seeds}; baselines on features "
            "standardized with the training statistics, skae on raw X.  "
        )
        try:
            import pyod

            print(f"PyOD {pyod.__version__}: AutoEncoder, KNN and ECOD with defaults.")
        except ImportError:
            print("pyod is not installed: its rows are skipped (`pip install pyod`).")
        results, pyod_present = run(sets, seeds, args.methods)
        report(results, sets, seeds, pyod_present, args.methods)
        if args.plot:
            plot(results, sets, args.plot)
        print(f"\nTotal run time: {(time.perf_counter() - start) / 60:.1f} min.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
