"""Kernel temporal segmentation (KTS) of one video of a feature store (``egoflow segment``, egoflow/cli/segment.py).

Store steps are averaged into shots of ``shot_seconds`` (0: use the steps as they are), KTS runs on the shots,
and the segments come back in seconds of video time.
"""
from __future__ import annotations

import math

import numpy as np


def segment_video(store, feature_set: str, video_uid: str, shot_seconds: float = 5.0, lmax: int | None = None,
                  max_change_points: int | None = None, vmax: float = 1.0, kernel: str = "cosine") -> dict:
    """KTS of one stored video -> {"video_uid", "num_shots", "boundaries" (shot indices), "segments" [[s, e]] sec}."""
    from egoflow.features_store import FeatureStore
    from egoflow.segment import kts
    from egoflow.segment.shots import shot_features

    store = store if hasattr(store, "read_video") else FeatureStore(str(store), mode="r")
    vf = store.read_video(feature_set, video_uid)
    if vf.feats.shape[0] == 0:
        raise kts.KTSError(f"video {video_uid!r} has no feature steps in {feature_set!r}")
    if shot_seconds > 0:
        n = max(1, math.ceil((float(vf.times.max()) + 1e-9) / shot_seconds))
        x = shot_features(vf.feats, vf.times, n, shot_seconds, video_uid)
        starts = np.arange(n + 1) * shot_seconds
        starts[-1] = max(starts[-1], float(vf.times.max()))
    else:  # steps as shots: a step spans the midpoints to its neighbours
        x, t = vf.feats, vf.times
        mids = (t[1:] + t[:-1]) / 2 if len(t) > 1 else np.array([])
        starts = np.concatenate([[0.0], mids, [t[-1] + (t[-1] - mids[-1] if len(mids) else 0.5)]])
    b = kts.segment(x, max_change_points=max_change_points, lmax=lmax, vmax=vmax, kernel=kernel)
    return {"video_uid": video_uid, "feature_set": feature_set, "shot_seconds": shot_seconds,
            "num_shots": int(x.shape[0]), "boundaries": b.tolist(),
            "segments": [[float(starts[s]), float(starts[e])] for s, e in zip(b[:-1], b[1:])]}
