"""Profile, then schedule: what an extraction will cost before it runs (``egoflow plan``).

Durations, resolutions and codecs come from the container headers (no decoding). Per-frame costs are *measured*
on this machine: decoding costs once per (resolution, codec) group of the given videos (the group's longest video
at the target fps, one process, one core: :func:`probe_decode_cost`), weighted by each group's hours; encoding
batches of frames with the chosen model on the chosen device. Or they are read from a profile saved on another
machine (``--profile``, written by ``egoflow plan ... --save-profile`` or ``benchmarks/gpu_extract.py`` on a GPU
node). Every figure says whether it was measured here, read from a profile, derived from those, given or assumed;
GPU figures derived from an encode measured on a CPU say so.

    frames         = sum(duration) x fps
    decode s/frame = sum over groups (hours_g x decode s/frame_g) / hours
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

from egoflow.checks import read_json


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


def video_group(path) -> str:
    """``"<width>x<height> <codec>"`` of a video from its container header (no decoding): videos of one group
    decode at about the same cost per frame."""
    import av

    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        return f"{cc.width}x{cc.height} {cc.name}"


def probe_decode_cost(path, fps: float, size: int = 224, max_frames: int = 128, decode: str = "sparse") -> float:
    """Wall milliseconds per *sampled* frame decoding ``path`` at ``fps`` as extraction does by default (sparse:
    only the frames the samples depend on, the frames identical; ``decode="full"`` decodes every frame),
    resized to ``size``, in this process: the one decode probe of ``egoflow plan`` and the GPU check script."""
    from egoflow.extract.video import iter_frames

    n, t0 = 0, time.perf_counter()
    for frames, _ in iter_frames(path, fps, size=size, batch_size=32, decode=decode):
        n += len(frames)
        if n >= max_frames:
            break
    if n == 0:
        raise ValueError(f"{path}: no frames decoded at {fps} fps")
    return (time.perf_counter() - t0) * 1e3 / n


def decode_groups(paths: list, hours: list[float], fps: float, size: int, probe=probe_decode_cost) -> list[dict]:
    """One decode probe per (resolution, codec) group, on the group's longest video: ``[{"group", "videos",
    "hours", "probed" (file name), "ms_per_frame"}]`` sorted by group. Unreadable videos (0 h) are left out."""
    groups: dict[str, list] = {}
    for p, h in zip(paths, hours):
        if h > 0:
            groups.setdefault(video_group(p), []).append((p, h))
    out = []
    for key, members in sorted(groups.items()):
        longest = max(members, key=lambda m: m[1])[0]
        out.append({"group": key, "videos": len(members), "hours": sum(h for _, h in members),
                    "probed": Path(longest).name, "ms_per_frame": probe(longest, fps, size)})
    return out


def weighted_decode_s(groups: list[dict]) -> float:
    """Seconds per sampled frame over the whole set: each group's cost weighted by its hours."""
    total = sum(g["hours"] for g in groups)
    return sum(g["hours"] * g["ms_per_frame"] for g in groups) / total / 1e3


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
                    batch_size: int = 64, hours: list[float] | None = None) -> dict:
    """Per-frame decode (per group, hours-weighted) and encode costs measured here (random-init weights cost what
    trained ones cost)."""
    import torch

    from egoflow.extract.clip import create_encoder

    hours = probe_hours(paths) if hours is None else hours
    if not any(h > 0 for h in hours):
        raise ValueError("plan: no readable video among the inputs, nothing to time decoding on")
    enc = create_encoder(model, "none", precision, device, batch_size)
    warm = next(p for p, h in zip(paths, hours) if h > 0)
    probe_decode_cost(warm, fps, enc.image_size, max_frames=8)  # unmeasured: the first decode loads the codec libs
    groups = decode_groups(paths, hours, fps, enc.image_size)
    dev = enc.device
    where = f"cuda ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else \
        f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {"model": model, "fps": fps, "batch_size": batch_size, "precision": str(enc.dtype).replace("torch.", ""),
            "decode_s_per_frame": weighted_decode_s(groups), "decode_groups": groups,
            "decode_measured_on": f"cpu, 1 process, {len(groups)} probe(s): one per resolution+codec group",
            "encode_s_per_frame": time_encode(enc), "encode_measured_on": where, "encode_device": dev.type}


def _encode_on_cpu(prof: dict) -> bool:
    return prof.get("encode_device", str(prof.get("encode_measured_on", ""))).startswith("cpu")


def _check_inputs(videos: list[str]) -> None:
    missing = [v for v in videos if not Path(v).exists()]
    if missing:
        raise FileNotFoundError(f"{missing[0]} does not exist" + (f" (and {len(missing) - 1} more given "
                                                                         "paths)" if len(missing) > 1 else ""))


