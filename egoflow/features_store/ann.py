"""Approximate inner-product search for large feature sets: a faiss IVF index with 4-bit PQ fast-scan codes
proposes candidates, which are re-scored exactly from the stored (normalised, float16) vectors.

Why this design (measured in ``benchmarks/search_scale.py``, see docs/search.md): on unit vectors the L2 order is
the inner-product order, so the IVF is an L2 one (k-means and residual PQ behave better than with the inner-product
metric); PQ fast-scan codes take ``pq_m / 2`` bytes a row (64 for 512-d: 10 M steps in 0.7 GB with the ids, the
float16 vectors stay on disk, memory-mapped) and scan an inverted list with SIMD table look-ups, several times
faster than float scoring; the ``rerank`` best candidates by PQ are then scored exactly, so the codes only need
to rank the true top-k inside the candidates, not exactly.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

try:
    import faiss
except ImportError:  # the approximate index needs faiss; FeatureIndex falls back to exact search without it
    faiss = None

APPROX_MIN_ROWS = 50_000  # default switch-over: the measured crossover (IVF-PQ faster than flat at recall >= 0.95)


@dataclass(frozen=True)
class AnnParams:
    nlist: int  # IVF lists (k-means centroids)
    nprobe: int  # lists scanned per query
    pq_m: int  # PQ sub-quantizers of 4 bits each (fast scan): pq_m / 2 bytes a row
    rerank: int  # candidates (by PQ distance) re-scored exactly from the stored vectors
    train_rows: int  # rows sampled to train k-means and the PQ codebooks
    kmeans_iters: int = 10  # k-means iterations for the coarse quantizer

    def as_dict(self) -> dict:
        return asdict(self)


def choose_params(n: int, dim: int) -> AnnParams:
    """Parameters for ``n`` rows of ``dim``: ~sqrt(n)/4 lists (a power of two: assigning every row to its list
    is the build's cost), 4 dims per PQ sub-quantizer, and the nprobe / rerank of the measured recall curves
    (recall@10 >= 0.95 at 200 k, 1 M and 10 M clustered CLIP-like steps, docs/search.md)."""
    nlist = int(2 ** np.clip(np.round(np.log2(max(np.sqrt(n) / 4, 1))), 4, 16))
    pq_m = dim // 4 if dim % 8 == 0 else dim  # fast scan needs an even count; 1 dim each as the fallback
    # up to 1 M: a quarter of the lists, 800 re-ranked (1 M: 0.980); beyond, more near-ties per query: an eighth
    # of the (larger) lists and 1600 re-ranked (10 M: 0.975, where 256 lists / 800 gave 0.951 at 1.6x the time)
    nprobe, rerank = (nlist // 4, 800) if n <= 1_000_000 else (nlist // 8, 1600)
    return AnnParams(nlist=nlist, nprobe=max(8, nprobe), pq_m=pq_m, rerank=rerank,
                     train_rows=int(min(n, max(40 * nlist, 4096))))


def _rows(vectors, idx: np.ndarray) -> np.ndarray:
    """float32 copy of ``vectors[idx]`` (idx sorted: sequential reads of a memory map)."""
    return np.asarray(vectors[idx], np.float32)


def build(vectors, params: AnnParams, seed: int = 0, chunk: int = 262_144, log=None) -> tuple:
    """An IVF-PQ fast-scan index over ``vectors [N, D]`` (unit rows; float16/32 array or memmap), added ``chunk``
    rows at a time; returns ``(index, {"train_s", "add_s"})``."""
    if faiss is None:
        raise ImportError("the approximate index needs faiss (pip install faiss-cpu)")
    n, dim = vectors.shape
    index = faiss.index_factory(dim, f"IVF{params.nlist},PQ{params.pq_m}x4fs", faiss.METRIC_L2)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.niter = params.kmeans_iters
    ivf.cp.seed = seed
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, min(n, params.train_rows), replace=False))
    t = time.perf_counter()
    index.train(_rows(vectors, sample))
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    for i0 in range(0, n, chunk):
        index.add(np.asarray(vectors[i0:i0 + chunk], np.float32))
        if log and (i0 // chunk) % 8 == 7:
            log(f"  indexed {min(n, i0 + chunk):,} / {n:,} rows ({time.perf_counter() - t:.0f} s)")
    return index, {"train_s": round(train_s, 2), "add_s": round(time.perf_counter() - t, 2)}


def search(index, vectors, q: np.ndarray, k: int, nprobe: int, rerank: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` ``(scores, rows)`` ``[Q, k]`` of unit queries ``q [Q, D]``: the ``rerank`` nearest by PQ code
    in ``nprobe`` lists, re-scored by the exact inner product with ``vectors``; rows -1 / scores -inf pad."""
    faiss.extract_index_ivf(index).nprobe = nprobe
    q = np.ascontiguousarray(q, np.float32)
    _, cand = index.search(q, max(k, rerank))  # [Q, R]
    scores, rows = np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
    for i, c in enumerate(cand):  # one query at a time: a batched gather + einsum is several times slower
        c = np.sort(c[c >= 0])  # file order: the reads of a memory map go forward
        s = _rows(vectors, c) @ q[i]
        top = np.argsort(-s, kind="stable")[:k]
        scores[i, :len(top)], rows[i, :len(top)] = s[top], c[top]
    return scores, rows
