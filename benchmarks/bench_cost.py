"""Cost curves: fit time and peak memory of the default AutoencoderTransformer
against the number of rows and of features, beside PCA and MLPRegressor.

Run::

    SKAE_DATA_DIR=../shared/data python benchmarks/bench_cost.py \\
        [--quick] [--threads 1] [--seeds 0] [--plot benchmarks/cost.png]

Models (k = ``--components``, 32 by default: MNIST's customary code size,
near the 30 components of the data README's PCA anchor, and small next to
skae's default hidden widths (128, 64), so the network has its default
shape):

- ``AutoencoderTransformer(n_components=k, random_state=seed)``, defaults
  otherwise (on pixels in [0, 1] the defaults resolve to the BCE loss,
  min-max scaling and a random start; 10% of the rows held out for early
  stopping);
- ``PCA(n_components=k)`` (one pass; scikit-learn picks the solver);
- ``MLPRegressor(hidden_layer_sizes=(128, 64, k, 64, 128))`` fitted on
  X -> X: an autoencoder with skae's default widths, scikit-learn defaults
  otherwise (Adam, batches of 200, squared loss, no held-out rows).

Three tables:

1. **Rows** (784 features): ``fit`` with a fixed number of epochs, so that
   the cost per epoch is comparable from 1,000 to 1,000,000 rows. After the
   measured first fit (see below; "first fit s", ``max_iter=E1``) every
   network point fits again with ``max_iter=E1`` and then ``max_iter=E2``
   epochs (``--epochs``, default 1 and 2) and reports the time per epoch as
   ``(t(E2) - t(E1)) / (E2 - E1)``: what one more epoch costs, without the
   one-off work (scaling statistics, copies, validation split, and a
   process's first large fit, which measured about 1 s slower at 30,000
   rows); "fit s" is ``t(E2)`` (PCA: a second, warm fit). The growth is the
   slope of a least-squares line through log(value) against log(rows), over
   the points with at least ``--slope-min-rows`` rows (below them, fixed
   costs dominate).
2. **Features** (``--feature-rows`` rows, synthetic): the same
   measurements against the number of features.
3. **Full default fits** (``--full-rows``): ``max_iter`` left at its
   default (200) with each model's own stopping rule; the number of epochs
   it ran is data-dependent and reported. A full default fit beyond these
   row counts costs about ``epochs x s/epoch`` of table 1.

Data (float32, 784 features; nothing is downloaded):

- ``mnist``: MNIST's 60,000 training then 10,000 test images
  (``skae.datasets.load_mnist``), divided by 255, up to 70,000 rows;
- ``mnist-like`` (beyond 70,000 rows): each row
  is an MNIST image chosen at random, shifted by -2..2 pixels along each
  axis (``np.roll``; MNIST's borders are blank), plus Gaussian noise of
  standard deviation 0.05, clipped to [0, 1], generated in the worker from
  the seed in chunks of 10,000 rows;
- ``low-rank`` (features table; and the rows table when the MNIST file is
  missing): ``sigmoid(Z @ W + 0.1 * noise)`` with ``Z`` of shape
  (rows, 16) and ``W`` of shape (16, features), standard Gaussian.

Every point runs in its own worker (a fresh interpreter with
``OMP_NUM_THREADS`` etc. set to ``--threads`` and
``torch.set_num_threads(--threads)``). The worker imports everything and
builds the data, then resets its peak resident set size (writing ``5`` to
``/proc/self/clear_refs``; where that is refused, the peak includes the data
creation and the table says so) and records its RSS: "base MB" (interpreter,
libraries and data; after a fit on 200 rows, which pays for lazy imports).
"peak MB" is ``getrusage(RUSAGE_SELF).ru_maxrss`` after the first fit on
all rows, "fit extra MB" the difference: the model's own peak working
memory, and "extra / data" that divided by the size of X. The
``--dtype-rows`` points repeat one row count with float64 input.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, print_table  # noqa: E402

MODELS = ("skae", "MLPRegressor", "PCA")
NETWORKS = ("skae", "MLPRegressor")
MNIST_ROWS = 70_000
CHUNK = 10_000
MB = 2**20


# ------------------------------------------------------------------- worker
def _mnist_images():
    from skae.datasets import load_mnist

    X_train, _, X_test, _ = load_mnist()
    return np.concatenate([X_train, X_test])  # uint8, 55 MB


def _mnist_rows(n, images, dtype):
    X = np.empty((n, images.shape[1]), dtype=dtype)
    for start in range(0, n, CHUNK):  # no full-size float64 temporary
        stop = min(start + CHUNK, n)
        X[start:stop] = images[start:stop] / 255.0
    return X


def _mnist_like_rows(n, images, dtype, rng):
    """MNIST images at random, shifted by up to 2 pixels, plus noise."""
    X = np.empty((n, images.shape[1]), dtype=dtype)
    side = int(round(np.sqrt(images.shape[1])))
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        chunk = images[rng.randint(len(images), size=m)].reshape(m, side, side)
        shifts = rng.randint(-2, 3, size=(m, 2))
        out = np.empty((m, side, side))
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                out[sel] = np.roll(chunk[sel], (dy, dx), axis=(1, 2))
        out /= 255.0
        out += 0.05 * rng.standard_normal(out.shape)
        X[start : start + m] = np.clip(out, 0.0, 1.0).reshape(m, -1)
    return X


def _low_rank_rows(n, d, dtype, rng):
    W = rng.standard_normal((16, d))
    X = np.empty((n, d), dtype=dtype)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        logits = rng.standard_normal((m, 16)) @ W + 0.1 * rng.standard_normal((m, d))
        X[start : start + m] = 1.0 / (1.0 + np.exp(-logits))
    return X


def make_data(cfg):
    """The worker's X, and the name of its source."""
    rng = np.random.RandomState(cfg["seed"])
    dtype = np.dtype(cfg["dtype"])
    n, d = cfg["rows"], cfg["features"]
    if cfg["data"] == "low-rank":
        return _low_rank_rows(n, d, dtype, rng), "low-rank"
    images = _mnist_images()
    if n <= MNIST_ROWS:
        return _mnist_rows(n, images, dtype), "mnist"
    return _mnist_like_rows(n, images, dtype, rng), "mnist-like"


