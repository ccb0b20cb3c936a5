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
keeps; its memory is one batch of frames, whatever the video length. With decode="sparse" (the default) it
decodes only the frames the samples depend on (sparse.py), with bit-identical frames and times.
"torchcodec-cuda" decodes with NVDEC and yields CUDA tensors (_torchcodec.py; PyAV when unavailable).
"decord" takes exact pts from a PyAV demux pass (no decoding; decord's own timestamps are float32), then
decodes batches of the kept indices in order (never all indices at once: that holds every frame in memory).
"auto" tries the backends in AUTO_ORDER; when one cannot decode the file the next resumes after the frames
already yielded - sampling is deterministic, so nothing is duplicated or lost. Opening is always checked by
PyAV first (cheap, and decord can crash on garbage).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from egoflow.extract import _decord, _pyav, _torchcodec, sparse
from egoflow.extract.video_types import (
    EPS,
    Sampler,
    VideoInfo,
    VideoReadError,
    check_readable,
    num_samples,
    sample_times,
)

log = logging.getLogger(__name__)

BACKENDS = ("auto", "decord", "pyav", _torchcodec.NAME)  # torchcodec-cuda: NVDEC, frames stay on the GPU
# "auto" tries these in order, the next one resuming where the last stopped. PyAV first: on the 10-minute
# 640x480 benchmark it decodes 1.5x faster than decord (one pass, threads, RGB only for kept frames) and its
# memory stays flat, while decord's peak RSS and CPU per frame grow with video length
# (benchmarks/decode_throughput.py).
AUTO_ORDER = ("pyav", "decord")
# PyAV decoding: "sparse" decodes only the frames the samples depend on (sparse.py; bit-identical to "full",
# which decodes every frame). decord always decodes its own way.
DECODES = ("sparse", "full")


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


def _check_args(fps, batch_size, backend, decode="sparse"):
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if decode not in DECODES:
        raise ValueError(f"decode must be one of {DECODES}, got {decode!r}")


def probe(path, backend: str = "auto") -> VideoInfo:
    """Open the file with PyAV, check it has a decodable video stream, and read its metadata."""
    _check_args(1.0, 1, backend)
    info = _pyav.probe(path)
    if backend == "decord" or (backend == "auto" and AUTO_ORDER[0] == "decord" and _decord.available()):
        info.backend = "decord"
    elif backend == _torchcodec.NAME:
        info.backend = backend
    return info


def iter_frames(path, fps: float, size: int | tuple[int, int] | None = None, batch_size: int = 32,
                backend: str = "auto", decode: str = "sparse", notes: list | None = None
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Sampled frames in batches: (frames uint8 [n, H, W, 3] RGB, times float64 [n] seconds), n <= batch_size.

    size: int = shorter side after an aspect-preserving resize (CLIP's Resize(224)); (H, W) = exact; None =
    native display size. The file is probed now (bad input raises VideoReadError here); decoding is lazy.
    decode: "sparse" (PyAV decodes only what the samples need; same frames) or "full". notes: when given,
    gets one line per reason the sparse path decoded a stream fully (for the run summary).
    """
    _check_args(fps, batch_size, backend, decode)
    info = probe(path, backend)
    out_hw = output_size(info.height, info.width, size)
    return _frames(str(path), info, float(fps), out_hw, int(batch_size), backend, decode, notes)


def _frames(path, info, fps, out_hw, batch_size, backend, decode="sparse", notes=None):
    if backend == _torchcodec.NAME:
        backend = _gpu_or_pyav()
        if backend == _torchcodec.NAME:
            yield from _torchcodec.read(path, info, fps, out_hw, batch_size)
            return
    pyav = sparse.read if decode == "sparse" else _pyav.read
    kw = {"notes": notes} if decode == "sparse" else {}
    readers = {"pyav": lambda k: pyav(path, info, fps, out_hw, batch_size, start_k=k, **kw),
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


_GPU_FALLBACK: list = []  # the notice is given once per process


def _gpu_or_pyav() -> str:
    """torchcodec-cuda when usable, else pyav with a one-line notice (once)."""
    warned = bool(_GPU_FALLBACK)
    backend = _torchcodec.resolve(_torchcodec.NAME, warn=lambda m: None if warned else log.warning(m))
    _GPU_FALLBACK.append(backend)
    return backend


def iter_windows(path, fps: float, window: int, stride: int, size: int | tuple[int, int] | None = None,
                 batch_size: int = 8, backend: str = "auto", decode: str = "sparse"
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Clip windows: (clips uint8 [n, window, H, W, 3], times float64 [n] = centre of each window).

    Window j holds sampled frames [j*stride, j*stride + window). Windows continue until one reaches the last
    sampled frame; a last window that runs past the end is padded by repeating the last frame, and its time
    is the centre of its real frames (see `windows.window_starts`). Nothing at the tail is dropped.
    """
    from egoflow.extract.windows import WindowPacker

    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    frames = iter_frames(path, fps, size=size, batch_size=max(32, window), backend=backend, decode=decode)

    def gen():
        packer = WindowPacker(window, stride)
        clips, times = [], []
        for batch, btimes in frames:
            if not isinstance(batch, np.ndarray):  # torchcodec-cuda: windows are stacked on the host
                batch = batch.cpu().numpy()
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


# the shared types are re-exported: callers import them from here as before
__all__ = ["AUTO_ORDER", "BACKENDS", "DECODES", "EPS", "Sampler", "VideoInfo", "VideoReadError", "check_readable",
           "iter_frames", "iter_windows", "num_samples", "output_size", "probe", "sample_times"]
