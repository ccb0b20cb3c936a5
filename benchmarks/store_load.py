"""Load a whole feature set into memory as heads do: egoflow's store vs one ``.pt`` file per video, same run.

    python benchmarks/store_load.py [--videos 1000] [--steps 600] [--dim 512] [--workdir /tmp/egoflow_store_load]

Data (fp16, T per video drawn from steps +- 10%) is generated once and cached in --workdir: a local-directory
store written with ``FeatureStore.write_video``, ``pt/<uid>.pt`` holding the same fp16 tensors, and (when the
store has ``pack``) a copy of the store with a packed feature set. Every loader ends with what a head gets:
uid -> float32 ``[T, D]`` (the store also gives float64 times and attrs).

  pt            torch.load each file + .float() (torch threads = --threads; 1 is fastest on a shared machine)
  store         FeatureStore.load_feature_set on per-video groups (what an unpacked store does)
  store_packed  FeatureStore.load_feature_set after FeatureStore.pack: one contiguous array + offsets

warm: files already in the page cache (each method runs once untimed first); best of --repeats.
cold: each file's pages are dropped with ``posix_fadvise(DONTNEED)`` right before the timed run (no root
      needed; the kernel drops clean cached pages of that file), so bytes come from the disk again.
Both wall and process CPU seconds are printed: on a machine shared with other jobs CPU time is the steadier one.
Target: store time <= .pt time (ratio .pt / store >= 1).
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

try:
    from egoflow.features_store import FeatureStore
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from egoflow.features_store import FeatureStore

SET = "bench"


def generate(work: Path, n: int, steps: int, dim: int, seed: int = 0) -> None:
    """Write the store and the .pt files once; a marker with the parameters makes reruns skip this."""
    marker = work / "params.json"
    params = {"videos": n, "steps": steps, "dim": dim, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()) == params:
        return
    shutil.rmtree(work, ignore_errors=True)
    (work / "pt").mkdir(parents=True)
    store = FeatureStore(str(work / "store.zarr"))
    store.create_feature_set(SET, {"encoder": "benchmark", "dim": dim}, dim=dim)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for i in range(n):
        T = int(rng.integers(int(steps * 0.9), int(steps * 1.1) + 1))
        feats = rng.standard_normal((T, dim), dtype=np.float32).astype(np.float16)
        times = (np.arange(T) + 0.5) / 1.875
        uid = f"video{i:05d}"
        store.write_video(SET, uid, feats, times, {"fps": 1.875, "duration_s": T / 1.875})
        torch.save(torch.from_numpy(feats), work / "pt" / f"{uid}.pt")
    marker.write_text(json.dumps(params))
    print(f"generated {n} videos in {time.perf_counter() - t0:.1f}s into {work}")


def generate_packed(work: Path) -> bool:
    """Copy the store and pack it (cached); False when this egoflow's store has no ``pack``."""
    if not hasattr(FeatureStore, "pack"):
        print("FeatureStore has no pack(): store_packed skipped (see docs/store.md, 'Loading speed')")
        return False
    dst, marker = work / "store_packed.zarr", work / "packed.json"
    if marker.exists() and marker.read_text() == (work / "params.json").read_text():
        return True
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(work / "store.zarr", dst)
    t0 = time.perf_counter()
    FeatureStore(str(dst)).pack(SET)
    print(f"packed in {time.perf_counter() - t0:.1f}s")
    marker.write_text((work / "params.json").read_text())
    return True


def drop_cache(root: Path) -> None:
    """Evict every file under ``root`` from the page cache (clean pages only; needs no privileges)."""
    for dirpath, _, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def du(root: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)


# ---------------------------------------------------------------- loaders (each returns uid -> float32 [T, D])
def load_pt(work: Path) -> dict:
    """The usual loop: torch.load each file, convert to float32 numpy."""
    out = {}
    for p in sorted((work / "pt").glob("*.pt")):
        out[p.stem] = torch.load(p, map_location="cpu", weights_only=True).float().numpy()
    return out


