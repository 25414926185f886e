"""Count outcomes of random bad inputs per estimator (issue: reliability).

Each family of bad inputs is one function and prints its own table:

- ``inputs``: draws ``--cases`` inputs per estimator from the same Hypothesis
  strategy the property tests use (random shapes, dtypes, NaN/inf, huge/tiny
  values, empty and one-row arrays, DataFrames with mixed or categorical
  columns, lists, sparse matrices) and runs every public call on each. A case
  is *wrong* when any call does something other than return a finite result
  of the right shape and dtype or raise ValueError/TypeError with a message,
  or when a failed call changes a fitted model.
- ``files``: ``--cases`` random mutations per estimator of a valid file
  written by ``skae.save`` (see :func:`fuzz_files`). A case is *wrong* unless
  ``skae.load`` either gives a model that behaves exactly as the original
  (the same ``transform`` and ``inverse_transform``, and, when its
  parameters are the original's, the same ``transform`` after one more
  ``partial_fit``) or raises ValueError/FileNotFoundError with a message. (A
  file whose parameters were changed to other values the estimator accepts
  is a valid file of a differently configured model: only its fitted state
  must be the original's.)

Run: ``python benchmarks/fuzz_bad_input.py --family inputs --cases 200``
(``--family`` may be repeated; without it every family runs).
"""

import argparse
import collections
import io
import json
import pickle
import sys
import tempfile
import traceback
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table  # noqa: E402
from bad_inputs import bad_inputs, exercise, fit_input  # noqa: E402

import skae  # noqa: E402
from skae import _persistence  # noqa: E402
from skae.utils import all_estimators  # noqa: E402


def fast(cls):
    est = cls()
    quick = {"max_iter": 3, "random_state": 0, "n_components": 2}
    return est.set_params(**{k: v for k, v in quick.items() if k in est.get_params()})


def fuzz(cls, n_cases):
    counts = collections.Counter()
    failures = []
    fitted = fast(cls).fit(fit_input(fast(cls), np.random.RandomState(1).rand(20, 3)))

    @settings(
        max_examples=n_cases,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=bad_inputs())
    def run(case):
        X, description = case
        counts["cases"] += 1
        try:
            outcomes = exercise(fast(cls), fitted, X)
        except Exception as exc:  # noqa: BLE001 - counted, not hidden
            counts["wrong"] += 1
            failures.append(f"{description}: {type(exc).__name__}: {exc}")
            return
        counts["fit ok" if outcomes[0] == "ok" else "fit error"] += 1
        counts["calls"] += len(outcomes)

    run()
    return counts, failures


def bad_input_family(n_cases):
    """The ``inputs`` family: random bad arrays through every public call."""
    rows = []
    for name, cls in all_estimators():
        try:
            counts, failures = fuzz(cls, n_cases)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            continue
        rows.append(
            {
                "estimator": name,
                "cases": counts["cases"],
                "calls": counts["calls"],
                "fit accepted": counts["fit ok"],
                "fit refused clearly": counts["fit error"],
                "wrong outcomes": counts["wrong"],
            }
        )
        for line in failures[:5]:
            print(f"  {name}: {line}")
    print_table(rows, list(rows[0]))


# ------------------------------------------------------------ crafted files
# Values that replace a header field: wrong types, huge, negative, empty,
# nested, references to tensors that hold something else.
ODD_VALUES = [
    10**12,
    -1,
    0,
    10**400,
    1e308,
    float("nan"),
    float("inf"),
    "",
    "x" * 1000,
    None,
    True,
    [],
    {},
    [1] * 1000,
    {"__tuple__": [10**6, 10**7]},
    {"__ndarray__": None},  # replaced by a random tensor's name
    {"__device__": "meta"},
    {"__code__": "os.system"},
]


def _file_parts(data):
    payload = torch.load(io.BytesIO(data), weights_only=True)
    return payload, json.loads(payload["header"])


