"""scikit-learn's estimator checks on every public skae estimator.

The configurations live in ``tests/_instances.py``; a test below fails when an
exported estimator has none, so a new estimator cannot skip the checks.
"""

from _instances import CHECK_INSTANCES, check_instances
from sklearn.utils.estimator_checks import parametrize_with_checks

from skae.utils import all_estimators


def _expected_failed_checks(estimator):
    return getattr(estimator, "_expected_failed_checks", lambda: {})()


def test_every_estimator_has_check_instances():
    assert {cls for _, cls in all_estimators()} == set(CHECK_INSTANCES)


@parametrize_with_checks(
    check_instances(), expected_failed_checks=_expected_failed_checks
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
