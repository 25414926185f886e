"""Small helpers shared by skae's estimators."""

from skae.utils._device import resolve_device
from skae.utils.discovery import all_estimators

__all__ = ["all_estimators", "resolve_device"]
