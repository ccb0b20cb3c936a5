"""What the video dispatcher (video.py) and both backends (_pyav.py, _decord.py) share: the error, the probe
result, the cheap file checks and the sampling rule on timestamps (see video.py's docstring for the rule).

Kept apart from the dispatcher so that the backends import it and the dispatcher imports them, with no cycle.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Ties between a target and a frame boundary go to the later frame; EPS absorbs float rounding (1 us is far
# below any frame duration and far above float64 error on hours-long timestamps).
EPS = 1e-6


class VideoReadError(Exception):
    """A video could not be read. `stage` is "open", "probe" or "decode"; `reason` is human readable."""

    def __init__(self, path, stage: str, reason: str):
        self.path, self.stage, self.reason = str(path), stage, reason
        super().__init__(f"{self.path}: cannot {stage} video: {reason}")

    def __reduce__(self):  # picklable across process pools (Prefect, multiprocessing)
        return (type(self), (self.path, self.stage, self.reason))


@dataclass
class VideoInfo:
    path: str  # file as given
    backend: str  # backend that iter_frames(backend=...) would try first: "decord", "pyav" or "torchcodec-cuda"
    duration_s: float  # container/stream duration in seconds (metadata; sampling uses decoded pts)
    avg_fps: float  # average frame rate from the container
    num_frames: int  # frame count from the container (estimated from duration when missing)
    width: int  # display width, after rotation
    height: int  # display height, after rotation
    rotation: int  # clockwise degrees applied to the coded picture for display: 0, 90, 180 or 270


def num_samples(end_s: float, fps: float) -> int:
    """Number of targets t_k = (k + 0.5) / fps with t_k < end_s (ties excluded, as the later frame is absent)."""
    k = max(int(np.floor(end_s * fps - 0.5)) + 2, 0)
    while k > 0 and (k - 0.5) / fps + EPS >= end_s:  # exact float check around the estimate
        k -= 1
    return k


def sample_times(pts, end, fps: float, time_base=None) -> tuple[np.ndarray, np.ndarray]:
    """The sampling rule on known timestamps (pure; no video needed).

    pts: [N] sorted presentation times, pts[0] is time 0 of the video; end: end of the last frame's display
    interval. Seconds as floats, or integers in `time_base` units (a Fraction) - then the arithmetic is the
    same as the streaming PyAV path's, so both backends give bit-identical times.
    Returns (index int64 [K] of the chosen source frame, time float64 [K] = centre of its display interval).
    """
    if time_base is None:
        sec = np.asarray(pts, dtype=np.float64) - float(pts[0])
        end_s = float(end) - float(pts[0])
        bounds = np.append(sec[1:], end_s)
    else:
        rel = np.asarray(pts, dtype=np.int64) - int(pts[0])
        num, den = time_base.numerator, time_base.denominator
        sec = (rel * num) / den
        end_rel = int(end) - int(pts[0])
        end_s = (end_rel * num) / den
    if len(sec) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    targets = (np.arange(num_samples(end_s, fps)) + 0.5) / fps
    idx = np.searchsorted(sec, targets + EPS, side="right") - 1
    if time_base is None:
        return idx.astype(np.int64), (sec[idx] + bounds[idx]) / 2
    nxt = np.append(rel[1:], end_rel)
    return idx.astype(np.int64), ((rel[idx] + nxt[idx]) * num) / (2 * den)


class Sampler:
    """Incremental form of `sample_times` for decoders that see one frame at a time (same float operations).

    Feed each source frame's display interval in order; `take(end)` says how many samples it covers.
    """

    def __init__(self, fps: float, start_k: int = 0):
        self.fps, self.k = float(fps), int(start_k)

    def take(self, end: float) -> int:
        n = 0
        while (self.k + 0.5) / self.fps + EPS < end:  # earlier targets were taken by earlier frames
            self.k += 1
            n += 1
        return n


def check_readable(path) -> Path:
    """Cheap filesystem checks before FFmpeg sees the file, so the reason is precise."""
    p = Path(path)
    if not p.exists():
        raise VideoReadError(path, "open", "file not found")
    if p.is_dir():
        raise VideoReadError(path, "open", "is a directory, not a video file")
    if not os.access(p, os.R_OK):
        raise VideoReadError(path, "open", "permission denied (file is not readable)")
    try:
        with open(p, "rb") as f:
            f.read(1)
    except OSError as e:
        raise VideoReadError(path, "open", f"cannot read file: {e.strerror or e}") from e
    if p.stat().st_size == 0:
        raise VideoReadError(path, "open", "empty file (0 bytes)")
    return p
