"""Feature store errors: bad input (a missing set, a config clash, an invalid uid), reported in one line."""
from __future__ import annotations

from egoflow.errors import EgoflowUserError


class StoreError(EgoflowUserError):
    """Base class for feature store errors."""


class FeatureSetMissing(StoreError, KeyError):
    pass


class FeatureSetMismatch(StoreError):
    pass


class VideoMissing(StoreError, KeyError):
    pass
