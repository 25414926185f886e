"""SequenceAutoencoder beside the MLP autoencoder, PCA and IsolationForest.

Two comparisons, several seeds each, printed side by side in one run:

(a) **MNIST rows as sequences.** Each digit is read as 28 steps (its pixel
    rows) of 28 channels (the pixels of a row), scaled to [0, 1]. Training
    rows: the first ``N_TRAIN`` images of MNIST's training set; held-out
    rows: the first ``N_TEST`` images of its test set (``--quick``: fewer,
    see ``CONFIG``). Methods at equal code size k (16 and 32):
    ``PCA(k)``; ``AutoencoderTransformer(k)`` (the MLP, its defaults) and
    ``SequenceAutoencoder(k, sequence_shape=(28, 28))`` (a GRU), both with
    the MSE loss and the same number of epochs. Reported: held-out
    reconstruction MSE per pixel (units of X, lower is better), fit time,
    mean ± standard deviation over the seeds (PCA is deterministic).

(b) **A synthetic multichannel series with injected anomalies**
    (:func:`make_series`, documented there): for each seed, a 3-channel
    series of ``2 * N_TIMES`` steps; the first half (anomaly-free) trains,
    the second half, with anomalies injected, is scored. Rows are sliding
    windows (``WINDOW`` steps, stride ``STRIDE``) from
    :func:`skae.timeseries.sliding_windows`. Methods on the same windows:
    ``SequenceAutoencoder`` (GRU; per-window score: ``score_samples``;
    per-step: ``score_steps`` mapped with
    :func:`skae.timeseries.window_scores_to_steps`), ``IsolationForest``
    and a PCA reconstruction error (per-step: their window scores averaged
    over the windows covering a step). ROC-AUC per window (a window is
    anomalous when it holds an anomalous step) and per time step, mean ±
    standard deviation over the seeds, and fit times.

Run from the repository root (about 6-8 min on 2 CPU cores)::

    SKAE_DATA_DIR=../shared/data python benchmarks/bench_sequence.py
    SKAE_DATA_DIR=../shared/data python benchmarks/bench_sequence.py --quick

``report(quick=False)`` returns the markdown tables (used by
``benchmarks/bench_architectures.py``).
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine_line  # noqa: E402

from skae import AutoencoderTransformer, SequenceAutoencoder  # noqa: E402
from skae.datasets import data_available, load_mnist  # noqa: E402
from skae.timeseries import sliding_windows, window_scores_to_steps  # noqa: E402

CONFIG = {
    False: dict(
        n_train=3000,
        n_test=2000,
        ks=(16, 32),
        mnist_seeds=(0, 1, 2),
        epochs=20,
        n_times=4000,
        series_seeds=(0, 1, 2, 3, 4),
        series_epochs=30,
    ),
    True: dict(
        n_train=1000,
        n_test=500,
        ks=(16,),
        mnist_seeds=(0,),
        epochs=5,
        n_times=2000,
        series_seeds=(0, 1),
        series_epochs=10,
    ),
}
WINDOW, STRIDE = 32, 2
#: The GRU's size and step, used in both comparisons.
SEQ_PARAMS = dict(hidden_size=64, learning_rate=1e-2, batch_size=100)


def _mean_sd(values, fmt="{:.4f}"):
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(values.mean())} ± {fmt.format(values.std(ddof=1))}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------- (a) MNIST
def mnist_rows(cfg):
    """Held-out reconstruction MSE and fit time per method and k."""
    X_train, _, X_test, _ = load_mnist()
    X_train = X_train[: cfg["n_train"]] / 255.0
    X_test = X_test[: cfg["n_test"]] / 255.0
    methods = {
        "PCA": lambda k, seed: PCA(k),
        "AutoencoderTransformer (MLP)": lambda k, seed: AutoencoderTransformer(
            k, loss="mse", max_iter=cfg["epochs"], random_state=seed
        ),
        "SequenceAutoencoder (GRU)": lambda k, seed: SequenceAutoencoder(
            k,
            sequence_shape=(28, 28),
            loss="mse",
            max_iter=cfg["epochs"],
            random_state=seed,
            **SEQ_PARAMS,
        ),
    }
    results = {}  # (method, k) -> {"mse": [...], "time": [...], "params": n}
    for name, make in methods.items():
        seeds = (0,) if name == "PCA" else cfg["mnist_seeds"]
        for k in cfg["ks"]:
            cell = results.setdefault((name, k), {"mse": [], "time": []})
            for seed in seeds:
                model = make(k, seed)
                start = time.perf_counter()
                model.fit(X_train)
                cell["time"].append(time.perf_counter() - start)
                X_hat = model.inverse_transform(model.transform(X_test))
                cell["mse"].append(float(np.mean((X_hat - X_test) ** 2)))
                cell["params"] = (
                    sum(p.numel() for p in model.module_.parameters())
                    if hasattr(model, "module_")
                    else k * 784 + 784
                )
    return methods, results


def mnist_table(cfg):
    methods, results = mnist_rows(cfg)
    ks = cfg["ks"]
    header = ["method"]
    header += [f"MSE k={k}" for k in ks] + [f"fit s k={k}" for k in ks]
    header += [f"weights k={k}" for k in ks]
    rows = []
    for name in methods:
        cells = [results[(name, k)] for k in ks]
        rows.append(
            [name]
            + [_mean_sd(c["mse"]) for c in cells]
            + [_mean_sd(c["time"], "{:.1f}") for c in cells]
            + [c["params"] for c in cells]
        )
    return _table(header, rows)


# ------------------------------------------------------- (b) anomalies
def make_series(n_times, seed, anomalies):
    """A 3-channel series, optionally with injected anomalies, and its labels.

    Normal behaviour (``t`` = step, phases drawn from the seed, noise
    N(0, 0.1^2) added to every channel):

    - channel 0: ``sin(2 pi t / 40 + a)``;
    - channel 1: ``0.6 sin(2 pi t / 17 + b) + 0.4 sin(2 pi t / 40 + a)``;
    - channel 2: ``channel 0 * channel 1`` (before noise): coupled channels.

    With ``anomalies=True``, ``n_times // 200`` non-overlapping segments of
    8-30 steps are altered, each with one kind drawn in turn from:
    a spike (+4 on one channel at one step of the segment), a level shift
    (+1.5 on one channel), a frequency change (channel 0 at twice its
    frequency), a flat line (one channel held at its first value), and a
    broken coupling (channel 2 replaced by its negative, so that every
    channel alone still looks normal). Every step of an altered segment is
    labelled anomalous (for a spike, only its step).

    Returns
    -------
    series : ndarray of shape (n_times, 3)
    labels : ndarray of shape (n_times,), 1 for anomalous steps
    """
    rng = np.random.RandomState(seed)
    t = np.arange(n_times)
    a, b = rng.uniform(0, 2 * np.pi, 2)
    c0 = np.sin(2 * np.pi * t / 40 + a)
    c1 = 0.6 * np.sin(2 * np.pi * t / 17 + b) + 0.4 * np.sin(2 * np.pi * t / 40 + a)
    clean = np.column_stack([c0, c1, c0 * c1])
    series = clean.copy()
    labels = np.zeros(n_times, dtype=int)
    if anomalies:
        n_segments = n_times // 200
        slots = rng.choice(np.arange(1, n_times // 60 - 1), n_segments, replace=False)
        for i, slot in enumerate(np.sort(slots)):
            start = int(slot * 60 + rng.randint(0, 20))
            length = int(rng.randint(8, 31))
            seg = slice(start, start + length)
            channel = rng.randint(3)
            kind = i % 5
            if kind == 0:  # spike
                step = start + rng.randint(length)
                series[step, channel] += 4.0
                labels[step] = 1
                continue
            if kind == 1:  # level shift
                series[seg, channel] += 1.5
            elif kind == 2:  # frequency change
                series[seg, 0] = np.sin(4 * np.pi * t[seg] / 40 + a)
            elif kind == 3:  # flat line
                series[seg, channel] = series[start, channel]
            else:  # broken coupling
                series[seg, 2] = -clean[seg, 2]
            labels[seg] = 1
    series = series + 0.1 * rng.randn(n_times, 3)
    return series, labels


def _series_methods(epochs, seed):
    return {
        "SequenceAutoencoder (GRU)": SequenceAutoencoder(
            8,
            sequence_shape=(WINDOW, 3),
            max_iter=epochs,
            random_state=seed,
            **SEQ_PARAMS,
        ),
        "IsolationForest": IsolationForest(random_state=seed),
        "PCA(8) reconstruction error": PCA(8),
    }


def _window_scores(model, X):
    """Higher = more normal, one per window (and per window step, or None)."""
    if isinstance(model, SequenceAutoencoder):
        return model.score_samples(X), model.score_steps(X)
    if isinstance(model, PCA):
        return -np.mean((model.inverse_transform(model.transform(X)) - X) ** 2, 1), None
    return model.score_samples(X), None


def anomaly_results(cfg):
    n = cfg["n_times"]
    results = {}
    for seed in cfg["series_seeds"]:
        train, _ = make_series(n, seed, anomalies=False)
        test, labels = make_series(n, seed + 1000, anomalies=True)
        X_train = sliding_windows(train, WINDOW, STRIDE)
        X_test = sliding_windows(test, WINDOW, STRIDE)
        # A window is anomalous when it holds an anomalous step.
        window_labels = sliding_windows(labels.astype(float), WINDOW, STRIDE).max(1)
        covered = ~np.isnan(
            window_scores_to_steps(np.zeros(len(X_test)), n, WINDOW, STRIDE)
        )
        for name, model in _series_methods(cfg["series_epochs"], seed).items():
            start = time.perf_counter()
            model.fit(X_train)
            fit_time = time.perf_counter() - start
            per_window, per_position = _window_scores(model, X_test)
            steps = window_scores_to_steps(
                per_window if per_position is None else per_position, n, WINDOW, STRIDE
            )
            cell = results.setdefault(name, {"window": [], "step": [], "time": []})
            cell["window"].append(roc_auc_score(window_labels, -per_window))
            cell["step"].append(roc_auc_score(labels[covered], -steps[covered]))
            cell["time"].append(fit_time)
    return results


def anomaly_table(cfg):
    results = anomaly_results(cfg)
    rows = [
        [
            name,
            _mean_sd(r["window"], "{:.3f}"),
            _mean_sd(r["step"], "{:.3f}"),
            _mean_sd(r["time"], "{:.1f}"),
        ]
        for name, r in results.items()
    ]
    return _table(["method", "ROC-AUC per window", "ROC-AUC per step", "fit s"], rows)


# ------------------------------------------------------------------ report
def report(quick=False):
    """Run both comparisons; return the markdown tables as one string."""
    cfg = CONFIG[bool(quick)]
    # An untimed first fit: torch's one-time start-up is no method's fit time.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        AutoencoderTransformer(2, max_iter=1).fit(np.random.RandomState(0).rand(50, 8))
    parts = [f"Machine: {machine_line()}.", ""]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if data_available("mnist"):
            parts += [
                f"#### MNIST rows as 28-step sequences of 28 channels "
                f"({cfg['n_train']} training / {cfg['n_test']} test images, "
                f"{cfg['epochs']} epochs, seeds {list(cfg['mnist_seeds'])})",
                "",
                "Held-out reconstruction MSE per pixel (pixels in [0, 1]; lower "
                "is better), fit time, number of weights:",
                "",
                mnist_table(cfg),
                "",
            ]
        else:
            parts += ["MNIST: skipped (data not found; set SKAE_DATA_DIR).", ""]
        parts += [
            f"#### Synthetic 3-channel series with injected anomalies "
            f"({cfg['n_times']} training + {cfg['n_times']} test steps, windows of "
            f"{WINDOW} steps every {STRIDE}, seeds {list(cfg['series_seeds'])}, "
            f"{cfg['series_epochs']} epochs)",
            "",
            anomaly_table(cfg),
        ]
    return "\n".join(parts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run, ~1 min")
    args = parser.parse_args()
    start = time.perf_counter()
    print(report(quick=args.quick))
    print(f"\nTotal time: {time.perf_counter() - start:.0f} s")
