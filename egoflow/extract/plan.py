"""Profile, then schedule: what an extraction will cost before it runs (``egoflow plan``).

Durations come from the container headers (no decoding). Per-frame costs are *measured* on this machine:
decoding one of the given videos at the target fps (one process, one core) and encoding batches of frames with
the chosen model on the chosen device; or read from a profile saved on another machine (``--profile``, e.g.
written by ``egoflow plan ... --save-profile`` or ``benchmarks/gpu_extract.py`` on a GPU node). Every figure says
where its per-frame cost was measured.

    frames         = sum(duration) x fps
    decode hours   = frames x decode s/frame / 3600          (CPU core-hours)
    encode hours   = frames x encode s/frame / 3600          (device-hours: GPU-hours when measured on a GPU)
    decoders/GPU   = ceil(decode s/frame / encode s/frame)   (decoding processes that keep one encoder busy)
"""
from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path

import numpy as np


def probe_hours(paths: list) -> list[float]:
    """Durations in hours from the container header (cheap: no decoding); 0 for unreadable files."""
    from egoflow.extract.video import probe

    out = []
    for p in paths:
        try:
            out.append(float(probe(p).duration_s) / 3600.0)
        except Exception:  # noqa: BLE001 - a bad file is the extraction's to record, with its reason
            out.append(0.0)
    return out


def make_shards(paths: list, shards: int = 0, shard_hours: float = 0.0, hours: list[float] | None = None
                ) -> list[list]:
    """Split ``paths`` into shards: ``shards`` of equal total duration (``hours`` given) or count, or as many
    as needed for about ``shard_hours`` of video each. Longest-first greedy packing keeps shards balanced."""
    if not paths:
        return []
    if shard_hours and shard_hours > 0:
        if hours is None:
            raise ValueError("shard_hours needs the videos' durations")
        shards = max(1, round(sum(hours) / shard_hours))
    shards = max(1, min(int(shards or 1), len(paths)))
    if hours is None:  # by count: contiguous, so a shard's videos are neighbours in the list
        size = -(-len(paths) // shards)
        return [paths[i:i + size] for i in range(0, len(paths), size)]
    bins: list[list] = [[] for _ in range(shards)]
    load = [0.0] * shards
    for i in sorted(range(len(paths)), key=lambda i: -hours[i]):
        b = min(range(shards), key=load.__getitem__)
        bins[b].append(paths[i])
        load[b] += hours[i]
    return [b for b in bins if b]


def time_decode(path, fps: float, size: int, max_frames: int = 128, decode: str = "sparse") -> float:
    """Wall seconds per *sampled* frame decoding ``path`` at ``fps`` the way extraction does by default: sparse
    decoding (only the frames the samples depend on, identical frames); ``decode="full"`` decodes them all."""
    from egoflow.extract.video import iter_frames

    n, t0 = 0, time.perf_counter()
    for frames, _ in iter_frames(path, fps, size=size, batch_size=32, decode=decode):
        n += len(frames)
        if n >= max_frames:
            break
    if n == 0:
        raise ValueError(f"{path}: no frames decoded at {fps} fps")
    return (time.perf_counter() - t0) / n


def time_encode(encoder, batches: int = 3) -> float:
    """Seconds per frame of ``encoder.encode_frames`` on full batches of random frames (after one warm-up)."""
    s, b = encoder.image_size, encoder.cfg.batch_size
    frames = np.random.default_rng(0).integers(0, 255, (b, s, s, 3), dtype=np.uint8)
    encoder.encode_frames(frames)  # warm-up: allocation, cudnn autotune
    t0 = time.perf_counter()
    for _ in range(batches):
        encoder.encode_frames(frames)
    _sync(encoder)
    return (time.perf_counter() - t0) / (batches * b)


def _sync(encoder) -> None:
    import torch

    if getattr(encoder, "device", None) is not None and encoder.device.type == "cuda":
        torch.cuda.synchronize(encoder.device)


def measure_profile(paths: list, model: str, fps: float, device: str = "auto", precision: str = "auto",
                    batch_size: int = 64) -> dict:
    """Per-frame decode and encode costs measured here (random-init weights cost what trained ones cost)."""
    import torch

    from egoflow.extract.clip import create_encoder

    enc = create_encoder(model, "none", precision, device, batch_size)
    readable = [p for p in paths if Path(p).is_file()]
    if not readable:
        raise ValueError("plan: none of the given videos exists, nothing to time decoding on")
    dev = enc.device
    where = f"cuda ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else \
        f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {"model": model, "fps": fps, "batch_size": batch_size, "precision": str(enc.dtype).replace("torch.", ""),
            "decode_s_per_frame": time_decode(readable[0], fps, enc.image_size),
            "decode_measured_on": f"cpu, 1 process ({Path(readable[0]).name})",
            "encode_s_per_frame": time_encode(enc), "encode_measured_on": where}


