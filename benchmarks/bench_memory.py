"""Peak extra memory of skae's inference and streaming paths.

Two tables.

``--table batched`` (the original one): ``transform`` / ``score_samples`` on
1,000,000 x 784 rows. The input (float32, ~3.1 GB) is allocated first; a
thread samples the process RSS every 2 ms while each call runs, and the table
reports the peak above the pre-call level, next to the size of the output and
of one inference batch of activations. For contrast, "one full batch" pushes
all rows through the same torch module at once, as a naive implementation
would.

``--table paths``: the peak extra *anonymous* memory of each streaming path on
a read-only ``np.memmap`` at several row counts, to show that it does not grow
with the number of rows. Each measurement runs in a fresh worker process: the
worker opens the memmap, fits a model on 2,000 in-memory rows, runs the call
once on 1,000 rows (so that lazy initialisation is not counted), then waits;
the parent reads the worker's ``RssAnon`` and ``RssFile`` from
``/proc/<pid>/status`` every millisecond while the call runs. Sampling from
another process sees the peak even while the worker holds the GIL. Pages of
the memmap are file-backed (``RssFile``) and are not extra memory; anonymous
memory is. The workers run with ``MALLOC_MMAP_THRESHOLD_`` fixed at 128 KiB,
so that large buffers are returned to the system when freed and the peak
reflects what the code holds, not what the allocator keeps cached.

Run: ``python benchmarks/bench_memory.py [--table {all,batched,paths}]
[--rows 1000000] [--path-rows 25000 50000 100000] [--paths NAME ...]
[--threads 1]``; ``--table paths`` alone needs about 1 GB (the memmap file
is written to a temporary folder and removed afterwards).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table  # noqa: E402

import skae._base  # noqa: E402
from skae import AutoencoderTransformer  # noqa: E402

PAGE = 4096
MB = 1 / 2**20


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def peak_extra(fn):
    """Run ``fn``; return (result, peak RSS above the starting RSS, seconds)."""
    start = rss_bytes()
    peak = [start]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.002)

    thread = threading.Thread(target=sample)
    thread.start()
    t0 = time.perf_counter()
    try:
        result = fn()
    finally:
        done.set()
        thread.join()
    seconds = time.perf_counter() - t0
    return result, max(peak[0], rss_bytes()) - start, seconds


def batched_inference_table(args):
    """The original table: batched inference against one full batch."""
    rng = np.random.RandomState(0)
    ae = AutoencoderTransformer(
        n_components=32, hidden_layer_sizes=(256, 128), max_iter=1, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae.fit(rng.rand(2000, args.features).astype(np.float32))
    X = np.empty((args.rows, args.features), dtype=np.float32)
    for start in range(0, args.rows, 100_000):  # fill without a float64 temporary
        X[start : start + 100_000] = rng.rand(
            min(100_000, args.rows - start), args.features
        )
    widths = [args.features, 256, 128, 32, 128, 256, args.features]
    batch_activations = skae._base.INFERENCE_BATCH_SIZE * max(widths) * 4 * 2
    rows = []
    for name, fn, out_bytes in [
        ("skae transform", lambda: ae.transform(X), args.rows * 32 * 4),
        ("skae score_samples", lambda: ae.score_samples(X), args.rows * 4),
    ]:
        _, extra, seconds = peak_extra(fn)
        rows.append(
            {
                "call": name,
                "rows": args.rows,
                "peak extra MB": extra * MB,
                "output MB": out_bytes * MB,
                "extra beyond output MB": (extra - out_bytes) * MB,
                "seconds": seconds,
            }
        )

    def one_full_batch():
        with torch.inference_mode():
            x = (
                torch.from_numpy(X) - torch.from_numpy(ae.offset_).float()
            ) / torch.from_numpy(ae.scale_).float()
            return ae.module_.encode(x).numpy()

    _, extra, seconds = peak_extra(one_full_batch)
    rows.append(
        {
            "call": "naive: one full batch",
            "rows": args.rows,
            "peak extra MB": extra * MB,
            "output MB": args.rows * 32 * 4 * MB,
            "extra beyond output MB": (extra - args.rows * 32 * 4) * MB,
            "seconds": seconds,
        }
    )
    print(
        f"# input {X.nbytes * MB:.0f} MB float32; inference batch "
        f"{skae._base.INFERENCE_BATCH_SIZE} rows (~{batch_activations * MB:.0f} MB of "
        "activations at the widest layer, input and output of a layer)"
    )
    print_table(rows, list(rows[0]))


# ------------------------------------------------------------ streaming paths
#: Path name -> what it runs (the table's "path" column).
PATHS = {
    "fit-pca": "AutoencoderTransformer.fit, defaults (init='pca', early_stopping)",
    "fit-random": "AutoencoderTransformer.fit, init='random', no early stopping",
    "fit-random-es": "AutoencoderTransformer.fit, init='random', early_stopping",
    "statistics": "scaling statistics (chunked_statistics)",
    "vae-score": "VAE.score_samples",
    "dl-orthogonal-score": "DictionaryLearner(code='orthogonal').score_samples",
    "dl-sparse-transform": "DictionaryLearner(code='sparse').transform",
}


def _autoencoder(name):
    """The autoencoder of a ``fit-*`` path: 3 epochs, every one of them run."""
    params = dict(
        n_components=32,
        hidden_layer_sizes=(256, 128),
        max_iter=3,
        batch_size=256,
        n_iter_no_change=100,
        random_state=0,
    )
    if name != "fit-pca":
        params.update(init="random", early_stopping=name.endswith("-es"))
    return AutoencoderTransformer(**params)


def _prepare(name, sample):
    """The call ``fn(X)`` a path stands for, with its model fitted on ``sample``."""
    from skae import VAE, DictionaryLearner

    if name == "statistics":
        from skae._sources import chunked_statistics

        return chunked_statistics
    if name.startswith("fit-"):
        return lambda X: _autoencoder(name).fit(X)
    if name == "vae-score":
        vae = VAE(
            n_components=16, hidden_layer_sizes=(128,), max_iter=2, random_state=0
        )
        return vae.fit(sample).score_samples
    code, method = {
        "dl-orthogonal-score": ("orthogonal", "score_samples"),
        "dl-sparse-transform": ("sparse", "transform"),
    }[name]
    dl = DictionaryLearner(n_components=16, code=code, max_iter=20, random_state=0)
    return getattr(dl.fit(sample), method)


def _output_bytes(result):
    return result.nbytes if isinstance(result, np.ndarray) else 0


def worker(path, n_rows, n_features, name, threads):
    """Run one path in this process, paced by the parent (see the module doc)."""
    torch.set_num_threads(threads)
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, n_features))
    sample = np.array(X[:2000])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn = _prepare(name, sample)
        fn(X[:1000])  # lazy initialisation (kernels, imports) is not counted
        print("ready", flush=True)
        sys.stdin.readline()
        t0 = time.perf_counter()
        result = fn(X)
        seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "output": _output_bytes(result)}), flush=True)


def _status(pid):
    """``(RssAnon, RssFile)`` of process ``pid``, in bytes."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                values[key] = int(rest.split()[0]) * 1024
    return values["RssAnon"], values["RssFile"]


