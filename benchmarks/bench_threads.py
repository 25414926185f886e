"""Fit time with 1 thread, torch's default, and skae's choice (``n_jobs=None``).

Three models of growing size, trained for a fixed number of epochs on the CPU:
the default ``AutoencoderTransformer`` on digits (64 features), the default on a
5k MNIST subset (784 features, hidden 128-64), and the deep MNIST network
(784-1000-500-250-30). Each runs with ``n_jobs=1``, ``n_jobs=-1`` (every core,
torch's usual default) and ``n_jobs=None`` (sized by skae), on a quiet machine
and on a busy one (one CPU-bound process per core started beside it), several
rounds interleaved, each round in another of the six orders of the three
settings, chained so that every setting follows each one equally often
(fits under half a second get five times the rounds); the table
gives medians and the ratio of skae's choice to
the better of the other two (target: <= 1.0, within noise), the same ratio
taken round by round (skae's fit over the better column's fit of the same
round: its median and a bootstrap 95% interval; a burst of load that lasts
several rounds moves one column's median, not these), and the thread
counts skae set in each of its rounds ("2>1": two at the call, one from a
later reading of the load): where skae ran the configuration of one of the
other columns, a ratio above 1 is the noise between rounds.

A third state, "busy from 1 s", starts the CPU-bound processes one second
into each fit, on a quiet machine: a fit that chose its threads when the
machine was quiet must give the cores back. It runs the default MNIST model
only (the one whose choice depends on the load at the call), for
``--mid-fit-epochs`` epochs so that most of the fit runs under the load.

``--sweep`` measures instead where a second thread starts to pay on a quiet
machine: one-hidden-layer models on the MNIST subset whose work per step
(batch rows x parameters, the quantity skae's rule reads) runs from about
2^23 to 2^26 multiply-adds, each fitted with 1 thread and with every core.

``--dictionary`` times ``DictionaryLearner`` the same way (quiet and busy;
1 thread, every core, skae's choice): full-batch and online fits of a fixed
number of iterations on digits and the MNIST subset, whose work per step
(block rows x atoms x features, the quantity its rule reads) runs from
2^20.6 to 2^26.9, below and above the threshold the autoencoders' sweep set.

``--readings N`` checks the load reading itself, the input of every choice
above: N readings of ``idle_cores`` right after a burst of 2-thread matrix
products (when this process's own worker threads are finishing), single
(``confirm=False``) and confirmed (the default), on the quiet machine and
beside one and two CPU-bound processes: how many readings see every core idle,
and what a reading costs; ``--windows 0.5 1 2`` compares sampling windows
(ms; ``LOAD_SAMPLE_SECONDS``).

Run: ``python benchmarks/bench_threads.py [--rounds 3] [--epochs 2]
[--mid-fit-epochs 60] [--sweep] [--dictionary] [--readings 3000]``;
``--loads quiet --models MNIST`` reruns one row with more ``--rounds``.
"""

import argparse
import itertools
import math
import multiprocessing
import statistics
import sys
import threading
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, print_table  # noqa: E402

from skae import AutoencoderTransformer, DictionaryLearner  # noqa: E402
from skae.datasets import data_available, load_mnist  # noqa: E402
from skae.utils import _threads  # noqa: E402
from skae.utils._threads import available_cores  # noqa: E402


def _burn():
    while True:
        pass


def models():
    cases = [("digits, default", load_digits().data, {})]
    if data_available("mnist"):
        X = load_mnist()[0][:5000] / 255.0
        cases.append(("MNIST 5k, default", X, {}))
        cases.append(
            (
                "MNIST 5k, 784-1000-500-250-30",
                X,
                {"hidden_layer_sizes": (1000, 500, 250), "n_components": 30},
            )
        )
    else:
        print("# MNIST not found under $SKAE_DATA_DIR: digits only", flush=True)
    return cases


def start_burners(cores):
    burners = [multiprocessing.Process(target=_burn) for _ in range(cores)]
    for burner in burners:
        burner.start()
    return burners


def stop_burners(burners):
    for burner in burners:
        burner.terminate()
    for burner in burners:
        burner.join()


