"""Clip windows over a stream of sampled frames, for clip-level encoders.

Window j holds sampled frames [j*S, j*S + W). A next window starts only while the previous one has not
reached the last frame (and its start is inside the video), so every frame up to the end is covered and no
window is all padding. A window that runs past the last frame is padded by repeating the last frame; its
time is the centre of its real frames, (t[start] + t[last real]) / 2 - for a full window that is simply the
centre of its first and last frame times. With stride > window the frames between windows are skipped by
design, as with any strided sampling.
"""
from __future__ import annotations

import numpy as np


def window_starts(num_frames: int, window: int, stride: int) -> list[int]:
    """Start index of each window over `num_frames` sampled frames (pure helper; see module docstring)."""
    if num_frames <= 0:
        return []
    starts = [0]
    while starts[-1] + window < num_frames and starts[-1] + stride < num_frames:
        starts.append(starts[-1] + stride)
    return starts


def window_times(times: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Centre time float64 [num_windows] of each window, from sampled frame times [N]."""
    n = len(times)
    return np.array([(times[s] + times[min(s + window, n) - 1]) / 2 for s in window_starts(n, window, stride)],
                    dtype=np.float64)


class WindowPacker:
    """Streams sampled frames in (any batch sizes), hands complete windows out as soon as they exist.

    Keeps at most window + stride frames (views into the caller's batches), so memory does not grow with
    the video length.
    """

    def __init__(self, window: int, stride: int):
        self.window, self.stride = int(window), int(stride)
        self.frames: list[np.ndarray] = []  # frames[i] is sampled frame base + i
        self.times: list[float] = []
        self.base = 0  # index of frames[0]
        self.next_start = 0  # start of the next window to emit
        self.count = 0  # sampled frames seen
        self.prev_start = None  # start of the last window emitted

    def push(self, frames: np.ndarray, times: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """frames uint8 [n, H, W, 3], times [n] -> list of (clip [window, H, W, 3], centre time)."""
        self.frames.extend(frames)
        self.times.extend(float(t) for t in times)
        self.count += len(frames)
        out = []
        # A full window always exists: the previous one ended before its last frame (see window_starts).
        while self.next_start + self.window <= self.count:
            out.append(self._emit(self.next_start, self.window))
        self._trim()
        return out

    def finish(self) -> list[tuple[np.ndarray, float]]:
        """The padded tail windows, by the same rule as window_starts(count, window, stride)."""
        out = []
        while self.count > 0 and self.next_start < self.count and (
                self.prev_start is None or self.prev_start + self.window < self.count):
            out.append(self._emit(self.next_start, self.count - self.next_start))
        self.frames, self.times = [], []
        return out

    def _emit(self, start: int, real: int) -> tuple[np.ndarray, float]:
        i = start - self.base
        frames = self.frames[i:i + real]
        frames = frames + [frames[-1]] * (self.window - real)  # pad by repeating the last real frame
        t = (self.times[i] + self.times[i + real - 1]) / 2
        self.prev_start, self.next_start = start, start + self.stride
        return np.stack(frames), t

    def _trim(self) -> None:
        drop = min(self.next_start, self.count) - self.base
        if drop > 0:
            del self.frames[:drop], self.times[:drop]
            self.base += drop
