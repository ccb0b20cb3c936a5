"""Feature store errors: bad input (a missing set, a config clash, an invalid uid), reported in one line."""
from __future__ import annotations

from egoflow.errors import EgoflowUserError


class StoreError(EgoflowUserError):
    """Base class for feature store errors."""


class StoreNotFound(StoreError):
    """Nothing at the store's URL (remote.open_store says whether the bucket or the prefix is missing)."""


class FeatureSetMissing(StoreError, KeyError):
    pass


class FeatureSetMismatch(StoreError):
    pass


class VideoMissing(StoreError, KeyError):
    pass
