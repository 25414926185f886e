"""Convolutional autoencoder vs MLP autoencoder vs PCA on an MNIST subset.

For code sizes k = 16 and 32, on 10,000 training images and 2,000 held-out
test images of MNIST (pixels scaled to [0, 1]; the subset is drawn with a
fixed seed), three models are fitted and compared:

- ``PCA(k)``;
- ``AutoencoderTransformer(k)`` (an MLP, with its default PCA start), with one
  hidden layer whose width is chosen so that its parameter count matches the
  convolutional model's (the "budget" column);
- ``ConvAutoencoder(k)`` with ``channels=(16, 32)``.

Both networks train with the MSE loss (the measure below), the same number of
epochs (``max_iter``, early stopping on 10% held-out rows, the best weights
kept), the same batch size and learning rate. Reported per model and k, as
mean ± standard deviation over the seeds: the test reconstruction MSE per
pixel (in [0, 1] units), the accuracy of an RBF ``SVC`` trained on the codes
of the first 2,000 training images and tested on the test codes, the fit time
and the number of parameters.

CPU time: the full run (2 seeds, 20 epochs) takes a few minutes on 2 busy CPU
cores (its fits add up to under 2 minutes); ``--quick`` (3,000 images, 3
epochs, 1 seed) about a minute.

Run from the repository root (MNIST from ``SKAE_DATA_DIR``, default
``../shared/data``)::

    python benchmarks/bench_conv.py [--quick] [--plot benchmarks/conv_mnist.png]

:func:`report` returns the markdown table, for ``bench_architectures.py``.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.svm import SVC

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skae import AutoencoderTransformer, ConvAutoencoder  # noqa: E402
from skae.datasets import load_mnist  # noqa: E402
from skae.nn import MLPAutoencoder  # noqa: E402

CHANNELS = (16, 32)
CODE_SIZES = (16, 32)


def _settings(quick):
    if quick:
        return {"n_train": 3000, "n_test": 1000, "epochs": 3, "seeds": (0,)}
    return {"n_train": 10000, "n_test": 2000, "epochs": 20, "seeds": (0, 1)}


def _n_parameters(module):
    return sum(p.numel() for p in module.parameters())


def mlp_width_for_budget(n_features, k, budget):
    """Hidden width of the MLP autoencoder (with its linear path, as
    AutoencoderTransformer builds it) whose parameter count is closest to
    ``budget``."""

    def count(h):
        return _n_parameters(MLPAutoencoder(n_features, k, (h,), linear_path=True))

    return min(range(1, 1025), key=lambda h: abs(count(h) - budget))


def _data(n_train, n_test):
    X_train, y_train, X_test, y_test = load_mnist()
    rng = np.random.RandomState(0)
    train = rng.choice(len(X_train), n_train, replace=False)
    test = rng.choice(len(X_test), n_test, replace=False)
    return (
        X_train[train] / 255.0,
        y_train[train],
        X_test[test] / 255.0,
        y_test[test],
    )


def _evaluate(model, X_train, y_train, X_test, y_test):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached, by design
        model.fit(X_train)
    seconds = time.perf_counter() - start
    Z_test = model.transform(X_test)
    mse = float(np.mean((model.inverse_transform(Z_test) - X_test) ** 2))
    n_svc = min(2000, len(X_train))
    svc = SVC().fit(model.transform(X_train[:n_svc]), y_train[:n_svc])
    accuracy = float(svc.score(Z_test, y_test))
    return mse, accuracy, seconds


def _models(k, epochs, seed, n_features=784):
    common = {
        "n_components": k,
        "loss": "mse",
        "max_iter": epochs,
        "batch_size": 100,
        "learning_rate": 1e-3,
        "random_state": seed,
    }
    conv = ConvAutoencoder(channels=CHANNELS, **common)
    budget = _n_parameters(
        conv._build_module(
            {
                "image_shape": (1, 28, 28),
                "n_components": k,
                "channels": CHANNELS,
                "kernel_size": 3,
                "activation": "relu",
            }
        )
    )
    width = mlp_width_for_budget(n_features, k, budget)
    mlp = AutoencoderTransformer(hidden_layer_sizes=(width,), **common)
    return {
        "PCA": PCA(k, random_state=seed),
        f"MLP AE (784-{width}-k)": mlp,
        f"ConvAutoencoder {CHANNELS}": conv,
    }


def _spread(values, fmt):
    values = np.asarray(values)
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(values.mean(), fmt)} ± {format(values.std(), fmt)}"


def report(quick=False, fitted=None):
    """Run the comparison and return its markdown table (a str).

    ``fitted``: a dict that receives the fitted models of seed 0 and k = 16,
    by name (for :func:`plot_reconstructions`), with the test images.
    """
    s = _settings(quick)
    X_train, y_train, X_test, y_test = _data(s["n_train"], s["n_test"])
    lines = [
        f"MNIST subset: {s['n_train']} train / {s['n_test']} test images, "
        f"{s['epochs']} epochs, seeds {list(s['seeds'])} (mean ± std).",
        "",
        "| k | model | params | test MSE / pixel | SVC accuracy | fit time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for k in CODE_SIZES:
        results = {}
        for seed in s["seeds"]:
            for name, model in _models(k, s["epochs"], seed).items():
                mse, acc, secs = _evaluate(model, X_train, y_train, X_test, y_test)
                n_params = (
                    model.n_components_ * (784 + 1)
                    if isinstance(model, PCA)
                    else model._n_parameters()
                )
                results.setdefault(name, []).append((mse, acc, secs, n_params))
                if fitted is not None and k == 16 and seed == s["seeds"][0]:
                    fitted[name] = model
                    fitted["test images"] = X_test
        for name, runs in results.items():
            mse, acc, secs, n_params = zip(*runs)
            lines.append(
                f"| {k} | {name} | {n_params[0]:,} | {_spread(mse, '.5f')} | "
                f"{_spread(acc, '.3f')} | {_spread(secs, '.1f')} |"
            )
    return "\n".join(lines)


def plot_reconstructions(path, fitted, n_images=10):
    """Save held-out digits and their reconstructions by the models in
    ``fitted`` (as filled by :func:`report`) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X_test = fitted.pop("test images")[:n_images]
    rows = [("original", X_test)] + [
        (name, model.inverse_transform(model.transform(X_test)))
        for name, model in fitted.items()
    ]
    fig, axes = plt.subplots(len(rows), n_images, figsize=(n_images, len(rows) + 0.6))
    for r, (name, images) in enumerate(rows):
        for c in range(n_images):
            ax = axes[r, c]
            ax.imshow(images[c].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle("MNIST test digits and reconstructions, codes of 16 numbers (seed 0)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a one-minute run")
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="also save reconstructions of test digits (k=16, seed 0) to PATH",
    )
    args = parser.parse_args(argv)
    fitted = {} if args.plot else None
    print(report(quick=args.quick, fitted=fitted))
    if args.plot:
        plot_reconstructions(args.plot, fitted)


if __name__ == "__main__":
    main()
