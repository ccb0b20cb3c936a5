"""PyAV backend: probing, exact pts by demuxing, and single-pass sampled decoding (see video.py for the rule)."""
from __future__ import annotations

import fractions
import logging

import av
import numpy as np

from egoflow.extract.video_types import Sampler, VideoInfo, VideoReadError, check_readable

log = logging.getLogger(__name__)


def declared_duration(stream, container=None) -> float | None:
    """The video stream's own declared duration in seconds, or None when the file does not say.

    MP4 stores it per stream; Matroska/WebM only as a ``DURATION`` tag of the stream (written by FFmpeg and
    mkvmerge) and a container duration. A container duration counts only when the video is the only stream
    (otherwise it may be the audio's length).
    """
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION") or (stream.metadata or {}).get("duration")
    if tag:
        try:
            h, m, sec = str(tag).split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            pass  # an unparsable tag says nothing
    if container is not None and container.duration is not None and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def check_complete(path, end_s: float, stream, container=None) -> None:
    """Decoding that ends well before the stream's declared duration means a truncated file: an error."""
    declared = declared_duration(stream, container)
    if declared is None:
        return  # nothing to compare with: the decoded length is the truth (recorded by the caller)
    if declared - end_s > max(1.0, 0.01 * declared):
        raise VideoReadError(path, "decode", f"video ends at {end_s:.2f}s but the file declares "
                             f"{declared:.2f}s (truncated file?)")


def open_video(path):
    """(container, video stream) with decoder threading on, or VideoReadError with a precise reason."""
    p = check_readable(path)
    try:
        container = av.open(str(p), metadata_errors="ignore")
    except av.error.PermissionError as e:
        raise VideoReadError(path, "open", "permission denied (file is not readable)") from e
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        raise VideoReadError(path, "open", f"not a readable video file (corrupt or unknown format: {e})") from e
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise VideoReadError(path, "open", f"no video stream (streams: {', '.join(kinds)}; audio-only file?)")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        container.close()
        raise VideoReadError(path, "open", "video codec not supported by this FFmpeg build")
    stream.thread_type = "AUTO"  # frame + slice threads: every source frame must be decoded anyway
    return container, stream


def _rotation(frame) -> int:
    """Clockwise display rotation in {0, 90, 180, 270}; PyAV reports the display matrix counter-clockwise."""
    try:
        ccw = frame.rotation or 0
    except (AttributeError, ValueError):
        ccw = 0
    return int(round(-ccw / 90.0)) % 4 * 90


def probe(path) -> VideoInfo:
    container, stream = open_video(path)
    stream.thread_type = "SLICE"  # frame threads would decode a frame per thread before giving the first one
    try:
        try:
            frame = next(container.decode(stream), None)
        except (av.error.FFmpegError, ValueError) as e:
            raise VideoReadError(path, "probe", f"cannot decode the first frame ({e})") from e
        if frame is None:
            raise VideoReadError(path, "probe", "no decodable video frames")
        rotation = _rotation(frame)
        w, h = frame.width, frame.height
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        avg_fps = float(rate) if rate else 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        num_frames = int(stream.frames or round(duration * avg_fps))
        if num_frames == 1:
            raise VideoReadError(path, "probe", "only 1 frame: a still image, not a video (nothing to sample)")
    finally:
        container.close()
    if rotation in (90, 270):
        w, h = h, w
    return VideoInfo(str(path), "pyav", duration, avg_fps, num_frames, w, h, rotation)


