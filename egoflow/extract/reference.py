"""Frames and pixels the way the EgoVLP / EgoVLPv2 reference loaders make them (recipes name these rules).

Frame rules (which source frames a clip or window is made of; ``vlen`` = frames in the file, index = decode order):

* ``egoclip-cv2`` (EgoMCQ): seconds -> frames at an ASSUMED 30 fps (``int(t * 30)``), F equal parts of
  ``[start_f, end_f)``, the middle of each part, then OpenCV's seek to ``index - 1`` reads frame ``index - 1``
  (frame 0 for index 0); the reference's 600 s chunk files are undone (a frame equal to the chunk boundary reads
  the first frame of the first chunk, as the reference does); clips with fewer than F frames repeat their last.
* ``epic-decord`` (EK-100 MIR): the video's own rate, ``round(fps * start)`` .. ``ceil(fps * end)``, F segments,
  the middle of each (decord reads the exact index).
* ``charades-cv2`` (CharadesEgo): F equal parts of the whole video, middle of each, read at ``index - 1``.
* ``start-end-decord`` (NLQ / MQ features): ``int(dur * rate * F + 1)`` frames spread over ``[start*30,
  end*30)`` (middle of equal parts, exact indices), cut into windows of F frames; a tail shorter than F is
  dropped. The window time is the centre of its frames.

Pixels: the references read videos pre-resized offline to height 256 (``ffmpeg -vf
scale=trunc(oh*a/2)*2:256``); :func:`read_frames` does the same resize in the decoder (libswscale bicubic, the
filter ffmpeg's scale uses) instead of re-encoding. :func:`transform` is the test transform: ``crop256-224`` =
Resize(256) + CenterCrop(256) + Resize(224), ``short224-crop224`` = Resize(224) + CenterCrop(224), all bilinear
without antialias (torchvision 0.14, the references' pin), then ImageNet normalisation, float32.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from egoflow.errors import EgoflowUserError

FRAME_RULES = ("egoclip-cv2", "epic-decord", "charades-cv2", "start-end-decord")
TRANSFORMS = ("crop256-224", "short224-crop224")
ASSUMED_FPS = 30  # the EgoVLP loaders turn seconds into frames at 30 fps whatever the file's rate
CHUNK_FRAMES = 600 * ASSUMED_FPS  # EgoClip/EgoMCQ videos are read from 600 s chunk files


class ShortVideoError(EgoflowUserError, ValueError):
    """A video (or clip) shorter than the recipe's window."""


