"""CLIP-like moment-search data for ``benchmarks/search_scale.py``: L2-normalised steps clustered like video,
written chunk by chunk into a float16 memmap on disk, text-like queries, and the exact top-k by streaming chunks.

Structure (all directions share an anisotropic spectrum, eigenvalues ~ i^-1.2 over 512 dims, like CLIP's):
a common offset (CLIP image embeddings share a mean; two random steps have cosine ~0.4), 512 topics (kinds of
place / activity), videos of ~900 steps (log-normal, 60-8000: an 8 min clip at 1.875 steps/s) each drawn around
a topic, 1 + Poisson(4) scenes per video drawn around the video, and within a scene a moving-average random walk
(window 16: consecutive steps have cosine ~0.99). Pairwise cosines: random 0.4, same topic 0.65, same video
0.83, same scene 0.93. Queries are text-like: a random step plus as much noise again plus a text offset (cosine
to its anchor ~0.5, to a random step ~0.2, like CLIP text-image scores), so their top-10 are neither a single
scene's nor spread at random.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

GEN_VERSION = 1  # bump when the generator changes: cached data is regenerated
CHUNK = 131_072  # rows generated (and scanned) at a time: ~1 GB of float32 temporaries
WINDOW = 16  # moving-average window of the within-scene walk


def _globals(seed: int, dim: int) -> dict:
    rng = np.random.default_rng([seed, 0])
    spec = (np.arange(dim) + 1.0) ** -0.6
    spec = rng.permutation(spec / np.linalg.norm(spec)).astype(np.float32)  # sum of variances 1
    unit = rng.standard_normal((2, dim)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    topics = rng.standard_normal((512, dim)).astype(np.float32) * spec
    return {"spec": spec, "mean": unit[0], "text_mean": unit[1], "topics": topics}


def _chunk(seed: int, c: int, rows: int, g: dict) -> np.ndarray:
    """Rows ``[rows, dim]`` float32, unit norm, of chunk ``c`` (whole videos, the last one cut)."""
    rng = np.random.default_rng([seed, 1, c])
    dim, spec = len(g["spec"]), g["spec"]
    centres, lengths, total = [], [], 0
    while total < rows:
        n = int(np.clip(rng.lognormal(np.log(900), 0.7), 60, 8000))
        video = g["topics"][rng.integers(len(g["topics"]))] + 0.8 * rng.standard_normal(dim, np.float32) * spec
        k = 1 + rng.poisson(4)
        split = np.maximum(1, np.round(rng.dirichlet(np.full(k, 2.0)) * n)).astype(int)
        centres.append(video + 0.6 * rng.standard_normal((k, dim), np.float32) * spec)
        lengths.append(split)
        total += int(split.sum())
    x = np.repeat(np.concatenate(centres), np.concatenate(lengths), axis=0)[:rows]
    e = rng.standard_normal((rows + WINDOW, dim), np.float32) * spec
    cs = np.cumsum(e, axis=0, dtype=np.float32)
    x += (0.5 / np.sqrt(WINDOW)) * (cs[WINDOW:] - cs[:-WINDOW])
    del cs
    x += 0.15 * e[WINDOW:]
    x += 1.2 * g["mean"]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def steps(root: Path, n: int, dim: int = 512, seed: int = 0, log=print) -> np.memmap:
    """The ``[n, dim]`` float16 memmap at ``root/steps_<n>_<dim>_<seed>.f16``, generated once (resumable by
    chunk)."""
    root.mkdir(parents=True, exist_ok=True)
    for big in sorted(root.glob(f"steps_*_{dim}_{seed}.f16")):  # a larger data set's first rows are the same
        m = int(big.name.split("_")[1])
        done = json.loads(big.with_suffix(".json").read_text()) if big.with_suffix(".json").exists() else {}
        if m > n and done.get("version") == GEN_VERSION and done.get("done", 0) * CHUNK >= n:
            return np.memmap(big, np.float16, "r", shape=(m, dim))[:n]
    path = root / f"steps_{n}_{dim}_{seed}.f16"
    meta_p = path.with_suffix(".json")
    meta = json.loads(meta_p.read_text()) if meta_p.exists() else {}
    if meta.get("version") != GEN_VERSION:
        meta = {"version": GEN_VERSION, "done": 0}
    mm = np.memmap(path, np.float16, "r+" if path.exists() and meta["done"] else "w+", shape=(n, dim))
    g = _globals(seed, dim)
    t = time.perf_counter()
    for c in range(meta["done"], -(-n // CHUNK)):
        i0 = c * CHUNK
        mm[i0:min(n, i0 + CHUNK)] = _chunk(seed, c, min(CHUNK, n - i0), g)
        mm.flush()
        meta["done"] = c + 1
        meta_p.write_text(json.dumps(meta))
        if c % 10 == 9:
            log(f"  generated {min(n, i0 + CHUNK):,} / {n:,} steps ({time.perf_counter() - t:.0f} s)")
    return np.memmap(path, np.float16, "r", shape=(n, dim))


def queries(mm: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``[count, dim]`` float32 text-like queries, each around a random stored step (see module doc)."""
    g = _globals(seed, mm.shape[1])
    rng = np.random.default_rng([seed, 2, len(mm)])
    anchors = np.sort(rng.choice(len(mm), count, replace=False))
    q = np.asarray(mm[anchors], np.float32)
    q += 1.5 * rng.standard_normal(q.shape, np.float32) * g["spec"] + g["text_mean"]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def exact_topk(mm: np.ndarray, q: np.ndarray, k: int, rows: int = 2 * CHUNK, log=print) -> dict:
    """Exact top-``k`` rows by inner product, scanning ``rows`` at a time; ``flat_s`` is the time of the exact
    scan (BLAS matrix product + top-k, the numpy backend of ``FeatureIndex``: faster here than faiss's
    ``IndexFlatIP.search``, see search_scale.py) summed over the chunks, i.e. the search cost of an in-memory flat
    index over all ``n`` rows (the float16 -> float32 conversion is not counted)."""
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_r = np.zeros((len(q), 0), np.int64)
    flat_s, t = 0.0, time.perf_counter()
    for i0 in range(0, len(mm), rows):
        x = np.asarray(mm[i0:i0 + rows], np.float32)
        t0 = time.perf_counter()
        s = q @ x.T  # [Q, rows]
        r = np.argpartition(-s, min(k, s.shape[1]) - 1, axis=1)[:, :k]
        s = np.take_along_axis(s, r, 1)
        flat_s += time.perf_counter() - t0
        s, r = np.concatenate([best_s, s], 1), np.concatenate([best_r, r + i0], 1)
        top = np.argsort(-s, axis=1, kind="stable")[:, :k]
        best_s, best_r = np.take_along_axis(s, top, 1), np.take_along_axis(r, top, 1)
        if (i0 // rows) % 10 == 9:
            log(f"  exact scan {i0 + len(x):,} / {len(mm):,} ({time.perf_counter() - t:.0f} s)")
    return {"scores": best_s, "rows": best_r, "flat_s": flat_s}


def ground_truth(root: Path, mm: np.ndarray, q: np.ndarray, k: int, seed: int = 0, log=print) -> dict:
    """:func:`exact_topk`, cached beside the data (keyed by size, queries and seed)."""
    path = root / f"gt_{len(mm)}_{mm.shape[1]}_{len(q)}_{k}_{seed}_v{GEN_VERSION}.npz"
    if path.exists():
        z = np.load(path)
        return {"scores": z["scores"], "rows": z["rows"], "flat_s": float(z["flat_s"])}
    gt = exact_topk(mm, q, k, log=log)
    np.savez(path, **gt)
    return gt