def make_model(name, cfg, max_iter):
    k, seed = cfg["components"], cfg["seed"]
    if name == "skae":
        from skae import AutoencoderTransformer

        params = {} if max_iter is None else {"max_iter": max_iter}
        return AutoencoderTransformer(n_components=k, random_state=seed, **params)
    if name == "MLPRegressor":
        from sklearn.neural_network import MLPRegressor

        params = {} if max_iter is None else {"max_iter": max_iter}
        return MLPRegressor(
            hidden_layer_sizes=(128, 64, k, 64, 128), random_state=seed, **params
        )
    from sklearn.decomposition import PCA

    return PCA(n_components=k, random_state=seed)


def _fit(name, model, X):
    start = time.perf_counter()
    if name == "MLPRegressor":
        model.fit(X, X)  # as an autoencoder
    else:
        model.fit(X)
    return time.perf_counter() - start


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def _reset_peak():
    """Reset this process's peak RSS (Linux >= 4.0); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(cfg):
    import gc
    import resource
    import warnings

    import torch

    torch.set_num_threads(cfg["threads"])
    warnings.simplefilter("ignore")  # ConvergenceWarning of the short fits
    import sklearn.decomposition  # noqa: F401
    import sklearn.neural_network  # noqa: F401

    import skae  # noqa: F401

    X, source = make_data(cfg)
    name, epochs = cfg["model"], cfg["epochs"]
    # Lazy imports and torch's first calls: not the model's cost.
    _fit(name, make_model(name, cfg, 1), X[:200])
    gc.collect()
    reset = _reset_peak()
    base = _rss_mb()
    # Memory: the first fit on all rows, as in a fresh session.
    model = make_model(name, cfg, None if cfg["full"] else epochs[0])
    first = _fit(name, model, X)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "data": source,
        "data MB": X.nbytes / MB,
        "base MB": base,
        "peak MB": peak,
        "peak reset": reset,
        "first fit s": first,
        "fit s": first,
        "epochs": getattr(model, "n_iter_", 1),
    }
    if cfg["full"]:
        out["s/epoch"] = first / max(model.n_iter_, 1)
    else:
        # Time: fits after the first one, which also pays one-off costs of a
        # process's first large fit (about 1 s at 30,000 rows); the
        # difference of two fits is the marginal cost of an epoch.
        times = {}
        for n_epochs in sorted(set(epochs)) if name in NETWORKS else [None]:
            del model
            gc.collect()
            model = make_model(name, cfg, n_epochs)
            times[n_epochs] = _fit(name, model, X)
        out["fit s"] = times[max(times, key=lambda e: e or 0)]
        out["epochs"] = getattr(model, "n_iter_", 1)
        if name in NETWORKS:
            out["s/epoch"] = (times[epochs[1]] - times[epochs[0]]) / (
                epochs[1] - epochs[0]
            )
    if name == "skae":
        out["note"] = f"loss={model.loss_}, scaling={model.scaling_}"
    print(json.dumps(out))


# ------------------------------------------------------------------- parent
def run_point(cfg, threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(cfg)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        return {"error": f"rc={proc.returncode}: {' '.join(tail)}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def available_mb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def needed_mb(model, rows, features, itemsize):
    """A guess at a point's peak: X, plus skae's float64 scaling temporaries
    (two of X's size in float64), plus the interpreter and the libraries."""
    data = rows * features * itemsize / MB
    factor = {"skae": 1 + 2 * 8 / itemsize, "MLPRegressor": 2, "PCA": 2}[model]
    return data * factor + 1500


def _mean_spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{np.mean(values):.4g} ± {np.std(values):.2g}"


def sweep(name, points, args, log):
    """Run every (model, rows, features, dtype) point for every seed."""
    rows = []
    for point in points:
        results = []
        for seed in args.seeds:
            cfg = dict(
                point,
                seed=seed,
                threads=args.threads,
                components=args.components,
                epochs=args.epochs,
            )
            itemsize = np.dtype(cfg["dtype"]).itemsize
            need = needed_mb(cfg["model"], cfg["rows"], cfg["features"], itemsize)
            if need > available_mb():
                results.append(
                    {
                        "error": f"skipped: needs ~{need:.0f} MB, "
                        f"{available_mb():.0f} MB available"
                    }
                )
                break
            start = time.perf_counter()
            result = run_point(cfg, args.threads)
            result["wall s"] = time.perf_counter() - start
            results.append(result)
            print(
                f"# {name}: {point['model']} rows={point['rows']} "
                f"features={point['features']} {point['dtype']} seed={seed}: "
                + json.dumps(result),
                file=sys.stderr,
                flush=True,
            )
        log.append({"sweep": name, **point, "results": results})
        ok = [r for r in results if "error" not in r]
        row = {
            "model": point["model"],
            "rows": point["rows"],
            "features": point["features"],
            "dtype": point["dtype"],
        }
        if not ok:
            row["note"] = results[0]["error"]
            rows.append(row)
            continue

        def col(key, results=ok):
            return [r.get(key) for r in results]

        row.update(
            {
                "data": ok[0]["data"],
                "data MB": round(ok[0]["data MB"], 1),
                "epochs": _mean_spread(col("epochs")),
                "first fit s": _mean_spread(col("first fit s")),
                "fit s": _mean_spread(col("fit s")),
                "s/epoch": _mean_spread(col("s/epoch")),
                "base MB": _mean_spread(col("base MB")),
                "peak MB": _mean_spread(col("peak MB")),
                "fit extra MB": _mean_spread([r["peak MB"] - r["base MB"] for r in ok]),
                "extra / data": _mean_spread(
                    [(r["peak MB"] - r["base MB"]) / r["data MB"] for r in ok]
                ),
                "note": "; ".join(
                    filter(
                        None,
                        [ok[0].get("note")]
                        + ([] if ok[0]["peak reset"] else ["peak incl. data"]),
                    )
                ),
            }
        )
        rows.append(row)
    return rows


def growth(log, sweep_name, x_key, min_x):
    """Slope of log(value) on log(x) per model and seed (see the docstring)."""
    out = []
    for model in MODELS:
        entries = [
            e
            for e in log
            if e["sweep"] == sweep_name
            and e["model"] == model
            and e["dtype"] == "float32"
            and e[x_key] >= min_x
        ]
        for key in ("s/epoch", "fit s", "fit extra MB"):
            if key == "s/epoch" and model == "PCA":
                continue
            slopes = []
            for i in range(len(entries[0]["results"]) if entries else 0):
                xs, ys = [], []
                for e in entries:
                    if i >= len(e["results"]) or "error" in e["results"][i]:
                        continue
                    r = e["results"][i]
                    value = (
                        r["peak MB"] - r["base MB"]
                        if key == "fit extra MB"
                        else r.get(key)
                    )
                    if value is not None and value > 0:
                        xs.append(e[x_key])
                        ys.append(value)
                if len(xs) >= 2:
                    slopes.append(np.polyfit(np.log(xs), np.log(ys), 1)[0])
            if slopes:
                out.append(
                    {
                        "model": model,
                        "quantity": key,
                        "against": x_key,
                        "slope": _mean_spread(slopes),
                        "points": len(entries),
                        "from": min_x,
                    }
                )
    return out


def plot(log, path, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    colors = {"skae": "C0", "MLPRegressor": "C1", "PCA": "C2"}

    def series(sweep_name, model, x_key, value):
        xs, ys = [], []
        for e in log:
            if e["sweep"] != sweep_name or e["model"] != model:
                continue
            if e["dtype"] != "float32":
                continue
            vals = [value(r) for r in e["results"] if "error" not in r]
            vals = [v for v in vals if v is not None and v > 0]
            if vals:
                xs.append(e[x_key])
                ys.append(np.mean(vals))
        return xs, ys

    def time_value(r):
        return r.get("s/epoch", r["fit s"])

    def extra(r):
        return r["peak MB"] - r["base MB"]

    for col, (sweep_name, x_key, label) in enumerate(
        [
            ("rows", "rows", "rows (784 features)"),
            ("features", "features", f"features ({args.feature_rows} rows)"),
        ]
    ):
        ax_t, ax_m = axes[0, col], axes[1, col]
        for model in MODELS:
            what = "fit" if model == "PCA" else "one epoch"
            xs, ys = series(sweep_name, model, x_key, time_value)
            ax_t.loglog(xs, ys, "o-", color=colors[model], label=f"{model}: {what}")
            xs, ys = series(sweep_name, model, x_key, extra)
            ax_m.loglog(xs, ys, "o-", color=colors[model], label=model)
            if sweep_name == "rows" and model in NETWORKS:
                xs, ys = series("full", model, "rows", lambda r: r["fit s"])
                if xs:
                    ax_t.loglog(
                        xs,
                        ys,
                        "s--",
                        color=colors[model],
                        label=f"{model}: full default fit",
                    )
        if sweep_name == "rows":
            xs, ys = series("rows", "skae", "rows", lambda r: r["data MB"])
            ax_m.loglog(xs, ys, ":", color="gray", label="size of X (float32)")
        ax_t.set(xlabel=label, ylabel="seconds", title=f"Fit time against {x_key}")
        ax_m.set(
            xlabel=label,
            ylabel="peak RSS above base (MB)",
            title=f"Peak memory of fit against {x_key}",
        )
        for ax in (ax_t, ax_m):
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(
        f"Cost of the default AutoencoderTransformer (k={args.components}), "
        f"{args.threads} thread(s)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"\nFigure: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1-2 min smoke run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--components", type=int, default=32)
    parser.add_argument("--epochs", type=int, nargs=2, default=[1, 2])
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[1000, 10_000, 30_000, 70_000, 100_000, 300_000, 1_000_000],
    )
    parser.add_argument(
        "--features", type=int, nargs="+", default=[64, 256, 784, 2048, 4096]
    )
    parser.add_argument("--feature-rows", type=int, default=20_000)
    parser.add_argument(
        "--full-rows", type=int, nargs="*", default=[1000, 10_000, 60_000]
    )
    parser.add_argument("--dtype-rows", type=int, nargs="*", default=[100_000])
    parser.add_argument("--slope-min-rows", type=int, default=10_000)
    parser.add_argument("--slope-min-features", type=int, default=256)
    parser.add_argument("--plot", help="write a PNG figure to this path")
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    if args.quick:
        args.rows = [1000, 20_000]
        args.features = [64, 2048]
        args.feature_rows = 5000
        args.full_rows = [1000]
        args.dtype_rows = []
        args.slope_min_rows = 1000
        args.slope_min_features = 64

    import torch

    from skae.datasets import data_available

    torch.set_num_threads(args.threads)
    row_data = "mnist" if data_available("mnist") else "low-rank"
    started = time.perf_counter()
    print(f"# {machine_line()}")
    print(
        f"# threads: OMP/MKL/OPENBLAS_NUM_THREADS={args.threads} and "
        f"torch.set_num_threads({args.threads}) in every worker; seeds {args.seeds}; "
        f"k={args.components}; epochs E1={args.epochs[0]}, E2={args.epochs[1]}"
    )
    if row_data != "mnist":
        print("# MNIST not found (SKAE_DATA_DIR): rows table uses low-rank data")

    def point(model, rows, features, data, dtype="float32", full=False):
        return dict(
            model=model, rows=rows, features=features, data=data, dtype=dtype, full=full
        )

    log = []
    row_points = [point(m, n, 784, row_data) for n in args.rows for m in MODELS]
    row_points += [
        point(m, n, 784, row_data, "float64") for n in args.dtype_rows for m in NETWORKS
    ]
    tables = {"rows": sweep("rows", row_points, args, log)}
    tables["features"] = sweep(
        "features",
        [
            point(m, args.feature_rows, d, "low-rank")
            for d in args.features
            for m in MODELS
        ],
        args,
        log,
    )
    tables["full"] = sweep(
        "full",
        [
            point(m, n, 784, row_data, full=True)
            for n in args.full_rows
            for m in NETWORKS
        ],
        args,
        log,
    )

    titles = {
        "rows": f"Rows, 784 features, {args.epochs[1]} epochs (s/epoch: marginal)",
        "features": f"Features, {args.feature_rows} rows (low-rank data)",
        "full": "Full default fits (max_iter=200, each model's stopping rule)",
    }
    for name, rows in tables.items():
        print(f"\n**{titles[name]}**\n")
        columns = list(dict.fromkeys(c for r in rows for c in r))
        print_table(rows, columns)

    print(
        f"\n**Growth** (least-squares slope of log value on log x, float32 points "
        f"from {args.slope_min_rows} rows / {args.slope_min_features} features)\n"
    )
    slopes = growth(log, "rows", "rows", args.slope_min_rows)
    slopes += growth(log, "features", "features", args.slope_min_features)
    columns = list(dict.fromkeys(c for r in slopes for c in r))
    print_table(slopes, columns)
    print(f"\n# total wall time {time.perf_counter() - started:.0f} s")
    if args.plot:
        plot(log, args.plot, args)


if __name__ == "__main__":
    main()
