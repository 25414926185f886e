"""Benchmark: Bernoulli VAE on dynamically binarized MNIST, test ELBO and IWAE.

Protocol (Burda et al., 2016; the usual one for published MNIST
log-likelihoods): a 784-500-500-z encoder and mirrored decoder, Bernoulli
likelihood, training images re-binarized at every pass
(``binarize="dynamic"``), the test images binarized once with a fixed seed.
Reports the test ELBO on the full test set and the importance-weighted
estimate of log p(x) (K samples) on the first ``--iwae-rows`` test images.

Usage::

    python benchmarks/bench_vae_mnist.py --epochs 40 --iwae-k 5000 --iwae-rows 500

A long run, annealed, evaluated as it goes and resumable from its checkpoint
(training is a loop of ``partial_fit`` epochs with ``learning_rate`` set
between them)::

    python benchmarks/bench_vae_mnist.py --epochs 500 --lr-decay-epochs 200 \
        --eval-every 25 --checkpoint vae.pkl --iwae-k 0
    python benchmarks/bench_vae_mnist.py --resume vae.pkl --epochs 0 \
        --iwae-k 5000 --iwae-rows 10000 --threads 2

Needs ``mnist/mnist_full_uint8.npz`` under ``$SKAE_DATA_DIR`` (default
``../shared/data``).
"""

import argparse
import pickle
import platform
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from skae._vae import VAE
from skae.datasets import data_available, load_mnist


def learning_rate_at(epoch, args):
    """Constant, then a geometric decay to ``--learning-rate-final`` over the
    last ``--lr-decay-epochs`` epochs (Burda et al. anneal in stages)."""
    start = args.epochs - args.lr_decay_epochs
    if epoch < start or args.lr_decay_epochs == 0:
        return args.learning_rate
    fraction = (epoch - start + 1) / args.lr_decay_epochs
    ratio = args.learning_rate_final / args.learning_rate
    return args.learning_rate * ratio**fraction


def report_curve(vae):
    for epoch in sorted({0, 4, 9, 19, 49, 99, 199, 299, 499, vae.n_iter_ - 1}):
        if epoch < vae.n_iter_:
            print(
                f"epoch {epoch + 1:4d}: train ELBO {vae.elbo_curve_[epoch]:8.2f} "
                f"(rec {vae.reconstruction_curve_[epoch]:8.2f}, "
                f"KL {vae.kl_curve_[epoch]:6.2f})",
                flush=True,
            )


def save_checkpoint(vae, path):
    if path:
        with open(path, "wb") as f:
            pickle.dump(vae, f)


