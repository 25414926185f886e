"""Semi-supervised learning curves: AutoencoderClassifier beside scikit-learn.

Accuracy on a held-out test set against the number of labeled training rows,
the rest of the training rows being unlabeled (``y = -1``), side by side in one
run, on MNIST (a random subset of ``--mnist-rows`` training rows per seed, the
full 10,000-image test set; skipped, with a line saying so, when
``$SKAE_DATA_DIR`` has no MNIST) and digits (a 70/30 split per seed). Labeled
rows are drawn class-balanced (n / 10 per class). Methods:

- ``skae AutoencoderClassifier``: the defaults (a ``DenoisingAE`` pretrained on
  every training row, then the head, then all layers with the reconstruction
  term, then one round of label-propagation pseudo-labels: kNN graph in the
  fine-tuned code space, all layers trained on the true and the weighted
  pseudo-labels). Pretraining does not look at labels, so each seed pretrains once, as
  ``fit`` does (the default autoencoder, under
  ``skae._classifier.flush_subnormals``), and every label count reuses it
  through ``encoder=`` (the transfer path: the same computation as
  pretraining inside ``fit``); its fit time is the pretraining's plus the
  fine-tuning's.
- ``frozen skae codes + SVC``: ``SVC()`` on that autoencoder's codes of the
  labeled rows.
- ``PCA + SVC``: ``PCA`` (as many components as the code) fitted on every
  training row, ``SVC()`` on the labeled rows' scores.
- ``SVC``: ``SVC()`` on the labeled rows' pixels.
- ``LabelSpreading``: ``kernel="knn"`` (the default RBF kernel, gamma=20, puts
  every pair of images at affinity zero on [0, 1] pixels), other parameters at
  their defaults, on every training row.
- ``SelfTrainingClassifier``: ``SelfTrainingClassifier(SVC(probability=True))``
  on the labeled rows plus at most ``--self-training-unlabeled`` unlabeled rows
  (its SVC is refitted with internal cross-validation on a growing set: the
  full pool does not fit the time budget); not run above
  ``--self-training-max-labels`` labels.
- ``MLPClassifier``: the same hidden layers as the autoencoder's encoder and
  code, ``(512, 256, 64)``, trained from scratch on the labeled rows only.

A label count of ``all`` labels every training row.

Run (``PYTHONPATH=.`` imports the checkout's skae rather than an installed
one): ``PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_semisupervised.py
[--seeds 0 1 2] [--mnist-rows 20000] [--mnist-labels 100 1000 10000]
[--digits-labels 50 200 all] [--plot benchmarks/semisupervised.png]
[--json run.json]``; ``--merge a.json b.json --plot ...`` prints and plots the
tables of runs made separately (e.g. some label counts at a time) together.
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line  # noqa: E402

from skae import AutoencoderClassifier  # noqa: E402
from skae._classifier import flush_subnormals  # noqa: E402
from skae.datasets import data_available, load_mnist  # noqa: E402

METHODS = [
    "skae AutoencoderClassifier",
    "frozen skae codes + SVC",
    "PCA + SVC",
    "SVC",
    "LabelSpreading",
    "SelfTrainingClassifier",
    "MLPClassifier",
]


def timed(fn):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fn()
    return result, time.perf_counter() - start


def balanced_labels(y, n_labels, rng):
    """Indices of ``n_labels`` rows, as many of each class as possible."""
    if n_labels >= len(y):
        return np.arange(len(y))
    classes = np.unique(y)
    chosen = [
        rng.choice(np.flatnonzero(y == c), n_labels // len(classes), replace=False)
        for c in classes
    ]
    return np.sort(np.concatenate(chosen))


def run_setting(X, y, X_test, y_test, pretrained, n_labels, seed, args, log):
    """Every method at one label count; returns {method: (accuracy, seconds)}."""
    rng = np.random.RandomState(seed)
    labeled = balanced_labels(y, n_labels, rng)
    y_semi = np.full(len(y), -1)
    y_semi[labeled] = y[labeled]
    X_lab, y_lab = X[labeled], y[labeled]
    ae, ae_time, pca, pca_time = pretrained
    results = {}

    def record(name, fit, score=None, seconds_before=0.0):
        model, seconds = timed(fit)
        accuracy = score(model) if score else model.score(X_test, y_test)
        seconds += seconds_before
        results[name] = (float(accuracy), seconds)
        log(f"  {name}: {accuracy:.4f} ({seconds:.1f} s)")

    record(
        "skae AutoencoderClassifier",
        lambda: AutoencoderClassifier(encoder=ae, random_state=seed).fit(X, y_semi),
        seconds_before=ae_time,
    )
    codes_test, scores_test = ae.transform(X_test), pca.transform(X_test)
    record(
        "frozen skae codes + SVC",
        lambda: SVC().fit(ae.transform(X_lab), y_lab),
        lambda svc: svc.score(codes_test, y_test),
        seconds_before=ae_time,
    )
    record(
        "PCA + SVC",
        lambda: SVC().fit(pca.transform(X_lab), y_lab),
        lambda svc: svc.score(scores_test, y_test),
        seconds_before=pca_time,
    )
    record("SVC", lambda: SVC().fit(X_lab, y_lab))
    if len(labeled) < len(y):
        record("LabelSpreading", lambda: LabelSpreading(kernel="knn").fit(X, y_semi))
        if len(labeled) <= args.self_training_max_labels:
            unlabeled = np.flatnonzero(y_semi == -1)
            pool = rng.choice(
                unlabeled,
                min(len(unlabeled), args.self_training_unlabeled),
                replace=False,
            )
            rows = np.concatenate([labeled, pool])
            record(
                "SelfTrainingClassifier",
                lambda: SelfTrainingClassifier(SVC(probability=True)).fit(
                    X[rows], y_semi[rows]
                ),
            )
    record(
        "MLPClassifier",
        lambda: MLPClassifier(
            hidden_layer_sizes=(*ae.hidden_layer_sizes, ae.n_components_),
            random_state=seed,
        ).fit(X_lab, y_lab),
    )
    return results


def pretrain(X, seed):
    """The classifier's default autoencoder, fitted as ``fit`` fits it."""
    autoencoder = AutoencoderClassifier()._default_autoencoder()
    with flush_subnormals():
        return autoencoder.set_params(random_state=seed).fit(X)


