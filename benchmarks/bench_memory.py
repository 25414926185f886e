"""Peak extra memory of ``transform`` / ``score_samples`` on 1,000,000 x 784 rows.

The input (float32, ~3.1 GB) is allocated first; a thread samples the process
RSS every 2 ms while each call runs, and the table reports the peak above the
pre-call level, next to the size of the output and of one inference batch of
activations. For contrast, "one full batch" pushes all rows through the same
torch module at once, as a naive implementation would.

Run: ``python benchmarks/bench_memory.py [--rows 1000000]``
"""

import argparse
import sys
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=784)
    args = parser.parse_args()
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
    mb = 1 / 2**20
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
                "peak extra MB": extra * mb,
                "output MB": out_bytes * mb,
                "extra beyond output MB": (extra - out_bytes) * mb,
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
            "peak extra MB": extra * mb,
            "output MB": args.rows * 32 * 4 * mb,
            "extra beyond output MB": (extra - args.rows * 32 * 4) * mb,
            "seconds": seconds,
        }
    )
    print(
        f"# input {X.nbytes * mb:.0f} MB float32; inference batch "
        f"{skae._base.INFERENCE_BATCH_SIZE} rows (~{batch_activations * mb:.0f} MB of "
        "activations at the widest layer, input and output of a layer)"
    )
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
