"""Compare skae with PCA, NMF, KMeans, DictionaryLearning, IsolationForest and PyOD.

Three experiments (the deep MNIST one has moved), every model scored with the same
uniform measures (:mod:`skae.metrics`, :mod:`skae.model_selection`):

1. Latent-size sweep (2, 4, 8, 16, 32) on ``load_digits`` (75/25 split) and on
   an MNIST subset (10k train / 2k test, pixels scaled to [0, 1]): held-out
   reconstruction MSE, in the units of X, for PCA, NMF, KMeans (nearest
   centroid), DictionaryLearning and every skae estimator present, plus the
   accuracy of ``Pipeline([model, SVC()])`` trained on the same training part.
2. The deep 784-1000-500-250-30 MNIST autoencoder against PCA-30: moved to
   ``benchmarks/bench_deep_mnist.py`` (all 60k training images, a long,
   resumable run); ``--skip deep`` is accepted and does nothing.
3. Anomaly detection on the ODDS sets, PyOD's protocol (60/40 split,
   features standardized with the training statistics, unsupervised fit on the
   training part including its outliers, ROC-AUC on the test part), averaged
   over seeds: ``-score_samples`` of skae models against IsolationForest, PCA
   reconstruction error and PyOD's ``AutoEncoder`` (when pyod is installed).

skae estimators beyond ``AutoencoderTransformer`` are used when ``skae``
exports them (``SparseAE``, ``DenoisingAE``, ``ContractiveAE``, ``VAE``,
``DictionaryLearner``); absent ones are listed and skipped.

Run (from the repository root; ~30 min on 2 CPU cores, ``--quick`` ~3 min)::

    python benchmarks/bench_compare.py [--quick] [--threads 1] [--update-results]

``--update-results`` writes the printed report into ``benchmarks/RESULTS.md``
(section "Comparison (bench_compare.py)"); plots go to
``benchmarks/compare_*.png``.
"""

import argparse
import io
import math
import re
import sys
import time
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.decomposition import NMF, PCA, DictionaryLearning
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine_line, print_table  # noqa: E402

import skae  # noqa: E402
from skae import AutoencoderTransformer  # noqa: E402
from skae.datasets import (  # noqa: E402
    ANOMALY_DATASETS,
    data_available,
    load_anomaly,
    load_mnist,
)
from skae.model_selection import compare_reconstruction, plot_comparison  # noqa: E402

OPTIONAL = ("SparseAE", "DenoisingAE", "ContractiveAE", "VAE", "DictionaryLearner")
SIZES = (2, 4, 8, 16, 32)
MARK_START = "<!-- bench_compare:start -->"
MARK_END = "<!-- bench_compare:end -->"


def available_skae():
    found = {name: getattr(skae, name, None) for name in OPTIONAL}
    return {n: c for n, c in found.items() if c is not None}


def make(cls, **params):
    """Instantiate ``cls`` with those of ``params`` it accepts."""
    accepted = cls().get_params()
    return cls(**{k: v for k, v in params.items() if k in accepted})


# ----------------------------------------------------------------- 1. sweep
def sweep_models(k, *, data, epochs, extra_epochs, seed):
    """name -> unfitted model at latent size ``k``."""
    hidden = (128, 64) if data == "digits" else (256, 128)
    models = {
        "PCA": PCA(n_components=k, random_state=seed),
        "NMF": NMF(n_components=k, init="nndsvda", max_iter=400, random_state=seed),
        "KMeans": KMeans(n_clusters=k, n_init=2, random_state=seed),
        "DictionaryLearning": DictionaryLearning(
            n_components=k,
            alpha=0.1 if data == "mnist" else 1.0,
            max_iter=20 if data == "mnist" else 50,
            fit_algorithm="cd",
            transform_algorithm="lasso_cd",
            transform_alpha=0.1 if data == "mnist" else 1.0,
            random_state=seed,
        ),
        # Trained on the error that is measured: MSE on unscaled X.
        "skae AutoencoderTransformer": AutoencoderTransformer(
            n_components=k,
            hidden_layer_sizes=hidden,
            loss="mse",
            scaling="none",
            batch_size=64 if data == "digits" else 128,
            max_iter=epochs,
            n_iter_no_change=20,
            random_state=seed,
        ),
    }
    for name, cls in available_skae().items():
        models[f"skae {name}"] = make(
            cls,
            n_components=k,
            hidden_layer_sizes=hidden,
            max_iter=extra_epochs,
            random_state=seed,
        )
    return models


