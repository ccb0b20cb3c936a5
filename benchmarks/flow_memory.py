"""Peak memory of one extract flow run is flat in the number of videos: 10 vs 200 short videos.

    python benchmarks/flow_memory.py [--videos 10 200] [--unbounded 48]

Each run is a fresh process (``ru_maxrss`` is per process) running ``extract_flow`` with the default number of
videos in flight (tiny random-init encoder on CPU, generated videos). Prints peak RSS per run and the ratio
(target <= 1.2). ``--unbounded N`` also runs N videos with every video in flight at once (what the flow did
before the bound) to show what the bound buys.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from egoflow.extract.encoders import EncoderSpec
from egoflow.extract.pipeline import ExtractConfig
from egoflow.flows.extract import extract_flow
inputs, store, in_flight = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
res = extract_flow([inputs], store, EncoderSpec(model="egoflow-tiny-ViT", precision="fp32", device="cpu"),
                   ExtractConfig(fps=4.0), in_flight=in_flight, pack=False)
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ok": res["ok"],
                  "done": sum(r["status"] == "done" for r in res["results"]), "s": time.perf_counter() - t0}))
"""


def make_videos(folder: Path, n: int) -> Path:
    from egoflow.datasets.synthetic.videos import make_video

    folder.mkdir(parents=True, exist_ok=True)
    lst = folder / f"list{n}.txt"
    names = []
    for i in range(n):
        p = folder / f"v{i:04d}.mp4"
        if not p.exists():
            make_video(p, [(0, 3, "red kettle"), (3, 6, "blue mug")], fps=30, size=(320, 240), seed=i)
        names.append(p.name)
    lst.write_text("\n".join(names) + "\n")
    return lst


def run(lst: Path, store: Path, in_flight: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", CHILD, str(lst), str(store), str(in_flight)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, nargs=2, default=[10, 200])
    ap.add_argument("--unbounded", type=int, default=0, help="also run N videos all in flight (0: skip)")
    ap.add_argument("--dir", default=None, help="keep generated videos here (default: a temp dir)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.dir or tmp)
        res = {}
        for n in a.videos:
            lst = make_videos(root / "videos", n)
            res[n] = run(lst, root / f"s{n}.zarr", 0)
            print(f"{n:4d} videos, default in flight: peak RSS {res[n]['peak_mb']:.0f} MB, "
                  f"{res[n]['done']} done in {res[n]['s']:.0f} s")
        small, big = a.videos
        print(f"peak RSS ratio {big} vs {small} videos: {res[big]['peak_mb'] / res[small]['peak_mb']:.3f} "
              "(target <= 1.2)")
        if a.unbounded:
            lst = make_videos(root / "videos", a.unbounded)
            r = run(lst, root / "unbounded.zarr", a.unbounded)
            print(f"{a.unbounded:4d} videos, all in flight (old behaviour): peak RSS {r['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