def run_dataset(name, load, label_counts, args, log):
    """{label count: {method: [(accuracy, seconds) per seed]}}."""
    table = {}
    for seed in args.seeds:
        X, y, X_test, y_test = load(seed)
        log(f"{name}, seed {seed}: {len(X)} training rows, {len(X_test)} test rows")
        ae, ae_time = timed(lambda: pretrain(X, seed))  # noqa: B023
        log(f"  pretraining (DenoisingAE, {ae.n_iter_} epochs): {ae_time:.1f} s")
        pca, pca_time = timed(lambda: PCA(ae.n_components_).fit(X))  # noqa: B023
        for count in label_counts:
            n_labels = len(y) if count == "all" else int(count)
            log(f" {count} labels")
            results = run_setting(
                X,
                y,
                X_test,
                y_test,
                (ae, ae_time, pca, pca_time),
                n_labels,
                seed,
                args,
                log,
            )
            for method, value in results.items():
                table.setdefault(count, {}).setdefault(method, []).append(value)
    return table


def load_digits_split(seed):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.3, random_state=seed, stratify=y
    )
    return X_train, y_train, X_test, y_test


def mnist_loader(rows):
    X, y, X_test, y_test = load_mnist()
    X_test = X_test / 255.0

    def load(seed):
        order = np.random.RandomState(seed).permutation(len(X))[:rows]
        return X[order] / 255.0, y[order].astype(int), X_test, y_test.astype(int)

    return load


