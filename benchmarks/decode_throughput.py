"""Decode-only throughput and memory of egoflow.extract.video, decord vs PyAV, measured in one run.

Generates (once, cached in --workdir) a 640x480 30 fps h264 video of --minutes minutes with a keyframe every
8 s, then for each backend reads it at 1.875 fps (resized to a shorter side of 224 as CLIP needs, and at
native size) and prints sampled frames/s, CPU ms per source frame and peak RSS. With --long it also builds a
60-minute video (the 10-minute one remuxed 6x, no re-encoding) and prints peak RSS 60 vs 10 minutes, which
must stay <= 1.1x: memory may not grow with video length.

    python benchmarks/decode_throughput.py [--minutes 10] [--long] [--reps 2]

Each measurement runs in a fresh subprocess so that peak RSS belongs to that measurement alone.
Measured here (2 cores shared with other jobs, 1.13 Mbit/s source, best of 2): at size 224 PyAV 129 sampled
frames/s (0.47 CPU-ms per source frame, 81 MB peak RSS) vs decord 85 (0.74 ms, 177 MB); native size PyAV 126
vs decord 59 (398 MB). 60 vs 10 min: PyAV 82 vs 81 MB (1.01x) at 0.52 vs 0.57 ms/frame; decord 325 vs
183 MB (1.77x) and 1.03 vs 0.70 ms/frame - decord gets slower and bigger with length.
Hence video.AUTO_ORDER puts PyAV first.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def make_source(path: Path, minutes: float) -> Path:
    from egoflow.datasets.synthetic.videos import make_benchmark_video

    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".tmp.mp4")
        make_benchmark_video(tmp, minutes)
        tmp.replace(path)
        print(f"  generated {path.name} in {time.perf_counter() - t0:.0f}s", flush=True)
    print(f"  source: {path.stat().st_size * 8 / (minutes * 60) / 1e6:.2f} Mbit/s", flush=True)
    return path


def remux_repeat(src: Path, dst: Path, times: int) -> Path:
    """dst = src played `times` times in a row, packets copied with shifted timestamps (no re-encoding)."""
    import av

    if dst.exists():
        return dst
    tmp = dst.with_suffix(".tmp.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        s_in = inp.streams.video[0]
        s_out = out.add_stream_from_template(s_in)
        span = None
        for rep in range(times):
            inp.seek(0)
            last = 0
            for packet in inp.demux(s_in):
                if packet.dts is None:
                    continue
                if span is not None:
                    packet.pts += rep * span
                    packet.dts += rep * span
                last = max(last, packet.pts + (packet.duration or 0))
                packet.stream = s_out
                out.mux(packet)
            if span is None:
                span = last
    tmp.replace(dst)
    return dst


def child(path: str, backend: str, fps: float, size, batch: int) -> None:
    """Runs in a subprocess: decode, then print one JSON line with the numbers."""
    import resource

    from egoflow.extract.video import iter_frames, probe

    info = probe(path)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    n = 0
    for frames, _ in iter_frames(path, fps, size=size, batch_size=batch, backend=backend):
        n += len(frames)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"frames": n, "wall": wall, "cpu": cpu, "source_frames": info.num_frames,
                      "peak_rss_mb": r1.ru_maxrss / 1024}))


def measure(path: Path, backend: str, fps: float, size, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--child", str(path), backend, str(fps), json.dumps(size), str(batch)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=1.875)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=2, help="best of N per setting (the machine is shared)")
    ap.add_argument("--long", action="store_true", help="also peak RSS on a 60-minute video")
    ap.add_argument("--workdir", default=os.environ.get("EGOFLOW_BENCH_DIR", "/tmp/egoflow_bench"))
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"decode throughput: 640x480 30 fps h264, keyframe every 8 s, {args.minutes:g} min, sampled at "
          f"{args.fps} fps, batch {args.batch}, {os.cpu_count()} cores", flush=True)
    src = make_source(work / f"bench_{args.minutes:g}min.mp4", args.minutes)

    results = {}
    for size in (224, None):
        for _rep in range(args.reps):
            for backend in ("pyav", "decord"):  # interleaved, so load changes hit both alike
                r = measure(src, backend, args.fps, size, args.batch)
                key = (backend, size)
                if key not in results or r["wall"] < results[key]["wall"]:
                    results[key] = r
    print(f"{'backend':8s} {'size':>6s} {'sampled':>8s} {'frames/s':>9s} {'CPU ms/src frame':>17s} "
          f"{'peak RSS MB':>12s}")
    for (backend, size), r in results.items():
        print(f"{backend:8s} {str(size):>6s} {r['frames']:8d} {r['frames'] / r['wall']:9.1f} "
              f"{1000 * r['cpu'] / r['source_frames']:17.3f} {r['peak_rss_mb']:12.0f}")
    for size in (224, None):
        a, b = results[("decord", size)], results[("pyav", size)]
        assert a["frames"] == b["frames"], "backends disagree on the number of sampled frames"
        print(f"size {size}: decord / PyAV throughput = {b['wall'] / a['wall']:.2f}x")
    from egoflow.extract.video import AUTO_ORDER

    print(f"backend='auto' tries {' then '.join(AUTO_ORDER)}")

    if args.long:
        long_src = remux_repeat(src, work / f"bench_{6 * args.minutes:g}min.mp4", 6)
        for backend in ("pyav", "decord"):
            short = measure(src, backend, args.fps, 224, args.batch)
            long = measure(long_src, backend, args.fps, 224, args.batch)
            ratio = long["peak_rss_mb"] / short["peak_rss_mb"]
            cpu = [1000 * r["cpu"] / r["source_frames"] for r in (long, short)]
            print(f"{backend:8s} peak RSS {6 * args.minutes:g} min {long['peak_rss_mb']:.0f} MB vs "
                  f"{args.minutes:g} min {short['peak_rss_mb']:.0f} MB: {ratio:.2f}x (target <= 1.1x) "
                  f"[{long['frames']} vs {short['frames']} frames; CPU ms/src frame {cpu[0]:.3f} vs {cpu[1]:.3f}]")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, p, be, f, s, bs = sys.argv
        child(p, be, float(f), json.loads(s), int(bs))
    else:
        main()