def _middles(start, end, n: int) -> list[int]:
    """Middle frame of each of n equal integer parts of [start, end) (the references' 'uniform' test sampling)."""
    edges = np.linspace(start=start, stop=end, num=n + 1).astype(int)
    return [int((a + b - 1) // 2) for a, b in zip(edges[:-1], edges[1:])]


def egoclip_indices(start_s: float, end_s: float, frames: int, vlen: int) -> list[int]:
    """EgoMCQ clip -> the ``frames`` source frames the reference shows (repeats included)."""
    start_f, end_f = max(0, int(start_s * ASSUMED_FPS)), max(0, int(end_s * ASSUMED_FPS))
    chunk0 = int(max(start_s, 0.0) // 600)
    chunk1 = int(max(end_s, 0.0) // 600)
    bound_f = int((chunk0 + 1) * 600 * ASSUMED_FPS)
    out = []
    for idx in _middles(start_f, end_f, min(frames, end_f)):
        chunk = chunk1 if idx > bound_f else chunk0
        chunk_len = max(0, min(CHUNK_FRAMES, vlen - chunk * CHUNK_FRAMES))
        local = min(idx % CHUNK_FRAMES, chunk_len)
        shown = max(local - 1, 0)  # cv2: set(POS_FRAMES, i - 1) then read; -1 reads frame 0
        if shown < chunk_len:  # a failed read is skipped by the reference
            out.append(chunk * CHUNK_FRAMES + shown)
    if not out:
        raise ShortVideoError(f"clip [{start_s}, {end_s}] s has no frame inside the video ({vlen} frames)")
    return out + [out[-1]] * (frames - len(out))


def epic_indices(start_s: float, end_s: float, frames: int, fps: float) -> list[int]:
    """EK-100 MIR segment -> ``frames`` indices at the video's own rate."""
    sf, ef = int(np.round(fps * start_s)), int(np.ceil(fps * end_s))
    seg = float(ef - sf - 1) / frames
    out = []
    for i in range(frames):
        a = int(np.round(seg * i) + sf)
        b = min(int(np.round(seg * (i + 1)) + sf), ef)
        out.append((a + b) // 2)
    return out


def charades_indices(frames: int, vlen: int) -> list[int]:
    """Whole CharadesEgo video -> ``frames`` indices (cv2 off-by-one included)."""
    if vlen < frames:
        raise ShortVideoError(f"the video has {vlen} frames, fewer than the recipe's {frames} (the reference "
                              "would zero-fill the rest)")
    return [max(i - 1, 0) for i in _middles(0, vlen, frames)]


def start_end_indices(start_s: float, end_s: float, frames: int, rate: float, vlen: int) -> list[int]:
    """NLQ/MQ clip -> indices of ``frames``-frame windows at ``rate`` windows/s (tail dropped)."""
    n_float = (end_s - start_s) * rate * frames + 1  # the reference passes dur*rate*F and adds 1
    start, end = max(0.0, start_s * ASSUMED_FPS), min(vlen, end_s * ASSUMED_FPS)
    idx = _middles(start, end, int(n_float))
    keep = len(idx) // frames * frames
    if keep == 0:
        raise ShortVideoError(f"clip of {end_s - start_s:.2f} s gives {len(idx)} frame(s), fewer than one window "
                              f"of {frames}")
    return idx[:keep]


def count_frames(path) -> tuple[int, float]:
    """(frames in the file, average fps), from packets (no decoding)."""
    from egoflow.extract import _pyav

    pts, _, _ = _pyav.demux_pts(path)
    return len(pts), _pyav.probe(path).avg_fps


def pre_resize_hw(height: int, width: int, target: int) -> tuple[int, int]:
    """(H, W) of ffmpeg ``scale=trunc(oh*a/2)*2:target``; ``target`` 0 keeps the size."""
    if not target:
        return height, width
    return target, int(target * width / height / 2) * 2


def read_frames(path, indices: list[int], pre_resize: int = 256, batch: int = 64
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Frames at ``indices`` (sorted; repeats allowed) in order, as (uint8 ``[n, H, W, 3]``, indices ``[n]``)
    batches; decoded once, only kept frames converted (libswscale bicubic to the pre-resize size)."""
    from egoflow.extract import _pyav

    want = np.asarray(indices, dtype=np.int64)
    if len(want) and np.any(np.diff(want) < 0):
        raise ValueError("frame indices must be sorted")
    info = _pyav.probe(path)
    out_hw = pre_resize_hw(info.height, info.width, pre_resize)
    container, stream = _pyav.open_video(path)
    frames, idx, j = [], [], 0
    try:
        for i, frame in enumerate(container.decode(stream)):
            if j >= len(want):
                break
            if want[j] != i:
                continue
            if pre_resize and not info.rotation:  # as ffmpeg's scale filter: bicubic in YUV 4:2:0, then RGB
                rgb = frame.reformat(width=out_hw[1], height=out_hw[0], format="yuv420p",
                                     interpolation="BICUBIC").to_ndarray(format="rgb24")
            else:
                rgb = _pyav.to_rgb(frame, out_hw, info.rotation)
            while j < len(want) and want[j] == i:
                frames.append(rgb)
                idx.append(i)
                j += 1
            if len(frames) >= batch:
                yield np.stack(frames), np.asarray(idx)
                frames, idx = [], []
    finally:
        container.close()
    if j < len(want):
        from egoflow.extract.video import VideoReadError

        raise VideoReadError(path, "decode", f"frame {int(want[j])} requested, the video has fewer frames")
    if frames:
        yield np.stack(frames), np.asarray(idx)


def _resize_short(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    oh, ow = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    if (oh, ow) == (h, w):
        return x
    return F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False, antialias=False)


def _center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top:top + size, left:left + size]


def transform(frames: np.ndarray | torch.Tensor, mode: str, mean, std, size: int = 224) -> torch.Tensor:
    """uint8 ``[n, H, W, 3]`` -> float32 ``[n, 3, size, size]`` by the reference test transform ``mode``."""
    if mode not in TRANSFORMS:
        raise ValueError(f"unknown reference transform {mode!r}: use one of {', '.join(TRANSFORMS)}")
    x = torch.as_tensor(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    m = torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    if mode == "short224-crop224":  # EK-100 MIR works on 0..255 values with the mean/std scaled by 255
        x = _center_crop(_resize_short(x, size), size)
        return (x - (m * 255.0).float()) / (s * 255.0).float()
    m, s = m.float(), s.float()
    crop = round(size * 256 / 224)
    x = _resize_short(x / 255.0, crop)
    x = _center_crop(x, crop)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return (x - m) / s


def clips_by_rule(path, spans: list[tuple[float, float]], rule: str, frames: int, pre_resize: int
                  ) -> list[np.ndarray]:
    """uint8 ``[frames, H, W, 3]`` per (start, end) span of one video by a clip-level rule (egoclip-cv2,
    epic-decord, charades-cv2: the span is ignored, the clip is the video); the video is decoded once."""
    vlen, fps = count_frames(path)
    per = []
    for s, e in spans:
        if rule == "egoclip-cv2":
            per.append(egoclip_indices(s, e, frames, vlen))
        elif rule == "epic-decord":
            per.append(epic_indices(s, e, frames, fps))
        elif rule == "charades-cv2":
            per.append(charades_indices(frames, vlen))
        else:
            raise ValueError(f"frame rule {rule!r} is not a clip rule (use egoclip-cv2, epic-decord, charades-cv2)")
        if per[-1][-1] >= vlen:
            raise ShortVideoError(f"{path}: clip [{s}, {e}] s needs frame {per[-1][-1]}, the video has {vlen}")
    got = {}
    for fr, idx in read_frames(path, sorted({i for p in per for i in p}), pre_resize):
        got.update({int(i): f for f, i in zip(fr, idx)})
    return [np.stack([got[i] for i in p]) for p in per]