def make_plan(videos: list[str], model: str = "ViT-B-32", fps: float = 1.875, workers: int = 1,
              gpus_per_worker: int = 1, profile: str | None = None, save_profile: str | None = None,
              device: str = "auto", precision: str = "auto", batch_size: int = 64, shard_hours: float = 0.0,
              total_hours: float = 0.0) -> dict:
    """The figures ``egoflow plan`` prints (see the module doc), with ``sources``: where each comes from;
    ``total_hours`` scales the probed mix."""
    from egoflow.extract.pipeline import discover_videos

    _check_inputs(videos)
    paths = discover_videos(videos)
    hours = probe_hours(paths)
    probed = sum(hours)
    if probed <= 0:
        raise ValueError("plan: no readable video among the inputs (durations are probed from the files)")
    prof = read_json(profile) if profile else measure_profile(paths, model, fps, device, precision, batch_size,
                                                              hours)
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
    cost = f"profile {Path(profile).name}" if profile else "measured here"
    cpu_enc = _encode_on_cpu(prof)
    sources = {"hours": "measured here (container headers)" + (", scaled to --hours (given)" if scale != 1 else ""),
               "sampled_frames": "derived (hours x fps)",
               "decode_s_per_frame": f"{cost} ({prof.get('decode_measured_on', 'cpu')})",
               "encode_s_per_frame": f"{cost} ({prof.get('encode_measured_on', '?')})",
               "decode_cpu_hours": "derived (frames x decode cost)",
               "encode_device_hours": "derived (frames x encode cost)" + (", on the CPU the encode was measured on: "
                                                                           "not GPU-hours" if cpu_enc else ""),
               "decoders_per_gpu": "derived (decode / encode cost)" + (
                   " from a CPU encode: a GPU encodes faster and needs more decoders; measure on the GPU node "
                   "(--save-profile there, --profile here)" if cpu_enc else ""),
               "gpus": "given (--workers x --gpus-per-worker)",
               "hours_per_shard": "given (--shard-hours)" if shard_hours else "assumed (4 shards per GPU)",
               "wall_hours": "derived" + (", assuming each GPU encodes at the CPU rate measured" if cpu_enc else "")}
    return {"videos": len(paths), "hours": H, "scaled_from_hours": probed if scale != 1.0 else None,
            "fps": fps, "sampled_frames": int(frames), "decode_cpu_hours": dec_h, "encode_device_hours": enc_h,
            "decoders_per_gpu": per_gpu, "gpus": gpus, "shards": len(layout) if scale == 1.0 else
            max(1, round(H / shard_h)), "hours_per_shard": shard_h,
            "wall_hours": max(enc_h / gpus, dec_h / (gpus * per_gpu)), "profile": prof, "sources": sources}


def sig(x: float, digits: int = 3) -> str:
    """``x`` with at least ``digits`` significant digits and no exponent: 0.000214, 3.21, 1234."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    return f"{x:.{max(0, digits - 1 - math.floor(math.log10(abs(x))))}f}"


def format_plan(p: dict) -> str:
    prof, src = p["profile"], p["sources"]
    scaled = f" (the probed {sig(p['scaled_from_hours'])} h mix, scaled)" if p["scaled_from_hours"] else ""
    cpu_enc = _encode_on_cpu(prof)
    unit = "CPU-hours (encode measured on a CPU)" if cpu_enc else "device-hours"
    lines = [f"{p['videos']} video(s), {sig(p['hours'])} h of video{scaled} at {p['fps']:g} fps: "
             f"{p['sampled_frames']:,} sampled frames  [hours: {src['hours']}; frames: {src['sampled_frames']}]",
             f"decode : {sig(prof['decode_s_per_frame'] * 1e3)} ms/frame -> {sig(p['decode_cpu_hours'])} CPU "
             f"core-hours  [cost: {src['decode_s_per_frame']}; hours: derived]"]
    for g in prof.get("decode_groups", []):
        lines.append(f"         {g['group']}: {g['videos']} video(s), {sig(g['hours'])} h, {sig(g['ms_per_frame'])} "
                     f"ms/frame (probed on {g['probed']})")
    lines.append(f"encode : {sig(prof['encode_s_per_frame'] * 1e3)} ms/frame ({prof['model']}, {prof['precision']}, "
                 f"batch {prof['batch_size']}) -> {sig(p['encode_device_hours'])} {unit}  [cost: "
                 f"{src['encode_s_per_frame']}; hours: derived]")
    lines.append(f"decoders per GPU to keep it busy: {p['decoders_per_gpu']}  [{src['decoders_per_gpu']}]")
    lines.append(f"layout : {p['gpus']} GPU(s) [given], {p['shards']} shard(s) of ~{sig(p['hours_per_shard'])} h "
                 f"[{src['hours_per_shard']}], ~{sig(p['wall_hours'])} h wall-clock [{src['wall_hours']}]")
    return "\n".join(lines)


__all__ = [
    "decode_groups",
    "format_plan",
    "make_plan",
    "make_shards",
    "measure_profile",
    "probe_decode_cost",
    "probe_hours",
    "time_encode",
    "video_group",
    "weighted_decode_s",
]