def fit_seconds(X, params, n_jobs, epochs, load_after=None):
    """Wall time of one fit; with ``load_after``, one CPU-bound process per
    core starts that many seconds into it and stops when it ends."""
    burners = []
    timer = None
    if load_after is not None:
        timer = threading.Timer(
            load_after, lambda: burners.extend(start_burners(available_cores()))
        )
        timer.start()
    try:
        return _timed_fit(X, params, n_jobs, epochs)
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
            stop_burners(burners)


class ThreadLog:
    """The intra-op thread counts a fit sets: the one chosen at the call, then
    every change while it runs (the caller's setting, restored at the end,
    is left out). Shows whether skae's column ran the 1-thread configuration
    or another."""

    def __init__(self):
        self.counts = []

    def __enter__(self):
        self._set = torch.set_num_threads

        def record(n):
            self.counts.append(n)
            self._set(n)

        torch.set_num_threads = record
        return self

    def __exit__(self, *exc):
        torch.set_num_threads = self._set
        self.counts = self.counts[:-1]  # the restore

    def summary(self):
        steps = [
            n for i, n in enumerate(self.counts) if i == 0 or n != self.counts[i - 1]
        ]
        return ">".join(map(str, steps)) or "unchanged"


def tally(summaries):
    """'1 x3' or '2 x2, 2>1 x1': the thread sequences of skae's rounds."""
    counts = {}
    for summary in summaries:
        counts[summary] = counts.get(summary, 0) + 1
    return ", ".join(f"{summary} x{n}" for summary, n in counts.items())


#: The columns: one thread, every core, and skae's own choice.
SETTINGS = {"1 thread": 1, "all cores": -1, "skae (n_jobs=None)": None}


#: A fit shorter than this (seconds, the warm-up fit) is compared over
#: ``SHORT_FIT_ROUNDS`` times the rounds: beside busy processes, the medians
#: of 0.1-s fits move by a third between runs of a few rounds.
SHORT_FIT_SECONDS = 0.5
SHORT_FIT_ROUNDS = 5


#: The six orders of the three settings, chained so that each round starts
#: with the setting the round before ended with: within the rounds every
#: setting follows each other one twice per cycle, and across them each
#: follows itself twice, so each is preceded by each (itself included)
#: equally often. Not every sequence of the six orders is: in
#: ``itertools.permutations`` order (used before 2026-12-03) skae's column
#: followed "all cores" three times per cycle and the 1-thread column twice.
BALANCED_ORDERS = [(0, 1, 2), (2, 0, 1), (1, 2, 0), (0, 2, 1), (1, 0, 2), (2, 1, 0)]


def compare_settings(rounds, fit):
    """``fit(n_jobs)`` (returning seconds) for every setting, ``rounds``
    interleaved rounds (more for short fits; rounded up to whole cycles of
    ``BALANCED_ORDERS``), each in another order of the settings: the row
    of medians, skae's ratio to the better of the other two, and the thread
    sequences skae set."""
    # Warm-up, not timed: the first fit of a process pays for loading; the
    # second tells how long a fit takes.
    fit(1)
    if fit(1) < SHORT_FIT_SECONDS:
        rounds *= SHORT_FIT_ROUNDS
    times = {label: [] for label in SETTINGS}
    chosen = []
    # A fit that follows the "all cores" one on a busy machine starts under
    # other conditions (per order of the settings, the busy digits row's
    # same-round ratios ran from 0.58 to 1.65), so every setting must follow
    # every setting equally often, across rounds too: the rounds go through
    # the six orders in ``BALANCED_ORDERS``, whole cycles of them.
    rounds = len(BALANCED_ORDERS) * math.ceil(rounds / len(BALANCED_ORDERS))
    settings = list(SETTINGS.items())
    for round_ in range(rounds):
        order = BALANCED_ORDERS[round_ % len(BALANCED_ORDERS)]
        for label, n_jobs in (settings[i] for i in order):
            with ThreadLog() as log:
                times[label].append(fit(n_jobs))
            if n_jobs is None:
                chosen.append(log.summary())
    medians = {label: statistics.median(t) for label, t in times.items()}
    row = {f"{label} s": medians[label] for label in SETTINGS}
    row["1 thread / all cores"] = medians["1 thread"] / medians["all cores"]
    better = min(("1 thread", "all cores"), key=medians.get)
    row["skae / better of the others"] = medians["skae (n_jobs=None)"] / medians[better]
    paired = [
        skae / other for skae, other in zip(times["skae (n_jobs=None)"], times[better])
    ]
    row["same-round ratio, median [95% interval]"] = paired_summary(paired)
    row["skae's threads per round"] = tally(chosen)
    row["rounds"] = rounds
    row["per-round s"] = {
        label: [round(t, 4) for t in values] for label, values in times.items()
    }
    return row


