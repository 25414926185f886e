"""Count outcomes of random bad inputs per estimator (issue: reliability).

Draws ``--cases`` inputs per estimator from the same Hypothesis strategy the
property tests use (random shapes, dtypes, NaN/inf, huge/tiny values, empty and
one-row arrays, DataFrames with mixed or categorical columns, lists, sparse
matrices) and runs every public call on each. A case is *wrong* when any call
does something other than return a finite result of the right shape and dtype
or raise ValueError/TypeError with a message, or when a failed call changes a
fitted model.

Run: ``python benchmarks/fuzz_bad_input.py --cases 200``
"""

import argparse
import collections
import sys
import traceback
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table  # noqa: E402
from bad_inputs import bad_inputs, exercise  # noqa: E402

from skae.utils import all_estimators  # noqa: E402


def fast(cls):
    est = cls()
    quick = {"max_iter": 3, "random_state": 0, "n_components": 2}
    return est.set_params(**{k: v for k, v in quick.items() if k in est.get_params()})


def fuzz(cls, n_cases):
    counts = collections.Counter()
    failures = []
    fitted = fast(cls).fit(np.random.RandomState(1).rand(20, 3))

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    args = parser.parse_args()
    rows = []
    for name, cls in all_estimators():
        try:
            counts, failures = fuzz(cls, args.cases)
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


if __name__ == "__main__":
    main()
