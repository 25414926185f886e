"""Fit time with skae's subnormal flushing as shipped and with it disabled.

skae treats subnormal floats (below about 1e-38 in float32) as zero inside its
own fits and inference (``skae/utils/_float_mode.py``): weights that only the
weight penalty moves, such as those of MNIST's always-blank border pixels,
decay into that range, where CPU arithmetic takes a slow path. This script
fits the same estimator, seed by seed, with the flushing as shipped and with
it patched into a no-op (from this script only: the library is unchanged),
side by side in one run on one torch thread. Rows:

- ``AutoencoderTransformer`` defaults (only ``n_components`` and
  ``random_state`` set) on ``load_digits() / 16`` and on an MNIST subset
  (pixels / 255; skipped with a note when ``$SKAE_DATA_DIR`` has no MNIST);
- on the MNIST subset, ``loss="bce", init="random"`` too: the default for
  data in [0, 1] until ``loss="auto"`` came to mean the MSE with a PCA start.

Columns: fit seconds with and without flushing (mean ± sd over the seeds),
their ratio (without / with, per seed, then mean ± sd), epochs run, the
number of subnormal parameters left in the unflushed fit's network, the
largest absolute difference between the two fits' ``transform`` on 100
training rows (beside the largest code, for scale), and both fits'
reconstruction MSE on all the rows (in X's units, mean over the seeds).
Flushing changes values only below the smallest normal float, so the
codes agree exactly unless training amplifies such a value: Adam moves a
weight by about ``lr * g / (|g| + eps)``, which multiplies a tiny weight on
a steep enough quadratic (e.g. an always-blank pixel's row of the PCA-started
decoder) by about ``lr * curvature / eps`` per step, so a subnormal kept
grows to Adam's step size where a flushed one stays zero, and the two
trajectories part. The MSE columns then show whether the two models are
equally good.

Run: ``python benchmarks/bench_subnormals.py [--seeds 0 1 2]
[--mnist-rows 3000] [--n-components 8] [--quick]``
"""

import argparse
import contextlib
import statistics
import sys
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, print_table  # noqa: E402

from skae import AutoencoderTransformer  # noqa: E402
from skae.datasets import data_available, get_data_dir, load_mnist  # noqa: E402
from skae.utils._float_mode import flushing_subnormals  # noqa: E402

# Every module that imports the context manager by name (grep
# "import flush_subnormals" under skae/): patching its binding in each turns
# the flushing off wherever skae would switch it on.
_FLUSH_SITES = ("skae._base", "skae._classifier", "skae._graph")

_DEFAULTS = "defaults (MSE from PCA)"
# What loss="auto" meant for data in [0, 1] before it kept the MSE's PCA start.
_OLD_DEFAULT = 'loss="bce", init="random" (old default)'

# Rows compared by transform: enough to see a difference, cheap to compute.
_CHECK_ROWS = 100


@contextlib.contextmanager
def _flushing(enabled):
    """skae as shipped (``enabled``) or with its flushing made a no-op."""
    if enabled:
        yield
        return
    with contextlib.ExitStack() as stack:
        for site in _FLUSH_SITES:
            stack.enter_context(
                mock.patch(f"{site}.flush_subnormals", contextlib.nullcontext)
            )
        yield


def _check_patch():
    """Fail loudly if skae's flushing is not on as shipped and off when patched."""
    import skae._base

    for enabled in (True, False):
        with _flushing(enabled), skae._base.flush_subnormals():
            if flushing_subnormals() != enabled:
                raise RuntimeError(
                    f"flushing should be {enabled} here; the patch broke"
                )


def _subnormal_count(module):
    tiny = torch.finfo(torch.float32).tiny
    return sum(int(((p.abs() < tiny) & (p != 0)).sum()) for p in module.parameters())


