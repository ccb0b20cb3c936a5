"""GPU decode backend: NVDEC through torchcodec's CUDA device; frames stay on the GPU into the encoder.

Which source frame each sample takes, and its time, come from the same PyAV demux pass and `sample_times` as
the decord backend (exact integer pts, the pts-centre rule), so the *choice* of frames and the times equal the
CPU backends'. The pixels are NVDEC's, converted to RGB and resized on the GPU (bicubic, antialiased), so they
are close to, not bit-identical with, the CPU path (different YUV->RGB and resize kernels).

torchcodec is optional and imported lazily (``pip install torchcodec``; it needs FFmpeg 4-8 shared libraries
and a CUDA build of torch). `unavailable()` says in one line why this machine cannot use it.
"""
from __future__ import annotations

import numpy as np

from egoflow.errors import EgoflowUserError
from egoflow.extract import _pyav
from egoflow.extract.video_types import VideoInfo, VideoReadError, sample_times

NAME = "torchcodec-cuda"


class GpuDecodeUnavailable(EgoflowUserError, RuntimeError):
    """``--backend torchcodec-cuda --strict`` on a machine that cannot decode on the GPU (exit 2)."""


def unavailable() -> str | None:
    """None when NVDEC decoding through torchcodec works here, else the reason in a few words."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device"
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except ImportError:
        return "torchcodec is not installed (pip install torchcodec)"
    except Exception as e:  # noqa: BLE001 - a missing FFmpeg shared library raises OSError/RuntimeError
        return f"torchcodec cannot load ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
    return None


def resolve(backend: str, strict: bool = False, warn=print) -> str:
    """The reader to use for ``backend``: itself, or "pyav" with a one-line notice when the GPU path is
    unavailable; with ``strict`` that raises GpuDecodeUnavailable instead."""
    if backend != NAME:
        return backend
    why = unavailable()
    if why is None:
        return backend
    if strict:
        raise GpuDecodeUnavailable(f"--backend {NAME}: {why} (--strict: no CPU fallback)")
    warn(f"note: --backend {NAME} unavailable ({why}); decoding on the CPU with PyAV")
    return "pyav"


def _resize(x, out_hw, rotation: int):
    """uint8 [n, 3, h, w] CUDA -> uint8 [n, H, W, 3], display rotation applied (same geometry as to_rgb)."""
    import torch
    import torch.nn.functional as F

    if rotation:
        x = torch.rot90(x, k=-rotation // 90, dims=(2, 3))
    if tuple(x.shape[-2:]) != tuple(out_hw):
        x = F.interpolate(x.float(), size=tuple(out_hw), mode="bicubic", antialias=True, align_corners=False)
        x = x.clamp_(0, 255).round_().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous()


def read(path, info: VideoInfo, fps: float, out_hw, batch_size: int, start_k: int = 0, device: str = "cuda"):
    """Yield (frames uint8 torch [n, H, W, 3] on ``device``, times float64 numpy [n]) for samples k >= start_k."""
    from torchcodec.decoders import VideoDecoder

    pts, tb, clean = _pyav.demux_pts(path)
    if not clean:
        raise VideoReadError(path, "decode", "packets without timestamps: GPU frame indices would be uncertain")
    idx, times = sample_times(pts, 2 * pts[-1] - pts[-2], fps, time_base=tb)
    idx, times = idx[start_k:], times[start_k:]
    try:
        dec = VideoDecoder(str(path), device=device, seek_mode="exact")
    except Exception as e:  # noqa: BLE001 - torchcodec raises RuntimeError/ValueError with FFmpeg's message
        raise VideoReadError(path, "open", f"torchcodec: {str(e).strip()[:300]}") from e
    if dec.metadata.num_frames != len(pts):
        raise VideoReadError(path, "decode", f"torchcodec indexes {dec.metadata.num_frames} frames but the file "
                             f"has {len(pts)} packets")
    # torchcodec >= 0.8 applies the display matrix itself (and says so with metadata.rotation); older ones do not
    rotation = 0 if getattr(dec.metadata, "rotation", None) is not None else info.rotation
    for s in range(0, len(idx), batch_size):
        uniq, inverse = np.unique(idx[s:s + batch_size], return_inverse=True)
        try:
            data = dec.get_frames_at(indices=uniq.tolist()).data  # uint8 [n, 3, h, w] on the GPU
        except Exception as e:  # noqa: BLE001
            raise VideoReadError(path, "decode", f"torchcodec failed near {times[s]:.2f}s: {e}") from e
        frames = _resize(data, out_hw, rotation)
        yield frames[inverse.tolist()], times[s:s + batch_size].copy()
