"""scikit-learn's estimator checks on every public skae estimator.

Estimators are discovered from ``skae.__all__``, so a new estimator is covered
as soon as it is exported.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skae.utils import all_estimators


def _instances():
    for _, cls in all_estimators():
        yield from (
            cls._check_instances() if hasattr(cls, "_check_instances") else [cls()]
        )


def _expected_failed_checks(estimator):
    return getattr(estimator, "_expected_failed_checks", lambda: {})()


@parametrize_with_checks(
    list(_instances()), expected_failed_checks=_expected_failed_checks
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
