"""Store steps averaged into fixed-length shots, and KTS segments of a video's shots."""
from __future__ import annotations

import math

import numpy as np

from egoflow.segment import kts


class ShotError(ValueError):
    """Store features that cannot be averaged into the shots asked for (names the video)."""


def shot_features(feats: np.ndarray, times: np.ndarray, num_shots: int, shot_seconds: float, uid: str) -> np.ndarray:
    """Average store steps [T, D] into ``num_shots`` shots of ``shot_seconds`` -> [num_shots, D] float32.

    Steps past the last shot are dropped; a few empty shots (video a little shorter than the annotation, or a
    sparse sampling rate) copy the nearest non-empty shot; more than 5% empty is an error.
    """
    if not np.isfinite(feats).all():
        raise ShotError(f"video {uid!r}: store features contain NaN/inf")
    idx = np.floor(times / shot_seconds).astype(np.int64)
    keep = (idx >= 0) & (idx < num_shots)
    sums = np.zeros((num_shots, feats.shape[1]), np.float64)
    np.add.at(sums, idx[keep], feats[keep])
    counts = np.bincount(idx[keep], minlength=num_shots)
    empty = counts == 0
    if empty.mean() > 0.05:
        raise ShotError(f"video {uid!r}: {int(empty.sum())} of {num_shots} shots of {shot_seconds}s have "
                                  f"no feature step (store covers {times.max() if times.size else 0:.0f}s)")
    full = np.flatnonzero(~empty)
    out = sums / np.maximum(counts, 1)[:, None]
    if empty.any():
        near = full[np.clip(np.searchsorted(full, np.flatnonzero(empty)), 0, len(full) - 1)]
        out[empty] = out[near]
    return out.astype(np.float32)


def kts_segments(shots: np.ndarray, lmax: int, max_change_points: int, vmax: float,
                 kernel: str = "cosine") -> np.ndarray:
    """KTS boundaries [m + 2] of one video's shots; enough change points to respect ``lmax``."""
    n = shots.shape[0]
    lmax = min(lmax, n)
    m_max = min(n - 1, max(max_change_points, math.ceil(n / lmax) - 1))
    return kts.segment(shots, max_change_points=m_max, lmax=lmax, vmax=vmax, kernel=kernel)
