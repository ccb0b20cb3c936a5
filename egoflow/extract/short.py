"""Videos shorter than a recipe's window: found up front from container durations (no decoding, no model).

``egoflow extract --recipe R`` refuses them in one line (exit 2, nothing written); with ``--skip-short`` each is
recorded as a failed video of the set (``ExtractConfig.min_duration_s``) and the others are extracted.

The window a recipe needs, in seconds:

* ``start-end-decord`` (NLQ / MQ): ``int(dur * rate * F + 1)`` frames must make one window of F, so
  ``dur >= (F - 1) / (rate * F)`` (16 frames at 1.87 windows/s: 0.50 s).
* egoflow's pts rule (samples at ``(k + 0.5) / fps``): F samples (one for frame-level features) need
  ``dur > (F - 0.5) / fps`` (QFVS, 5 frames at 1 fps: 4.5 s; CLIP at 1.875 fps: 0.27 s).
"""
from __future__ import annotations

from pathlib import Path

from egoflow.errors import EgoflowUserError

SHOWN = 3  # videos named in the one-line error; the rest are counted


class ShortVideosError(EgoflowUserError, ValueError):
    """Inputs shorter than the recipe's window (``--skip-short`` records them as failed instead)."""


def window_seconds(frames: int, fps: float, frame_rule: str = "", window_rate: float = 0.0) -> float:
    """Seconds of video the first window needs (module docstring); ``frames`` 0 = frame-level."""
    f = max(int(frames), 1)
    if frame_rule == "start-end-decord":
        return (f - 1) / (window_rate * f)
    return (f - 0.5) / fps


def describe_window(frames: int, fps: float, frame_rule: str = "", window_rate: float = 0.0) -> str:
    """e.g. ``0.50 s: 16 frames at 1.87 windows/s``."""
    need = window_seconds(frames, fps, frame_rule, window_rate)
    if frame_rule == "start-end-decord":
        return f"{need:.2f} s: {frames} frames at {window_rate:g} windows/s"
    what = f"{frames} frames" if frames > 1 else "one frame"
    return f"{need:.2f} s: {what} at {fps:g} fps"


def probe_duration(path) -> float | None:
    """The container's duration in seconds (PyAV probe; no decoding); None when it cannot be read (extraction
    then records why)."""
    from egoflow.extract.video import probe

    try:
        return float(probe(path).duration_s)
    except Exception:  # noqa: BLE001 - an unreadable file is the extraction's failure to record, not this check's
        return None


def find_short(paths, need_s: float) -> list[tuple[Path, float]]:
    """``[(path, duration_s)]`` of the videos shorter than ``need_s``."""
    out = []
    for p in paths:
        d = probe_duration(p)
        if d is not None and d < need_s:
            out.append((Path(p), d))
    return out


def short_error(short: list[tuple[Path, float]], recipe: str, window: str) -> ShortVideosError:
    """One line: how many, the first few with their durations, the window, the way on."""
    names = ", ".join(f"{p} ({d:.2f} s)" for p, d in short[:SHOWN])
    more = f" and {len(short) - SHOWN} more" if len(short) > SHOWN else ""
    return ShortVideosError(f"{len(short)} video(s) shorter than recipe {recipe}'s window ({window}): {names}{more}; "
                            "nothing written (--skip-short records them as failed and extracts the rest)")


def short_reason(path, cfg) -> str:
    """'' unless ``cfg.min_duration_s`` is set and the video is shorter: then the failure reason to record."""
    need = getattr(cfg, "min_duration_s", 0.0)
    if not need:
        return ""
    d = probe_duration(path)
    if d is None or d >= need:
        return ""
    return f"video lasts {d:.2f} s, shorter than the recipe's window ({need:.2f} s): skipped (--skip-short)"
