"""Extraction throughput: egoflow end to end vs its decode/encode bound vs a naive research loop, in one run.

    python benchmarks/extract_throughput.py [--minutes 10] [--rss-minutes 10,60] [--workdir bench_out]

On a generated 640x480 30 fps h264 video (keyframes every 8 s), sampling 1.875 fps with ViT-B-32 prints:
(a) decode-only sampled frames/s, (b) encode-only frames/s at the pipeline's precision and batch,
(c) egoflow end to end, (d) a naive loop (PyAV decode keeping the sampled frames, PIL -> open_clip's own
preprocess -> fp32 model, batch 1, one .npy per frame). Decode and encode share the cores, so the bound is
1/(1/a + 1/b); targets: c >= 0.85 x bound and c >= 3 x d, features of c and d agree (cosine >= 0.99, same count,
times within half a source frame). Then peak RSS of whole extraction runs on a 10- and a 60-minute video.
The encoder is randomly initialised (no weights here): speed and agreement do not depend on the weights.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FPS = 1.875


def make(workdir: Path, minutes: float, base_minutes: float | None = None) -> Path:
    """The benchmark video; a multiple of ``base_minutes`` is that video remuxed n times (no re-encoding)."""
    import importlib.util

    from egoflow.datasets.synthetic.videos import make_benchmark_video

    path = workdir / f"bench_{minutes:g}min.mp4"
    if path.exists():
        return path
    t0 = time.perf_counter()
    if base_minutes and minutes > base_minutes and minutes % base_minutes == 0:
        spec = importlib.util.spec_from_file_location("decode_throughput",
                                                      Path(__file__).parent / "decode_throughput.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.remux_repeat(make(workdir, base_minutes), path, int(minutes // base_minutes))
    else:
        make_benchmark_video(path, minutes=minutes)  # the same kind of video as benchmarks/decode_throughput.py
    print(f"generated {path} in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def naive(path: Path, model_name: str, out_dir: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """What research code usually does: decode everything, PIL + open_clip preprocess, fp32, batch 1, .npy."""
    import av
    import open_clip
    import torch

    torch.manual_seed(0)  # same random init as egoflow's encoder
    model, _, preprocess = open_clip.create_model_and_transforms(model_name)
    model.eval()
    t0 = time.perf_counter()
    feats, times, k = [], [], 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        dur = 1.0 / float(s.average_rate)
        first = None
        for frame in c.decode(s):
            t = float(frame.pts * s.time_base)
            first = t if first is None else first
            t -= first
            # target (k+0.5)/fps falls in this frame's display interval; a target exactly on a boundary
            # (at 1.875 fps from 30 fps every target is) goes to the later frame, EPS absorbing float rounding
            while (k + 0.5) / FPS < t + dur - 1e-6:
                if (k + 0.5) / FPS >= t - 1e-6:
                    with torch.no_grad():
                        f = model.encode_image(preprocess(frame.to_image()).unsqueeze(0))
                    f = torch.nn.functional.normalize(f, dim=-1)[0].numpy()
                    np.save(out_dir / f"{k:06d}.npy", f)
                    feats.append(f)
                    times.append(t + dur / 2)
                k += 1
    return np.stack(feats), np.array(times), time.perf_counter() - t0


def peak_rss_of_extract(path: Path, model: str) -> float:
    """Peak RSS (MiB) of a fresh process extracting ``path`` (the whole CLI run)."""
    with tempfile.TemporaryDirectory() as d:
        code = ("import resource,sys; from egoflow.cli import main; rc = main(sys.argv[1:]); "
                "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", code, "extract", str(path), "--store", f"{d}/s.zarr",
                              "--model", model, "--fps", str(FPS), "--quiet"], capture_output=True, text=True)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RSS")]
        if out.returncode != 0 or not line:
            raise RuntimeError(out.stdout + out.stderr)
        return int(line[0].split()[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rss-minutes", default="10,60", help="video lengths for the peak-RSS comparison ('' skips)")
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workdir", default="bench_out")
    a = ap.parse_args()
    from egoflow.extract.clip import create_encoder
    from egoflow.extract.pipeline import ExtractConfig, extract
    from egoflow.extract.video import iter_frames
    from egoflow.features_store import FeatureStore

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    video = make(work, a.minutes)
    enc = create_encoder(a.model, "none", batch_size=a.batch_size)
    print(f"encoder {a.model} precision {enc.dtype} batch {a.batch_size}; video {video.name}", flush=True)

    t0 = time.perf_counter()
    frames = [f for f, _ in iter_frames(video, FPS, size=enc.image_size, batch_size=a.batch_size)]
    ta = time.perf_counter() - t0
    frames = np.concatenate(frames)
    n = len(frames)
    enc.encode_frames(frames[: a.batch_size])  # warm-up (allocations, oneDNN kernels)
    t0 = time.perf_counter()
    enc.encode_frames(frames)
    tb = time.perf_counter() - t0
    del frames
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        summary, name = extract([video], f"{d}/s.zarr", enc, ExtractConfig(fps=FPS), progress=False)
        tc = time.perf_counter() - t0
        ours = FeatureStore(f"{d}/s.zarr").read_video(name, video.stem)
    with tempfile.TemporaryDirectory() as d:
        nf, nt, td = naive(video, a.model, Path(d))
    a_fps, b_fps, c_fps, d_fps = n / ta, n / tb, n / tc, len(nf) / td
    bound = 1.0 / (1.0 / a_fps + 1.0 / b_fps)
    same = len(nf) == len(ours.feats)
    cos = (nf * ours.feats).sum(1) / np.linalg.norm(ours.feats, axis=1) if same else np.array([np.nan])
    dt = np.abs(nt - ours.times).max() if same else np.inf
    res = {"sampled_frames": n, "a_decode_fps": a_fps, "b_encode_fps": b_fps, "c_egoflow_fps": c_fps,
           "d_naive_fps": d_fps, "bound_fps": bound, "c_over_bound": c_fps / bound, "c_over_d": c_fps / d_fps,
           "same_count": same, "min_cosine": float(cos.min()), "max_time_diff_s": float(dt),
           "half_source_frame_s": 0.5 / 30}
    print(f"(a) decode only   {a_fps:8.1f} sampled frames/s")
    print(f"(b) encode only   {b_fps:8.1f} frames/s  ({enc.dtype}, batch {a.batch_size})")
    print(f"    bound 1/(1/a+1/b) {bound:8.1f} frames/s")
    print(f"(c) egoflow       {c_fps:8.1f} frames/s  = {c_fps / bound:.2f} x bound (target >= 0.85)")
    print(f"(d) naive loop    {d_fps:8.1f} frames/s  -> c/d = {c_fps / d_fps:.2f} (target >= 3)")
    print(f"agreement: same count {same} ({len(nf)} vs {len(ours.feats)}), min cosine {cos.min():.5f} "
          f"(target >= 0.99), max |dt| {dt * 1000:.2f} ms (half a source frame = {500 / 30:.1f} ms)")
    if a.rss_minutes:
        for m in [float(x) for x in a.rss_minutes.split(",")]:
            res[f"peak_rss_mib_{m:g}min"] = peak_rss_of_extract(make(work, m, a.minutes), a.model)
            print(f"peak RSS extracting a {m:g}-minute video: {res[f'peak_rss_mib_{m:g}min']:.0f} MiB", flush=True)
        vals = [v for k, v in res.items() if k.startswith("peak_rss")]
        if len(vals) >= 2:
            res["rss_ratio_long_over_short"] = vals[-1] / vals[0]
            print(f"RSS ratio longest/shortest: {vals[-1] / vals[0]:.3f} (target <= 1.1)")
    (work / "extract_throughput.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