def demux_pts(path) -> tuple[np.ndarray, fractions.Fraction, bool]:
    """(sorted pts int64 [N], time_base, clean) from packets, without decoding. clean=False when a packet lacks
    a pts or is marked discard (then decoder frame i may not be packet i). Raises on <2 frames / truncation."""
    container, stream = open_video(path)
    pts, clean = [], True
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # flush packet at the end
                continue
            if packet.pts is None or packet.is_discard:
                clean = False
                continue
            pts.append(packet.pts)
        tb = stream.time_base
        pts = np.sort(np.asarray(pts, dtype=np.int64))
        if len(pts) < 2:
            raise VideoReadError(path, "decode", f"only {len(pts)} frame(s): a still image, not a video")
        check_complete(path, float((2 * pts[-1] - pts[-2] - pts[0]) * tb), stream, container)
    except (av.error.FFmpegError, ValueError) as e:
        raise VideoReadError(path, "decode", f"cannot read packets after {len(pts)} frames ({e})") from e
    finally:
        container.close()
    return pts, tb, clean


def to_rgb(frame, out_hw, rotation) -> np.ndarray:
    """Resize + convert one decoded frame; the scaler works in the coded orientation, then we rotate."""
    h, w = out_hw
    if rotation in (90, 270):
        h, w = w, h
    arr = frame.to_ndarray(width=w, height=h, format="rgb24", interpolation="BICUBIC")
    if rotation:
        arr = np.rot90(arr, k=-rotation // 90)  # np.rot90 turns counter-clockwise for positive k
    return arr


def read(path, info: VideoInfo, fps: float, out_hw, batch_size: int, start_k: int = 0):
    """Yield (frames uint8 [n, H, W, 3], times float64 [n]) for samples k >= start_k."""
    container, stream = open_video(path)
    tb = stream.time_base or fractions.Fraction(1, 90000)
    num, den = tb.numerator, tb.denominator
    step = int(round(1 / (info.avg_fps * tb))) if info.avg_fps > 0 else 1  # used only when pts are missing
    sampler, skip = Sampler(fps), start_k
    H, W = out_hw
    buf = np.empty((batch_size, H, W, 3), np.uint8)
    tbuf = np.empty(batch_size, np.float64)
    n = nframes = 0
    pts0 = prev = prev_pts = None

    def emit(frame, start_pts, end_pts):
        # Samples covered by `frame` (shown during [start_pts, end_pts)); yields completed batches.
        nonlocal n, skip
        count = sampler.take(((end_pts - pts0) * num) / den)
        if skip:
            dropped = min(skip, count)
            skip, count = skip - dropped, count - dropped
        if count:
            rgb = to_rgb(frame, out_hw, info.rotation)
            centre = ((start_pts + end_pts - 2 * pts0) * num) / (2 * den)
            for _ in range(count):
                buf[n], tbuf[n] = rgb, centre
                n += 1
                if n == batch_size:
                    yield buf[:n].copy(), tbuf[:n].copy()
                    n = 0

    try:
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames, None)
            except (av.error.FFmpegError, ValueError) as e:
                t = 0.0 if prev_pts is None else float((prev_pts - pts0) * tb)
                raise VideoReadError(path, "decode", f"decoding failed after {nframes} frames at {t:.2f}s "
                                     f"(corrupt or truncated file: {e})") from e
            if frame is None:
                break
            p = frame.pts if frame.pts is not None else (prev_pts + step if prev_pts is not None else 0)
            if pts0 is None:
                pts0 = p
            elif p <= prev_pts:  # broken timestamps: keep presentation order strictly increasing
                log.warning("%s: dropping frame with non-increasing pts %s", path, p)
                continue
            if prev is not None:
                yield from emit(prev, prev_pts, p)
            last_step = p - prev_pts if prev_pts is not None else step
            prev, prev_pts, nframes = frame, p, nframes + 1
        if nframes < 2:
            raise VideoReadError(path, "decode", f"only {nframes} decodable frame(s): a still image, not a video")
        end_pts = prev_pts + last_step  # the last frame lasts as long as the one before it
        check_complete(path, float((end_pts - pts0) * tb), stream, container)
        yield from emit(prev, prev_pts, end_pts)
        if n:
            yield buf[:n].copy(), tbuf[:n].copy()
    except VideoReadError as err:
        if n:  # hand over the good frames decoded before the failure, then fail
            yield buf[:n].copy(), tbuf[:n].copy()
        raise err
    finally:
        container.close()
