"""Zarr v3 feature store: features + timestamps + extractor config per video, text embeddings per string."""
from egoflow.features_store.errors import FeatureSetMismatch, FeatureSetMissing, StoreError, VideoMissing
from egoflow.features_store.layout import VideoFeatures, config_hash
from egoflow.features_store.store import FeatureStore
from egoflow.features_store.texts import TextFeatures

__all__ = ["FeatureStore", "VideoFeatures", "TextFeatures", "StoreError", "FeatureSetMissing",
           "FeatureSetMismatch", "VideoMissing", "config_hash"]