def _to_bytes(payload, header=None, sign=True):
    payload = dict(payload)
    if header is not None:
        payload["header"] = json.dumps(header)
    if sign:
        # An attacker recomputes the digest: the mutation must be caught by
        # the checks behind it.
        payload["sha256"] = _persistence._digest(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _fields(node, path=()):
    """Every replaceable place in a header: (container, key, path)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key, path + (key,)
            yield from _fields(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield node, i, path + (i,)
            yield from _fields(value, path + (i,))


def _flip(rng, data):
    data = bytearray(data)
    n = rng.randint(1, 17)
    for i in rng.randint(len(data), size=n):
        data[i] ^= rng.randint(1, 256)
    return bytes(data), f"{n} bytes flipped"


def _truncate(rng, data):
    n = rng.randint(len(data))
    return data[:n], f"truncated to {n} of {len(data)} bytes"


def _relabel(rng, data, names):
    payload, header = _file_parts(data)
    header["class"] = str(rng.choice(names + ["os.system", "", "PCA"]))
    sign = bool(rng.rand() < 0.8)
    return _to_bytes(payload, header, sign), f"class -> {header['class']!r}"


def _odd_field(rng, data):
    payload, header = _file_parts(data)
    places = [
        p for p in _fields(header) if p[2][0] in ("params", "attributes", "class")
    ]
    container, key, path = places[rng.randint(len(places))]
    value = ODD_VALUES[rng.randint(len(ODD_VALUES))]
    if isinstance(value, dict) and "__ndarray__" in value:
        value = {"__ndarray__": str(rng.choice(sorted(payload["tensors"])))}
    container[key] = value
    return _to_bytes(payload, header), f"{'.'.join(map(str, path))} -> {value!r:.40}"


def _odd_tensor(rng, data):
    payload, _ = _file_parts(data)
    key = str(rng.choice(sorted(payload["tensors"])))
    old = payload["tensors"][key]
    choice = rng.randint(5)
    if choice == 0:
        new, what = torch.zeros(old.numel() + 1, dtype=old.dtype), "one more entry"
    elif choice == 1:
        new, what = old.double() if old.is_floating_point() else old.float(), "dtype"
    elif choice == 2:
        new, what = old.reshape(-1), "flattened"
    elif choice == 3:
        new, what = (
            torch.full_like(old, float("nan")) if (old.is_floating_point()) else old,
            "NaN",
        )
    else:
        # A zero-stride view claiming 10**12 entries: not hashable, unsigned.
        payload["tensors"][key] = torch.zeros(1).expand(10**6, 10**6)
        return _to_bytes(payload, sign=False), f"{key} -> huge view"
    payload["tensors"][key] = new
    return _to_bytes(payload), f"{key} -> {what}"


def _members(rng, data):
    """Compressed members, a deflated zero bomb, or lying declared sizes."""
    choice = rng.randint(3)
    if choice == 2:
        data = bytearray(data)
        entries = [i for i in range(len(data) - 4) if data[i : i + 4] == b"PK\x01\x02"]
        entry = entries[rng.randint(len(entries))]
        size = int(rng.choice([0, 1, 2**31, 2**32 - 1, len(data) * 2]))
        field = 20 + 4 * rng.randint(2)  # compressed or uncompressed size
        data[entry + field : entry + field + 4] = size.to_bytes(4, "little")
        return bytes(data), f"declared size -> {size}"
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            method = zipfile.ZIP_DEFLATED if choice == 0 else zipfile.ZIP_STORED
            dst.writestr(info.filename, src.read(info), method)
        if choice == 1:
            dst.writestr("archive/data/bomb", bytes(64 * 2**20), zipfile.ZIP_DEFLATED)
    what = "members deflated" if choice == 0 else "64 MB zero bomb added"
    return out.getvalue(), what


def _top_level(rng, data):
    payload, _ = _file_parts(data)
    key = str(rng.choice(["format", "format_version", "skae_version", "extra"]))
    payload[key] = ODD_VALUES[rng.randint(len(ODD_VALUES))]
    sign = bool(rng.rand() < 0.5) and key != "format"
    try:
        return _to_bytes(payload, sign=sign), f"{key} -> {payload[key]!r:.40}"
    except Exception:  # noqa: BLE001 - an unhashable odd value: write unsigned
        return _to_bytes(payload, sign=False), f"{key} -> {payload[key]!r:.40}"


MUTATIONS = {
    "byte flips": _flip,
    "truncation": _truncate,
    "relabelled class": _relabel,
    "odd header field": _odd_field,
    "odd tensor": _odd_tensor,
    "archive members": _members,
    "odd top-level field": _top_level,
}


def fuzz_files(cls, n_cases, seed=0):
    """Load ``n_cases`` random mutations of a valid file of a fitted ``cls``.

    Returns counts per outcome and mutation, and the wrong cases.
    """
    rng = np.random.RandomState(seed)
    X = fit_input(fast(cls), np.random.RandomState(1).rand(20, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fast(cls).fit(X)
    names = [name for name, _ in all_estimators()]
    counts = collections.Counter()
    failures = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.skae"
        skae.save(est, path)
        original = path.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = Reference(est, X)
        kinds = list(MUTATIONS)
        for _ in range(n_cases):
            kind = kinds[rng.randint(len(kinds))]
            args = (names,) if kind == "relabelled class" else ()
            data, description = MUTATIONS[kind](rng, original, *args)
            path.write_bytes(data)
            outcome, detail = reference.outcome(path)
            counts.update(["cases", kind, outcome, (kind, outcome)])
            if outcome == "wrong":
                failures.append(f"{kind} ({description}): {detail}")
    return counts, failures


class Reference:
    """What the original model does, and how a loaded file compares."""

    def __init__(self, est, X):
        self.X, self.params = X, est.get_params()
        self.behaviour = self._behaviour(pickle.loads(pickle.dumps(est)))

    def _behaviour(self, model):
        # Codes, reconstructions, and the codes after one more partial_fit
        # when the parameters are the original's (with other valid ones the
        # file describes a differently configured model). A detector has no
        # codes: its scores and p-values instead.
        if hasattr(model, "transform"):
            Z = model.transform(self.X)
            behaviour = [Z, model.inverse_transform(Z), None]
            output = "transform"
        else:
            behaviour = [model.score_samples(self.X), model.p_values(self.X), None]
            output = "score_samples"
        if hasattr(model, "partial_fit") and _same(model.get_params(), self.params):
            behaviour[2] = getattr(model.partial_fit(self.X), output)(self.X)
        return behaviour

    def outcome(self, path):
        try:
            model = skae.load(path)
        except (ValueError, FileNotFoundError) as exc:
            if str(exc):
                return "refused clearly", ""
            return "wrong", f"{type(exc).__name__} without a message"
        except Exception as exc:  # noqa: BLE001 - counted, not hidden
            return "wrong", f"{type(exc).__name__}: {str(exc)[:120]}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                behaviour = self._behaviour(model)
        except Exception as exc:  # noqa: BLE001 - loaded, then failed: a lie
            return "wrong", f"loaded, then {type(exc).__name__}: {str(exc)[:120]}"
        for got, expected in zip(behaviour, self.behaviour):
            if got is not None and not np.array_equal(got, expected, equal_nan=True):
                return "wrong", "loaded, behaves differently"
        return "loaded, same output", ""


def _same(a, b):
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - e.g. arrays compared element-wise
        return False


def crafted_file_family(n_cases):
    """The ``files`` family: random mutations of valid saved files."""
    rows, totals = [], collections.Counter()
    for seed, (name, cls) in enumerate(all_estimators()):
        try:
            counts, failures = fuzz_files(cls, n_cases, seed)
        except TypeError as exc:  # an estimator skae.save does not store
            print(f"  {name}: skipped ({exc})")
            continue
        totals.update(counts)
        rows.append(
            {
                "estimator": name,
                "cases": counts["cases"],
                "loaded, same output": counts["loaded, same output"],
                "refused clearly": counts["refused clearly"],
                "wrong outcomes": counts["wrong"],
            }
        )
        for line in failures[:5]:
            print(f"  {name}: {line}")
    print_table(rows, list(rows[0]))
    print()
    print_table(
        [
            {
                "mutation": kind,
                "cases": totals[kind],
                "loaded, same output": totals[(kind, "loaded, same output")],
                "refused clearly": totals[(kind, "refused clearly")],
                "wrong outcomes": totals[(kind, "wrong")],
            }
            for kind in MUTATIONS
        ],
        [
            "mutation",
            "cases",
            "loaded, same output",
            "refused clearly",
            "wrong outcomes",
        ],
    )


# ------------------------------------------------- set_params after fitting
_ODD_VALUES = [
    None,
    0,
    1,
    3,
    -1,
    0.5,
    10**9,
    True,
    "x",
    "relu",
    "tanh",
    "topk",
    "kl",
    "bernoulli",
    "standard",
    "global",
    "minmax",
    "random",
    (),
    (5,),
    (3, 2),
]


def _is_transformer(cls):
    """The unsupervised transformers (the families call fit(X), transform)."""
    return hasattr(cls, "transform") and hasattr(cls, "inverse_transform")


def _outputs(est, X):
    if not hasattr(est, "transform"):  # a detector: its scores
        return [est.score_samples(X), est.score_samples(X)]
    Z = est.transform(X)
    scores = est.score_samples(X) if hasattr(est, "score_samples") else None
    return [Z, est.inverse_transform(Z), scores]


def _same_outputs(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


#: Parameters read at inference by design (as scikit-learn's
#: ``DictionaryLearning.transform_alpha``): a valid change may change the
#: outputs, an invalid one must be refused clearly.
INFERENCE_PARAMS = {"VAE": {"n_importance_samples"}}
#: Read at every call by every estimator: the thread count (valid values may
#: change float rounding; invalid ones must be refused clearly).
CALL_PARAMS = {"n_jobs"}


def fuzz_set_params(cls, n_cases, seed=0):
    """Fit once; per case, set random parameters to random values without
    refitting. Inference, pickling and ``skae.save`` must keep giving the fitted
    model's outputs (or, for ``save``, refuse invalid parameters clearly)."""
    import pickle
    import tempfile
    import warnings

    rng = np.random.default_rng(seed)
    X = fit_input(fast(cls), np.random.RandomState(1).rand(40, 5))
    fitted = fast(cls).fit(X)
    reference = _outputs(fitted, X)
    inference = INFERENCE_PARAMS.get(cls.__name__, set()) | CALL_PARAMS
    names = sorted(set(fitted.get_params()) - inference)
    counts = collections.Counter()
    failures = []
    folder = tempfile.mkdtemp()
    for case in range(n_cases):
        est = pickle.loads(pickle.dumps(fitted))
        change = {
            name: _ODD_VALUES[rng.integers(len(_ODD_VALUES))]
            for name in rng.choice(names, size=rng.integers(1, 4), replace=False)
        }
        counts["cases"] += 1
        try:
            est.set_params(**change)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                same = _same_outputs(_outputs(est, X), reference)
                same &= _same_outputs(
                    _outputs(pickle.loads(pickle.dumps(est)), X), reference
                )
                path = f"{folder}/{case}.skae"
                try:
                    skae.save(est, path)
                except ValueError:
                    counts["save refused clearly"] += 1
                else:
                    same &= _same_outputs(_outputs(skae.load(path), X), reference)
                    counts["saved and reloaded"] += 1
        except Exception as exc:  # noqa: BLE001 - counted, not hidden
            same = False
            failures.append(f"{change}: {type(exc).__name__}: {exc}")
        if not same:
            counts["wrong"] += 1
            if len(failures) < counts["wrong"]:
                failures.append(f"{change}: outputs changed")
    return counts, failures


def set_params_family(n_cases):
    """The ``set_params`` family: parameters changed after fitting."""
    rows = []
    for name, cls in all_estimators():
        if not _is_transformer(cls):
            continue  # detectors and supervised models: fuzzed through their parts
        counts, failures = fuzz_set_params(cls, n_cases)
        rows.append(
            {
                "estimator": name,
                "cases": counts["cases"],
                "saved and reloaded": counts["saved and reloaded"],
                "save refused clearly": counts["save refused clearly"],
                "wrong outcomes": counts["wrong"],
            }
        )
        for failure in failures[:5]:
            print(f"  {name}: {failure}")
    print_table(
        rows,
        [
            "estimator",
            "cases",
            "saved and reloaded",
            "save refused clearly",
            "wrong outcomes",
        ],
    )


# ------------------------------------------------ one bad batch in a stream
def _snapshot(est):
    """The estimator's state as plain data (pickle bytes are not stable)."""
    import pickle

    return pickle.loads(pickle.dumps(est)).__dict__


def _equal(a, b):
    import torch

    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return bool(a == b) if not hasattr(a, "__dict__") else type(a) is type(b)


def _bad_batch(rng, good):
    kind = rng.choice(["nan", "inf", "huge", "width", "empty"])
    bad = good.copy()
    row, col = rng.integers(len(good)), rng.integers(good.shape[1])
    if kind == "nan":
        bad[row, col] = np.nan
    elif kind == "inf":
        bad[row, col] = np.inf
    elif kind == "huge":
        bad[row, col] = 1e30  # finite, but overflows a float32 loss
    elif kind == "width":
        bad = bad[:, :-1]
    else:
        bad = bad[:0]
    return kind, bad


def fuzz_stream(cls, n_cases, seed=0):
    """A ``partial_fit`` stream with one bad batch: the bad call is refused
    (ValueError, model unchanged) or undone (warning), and the stream goes on."""
    import warnings

    if not hasattr(cls, "partial_fit"):
        return collections.Counter(), []
    rng = np.random.default_rng(seed)
    data = np.random.RandomState(2).rand(400, 5)
    counts = collections.Counter()
    failures = []
    for _ in range(n_cases):
        counts["cases"] += 1
        batches = np.array_split(data[rng.permutation(len(data))], 8)
        where = int(rng.integers(1, 7))
        kind, bad = _bad_batch(rng, batches[where])
        est = fast(cls)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for i, batch in enumerate(batches):
                    if i == where:
                        before = _snapshot(est)
                        refused = False
                        try:
                            est.partial_fit(bad)
                        except ValueError:
                            refused = True
                        if refused:
                            counts["refused"] += 1
                            if not _equal(_snapshot(est), before):
                                raise AssertionError("a refused call changed it")
                        else:
                            undone = any("undone" in str(w.message) for w in caught)
                            counts["undone" if undone else "accepted"] += 1
                    est.partial_fit(batch)
            outputs = _outputs(est, data)
            if not all(np.all(np.isfinite(o)) for o in outputs[:2]):
                raise AssertionError("non-finite outputs after the stream")
        except Exception as exc:  # noqa: BLE001 - counted, not hidden
            counts["wrong"] += 1
            failures.append(f"{kind} at call {where}: {type(exc).__name__}: {exc}")
    return counts, failures


def stream_family(n_cases):
    """The ``stream`` family: one bad batch in a partial_fit stream."""
    rows = []
    for name, cls in all_estimators():
        if not _is_transformer(cls):
            continue
        counts, failures = fuzz_stream(cls, max(1, n_cases // 4))
        if not counts:
            continue
        rows.append(
            {
                "estimator": name,
                "cases": counts["cases"],
                "refused, unchanged": counts["refused"],
                "undone": counts["undone"],
                "accepted": counts["accepted"],
                "wrong outcomes": counts["wrong"],
            }
        )
        for failure in failures[:5]:
            print(f"  {name}: {failure}")
    print_table(
        rows,
        [
            "estimator",
            "cases",
            "refused, unchanged",
            "undone",
            "accepted",
            "wrong outcomes",
        ],
    )


# ------------------------------------------------------- fits in threads
def fuzz_threads(cls, n_cases, seed=0):
    """Four fits with different seeds, in four threads and one after another,
    must give identical models."""
    import threading
    import warnings

    rng = np.random.default_rng(seed)
    counts = collections.Counter()
    failures = []
    X = np.random.RandomState(3).rand(120, 6)
    for _ in range(n_cases):
        counts["cases"] += 1
        seeds = rng.integers(0, 2**31, size=4)
        models = [fast(cls).set_params(random_state=int(s)) for s in seeds]
        extra = {}
        if "dropout" in models[0].get_params():
            extra["dropout"] = float(rng.choice([0.0, 0.3]))
        models = [m.set_params(**extra) for m in models]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sequential = [_outputs(clone_of(m).fit(X), X) for m in models]
            threaded = [None] * 4
            threads = [
                threading.Thread(target=_fit_into, args=(threaded, i, model, X))
                for i, model in enumerate(models)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if not all(_same_outputs(a, b) for a, b in zip(threaded, sequential)):
            counts["wrong"] += 1
            failures.append(f"seeds {seeds.tolist()} {extra}: threads differ")
    return counts, failures


def _fit_into(results, i, model, X):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results[i] = _outputs(model.fit(X), X)


def clone_of(est):
    from sklearn.base import clone

    return clone(est)


def threads_family(n_cases):
    """The ``threads`` family: fits in concurrent threads."""
    rows = []
    for name, cls in all_estimators():
        if not _is_transformer(cls):
            continue
        counts, failures = fuzz_threads(cls, max(1, n_cases // 20))
        rows.append(
            {
                "estimator": name,
                "cases (4 fits each)": counts["cases"],
                "wrong outcomes": counts["wrong"],
            }
        )
        for failure in failures[:5]:
            print(f"  {name}: {failure}")
    print_table(rows, ["estimator", "cases (4 fits each)", "wrong outcomes"])


FAMILIES = {
    "inputs": bad_input_family,
    "files": crafted_file_family,
    "set_params": set_params_family,
    "stream": stream_family,
    "threads": threads_family,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument(
        "--family",
        action="append",
        choices=sorted(FAMILIES),
        help="family of bad inputs to run (repeatable; default: all)",
    )
    args = parser.parse_args()
    for family in args.family or list(FAMILIES):
        print(f"\n## {family}\n")
        FAMILIES[family](args.cases)


if __name__ == "__main__":
    main()