def test_elbo(vae, X_test):
    t0 = time.perf_counter()
    elbo = vae.set_params(n_importance_samples=1).score_samples(X_test)
    return elbo, time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40, help="epochs to train")
    parser.add_argument("--n-components", type=int, default=50)
    parser.add_argument("--hidden", type=int, nargs="+", default=[500, 500])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--learning-rate-final", type=float, default=1e-4)
    parser.add_argument(
        "--lr-decay-epochs",
        type=int,
        default=0,
        help="anneal the step size geometrically over the last n epochs",
    )
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--kl-warmup", type=int, default=0)
    parser.add_argument("--iwae-k", type=int, default=5000, help="0: no IWAE")
    parser.add_argument("--iwae-rows", type=int, default=500)
    parser.add_argument(
        "--n-train",
        type=int,
        default=None,
        help="train on the first n images only (smoke tests)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="print the test ELBO (and write the checkpoint) every n epochs",
    )
    parser.add_argument("--checkpoint", help="pickle the model here while training")
    parser.add_argument("--resume", help="continue from this pickled model")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; on a shared, loaded machine one thread "
        "per process avoids OpenMP oversubscription (measured 20x "
        "faster than 2 threads under load)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if not data_available("mnist"):
        sys.exit("MNIST not found: set SKAE_DATA_DIR (see skae.datasets).")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; args: {vars(args)}",
        flush=True,
    )
    X_train, _, X_test, _ = load_mnist()
    X_train = (X_train[: args.n_train] / 255.0).astype(np.float32)
    rng = np.random.default_rng(12345)
    # The test set is binarized once, with a fixed seed, as in the literature.
    X_test = (rng.random(X_test.shape) < X_test / 255.0).astype(np.float32)

    if args.resume:
        with open(args.resume, "rb") as f:
            vae = pickle.load(f)
        print(f"resumed after {vae.n_iter_} epochs from {args.resume}", flush=True)
    else:
        vae = VAE(
            n_components=args.n_components,
            hidden_layer_sizes=tuple(args.hidden),
            likelihood="bernoulli",
            binarize="dynamic",
            activation=args.activation,
            kl_warmup=args.kl_warmup,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            max_iter=args.epochs,
            tol=0.0,
            n_iter_no_change=args.epochs,
            random_state=args.seed,
            device="cpu",
            verbose=0,
        )

    t_fit = 0.0
    done = getattr(vae, "n_iter_", 0)
    if args.eval_every or args.lr_decay_epochs or args.resume:
        # Epoch by epoch, so the step size can follow the schedule and the
        # run can be watched and resumed.
        args.epochs += done
        for epoch in range(done, args.epochs):
            vae.set_params(learning_rate=learning_rate_at(epoch, args))
            t0 = time.perf_counter()
            vae.partial_fit(X_train)
            t_fit += time.perf_counter() - t0
            if args.eval_every and (epoch + 1) % args.eval_every == 0:
                elbo, _ = test_elbo(vae, X_test)
                print(
                    f"epoch {epoch + 1:4d}: lr {vae.learning_rate:.2e}, train ELBO "
                    f"{vae.elbo_curve_[-1]:8.2f}, test ELBO {elbo.mean():8.2f}, "
                    f"{t_fit:.0f} s",
                    flush=True,
                )
                save_checkpoint(vae, args.checkpoint)
    else:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            vae.fit(X_train)
        t_fit = time.perf_counter() - t0
    trained = vae.n_iter_ - done
    if trained and (not args.eval_every or vae.n_iter_ % args.eval_every):
        save_checkpoint(vae, args.checkpoint)  # not written by the loop
    report_curve(vae)
    if trained:
        print(
            f"fit: {trained} epochs in {t_fit:.0f} s ({t_fit / trained:.1f} s/epoch)",
            flush=True,
        )

    elbo, t_elbo = test_elbo(vae, X_test)
    print(
        f"test ELBO (10000 images): {elbo.mean():.2f} nats "
        f"(+- {elbo.std() / np.sqrt(len(elbo)):.2f} s.e.) in {t_elbo:.0f} s",
        flush=True,
    )
    t_iwae = 0.0
    if args.iwae_k:
        rows = X_test[: args.iwae_rows]
        t0 = time.perf_counter()
        vae.set_params(n_importance_samples=args.iwae_k)
        # Chunks only to report progress: a row's score does not depend on
        # the other rows (its draws are seeded by the row itself).
        parts = []
        for start in range(0, len(rows), 1000):
            parts.append(vae.score_samples(rows[start : start + 1000]))
            done_rows = start + len(parts[-1])
            print(
                f"  IWAE: {done_rows} rows, running mean "
                f"{np.concatenate(parts).mean():.2f}, "
                f"{time.perf_counter() - t0:.0f} s",
                flush=True,
            )
        iwae = np.concatenate(parts)
        t_iwae = time.perf_counter() - t0
        print(
            f"test ELBO on the same {len(rows)} images: "
            f"{elbo[: len(rows)].mean():.2f} nats",
            flush=True,
        )
        print(
            f"test IWAE K={args.iwae_k} on {len(rows)} images: {iwae.mean():.2f} "
            f"nats (+- {iwae.std() / np.sqrt(len(iwae)):.2f} s.e.) in {t_iwae:.0f} s",
            flush=True,
        )
    print(f"total wall time: {t_fit + t_elbo + t_iwae:.0f} s", flush=True)


if __name__ == "__main__":
    main()