def run_sweep(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    data,
    sizes,
    epochs,
    extra_epochs,
    seed,
    with_svc,
):
    X = np.concatenate([X_train, X_test])
    y = np.concatenate([y_train, y_test])
    split = [(np.arange(len(X_train)), np.arange(len(X_train), len(X)))]
    per_size = [
        sweep_models(k, data=data, epochs=epochs, extra_epochs=extra_epochs, seed=seed)
        for k in sizes
    ]
    estimators = {name: [models[name] for models in per_size] for name in per_size[0]}
    frames = []
    for name, group in estimators.items():
        start = time.perf_counter()
        frames.append(
            compare_reconstruction({name: group}, X, y if with_svc else None, cv=split)
        )
        print(
            f"  [{data}] {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr
        )
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def report_sweep(df, title, png, with_svc):
    import matplotlib.pyplot as plt

    print(f"\n#### {title}\n")
    wide = df.pivot(
        index="method", columns="latent_size", values="reconstruction_error"
    )
    wide = wide.loc[pd_unique(df["method"])]
    sizes = list(wide.columns)
    rows = [
        {"method": m, **{f"k={k}": float(wide.loc[m, k]) for k in sizes}}
        for m in wide.index
    ]
    print("Held-out reconstruction MSE (units of X; lower is better):\n")
    print_table(rows, ["method", *[f"k={k}" for k in sizes]])
    skae_rows = [m for m in wide.index if m.startswith("skae")]
    wins = []
    for k in sizes:
        best = wide.loc[skae_rows, k].idxmin() if skae_rows else None
        if best is not None:
            ratio = wide.loc[best, k] / wide.loc["PCA", k]
            wins.append(f"k={k}: {best} {ratio:.2f}x PCA")
    print(
        "\nBest skae model relative to PCA (MSE ratio, < 1 beats PCA): "
        + "; ".join(wins)
        + "."
    )
    if with_svc:
        acc = df.pivot(index="method", columns="latent_size", values="accuracy")
        acc = acc.loc[pd_unique(df["method"])]
        rows = [
            {"method": m, **{f"k={k}": float(acc.loc[m, k]) for k in sizes}}
            for m in acc.index
        ]
        print("\nAccuracy of Pipeline([model, SVC()]) on the same split:\n")
        print_table(rows, ["method", *[f"k={k}" for k in sizes]])
    fit = df.pivot(index="method", columns="latent_size", values="fit_time")
    fit = fit.loc[pd_unique(df["method"])]
    rows = [
        {"method": m, **{f"k={k}": float(fit.loc[m, k]) for k in sizes}}
        for m in fit.index
    ]
    print("\nFit time (s):\n")
    print_table(rows, ["method", *[f"k={k}" for k in sizes]])

    ncols = 2 if with_svc else 1
    fig, axes = plt.subplots(
        1, ncols, figsize=(6.5 * ncols, 4.5), layout="constrained", squeeze=False
    )
    plot_comparison(df, ax=axes[0, 0], logy=True)
    axes[0, 0].set_title(f"{title}: held-out MSE")
    if with_svc:
        plot_comparison(df, ax=axes[0, 1], metric="accuracy")
        axes[0, 1].set_title(f"{title}: Pipeline([model, SVC()]) accuracy")
    for ax in axes.ravel():
        ax.legend(fontsize=7)
    fig.savefig(png, dpi=90)
    plt.close(fig)
    print(f"\n![{title}]({png.name})")


def pd_unique(values):
    import pandas as pd

    return list(pd.unique(values))


