"""Training overhead: skae vs a hand-written PyTorch loop, skorch and MLPRegressor.

The same MLP autoencoder (64-128-64-8-64-128-64, ReLU, Adam, MSE) is trained
for the same number of epochs and batch size on ``load_digits`` tiled to about
15k rows (standardized, held-out 20%):

(a) skae ``AutoencoderTransformer``;
(b) a plain PyTorch loop over shuffled tensor slices, with torch's default
    Adam (and, as a second row, with ``fused=True`` Adam, which skae uses);
(c) skorch ``NeuralNetRegressor`` fit on (X, X) with its defaults (DataLoader,
    internal validation split, callbacks), same epochs / batch size / lr;
(d) scikit-learn ``MLPRegressor`` fit on (X, X), same architecture, Adam.

Every method is timed in the same process, interleaved over ``--repeats``
rounds; the table shows medians and ratios to the plain loop.

Run: ``python benchmarks/bench_training.py [--epochs 20] [--repeats 3] [--device auto]``
"""

import argparse
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, print_table, timed  # noqa: E402

from skae import AutoencoderTransformer  # noqa: E402
from skae.utils import resolve_device  # noqa: E402

HIDDEN = (128, 64)
N_COMPONENTS = 8


def load_data(seed=0):
    X, _ = load_digits(return_X_y=True)
    X = np.tile(X, (8, 1))  # 14376 rows
    X = X + np.random.RandomState(seed).normal(scale=0.5, size=X.shape)
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return (
        scaler.transform(X_train).astype(np.float32),
        scaler.transform(X_test).astype(np.float32),
    )


def mlp(n_features):
    sizes = [n_features, *HIDDEN, N_COMPONENTS, *reversed(HIDDEN), n_features]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 and b != N_COMPONENTS:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def mse(predict, X):
    return float(np.mean((predict(X) - X) ** 2))


def run_skae(X_train, X_test, args, device):
    ae = AutoencoderTransformer(
        n_components=N_COMPONENTS,
        hidden_layer_sizes=HIDDEN,
        loss="mse",
        scaling="none",
        alpha=0.0,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        max_iter=args.epochs,
        tol=0.0,
        random_state=0,
        device=device,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, seconds = timed(ae.fit, X_train)
    return seconds, mse(lambda X: ae.inverse_transform(ae.transform(X)), X_test)


def run_plain_loop(X_train, X_test, args, device, fused=None):
    torch.manual_seed(0)

    def train():
        model = mlp(X_train.shape[1]).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, fused=fused)
        X = torch.from_numpy(X_train).to(device)
        for _ in range(args.epochs):
            perm = torch.randperm(len(X), device=device)
            Xp = X[perm]
            for start in range(0, len(X), args.batch_size):
                xb = Xp[start : start + args.batch_size]
                loss = nn.functional.mse_loss(model(xb), xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
        return model

    model, seconds = timed(train)
    model.eval()

    def predict(X):
        with torch.no_grad():
            return model(torch.from_numpy(X).to(device)).cpu().numpy()

    return seconds, mse(predict, X_test)


def run_skorch(X_train, X_test, args, device):
    from skorch import NeuralNetRegressor

    torch.manual_seed(0)
    net = NeuralNetRegressor(
        mlp(X_train.shape[1]),
        optimizer=torch.optim.Adam,
        lr=args.lr,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        iterator_train__shuffle=True,
        device=str(device),
        verbose=0,
    )
    _, seconds = timed(net.fit, X_train, X_train)
    return seconds, mse(net.predict, X_test)


def run_mlpregressor(X_train, X_test, args, device):
    reg = MLPRegressor(
        hidden_layer_sizes=(*HIDDEN, N_COMPONENTS, *reversed(HIDDEN)),
        activation="relu",
        solver="adam",
        alpha=0.0,
        learning_rate_init=args.lr,
        batch_size=args.batch_size,
        max_iter=args.epochs,
        tol=0.0,
        n_iter_no_change=args.epochs + 1,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, seconds = timed(reg.fit, X_train, X_train)
    return seconds, mse(reg.predict, X_test)


METHODS = {
    "skae AutoencoderTransformer": run_skae,
    "plain PyTorch loop": run_plain_loop,
    "plain PyTorch loop, fused Adam": lambda *a: run_plain_loop(*a, fused=True),
    "skorch NeuralNetRegressor (defaults)": run_skorch,
    "sklearn MLPRegressor": run_mlpregressor,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--skip", nargs="*", default=[], help="substrings of methods to skip"
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    X_train, X_test = load_data()
    print(
        f"# {X_train.shape[0]} x {X_train.shape[1]} train rows, {args.epochs} "
        f"epochs, batch {args.batch_size}, device {device}; {machine_line()}"
    )
    methods = {k: v for k, v in METHODS.items() if not any(s in k for s in args.skip)}
    times = {name: [] for name in methods}
    errors = {}
    run_skae(
        X_train[:512], X_test, argparse.Namespace(**{**vars(args), "epochs": 1}), device
    )
    for _ in range(args.repeats):  # interleaved, so drift hits all methods
        for name, fn in methods.items():
            seconds, err = fn(X_train, X_test, args, device)
            times[name].append(seconds)
            errors[name] = err
    base = statistics.median(times["plain PyTorch loop"])
    rows = []
    for name in methods:
        t = statistics.median(times[name])
        rows.append(
            {
                "method": name,
                "fit time (s, median)": t,
                "ratio to plain loop": t / base,
                "held-out MSE": errors[name],
            }
        )
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