def markdown(name, table):
    counts = list(table)
    lines = [
        f"#### {name}: test accuracy, mean ± standard deviation over seeds",
        "",
        "| method | " + " | ".join(f"{c} labels" for c in counts) + " |",
        "|---|" + "---|" * len(counts),
    ]
    for method in METHODS:
        cells = []
        for count in counts:
            values = table[count].get(method)
            if values:
                acc = np.array([v[0] for v in values])
                cells.append(f"{acc.mean():.4f} ± {acc.std():.4f}")
            else:
                cells.append("—")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"#### {name}: fit time (s), mean over seeds",
        "",
        "| method | " + " | ".join(f"{c} labels" for c in counts) + " |",
        "|---|" + "---|" * len(counts),
    ]
    for method in METHODS:
        cells = []
        for count in counts:
            values = table[count].get(method)
            cells.append(f"{np.mean([v[1] for v in values]):.1f}" if values else "—")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(tables, n_rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4.5))
    axes = np.atleast_1d(axes)
    for ax, (name, table) in zip(axes, tables.items()):
        counts = list(table)
        x = [n_rows[name] if c == "all" else int(c) for c in counts]
        for method in METHODS:
            points = [
                (
                    xi,
                    np.mean([v[0] for v in table[c][method]]),
                    np.std([v[0] for v in table[c][method]]),
                )
                for xi, c in zip(x, counts)
                if table[c].get(method)
            ]
            if not points:
                continue
            xs, means, stds = map(np.array, zip(*points))
            style = (
                {"linewidth": 3, "color": "black"}
                if method.startswith("skae A")
                else {}
            )
            ax.errorbar(
                xs, means, yerr=stds, marker="o", capsize=3, label=method, **style
            )
        ax.set_xscale("log")
        ax.set_xlabel("labeled training rows (the rest unlabeled)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{name} ({n_rows[name]} training rows)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def merge(paths, plot_path):
    """Tables of several runs (e.g. label counts run separately), side by side."""
    tables, n_rows = {}, {}
    for path in paths:
        saved = json.loads(Path(path).read_text())
        for name, table in saved["tables"].items():
            merged = tables.setdefault(name, {})
            for count, methods in table.items():
                merged.setdefault(count, {}).update(methods)
        n_rows.update(saved["n_rows"])
    for name, table in tables.items():
        # Label counts in increasing order, "all" last.
        order = sorted(table, key=lambda c: float("inf") if c == "all" else int(c))
        table = {c: table[c] for c in order}
        tables[name] = table
        print(markdown(name, table))
        print()
    if plot_path:
        plot(tables, n_rows, plot_path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--mnist-rows", type=int, default=20000)
    parser.add_argument("--mnist-labels", nargs="*", default=["100", "1000", "10000"])
    parser.add_argument("--digits-labels", nargs="*", default=["50", "200", "all"])
    parser.add_argument("--self-training-unlabeled", type=int, default=2000)
    parser.add_argument("--self-training-max-labels", type=int, default=1000)
    parser.add_argument("--plot", default=None, help="write the learning curves here")
    parser.add_argument("--json", default=None, help="also save the tables here")
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        help="run nothing: print and plot the tables of these --json files together",
    )
    args = parser.parse_args()
    if args.merge:
        merge(args.merge, args.plot)
        return

    def log(line):
        print(line, flush=True)

    start = time.perf_counter()
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    log(f"# {machine_line()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    tables, n_rows = {}, {}
    with threadpool_limits(limits=threads):
        # An empty list of label counts skips the data set (runs split in parts).
        if args.digits_labels:
            tables["digits"] = run_dataset(
                "digits", load_digits_split, args.digits_labels, args, log
            )
            n_rows["digits"] = len(load_digits_split(0)[0])
        if args.mnist_labels and data_available("mnist"):
            tables["MNIST"] = run_dataset(
                "MNIST", mnist_loader(args.mnist_rows), args.mnist_labels, args, log
            )
            n_rows["MNIST"] = args.mnist_rows
        elif args.mnist_labels:
            log("# MNIST not found under $SKAE_DATA_DIR: skipped")
    print()
    for name, table in tables.items():
        print(markdown(name, table))
        print()
    if args.json:
        Path(args.json).write_text(json.dumps({"tables": tables, "n_rows": n_rows}))
    if args.plot:
        plot(tables, n_rows, args.plot)
    print(f"Total run time: {(time.perf_counter() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
