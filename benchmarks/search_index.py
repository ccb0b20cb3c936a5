"""Moment-search index at store scale: query latency of a flat (exact) index vs an IVF index, and IVF's recall@10
against the exact answer, at 1 M and 10 M stored steps, in one run.

    python benchmarks/search_index.py             # 1 M and 10 M steps, dim 64 (10 M x 64 fp32 = 2.6 GB per copy)
    python benchmarks/search_index.py --quick     # 100 k and 1 M steps

The dimension is 64, not CLIP's 512, to keep 10 M steps in memory here (10 M x 512 fp32 = 20 GB); the latency of
both index types is linear in the dimension, so the flat/IVF ratio carries over. The steps are a mixture of 2000
Gaussian clusters on the unit sphere (frame features of many videos cluster by scene; ``--spread`` sets how
tight, ``--clusters`` how many), queries are perturbed steps. ``egoflow search`` uses the flat index
(``FeatureIndex``: exact, faiss ``IndexFlatIP``); IVF is
``IndexIVFFlat`` with nlist = sqrt(N) lists, trained on 40 steps per list, probing ``nprobe`` lists. Chunks are added
to both indexes as they are generated, so peak memory is about two copies of the steps (~5.2 GB at 10 M).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def steps(rng, centres: np.ndarray, n: int, spread: float = 0.35) -> np.ndarray:
    c = centres[rng.integers(len(centres), size=n)]
    return _unit(c + spread * rng.standard_normal(c.shape, dtype=np.float32) / np.sqrt(c.shape[1])).astype(np.float32)


def run(n: int, dim: int, queries: int, nprobes: tuple[int, ...], seed: int = 0, chunk: int = 1_000_000,
        clusters: int = 2000, spread: float = 0.35) -> dict:
    import faiss

    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((clusters, dim))).astype(np.float32)
    nlist = int(np.sqrt(n))
    flat = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    t = time.perf_counter()
    ivf.train(steps(rng, centres, min(n, 40 * nlist)))  # faiss's 39 points per list
    train_s = time.perf_counter() - t
    add_flat = add_ivf = 0.0
    for s in range(0, n, chunk):
        x = steps(rng, centres, min(chunk, n - s), spread)
        t = time.perf_counter()
        flat.add(x)
        add_flat += time.perf_counter() - t
        t = time.perf_counter()
        ivf.add(x)
        add_ivf += time.perf_counter() - t
        del x
    q = steps(rng, centres, queries, spread=spread * 1.5)
    out = {"steps": n, "dim": dim, "queries": queries, "clusters": clusters, "spread": spread, "nlist": nlist,
           "ivf_train_s": round(train_s, 2),
           "flat_add_s": round(add_flat, 2), "ivf_add_s": round(add_ivf, 2)}
    flat.search(q[:2], 10)  # warm-up
    t = time.perf_counter()
    _, exact = flat.search(q, 10)
    flat_ms = (time.perf_counter() - t) / queries * 1e3
    out["flat_ms_per_query"] = round(flat_ms, 3)
    for nprobe in nprobes:
        ivf.nprobe = nprobe
        ivf.search(q[:2], 10)
        t = time.perf_counter()
        _, approx = ivf.search(q, 10)
        ms = (time.perf_counter() - t) / queries * 1e3
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx.tolist(), exact.tolist())])
        out[f"ivf_nprobe{nprobe}"] = {"ms_per_query": round(ms, 3), "speedup_vs_flat": round(flat_ms / ms, 1),
                                      "recall@10": round(float(recall), 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 k and 1 M steps")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0, help="faiss threads (0: faiss default)")
    ap.add_argument("--clusters", type=int, default=2000, help="scene clusters the steps are drawn around")
    ap.add_argument("--spread", type=float, default=0.35, help="step noise around its cluster (1.0: hard, "
                    "neighbours straddle lists)")
    a = ap.parse_args()
    import faiss

    if a.threads:
        faiss.omp_set_num_threads(a.threads)
    sizes = (100_000, 1_000_000) if a.quick else (1_000_000, 10_000_000)
    rows = [run(n, a.dim, a.queries, (8, 32, 128), clusters=a.clusters, spread=a.spread) for n in sizes]
    for r in rows:
        print(json.dumps(r))
    big, small = rows[-1], rows[0]
    print(f"flat latency {big['steps']:,} / {small['steps']:,} steps: "
          f"{big['flat_ms_per_query'] / small['flat_ms_per_query']:.1f}x "
          f"(IVF nprobe 32: {big['ivf_nprobe32']['ms_per_query'] / small['ivf_nprobe32']['ms_per_query']:.1f}x)")


if __name__ == "__main__":
    main()