# ------------------------------------------------------------- 3. anomaly
def anomaly_detectors(n_features, seed, epochs):
    k = max(2, math.ceil(n_features / 4))
    # Settings in the spirit of PyOD's AutoEncoder defaults (small batches,
    # dropout, few epochs): a tightly fitted network reconstructs the
    # outliers in its training part too and loses contrast.
    nn_params = dict(
        n_components=k,
        hidden_layer_sizes=(64,),
        dropout=0.2,
        alpha=1e-3,
        batch_size=32,
        max_iter=epochs,
        random_state=seed,
    )
    detectors = {
        "IsolationForest": IsolationForest(random_state=seed),
        "PCA (k=p/4) rec. error": PCA(n_components=k, random_state=seed),
        "skae AutoencoderTransformer": AutoencoderTransformer(**nn_params),
    }
    for name, cls in available_skae().items():
        if name == "DictionaryLearner":
            detectors[f"skae {name}"] = make(cls, n_components=k, random_state=seed)
        else:
            detectors[f"skae {name}"] = make(cls, **nn_params)
    try:
        from pyod.models.auto_encoder import AutoEncoder

        detectors["PyOD AutoEncoder"] = AutoEncoder(random_state=seed, verbose=0)
    except ImportError:
        pass
    return detectors


def outlier_score(name, model, X_test):
    """Higher = more anomalous."""
    if name.startswith("PyOD"):
        return model.decision_function(X_test)
    if name.startswith("PCA"):
        diff = X_test - model.inverse_transform(model.transform(X_test))
        return (diff**2).sum(axis=1)
    return -model.score_samples(X_test)


def run_anomaly(sets, seeds, epochs):
    print("\n#### Anomaly detection (ODDS), ROC-AUC\n")
    try:
        import pyod

        print(f"PyOD {pyod.__version__} AutoEncoder with its defaults.")
    except ImportError:
        print(
            "pyod is not installed: the PyOD AutoEncoder column is skipped "
            "(`pip install pyod` to include it)."
        )
    print(
        f"60/40 split, standardized with training statistics, mean over seeds "
        f"{list(seeds)}. PCA and skae models: k = ceil(p/4) components; skae "
        f"models: one hidden layer of 64 units, dropout 0.2, alpha 1e-3, batch "
        f"32, {epochs} epochs max, other parameters default (settings chosen "
        "after a look at seed 0 of a few configurations).\n"
    )
    aucs = {}
    for name in sets:
        X, y = load_anomaly(name)
        for seed in seeds:
            X_tr, X_te, _, y_te = train_test_split(
                X, y, test_size=0.4, random_state=seed
            )
            scaler = StandardScaler().fit(X_tr)
            X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
            for det, model in anomaly_detectors(X.shape[1], seed, epochs).items():
                try:
                    model.fit(X_tr)
                    auc = roc_auc_score(y_te, outlier_score(det, model, X_te))
                except Exception as exc:  # report, do not stop the benchmark
                    print(f"  {det} failed on {name}: {exc}", file=sys.stderr)
                    auc = float("nan")
                aucs.setdefault(det, {}).setdefault(name, []).append(auc)
        print(f"  [anomaly] {name} done", file=sys.stderr)
    methods = list(aucs)
    rows = []
    for name in sets:
        rows.append(
            {"set": name, **{m: float(np.mean(aucs[m][name])) for m in methods}}
        )
    means = {m: float(np.nanmean([np.mean(aucs[m][s]) for s in sets])) for m in methods}
    rows.append({"set": "**mean**", **means})
    print_table(rows, ["set", *methods])
    skae_methods = [m for m in methods if m.startswith("skae")]
    best = max(skae_methods, key=lambda m: means[m])
    others = [m for m in ("IsolationForest", "PyOD AutoEncoder") if m in means]
    verdict = ", ".join(
        f"{'beats' if means[best] > means[o] else 'does not beat'} {o} "
        f"({means[best]:.3f} vs {means[o]:.3f})"
        for o in others
    )
    print(f"\nBest skae scorer: {best}; mean ROC-AUC {verdict}.")


# ------------------------------------------------------------------ main
def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and epochs: a smoke test (~3 min)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS threads (default 1: fastest on a shared 2-core machine)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["digits", "mnist", "deep", "anomaly"]
    )
    parser.add_argument(
        "--update-results",
        action="store_true",
        help="write the report into benchmarks/RESULTS.md",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)

    buffer = io.StringIO()
    start = time.perf_counter()
    with threadpool_limits(args.threads), redirect_stdout(Tee(sys.stdout, buffer)):
        run_all(args)
        print(f"\nTotal run time: {(time.perf_counter() - start) / 60:.1f} min.")
    if args.update_results:
        update_results(buffer.getvalue())


class Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self):
        for s in self.streams:
            s.flush()


def run_all(args):
    quick = args.quick
    cmd = "python benchmarks/bench_compare.py" + (" --quick" if quick else "")
    print(f"Command: `{cmd} --threads {args.threads}` (from the repository root).  ")
    print(f"Machine: {machine_line()}.  ")
    present = list(available_skae())
    missing = [n for n in OPTIONAL if n not in present]
    print(
        f"skae estimators used: AutoencoderTransformer"
        f"{', ' + ', '.join(present) if present else ''}"
        f"{'; not exported yet, skipped: ' + ', '.join(missing) if missing else ''}."
    )
    sizes = (2, 8) if quick else SIZES
    if "digits" not in args.skip:
        X, y = load_digits(return_X_y=True)
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=0.25, stratify=y, random_state=args.seed
        )
        epochs, extra = (30, 30) if quick else (400, 200)
        df = run_sweep(
            X_tr,
            y_tr,
            X_te,
            y_te,
            data="digits",
            sizes=sizes,
            epochs=epochs,
            extra_epochs=extra,
            seed=args.seed,
            with_svc=True,
        )
        print(
            "\nDigits: 1347 train / 450 test images (stratified), raw pixels 0-16; "
            "skae AutoencoderTransformer: hidden (128, 64), MSE on unscaled "
            f"pixels, up to {epochs} epochs; other skae models: their defaults "
            f"with hidden (128, 64), up to {extra} epochs."
        )
        report_sweep(df, "load_digits", HERE / "compare_digits.png", with_svc=True)
    mnist = data_available("mnist")
    if not mnist:
        print("\nMNIST not found (set SKAE_DATA_DIR): MNIST experiments skipped.")
    if mnist and "mnist" not in args.skip:
        X_train, y_train, X_test, y_test = load_mnist()
        X_train = X_train.astype(np.float32) / 255.0
        X_test = X_test.astype(np.float32) / 255.0
    if mnist and "mnist" not in args.skip:
        n_tr, n_te = (2000, 500) if quick else (10000, 2000)
        rng = np.random.RandomState(args.seed)
        tr = rng.choice(len(X_train), n_tr, replace=False)
        te = rng.choice(len(X_test), n_te, replace=False)
        df = run_sweep(
            X_train[tr],
            y_train[tr],
            X_test[te],
            y_test[te],
            data="mnist",
            sizes=sizes,
            epochs=5 if quick else 40,
            extra_epochs=3 if quick else 12,
            seed=args.seed,
            with_svc=True,
        )
        print(
            f"\nMNIST subset: {n_tr} train / {n_te} test images drawn at random "
            "(seed 0), pixels in [0, 1]; SVC trained on the same {n_tr} codes. "
            "skae AutoencoderTransformer: hidden (256, 128), MSE, up to "
            f"{5 if quick else 40} epochs; other skae models: defaults with hidden "
            f"(256, 128), {3 if quick else 12} epochs.".replace("{n_tr}", str(n_tr))
        )
        report_sweep(df, "MNIST subset", HERE / "compare_mnist.png", with_svc=True)
    # The deep MNIST autoencoder needs all 60k images and a long run: it
    # has its own, resumable script.
    print("\nDeep MNIST autoencoder vs PCA-30: see benchmarks/bench_deep_mnist.py.")
    if "anomaly" not in args.skip:
        sets = [s for s in ANOMALY_DATASETS if data_available(s)]
        if quick:
            sets = [s for s in sets if s in ("wbc", "ionosphere", "vowels")]
        if sets:
            run_anomaly(sets, seeds=(0,) if quick else (0, 1, 2), epochs=10)
        else:
            print("\nODDS sets not found (set SKAE_DATA_DIR): anomaly part skipped.")


def update_results(report):
    path = HERE / "RESULTS.md"
    text = path.read_text()
    if MARK_START not in text or MARK_END not in text:
        raise SystemExit(f"{path} lacks the markers {MARK_START} / {MARK_END}.")
    block = f"{MARK_START}\n{report.strip()}\n{MARK_END}"
    pattern = re.compile(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), re.S)
    path.write_text(pattern.sub(lambda _: block, text))
    print(f"updated {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