def make_plan(videos: list[str], model: str = "ViT-B-32", fps: float = 1.875, workers: int = 1,
              gpus_per_worker: int = 1, profile: str | None = None, save_profile: str | None = None,
              device: str = "auto", precision: str = "auto", batch_size: int = 64, shard_hours: float = 0.0,
              total_hours: float = 0.0) -> dict:
    """The figures ``egoflow plan`` prints (see the module doc); ``total_hours`` scales the probed mix."""
    from egoflow.extract.pipeline import discover_videos

    paths = discover_videos(videos)
    hours = probe_hours(paths)
    probed = sum(hours)
    if probed <= 0:
        raise ValueError("plan: no readable video among the inputs (durations are probed from the files)")
    prof = json.loads(Path(profile).read_text()) if profile else measure_profile(paths, model, fps, device,
                                                                                 precision, batch_size)
    if profile and prof.get("model") != model:
        raise ValueError(f"profile {profile} was measured for model {prof.get('model')!r}, not {model!r}")
    if save_profile:
        Path(save_profile).write_text(json.dumps(prof, indent=1))
    scale = total_hours / probed if total_hours else 1.0
    H = probed * scale
    frames = H * 3600 * fps
    dec_h = frames * prof["decode_s_per_frame"] / 3600
    enc_h = frames * prof["encode_s_per_frame"] / 3600
    gpus = max(1, workers) * max(1, gpus_per_worker)
    per_gpu = math.ceil(prof["decode_s_per_frame"] / prof["encode_s_per_frame"])
    shard_h = shard_hours or max(H / (gpus * 4), 1e-9)  # ~4 shards per GPU: a lost worker costs 1/4 of its share
    layout = make_shards(list(range(len(paths))), shard_hours=shard_h / scale, hours=hours)
    return {"videos": len(paths), "hours": H, "scaled_from_hours": probed if scale != 1.0 else None,
            "fps": fps, "sampled_frames": int(frames), "decode_cpu_hours": dec_h, "encode_device_hours": enc_h,
            "decoders_per_gpu": per_gpu, "gpus": gpus, "shards": len(layout) if scale == 1.0 else
            max(1, round(H / shard_h)), "hours_per_shard": shard_h,
            "wall_hours": max(enc_h / gpus, dec_h / (gpus * per_gpu)), "profile": prof}


def format_plan(p: dict) -> str:
    prof = p["profile"]
    scaled = f" (the probed {p['scaled_from_hours']:.3f} h mix, scaled)" if p["scaled_from_hours"] else ""
    lines = [(f"{p['videos']} video(s), {p['hours']:.2f} h of video{scaled} at {p['fps']:g} fps: "
              f"{p['sampled_frames']:,} sampled frames")]
    lines.append(f"decode : {prof['decode_s_per_frame'] * 1e3:.2f} ms/frame -> {p['decode_cpu_hours']:.1f} CPU "
                 f"core-hours [measured on {prof['decode_measured_on']}]")
    lines.append(f"encode : {prof['encode_s_per_frame'] * 1e3:.2f} ms/frame ({prof['model']}, {prof['precision']}, "
                 f"batch {prof['batch_size']}) -> {p['encode_device_hours']:.1f} device-hours [measured on "
                 f"{prof['encode_measured_on']}]")
    lines.append(f"decoders per GPU to keep it busy: {p['decoders_per_gpu']}")
    lines.append(f"layout : {p['gpus']} GPU(s), {p['shards']} shard(s) of ~{p['hours_per_shard']:.2f} h, "
                 f"~{p['wall_hours']:.1f} h wall-clock")
    return "\n".join(lines)


__all__ = [
    "format_plan",
    "make_plan",
    "make_shards",
    "measure_profile",
    "probe_hours",
    "time_decode",
    "time_encode",
]
