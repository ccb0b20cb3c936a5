"""GPU check: encode throughput per model/precision/batch, decode throughput per CPU core, decoders per GPU.

    python benchmarks/gpu_extract.py                       # on a CUDA machine: ViT-B-32/B-16/L-14, fp16+bf16,
                                                           # batch 32..256 (a few minutes)
    python benchmarks/gpu_extract.py --quick --device cpu  # the CPU path (tiny model), what the test runs
    python benchmarks/gpu_extract.py --profiles-dir prof/  # also write one `egoflow plan --profile` JSON per model

Weights are random (throughput does not depend on them). Decoding is timed on a generated 640x480 h264 video
(~1.6 Mbit/s, decodes like real 480p) at the target fps in one process; run it with ``--video`` on a real
file of your dataset for your own figure. decoders/GPU = ceil(encode frames/s / decode frames/s per core).

Decode backends (last table): for each of ``pyav`` (CPU, sparse decoding) and ``torchcodec-cuda`` (NVDEC,
frames stay on the GPU into the encoder) decode-only, encode-only (frames already where that backend leaves
them) and end-to-end (decode -> encode, no store) sampled frames/s with the first model at its best batch. A
backend this machine cannot run is listed with the reason (torchcodec-cuda without CUDA/torchcodec/FFmpeg).
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["ViT-B-32", "ViT-B-16", "ViT-L-14"])
    ap.add_argument("--precisions", nargs="+", default=["fp16", "bf16"])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--fps", type=float, default=1.875)
    ap.add_argument("--video", default=None, help="time decoding on this file (default: a generated 480p video)")
    ap.add_argument("--quick", action="store_true", help="tiny model, fp32, batch 8/16: the CPU path")
    ap.add_argument("--json", default=None, help="write every figure here")
    ap.add_argument("--profiles-dir", default=None, help="write <model>.json profiles for `egoflow plan`")
    a = ap.parse_args(argv)
    if a.quick:
        a.models, a.precisions, a.batches = ["egoflow-tiny-ViT"], ["fp32"], [8, 16]

    import torch

    from egoflow.extract.clip import create_encoder
    from egoflow.extract.plan import probe_decode_cost, time_encode

    with tempfile.TemporaryDirectory() as tmp:
        video = a.video
        if video is None:
            from egoflow.datasets.synthetic.videos import make_benchmark_video

            video = str(Path(tmp) / "bench.mp4")
            make_benchmark_video(video, minutes=0.5 if not a.quick else 0.1)
        torch.set_num_threads(1)  # one decoder = one core; encoding below gets the threads back
        dec = {s: probe_decode_cost(video, a.fps, s, max_frames=256) / 1e3 for s in (224, 336)}  # s/frame
        torch.set_num_threads(max(1, torch.get_num_threads()))
    rows, best = [], {}
    for model in a.models:
        for prec in a.precisions:
            for b in a.batches:
                try:
                    enc = create_encoder(model, "none", prec, a.device, b)
                    s = time_encode(enc, batches=3)
                except (RuntimeError, ValueError) as e:  # e.g. out of memory at batch 256 for ViT-L-14
                    print(f"{model:18s} {prec:5s} batch {b:4d}: failed ({str(e)[:80]})")
                    continue
                dps = 1 / dec[224 if enc.image_size <= 224 else 336]
                row = {"model": model, "precision": prec, "batch": b, "device": str(enc.device),
                       "encode_fps": 1 / s, "decode_fps_per_core": dps, "decoders_per_gpu": math.ceil((1 / s) / dps)}
                rows.append(row)
                print(f"{model:18s} {prec:5s} batch {b:4d} on {enc.device}: encode {1 / s:8.1f} frames/s | decode "
                      f"{dps:6.1f} sampled frames/s per core | decoders per GPU {row['decoders_per_gpu']}")
                if model not in best or row["encode_fps"] > best[model][0]["encode_fps"]:
                    best[model] = (row, s, enc, 1 / dps)
                del enc
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() and "cuda" in str(a.device) + "auto" else \
        "cpu"
    backends = []
    if best:
        row = next(iter(best.values()))[0]
        with tempfile.TemporaryDirectory() as tmp:
            video = a.video or make_video_for(Path(tmp) / "bench.mp4", 0.5 if not a.quick else 0.1)
            backends = backend_rows(video, a.fps, row, a.device)
    out = {"measured_on": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "fps": a.fps, "video": a.video or
           "generated 640x480 h264", "decode_s_per_frame": {str(k): v for k, v in dec.items()}, "rows": rows,
           "backends": backends}
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    if a.profiles_dir:
        Path(a.profiles_dir).mkdir(parents=True, exist_ok=True)
        for model, (row, s, _enc, d) in best.items():
            prof = {"model": model, "fps": a.fps, "batch_size": row["batch"], "precision": row["precision"],
                    "decode_s_per_frame": d, "decode_measured_on": "cpu, 1 process (gpu_extract.py)",
                    "encode_s_per_frame": s, "encode_measured_on": f"{row['device']} ({name})"}
            Path(a.profiles_dir, f"{model}.json").write_text(json.dumps(prof, indent=1))
    return out


def make_video_for(path: Path, minutes: float) -> str:
    from egoflow.datasets.synthetic.videos import make_benchmark_video

    make_benchmark_video(path, minutes=minutes)
    return str(path)


def backend_rows(video: str, fps: float, row: dict, device: str) -> list[dict]:
    """Decode, encode and end-to-end sampled frames/s per decode backend (see the module doc)."""
    import torch

    from egoflow.extract import _torchcodec
    from egoflow.extract.clip import create_encoder
    from egoflow.extract.video import iter_frames

    enc = create_encoder(row["model"], "none", row["precision"], device, row["batch"])

    def sync():
        if enc.device.type == "cuda":
            torch.cuda.synchronize(enc.device)

    def run(backend, encode):
        n, t0 = 0, time.perf_counter()
        for frames, _ in iter_frames(video, fps, size=enc.image_size, batch_size=row["batch"], backend=backend):
            n += len(frames)
            if encode:
                enc.encode_frames(frames)
        sync()
        return n / (time.perf_counter() - t0)

    out = []
    for backend in ("pyav", _torchcodec.NAME):
        why = _torchcodec.unavailable() if backend == _torchcodec.NAME else None
        if why:
            out.append({"backend": backend, "unavailable": why})
            print(f"{backend:16s}: not measured ({why})")
            continue
        batch = next(iter_frames(video, fps, size=enc.image_size, batch_size=row["batch"], backend=backend))[0]
        enc.encode_frames(batch)  # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(3):
            enc.encode_frames(batch)
        sync()
        r = {"backend": backend, "decode_fps": run(backend, False), "encode_fps": 3 * len(batch) /
             (time.perf_counter() - t0), "end_to_end_fps": run(backend, True)}
        out.append(r)
        print(f"{backend:16s}: decode {r['decode_fps']:8.1f} | encode {r['encode_fps']:8.1f} | end to end "
              f"{r['end_to_end_fps']:8.1f} sampled frames/s ({row['model']}, {row['precision']}, batch "
              f"{row['batch']}, {enc.device})")
    return out


if __name__ == "__main__":
    main()
