"""Video structure from stored features: kernel temporal segmentation (KTS) and shot averaging.

Not a head (nothing is trained): the summarizer head and the ``egoflow segment`` verb both use it.
"""
from egoflow.segment.kts import KTSError, kts_auto, segment, segment_ids
from egoflow.segment.shots import ShotError, shot_features

__all__ = ["KTSError", "ShotError", "kts_auto", "segment", "segment_ids", "shot_features"]