def _fit(X, params, seed, flush, n_components):
    est = AutoencoderTransformer(n_components=n_components, random_state=seed, **params)
    with _flushing(flush), warnings.catch_warnings():
        # A ConvergenceWarning at max_iter is expected and not the point here.
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        est.fit(X)
        seconds = time.perf_counter() - start
        codes = est.transform(X[:_CHECK_ROWS])
        mse = float(np.mean((est.inverse_transform(est.transform(X)) - X) ** 2))
    return est, seconds, codes, mse


def _mean_sd(values, digits=3):
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}g} ± {sd:.2g}"


def cases(mnist_rows):
    digits = load_digits().data / 16.0
    rows = [("digits / 16", digits, _DEFAULTS, {})]
    if data_available("mnist"):
        X = load_mnist()[0]
        order = np.random.RandomState(0).permutation(len(X))[:mnist_rows]
        X = X[order] / 255.0
        name = f"MNIST {mnist_rows} / 255"
        rows.append((name, X, _DEFAULTS, {}))
        rows.append((name, X, _OLD_DEFAULT, {"loss": "bce", "init": "random"}))
    else:
        print(
            f"# MNIST not found under {get_data_dir()} ($SKAE_DATA_DIR): "
            "MNIST rows skipped",
            flush=True,
        )
    return rows


def run_case(X, params, seeds, n_components):
    with_s, without_s, ratios, epochs, subnormals = [], [], [], [], []
    diffs, scales, mse_with, mse_without = [], [], [], []
    for seed in seeds:
        # Both modes for one seed back to back, so that load on a shared
        # machine hits the pair alike.
        flushed, t_with, codes_with, e_with = _fit(X, params, seed, True, n_components)
        plain, t_without, codes_without, e_without = _fit(
            X, params, seed, False, n_components
        )
        with_s.append(t_with)
        without_s.append(t_without)
        ratios.append(t_without / t_with)
        epochs.append(f"{flushed.n_iter_}/{plain.n_iter_}")
        subnormals.append(_subnormal_count(plain.module_))
        diffs.append(float(np.max(np.abs(codes_with - codes_without))))
        scales.append(float(np.max(np.abs(codes_with))))
        mse_with.append(e_with)
        mse_without.append(e_without)
    return {
        "fit s, flushing": _mean_sd(with_s),
        "fit s, no flushing": _mean_sd(without_s),
        "ratio": _mean_sd(ratios),
        "epochs (with/without)": ", ".join(epochs),
        "subnormal params": ", ".join(str(n) for n in subnormals),
        "max abs Δ transform (max abs code)": f"{max(diffs):.2g} ({max(scales):.2g})",
        "MSE, flushing": _mean_sd(mse_with, 4),
        "MSE, no flushing": _mean_sd(mse_without, 4),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--mnist-rows", type=int, default=3000)
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: seeds 0 1, 300 MNIST rows, max_iter=3",
    )
    args = parser.parse_args()
    extra = {}
    if args.quick:
        args.seeds, args.mnist_rows, extra = [0, 1], 300, {"max_iter": 3}
    # Flushing is per thread and skae sets it only on the calling thread:
    # one thread makes the whole computation follow it.
    torch.set_num_threads(1)
    torch.set_flush_denormal(False)
    _check_patch()
    print(
        f"# {machine_line()}; seeds {args.seeds}; n_components "
        f"{args.n_components}{'; quick (max_iter=3)' if args.quick else ''}",
        flush=True,
    )
    # The first fit in a process pays for torch's lazy set-up: not timed.
    _fit(load_digits().data[:50], {"max_iter": 1}, 0, True, 2)
    table = []
    for data, X, label, params in cases(args.mnist_rows):
        row = run_case(X, {**params, **extra}, args.seeds, args.n_components)
        table.append({"data": data, "model": label, **row})
        print(f"# done: {data}, {label}: {row}", flush=True)
    print()
    columns = [
        "data",
        "model",
        "fit s, flushing",
        "fit s, no flushing",
        "ratio",
        "epochs (with/without)",
        "subnormal params",
        "max abs Δ transform (max abs code)",
        "MSE, flushing",
        "MSE, no flushing",
    ]
    print_table(table, columns)


if __name__ == "__main__":
    main()