def measure(path, n_rows, n_features, name, threads):
    """Peak extra anonymous (and file-backed) memory of one path, in a worker."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, __file__, "--worker", path, str(n_rows), str(n_features)]
    proc = subprocess.Popen(
        [*cmd, name, str(threads)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"worker for {name!r} failed")
        anon0, file0 = _status(proc.pid)
        peak_anon, peak_file = anon0, file0
        lines = []
        reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()))
        reader.start()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        while reader.is_alive():
            anon, file = _status(proc.pid)
            peak_anon, peak_file = max(peak_anon, anon), max(peak_file, file)
            time.sleep(0.001)
        result = json.loads(lines[0])
    finally:
        proc.wait()
    return {
        "path": PATHS[name],
        "rows": n_rows,
        "input MB": n_rows * n_features * 4 * MB,
        "peak extra anon MB": (peak_anon - anon0) * MB,
        "output MB": result["output"] * MB,
        "file pages MB": (peak_file - file0) * MB,
        "seconds": result["seconds"],
    }


def paths_table(args):
    """Peak extra anonymous memory per streaming path and row count."""
    n_max = max(args.path_rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.f32")
        X = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_max, args.features))
        rng = np.random.RandomState(0)
        for start in range(0, n_max, 10_000):  # pixel-like units, not [0, 1]
            stop = min(start + 10_000, n_max)
            X[start:stop] = rng.rand(stop - start, args.features) * 255
        X.flush()
        del X
        rows = [
            measure(path, n, args.features, name, args.threads)
            for name in args.paths
            for n in sorted(args.path_rows)
        ]
    print(
        f"# read-only np.memmap of float32 rows x {args.features} (uniform in "
        f"[0, 255)); each worker: torch.set_num_threads({args.threads}), "
        f"OMP/OPENBLAS/MKL_NUM_THREADS={args.threads}; {platform.machine()}, "
        f"torch {torch.__version__}, numpy {np.__version__}"
    )
    print_table(rows, list(rows[0]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", choices=["all", "batched", "paths"], default="all")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument(
        "--path-rows", type=int, nargs="+", default=[25_000, 50_000, 100_000]
    )
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        path, n_rows, n_features, name, threads = args.worker
        worker(path, int(n_rows), int(n_features), name, int(threads))
        return
    if args.table in ("all", "batched"):
        batched_inference_table(args)
    if args.table in ("all", "paths"):
        paths_table(args)


if __name__ == "__main__":
    main()