def load_store(work: Path, name: str = "store.zarr") -> dict:
    """What heads call: FeatureStore.load_feature_set (listing complete videos included)."""
    store = FeatureStore(str(work / name), mode="r")
    return {u: v.feats for u, v in store.load_feature_set(SET).items()}


def load_store_packed(work: Path) -> dict:
    return load_store(work, "store_packed.zarr")


METHODS = {"pt": load_pt, "store": load_store, "store_packed": load_store_packed}
ROOTS = {"pt": "pt", "store": "store.zarr", "store_packed": "store_packed.zarr"}  # what a cold run evicts


def check_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b), "different video sets"
    for u in a:
        if not np.array_equal(a[u], b[u]):
            raise AssertionError(f"{u}: features differ between loaders")


def timed(fn, work: Path, cold: bool, root: Path) -> tuple[float, float, dict]:
    if cold:
        drop_cache(root)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(work)
    return time.perf_counter() - t0, time.process_time() - c0, out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=600, help="mean steps per video (T varies +-10%%)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--workdir", default="/tmp/egoflow_store_load")
    ap.add_argument("--repeats", type=int, default=3, help="warm runs per method (best is reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (fp16 -> fp32 conversions)")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold (page cache dropped) runs")
    ap.add_argument("--profile", default=None, help="cProfile this method's warm run and print the top calls")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    work = Path(a.workdir)
    generate(work, a.videos, a.steps, a.dim)
    methods = [m for m in a.methods.split(",") if m]
    if "store_packed" in methods and not generate_packed(work):
        methods.remove("store_packed")
    gb = du(work / "pt") / 1e9
    print(f"{a.videos} videos x ~{a.steps} x {a.dim} fp16: .pt {gb:.3f} GB, "
          f"store {du(work / 'store.zarr') / 1e9:.3f} GB; torch threads {a.threads}, {os.cpu_count()} cpus")

    res: dict[str, dict] = {m: {} for m in methods}
    ref = None

    def record(m, kind, t, c, out):
        nonlocal ref
        best = res[m].get(kind)
        res[m][kind] = (min(t, best[0]), min(c, best[1])) if best else (t, c)
        ref = out if ref is None else ref
        check_same(ref, out)  # every loader must give identical float32 arrays

    if not a.no_cold:  # cold first, each method with its own files evicted just before
        for m in methods:
            record(m, "cold", *timed(METHODS[m], work, True, work / ROOTS[m]))
    for m in methods:  # untimed warm-up, then best of repeats, interleaved so machine noise is shared
        METHODS[m](work)
    for _ in range(a.repeats):
        for m in methods:
            record(m, "warm", *timed(METHODS[m], work, False, work))
    print(f"{'method':<14}" + "".join(f"{k + ' wall s':>13}{'cpu s':>8}{'GB/s':>7}{'x .pt':>8}"
                                      for k in ("warm", "cold")))
    base = res.get("pt", {})
    for m in methods:
        row = f"{m:<14}"
        for k in ("warm", "cold"):
            if k not in res[m]:
                row += f"{'-':>13}{'-':>8}{'-':>7}{'-':>8}"
                continue
            t, c = res[m][k]
            ratio = base[k][0] / t if k in base else float("nan")
            row += f"{t:>13.3f}{c:>8.3f}{gb / t:>7.2f}{ratio:>7.2f}x"
        print(row)
    for m in ("store", "store_packed"):
        if m in res and "pt" in res:
            r = res["pt"]["warm"][0] / res[m]["warm"][0]
            rc = res["pt"]["warm"][1] / res[m]["warm"][1]
            print(f"{m} vs .pt (warm): wall {r:.2f}x, cpu {rc:.2f}x  target >= 1x: {'MET' if r >= 1 else 'MISSED'}")
    if a.profile:
        pr = cProfile.Profile()
        pr.enable()
        METHODS[a.profile](work)
        pr.disable()
        pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
    return res


if __name__ == "__main__":
    main()
