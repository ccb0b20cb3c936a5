"""decord backend: exact pts from a PyAV demux pass, pixels from decord in ordered batches (see video.py)."""
from __future__ import annotations

import numpy as np

from egoflow.extract import _pyav
from egoflow.extract.video_types import VideoInfo, sample_times


class DecordFailed(Exception):
    """decord could not open or decode the file; backend "auto" continues with PyAV."""


def available() -> bool:
    try:
        import decord  # noqa: F401
    except Exception:  # ImportError, or a broken shared library
        return False
    return True


def _reader(path, out_hw):
    import decord

    h, w = out_hw
    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), width=w, height=h, num_threads=0)
    except Exception as e:  # DECORDError / RuntimeError with FFmpeg's message
        raise DecordFailed(f"cannot open: {str(e).strip()[:300]}") from e


def _first_frame_pyav(path, out_hw, rotation):
    container, stream = _pyav.open_video(path)
    try:
        return _pyav.to_rgb(next(container.decode(stream)), out_hw, rotation).astype(np.int16)
    finally:
        container.close()


def _open(path, info: VideoInfo, out_hw):
    """(VideoReader, rotation left for us to apply). decord builds differ: some apply the display matrix,
    some ignore it, so for rotated files we compare decord's first frame with PyAV's and pick what matches."""
    if info.rotation == 0:
        return _reader(path, out_hw), 0
    ref = _first_frame_pyav(path, out_hw, info.rotation)
    h, w = out_hw
    for size, todo in (((h, w), 0), ((w, h) if info.rotation in (90, 270) else (h, w), info.rotation)):
        vr = _reader(path, size)
        try:
            frame = vr[0].asnumpy()
        except Exception as e:
            raise DecordFailed(f"cannot decode the first frame: {str(e).strip()[:300]}") from e
        if todo:
            frame = np.rot90(frame, k=-todo // 90)
        if frame.shape == ref.shape and np.abs(frame.astype(np.int16) - ref).mean() < 8:
            vr.seek(0)
            return vr, todo
    raise DecordFailed(f"decord's frames do not match the {info.rotation} degree display rotation")


def read(path, info: VideoInfo, fps: float, out_hw, batch_size: int, start_k: int = 0):
    """Yield (frames uint8 [n, H, W, 3], times float64 [n]) for samples k >= start_k; raises DecordFailed, or
    VideoReadError for a broken file (found by the demux pass)."""
    if not available():
        raise DecordFailed("decord is not installed")
    pts, tb, clean = _pyav.demux_pts(path)
    if not clean:
        raise DecordFailed("packets without timestamps or marked discard: decord's frame order is uncertain")
    idx, times = sample_times(pts, 2 * pts[-1] - pts[-2], fps, time_base=tb)
    idx, times = idx[start_k:], times[start_k:]
    vr, rotation = _open(path, info, out_hw)
    if len(vr) != len(pts):
        raise DecordFailed(f"decord indexes {len(vr)} frames but the file has {len(pts)} packets")
    for s in range(0, len(idx), batch_size):
        # decord seeks forward within the GOP for sorted indices, so ordered batches decode each frame once
        uniq, inverse = np.unique(idx[s:s + batch_size], return_inverse=True)
        try:
            arr = vr.get_batch(uniq.tolist()).asnumpy()
        except Exception as e:
            raise DecordFailed(f"decoding failed near {times[s]:.2f}s: {str(e).strip()[:300]}") from e
        if rotation:
            arr = np.rot90(arr, k=-rotation // 90, axes=(1, 2))
        if arr.shape[1:] != (*out_hw, 3):  # seen with some scale factors in decord 0.6
            raise DecordFailed(f"decord returned frames of shape {arr.shape[1:]}, expected {(*out_hw, 3)}")
        yield np.ascontiguousarray(arr[inverse]), times[s:s + batch_size].copy()
