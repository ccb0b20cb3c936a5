"""Video reading: decode, sample at a target fps by presentation timestamps, resize, stream in batches.

Sampling rule (the same for every backend, and the only place egoflow turns video into times):

* Source frame i has presentation time p_i in seconds from the start of the video (the first frame's pts is
  0) and is on screen during [p_i, p_{i+1}). The last frame lasts as long as the frame before it.
* Sampled frame k represents the interval [k/fps, (k+1)/fps). It is the source frame whose display interval
  contains the target t_k = (k + 0.5) / fps; a target exactly on a boundary belongs to the later frame.
* Its time is the CENTRE of that source frame's display interval, (p_i + p_{i+1}) / 2, not t_k: the time
  says which picture we looked at. It is within half a source frame of t_k.
* Targets run while t_k < end of the last frame, so a 10-minute 30 fps video at 1.875 fps gives 1125 frames.
  When fps is above the source rate a source frame is repeated (same pixels, same time).

This is exact for 29.97 fps (30000/1001; times come from integer pts), variable frame rate, and rotated phone
video: rotation metadata (the display matrix) is applied to the pixels and to `size`, so frames come out the
way a player shows them.

Bad input raises `VideoReadError` naming the file, the stage and a reason: missing, unreadable, empty,
not a video, corrupt header, audio-only, a single frame (a still image: no display interval, so no sampling
rule; always an error), and files that stop decoding early. A truncated file yields the frames it could
decode and then raises at the point of failure, so a caller that writes a store entry only after the
iterator is exhausted never marks a partial video complete.

Backends: "pyav" decodes in one pass with FFmpeg threading and converts to RGB (resized) only the frames it
keeps; its memory is one batch of frames, whatever the video length. "decord" takes exact pts from a PyAV
demux pass (no decoding; decord's own timestamps are float32), then decodes batches of the kept indices in
order (never all indices at once: that holds every frame in memory). "auto" tries the backends in
AUTO_ORDER; when one cannot decode the file the next resumes after the frames already yielded - sampling
is deterministic, so nothing is duplicated or lost. Opening is always checked by PyAV first (cheap, and
decord can crash on garbage).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("auto", "decord", "pyav")
# "auto" tries these in order, the next one resuming where the last stopped. PyAV first: on the 10-minute
# 640x480 benchmark it decodes 1.5x faster than decord (one pass, threads, RGB only for kept frames) and its
# memory stays flat, while decord's peak RSS and CPU per frame grow with video length
# (benchmarks/decode_throughput.py).
AUTO_ORDER = ("pyav", "decord")
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
    backend: str  # backend that iter_frames(backend=...) would try first: "decord" or "pyav"
    duration_s: float  # container/stream duration in seconds (metadata; sampling uses decoded pts)
    avg_fps: float  # average frame rate from the container
    num_frames: int  # frame count from the container (estimated from duration when missing)
    width: int  # display width, after rotation
    height: int  # display height, after rotation
    rotation: int  # clockwise degrees applied to the coded picture for display: 0, 90, 180 or 270


def output_size(height: int, width: int, size: int | tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) of output frames. int: shorter side, aspect kept with truncation like torchvision Resize."""
    if size is None:
        return height, width
    if isinstance(size, (int, np.integer)):
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if width <= height:
            return int(size * height / width), int(size)
        return int(size), int(size * width / height)
    h, w = (int(v) for v in size)
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return h, w


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


def _check_args(fps, batch_size, backend):
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def probe(path, backend: str = "auto") -> VideoInfo:
    """Open the file with PyAV, check it has a decodable video stream, and read its metadata."""
    from egoflow.extract import _decord, _pyav

    _check_args(1.0, 1, backend)
    info = _pyav.probe(path)
    if backend == "decord" or (backend == "auto" and AUTO_ORDER[0] == "decord" and _decord.available()):
        info.backend = "decord"
    return info


def iter_frames(path, fps: float, size: int | tuple[int, int] | None = None, batch_size: int = 32,
                backend: str = "auto") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Sampled frames in batches: (frames uint8 [n, H, W, 3] RGB, times float64 [n] seconds), n <= batch_size.

    size: int = shorter side after an aspect-preserving resize (CLIP's Resize(224)); (H, W) = exact; None =
    native display size. The file is probed now (bad input raises VideoReadError here); decoding is lazy.
    """
    _check_args(fps, batch_size, backend)
    info = probe(path, backend)
    out_hw = output_size(info.height, info.width, size)
    return _frames(str(path), info, float(fps), out_hw, int(batch_size), backend)


def _frames(path, info, fps, out_hw, batch_size, backend):
    from egoflow.extract import _decord, _pyav

    readers = {"pyav": lambda k: _pyav.read(path, info, fps, out_hw, batch_size, start_k=k),
               "decord": lambda k: _decord.read(path, info, fps, out_hw, batch_size, start_k=k)}
    order = [b for b in AUTO_ORDER if b == "pyav" or _decord.available()] if backend == "auto" else [backend]
    done, first = 0, None  # samples already yielded: the next backend resumes after them (same rule)
    for name in order:
        it = readers[name](done)
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except (VideoReadError, _decord.DecordFailed) as e:
                err = e if isinstance(e, VideoReadError) else VideoReadError(path, "decode", f"decord: {e}")
                first = first or err
                log.info("%s: %s failed after %d frames (%s)", path, name, done, e)
                break
            yield item
            done += len(item[0])
    raise first


def iter_windows(path, fps: float, window: int, stride: int, size: int | tuple[int, int] | None = None,
                 batch_size: int = 8, backend: str = "auto") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Clip windows: (clips uint8 [n, window, H, W, 3], times float64 [n] = centre of each window).

    Window j holds sampled frames [j*stride, j*stride + window). Windows continue until one reaches the last
    sampled frame; a last window that runs past the end is padded by repeating the last frame, and its time
    is the centre of its real frames (see `windows.window_starts`). Nothing at the tail is dropped.
    """
    from egoflow.extract.windows import WindowPacker

    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    frames = iter_frames(path, fps, size=size, batch_size=max(32, window), backend=backend)

    def gen():
        packer = WindowPacker(window, stride)
        clips, times = [], []
        for batch, btimes in frames:
            for clip, t in packer.push(batch, btimes):
                clips.append(clip)
                times.append(t)
                if len(clips) == batch_size:
                    yield np.stack(clips), np.asarray(times, dtype=np.float64)
                    clips, times = [], []
        for clip, t in packer.finish():
            clips.append(clip)
            times.append(t)
            if len(clips) == batch_size:
                yield np.stack(clips), np.asarray(times, dtype=np.float64)
                clips, times = [], []
        if clips:
            yield np.stack(clips), np.asarray(times, dtype=np.float64)

    return gen()


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