def table_columns(rows):
    """The table's columns: every key but the per-round times (printed with
    each row as it finishes)."""
    return [column for column in rows[0] if column != "per-round s"]


def paired_summary(ratios, resamples=2000):
    """'1.003 [0.991, 1.012]': the median of the per-round ratios and a
    bootstrap 95% interval of that median (rounds resampled, seed 0).

    Each ratio compares two fits run within a second or two of each other, in
    the same round, so a burst of load that lasts several rounds (which moves
    one column's median but not the other's) leaves most of them alone.
    """
    rng = np.random.default_rng(0)
    ratios = np.asarray(ratios)
    picks = rng.integers(0, len(ratios), size=(resamples, len(ratios)))
    low, high = np.percentile(np.median(ratios[picks], axis=1), [2.5, 97.5])
    return f"{np.median(ratios):.3f} [{low:.3f}, {high:.3f}]"


def _seconds(est, X):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
    return time.perf_counter() - start


def _timed_fit(X, params, n_jobs, epochs):
    est = AutoencoderTransformer(
        **{"n_components": 16, **params},
        max_iter=epochs,
        tol=0.0,
        early_stopping=False,
        n_jobs=n_jobs,
        random_state=0,
    )
    return _seconds(est, X)


def sweep(args):
    """1 thread against every core, quiet machine, by work per step."""
    if not data_available("mnist"):
        print("# MNIST not found under $SKAE_DATA_DIR: no sweep", flush=True)
        return
    X = load_mnist()[0][:5000] / 255.0
    rows = []
    for hidden in (8, 16, 32, 64, 128, 256):
        params = {"hidden_layer_sizes": (hidden,)}
        probe = AutoencoderTransformer(n_components=16, max_iter=1, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe.fit(X[:300])
        work = probe._batch_size_for(len(X)) * probe._n_parameters()
        times = {1: [], -1: []}
        for _ in range(args.rounds):
            for n_jobs in times:
                times[n_jobs].append(_timed_fit(X, params, n_jobs, args.epochs))
        one, every = statistics.median(times[1]), statistics.median(times[-1])
        rows.append(
            {
                "hidden": hidden,
                "log2 work per step": round(math.log2(work), 2),
                "1 thread s": one,
                "all cores s": every,
                "1 thread / all cores": one / every,
            }
        )
        print(rows[-1], flush=True)
    print_table(rows, list(rows[0]))
    print(f"# medians of {args.rounds} interleaved rounds, quiet machine")


def dictionary_cases():
    digits = load_digits().data
    cases = [
        (f"digits, full batch, {atoms} atoms", digits, atoms, None)
        for atoms in (16, 32, 64, 128)
    ]
    cases.append(("digits, batch 256, 100 atoms", digits, 100, 256))
    if data_available("mnist"):
        X = load_mnist()[0][:5000] / 255.0
        cases.append(("MNIST 5k, batch 256, 100 atoms", X, 100, 256))
        cases.append(("MNIST 5k, full batch, 32 atoms", X, 32, None))
    else:
        print("# MNIST not found under $SKAE_DATA_DIR: digits only", flush=True)
    return cases


def _timed_dictionary_fit(X, atoms, batch_size, n_jobs):
    # A fixed amount of work: no stopping rule ends a fit early.
    est = DictionaryLearner(
        atoms,
        max_iter=3,
        tol=0.0,
        batch_size=batch_size,
        max_no_improvement=None,
        n_jobs=n_jobs,
        random_state=0,
    )
    return _seconds(est, X)


def dictionary(args, cores):
    """DictionaryLearner: 1 thread, every core and skae's choice."""
    rows = []
    for load in ("quiet", "busy"):
        burners = start_burners(cores) if load == "busy" else []
        try:
            for name, X, atoms, batch_size in dictionary_cases():
                block = batch_size or len(X)
                row = {
                    "machine": load,
                    "fit": name,
                    "log2 work": round(math.log2(block * atoms * X.shape[1]), 1),
                }
                row.update(
                    compare_settings(
                        args.rounds,
                        partial(_timed_dictionary_fit, X, atoms, batch_size),
                    )
                )
                rows.append(row)
                print(row, flush=True)
        finally:
            stop_burners(burners)
    print_table(rows, table_columns(rows))
    print(f"# medians of {args.rounds} interleaved rounds; 3 iterations per fit")


def load_readings(n, cores, windows_ms=None):
    """Per machine state, sampling window and reading kind: how often
    ``idle_cores`` saw every core idle, and the median and largest cost of a
    reading."""
    a = torch.randn(400, 400)
    windows = (
        [_threads.LOAD_SAMPLE_SECONDS]
        if windows_ms is None
        else [ms / 1e3 for ms in windows_ms]
    )
    default_window = _threads.LOAD_SAMPLE_SECONDS
    rows = []
    for busy in range(cores + 1):
        burners = start_burners(busy)
        time.sleep(0.5)  # let them reach the cores
        try:
            for window, confirm in itertools.product(windows, (False, True)):
                # Read at every reading, so setting it here sizes the window.
                _threads.LOAD_SAMPLE_SECONDS = window
                seen, costs = {}, []
                for _ in range(n):
                    with torch.no_grad():
                        for _ in range(20):  # two threads working, then a read
                            a @ a
                    start = time.perf_counter()
                    idle = _threads.idle_cores(confirm=confirm)
                    costs.append(time.perf_counter() - start)
                    seen[idle] = seen.get(idle, 0) + 1
                row = {
                    "other CPU-bound processes": busy,
                    "window ms": 1e3 * window,
                    "reading": "confirmed" if confirm else "single",
                    "readings": n,
                    "saw every core idle": seen.get(cores, 0),
                    "idle cores seen": ", ".join(
                        f"{k}: {v}" for k, v in sorted(seen.items())
                    ),
                    "median ms": 1e3 * statistics.median(costs),
                    "max ms": 1e3 * max(costs),
                }
                rows.append(row)
                print(row, flush=True)
        finally:
            _threads.LOAD_SAMPLE_SECONDS = default_window
            stop_burners(burners)
    print_table(rows, list(rows[0]))


LOADS = ("quiet", "busy", "busy from 1 s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--mid-fit-epochs", type=int, default=60)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--dictionary", action="store_true")
    parser.add_argument("--readings", type=int, default=0)
    parser.add_argument(
        "--windows",
        type=float,
        nargs="+",
        default=None,
        help="with --readings: sampling windows to compare, in ms "
        "(default: skae's LOAD_SAMPLE_SECONDS)",
    )
    parser.add_argument(
        "--loads",
        nargs="+",
        choices=LOADS,
        default=list(LOADS),
        help="which machine states to run (default: all three)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="which models to run, by the start of their name (default: all)",
    )
    args = parser.parse_args()
    cores = available_cores()
    torch.set_num_threads(cores)  # torch's usual default: one per core
    print(
        f"# {machine_line()}; {cores} cores; {args.epochs} epochs "
        f"({args.mid_fit_epochs} when the load starts mid-fit)",
        flush=True,
    )
    if args.sweep:
        sweep(args)
        return
    if args.dictionary:
        dictionary(args, cores)
        return
    if args.readings:
        load_readings(args.readings, cores, args.windows)
        return
    rows = []
    for load in args.loads:
        burners = start_burners(cores) if load == "busy" else []
        mid_fit = load == "busy from 1 s"
        epochs = args.mid_fit_epochs if mid_fit else args.epochs
        load_after = 1.0 if mid_fit else None
        try:
            for name, X, params in models():
                if mid_fit and name != "MNIST 5k, default":
                    continue
                if args.models and not any(name.startswith(m) for m in args.models):
                    continue
                row = {"machine": load, "model": name}
                row.update(
                    compare_settings(
                        args.rounds,
                        partial(
                            fit_seconds,
                            X,
                            params,
                            epochs=epochs,
                            load_after=load_after,
                        ),
                    )
                )
                rows.append(row)
                print(row, flush=True)
        finally:
            stop_burners(burners)
    print_table(rows, table_columns(rows))
    print(
        f"# medians of {args.rounds} interleaved rounds ({SHORT_FIT_ROUNDS}x as "
        f"many for fits under {SHORT_FIT_SECONDS} s), in whole cycles of six "
        "orders in which every setting follows each equally often"
    )


if __name__ == "__main__":
    main()
