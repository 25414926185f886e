"""Untuned skae beside PCA: reconstruction, subspace and Pipeline accuracy.

Every skae model runs with its default parameters (only ``n_components`` and
``random_state`` set), as a new user would run it. Side by side in one run:

1. ``reconstruction``: held-out mean squared reconstruction error in X's units
   of ``AutoencoderTransformer()`` and ``PCA`` at the same ``n_components``
   (k in {2, 4, 8, 16, 32}, k < n_features), on digits, digits / 16 (pixels in
   [0, 1]), breast_cancer, wine, diabetes and a 10k MNIST subset (when
   ``$SKAE_DATA_DIR`` has MNIST);
   75/25 split per seed; ratio = AE / PCA (target: <= 1.02).
2. ``subspace``: the largest principal angle between the linear autoencoder's
   decoder subspace (``hidden_layer_sizes=(), activation="identity"``) and
   PCA's on the same training rows (target: < 0.01 rad).
3. ``pipeline``: ``GridSearchCV(Pipeline([model, SVC()]), n_components in
   {4, 8, 16, 32}, cv=3)`` test accuracy on digits, digits / 16 (and the MNIST
   subset with ``--mnist-pipeline``), skae vs PCA; and the same with
   ``LogisticRegression``.
4. ``estimators``: codes of every skae autoencoder at k = 32 + SVC on the MNIST
   subset beside PCA + SVC (target: >= 0.95x PCA), with code variance and
   reconstruction against the mean image (no collapse), and each model's own
   character: SparseAE's sparsity, the DenoisingAE's error on 30%-masked test
   images against the masked images', the ContractiveAE's Jacobian norm
   against the same model trained without the penalty.

Wall time of every fit is reported; several seeds give the spread.

Run: ``python benchmarks/bench_defaults.py [--seeds 0 1 2] [--parts ...]
[--mnist-rows 10000] [--threads N]``
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.linalg import subspace_angles
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, print_table  # noqa: E402

import skae  # noqa: E402
from skae.datasets import data_available, load_mnist  # noqa: E402

KS = (2, 4, 8, 16, 32)


def datasets(mnist_rows):
    sets = {
        "digits": load_digits().data,
        # Pixels in [0, 1], where loss="auto" used to pick BCE from random weights.
        "digits_unit": load_digits().data / 16.0,
        "breast_cancer": load_breast_cancer().data,
        "wine": load_wine().data,
        "diabetes": load_diabetes().data,
    }
    if mnist_rows and data_available("mnist"):
        sets["mnist"] = _mnist(mnist_rows)[0]
    elif mnist_rows:
        print("# MNIST not found under $SKAE_DATA_DIR: skipped", flush=True)
    return sets


def _mnist(rows):
    X, y = load_mnist()[:2]
    order = np.random.RandomState(0).permutation(len(X))[:rows]
    return X[order] / 255.0, y[order]


def timed_fit(est, *args):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(*args)
    return est, time.perf_counter() - start


def held_out_mse(est, X):
    return float(np.mean((est.inverse_transform(est.transform(X)) - X) ** 2))


def spread(values):
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.4g} ± {values.std():.2g}"


def part_reconstruction(sets, seeds, ks=KS):
    rows = []
    for name, X in sets.items():
        for k in ks:
            if k >= X.shape[1]:
                continue
            ratios, times, pca_err = [], [], []
            for seed in seeds:
                X_train, X_test = train_test_split(X, random_state=seed)
                pca, _ = timed_fit(PCA(k), X_train)
                ae, seconds = timed_fit(
                    skae.AutoencoderTransformer(k, random_state=seed), X_train
                )
                pca_err.append(held_out_mse(pca, X_test))
                ratios.append(held_out_mse(ae, X_test) / pca_err[-1])
                times.append(seconds)
            rows.append(
                {
                    "data": name,
                    "k": k,
                    "PCA MSE": spread(pca_err),
                    "AE / PCA": spread(ratios),
                    "worst ratio": float(np.max(ratios)),
                    "AE fit s": spread(times),
                }
            )
            print(rows[-1], flush=True)
    print_table(rows, ["data", "k", "PCA MSE", "AE / PCA", "worst ratio", "AE fit s"])


def part_subspace(sets, seeds):
    rows = []
    for name in ("wine", "breast_cancer", "digits"):
        X = sets[name]
        for k in (2, 4, 8):
            angles = []
            for seed in seeds:
                X_train, _ = train_test_split(X, random_state=seed)
                linear = skae.AutoencoderTransformer(
                    k, hidden_layer_sizes=(), activation="identity", random_state=seed
                )
                linear, _ = timed_fit(linear, X_train)
                pca = PCA(k).fit(X_train)
                decoder = linear.decoder_[0].weight.detach().numpy()  # d x k
                # The decoder maps codes to scaled X: back to X's units first.
                basis = decoder * linear.scale_[:, None]
                angles.append(np.max(subspace_angles(basis, pca.components_.T)))
            rows.append({"data": name, "k": k, "largest angle (rad)": spread(angles)})
            print(rows[-1], flush=True)
    print_table(rows, ["data", "k", "largest angle (rad)"])


def part_pipeline(named_data, seeds):
    rows = []
    for name, (X, y) in named_data.items():
        for head_name, head in (
            ("SVC", SVC()),
            ("LogReg", LogisticRegression(max_iter=2000)),
        ):
            for model_name, model in (
                ("PCA", PCA()),
                ("AutoencoderTransformer", skae.AutoencoderTransformer()),
            ):
                scores, times = [], []
                for seed in seeds:
                    X_train, X_test, y_train, y_test = train_test_split(
                        X, y, random_state=seed
                    )
                    model = clone(model)
                    if "random_state" in model.get_params():
                        model.set_params(random_state=seed)
                    # LogisticRegression wants standardized codes to converge.
                    scale = head_name == "LogReg"
                    steps = [("scale", StandardScaler())] if scale else []
                    pipe = Pipeline([("model", model), *steps, ("head", clone(head))])
                    search = GridSearchCV(
                        pipe, {"model__n_components": [4, 8, 16, 32]}, cv=3
                    )
                    search, seconds = timed_fit(search, X_train, y_train)
                    scores.append(search.score(X_test, y_test))
                    times.append(seconds)
                rows.append(
                    {
                        "data": name,
                        "head": head_name,
                        "model": model_name,
                        "test accuracy": spread(scores),
                        "grid fit s": spread(times),
                    }
                )
                print(rows[-1], flush=True)
    print_table(rows, ["data", "head", "model", "test accuracy", "grid fit s"])


def masked(X, seed, share=0.3):
    """X with a random ``share`` of its entries set to the feature's minimum
    (DenoisingAE's default corruption)."""
    keep = np.random.RandomState(seed).rand(*X.shape) >= share
    return np.where(keep, X, X.min(axis=0))


def jacobian_norm(est, X):
    """Mean squared Frobenius norm of d code / d x, x in X's units."""
    scale = torch.as_tensor(est.scale_, dtype=torch.float32)
    x = torch.as_tensor((X - est.offset_) / est.scale_, dtype=torch.float32)
    x.requires_grad_(True)
    codes = est.encoder_(x)
    total = torch.zeros(len(X))
    for j in range(codes.shape[1]):
        (grad,) = torch.autograd.grad(codes[:, j].sum(), x, retain_graph=True)
        total += (grad / scale).square().sum(dim=1)
    return float(total.mean())


def character(name, est, X_train, X_test, seed):
    """The model's own property, as a (description, value) pair."""
    if name.startswith("SparseAE"):
        Z = est.transform(X_test)
        if est.sparsity == "kl":
            return "mean activation (target 0.05)", float(Z.mean())
        return "share of zero codes", float(np.mean(Z == 0))
    if name in ("DenoisingAE", "AutoencoderTransformer"):
        # The plain autoencoder's figure is the reference for the denoiser's.
        noisy = masked(X_test, seed)
        restored = est.inverse_transform(est.transform(noisy))
        ratio = np.mean((restored - X_test) ** 2) / np.mean((noisy - X_test) ** 2)
        return "MSE(denoised) / MSE(noisy), 30% masked", float(ratio)
    if name == "ContractiveAE":
        plain = clone(est).set_params(contraction_weight=0.0).fit(X_train)
        rows = X_test[:300]
        ratio = jacobian_norm(est, rows) / jacobian_norm(plain, rows)
        return "Jacobian norm / same model unpenalized", ratio
    return "", float("nan")


def part_estimators(X, y, seeds, k=32, names=None):
    rows = []
    models = {
        "PCA": PCA(k),
        "AutoencoderTransformer": skae.AutoencoderTransformer(k),
        "SparseAE": skae.SparseAE(k),
        "SparseAE(l1)": skae.SparseAE(k, sparsity="l1"),
        "SparseAE(topk)": skae.SparseAE(k, sparsity="topk"),
        "DenoisingAE": skae.DenoisingAE(k),
        "ContractiveAE": skae.ContractiveAE(k),
        "VAE": skae.VAE(k),
    }
    for name, model in models.items():
        if names and name not in names:
            continue
        acc, variance, recon, times, own = [], [], [], [], []
        for seed in seeds:
            X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)
            est = clone(model)
            if "random_state" in est.get_params():
                est.set_params(random_state=seed)
            est, seconds = timed_fit(est, X_train)
            Z_train, Z_test = est.transform(X_train), est.transform(X_test)
            acc.append(SVC().fit(Z_train, y_train).score(Z_test, y_test))
            variance.append(float(Z_test.var(axis=0).mean()))
            mean_error = np.mean((X_test - X_train.mean(axis=0)) ** 2)
            recon.append(held_out_mse(est, X_test) / mean_error)
            times.append(seconds)
            what, value = character(name, est, X_train, X_test, seed)
            own.append(value)
        rows.append(
            {
                "model": name,
                "codes + SVC accuracy": spread(acc),
                "code variance": spread(variance),
                "MSE / mean-image MSE": spread(recon),
                "own character": what,
                "value": spread(own) if what else "",
                "fit s": spread(times),
            }
        )
        print(rows[-1], flush=True)
    columns = [
        "model",
        "codes + SVC accuracy",
        "code variance",
        "MSE / mean-image MSE",
        "own character",
        "value",
        "fit s",
    ]
    print_table(rows, columns)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["reconstruction", "subspace", "pipeline", "estimators"],
    )
    parser.add_argument("--mnist-rows", type=int, default=10000)
    parser.add_argument("--mnist-pipeline", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--sets", nargs="+", default=None, help="data sets of the reconstruction part"
    )
    parser.add_argument("--ks", type=int, nargs="+", default=list(KS))
    parser.add_argument(
        "--models", nargs="+", default=None, help="models of the estimators part"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {machine_line()}; seeds {args.seeds}", flush=True)
    sets = datasets(args.mnist_rows)
    if "reconstruction" in args.parts:
        chosen = {k: v for k, v in sets.items() if not args.sets or k in args.sets}
        part_reconstruction(chosen, args.seeds, args.ks)
    if "subspace" in args.parts:
        part_subspace(sets, args.seeds)
    if "pipeline" in args.parts:
        X_digits, y_digits = load_digits(return_X_y=True)
        named = {
            "digits": (X_digits, y_digits),
            "digits_unit": (X_digits / 16.0, y_digits),
        }
        if args.mnist_pipeline and "mnist" in sets:
            named["mnist"] = _mnist(args.mnist_rows)
        part_pipeline(named, args.seeds)
    if "estimators" in args.parts and "mnist" in sets:
        part_estimators(*_mnist(args.mnist_rows), args.seeds, names=args.models)


if __name__ == "__main__":
    main()
