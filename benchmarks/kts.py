"""KTS: egoflow's banded vectorised DP vs straightforward DPs, and peak memory at long lengths.

Prints, measured in this run:
  * time of ``egoflow.segment.kts.kts_auto`` vs (a) the textbook triple loop (pure Python over k, l, t, as in the
    public QFVS code) and (b) the common numpy variant (Python loops over k and l, numpy over t, full N x N
    scatter matrix), at N = 1 000 and 4 000, all from the same kernel matrix; and whether the change points are
    identical;
  * peak resident memory of ``egoflow.segment.kts.segment`` at N = 4 000 and 30 000 (each in a fresh process).

Usage: python benchmarks/kts.py [--quick] [--skip-triple] [--full-band]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time

import numpy as np

from egoflow.segment import kts


def planted(n: int, dim: int = 512, seed: int = 0) -> np.ndarray:
    """Shot features [n, dim]: scenes of 5-60 shots with their own mean, plus per-shot noise."""
    rng = np.random.default_rng(seed)
    lengths = []
    while sum(lengths) < n:
        lengths.append(int(rng.integers(5, 61)))
    means = rng.normal(size=(len(lengths), dim))
    x = np.repeat(means, lengths, axis=0)[:n]
    return x + 0.4 * rng.normal(size=x.shape)


def _scatters(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = K.shape[0]
    D = np.cumsum([0.0] + list(np.diag(K)))
    P = np.zeros((n + 1, n + 1))
    P[1:, 1:] = np.cumsum(np.cumsum(K, 0), 1)
    return D, P


def reference_triple(K: np.ndarray, m_max: int, lmax: int, vmax: float = 1.0) -> list[int]:
    """Textbook DP, pure Python over (k, l, t); J(t, l) from full prefix sums; first minimum wins."""
    n = K.shape[0]
    D, P = _scatters(K)
    I = np.full((m_max + 1, n + 1), np.inf)
    p = np.zeros((m_max + 1, n + 1), dtype=int)
    for l in range(1, min(lmax, n) + 1):
        I[0, l] = D[l] - D[0] - (P[l, l] + P[0, 0] - P[l, 0] - P[0, l]) / l
    for k in range(1, m_max + 1):
        for l in range(k + 1, n + 1):
            best, arg = math.inf, 0
            for t in range(max(k, l - lmax), l):
                c = I[k - 1, t] + (D[l] - D[t] - (P[l, l] + P[t, t] - P[l, t] - P[t, l]) / (l - t))
                if c < best:
                    best, arg = c, t
            I[k, l], p[k, l] = best, arg
    return _pick(I, p, n, m_max, vmax)


def reference_numpy(K: np.ndarray, m_max: int, lmax: int, vmax: float = 1.0) -> list[int]:
    """Common public variant: full [N, N] scatter matrix, Python loops over (k, l), numpy min over t."""
    n = K.shape[0]
    D, P = _scatters(K)
    t = np.arange(n + 1)[:, None]
    l = np.arange(n + 1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        J = (D[None, :] - D[:, None]) - (((np.diag(P)[None, :] + np.diag(P)[:, None]) - P.T) - P) / (l - t)
    I = np.full((m_max + 1, n + 1), np.inf)
    p = np.zeros((m_max + 1, n + 1), dtype=int)
    I[0, 1:min(lmax, n) + 1] = J[0, 1:min(lmax, n) + 1]
    for k in range(1, m_max + 1):
        for ll in range(k + 1, n + 1):
            lo = max(k, ll - lmax)
            c = I[k - 1, lo:ll] + J[lo:ll, ll]
            j = int(np.argmin(c))
            I[k, ll], p[k, ll] = c[j], j + lo
    return _pick(I, p, n, m_max, vmax)


def _pick(I, p, n, m_max, vmax) -> list[int]:
    total = I[:, n] / float(n) + kts.penalties(n, m_max, vmax)
    m = int(np.argmin(total))
    cps, cur = [], n
    for k in range(m, 0, -1):
        cur = int(p[k, cur])
        cps.append(cur)
    return cps[::-1]


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def speed(n: int, m_max: int, lmax: int, triple: bool) -> dict:
    K = kts.gram(planted(n, seed=n), "cosine")
    (ours, _), t_ours = _timed(lambda: kts.kts_auto(K, m_max, 1.0, lmax=lmax))
    ref_np, t_np = _timed(reference_numpy, K, m_max, lmax)
    row = {"N": n, "max_cp": m_max, "lmax": lmax, "found_cp": len(ours), "egoflow_s": t_ours,
           "numpy_ref_s": t_np, "x_vs_numpy": t_np / t_ours, "identical_numpy": list(ours) == ref_np}
    if triple:
        ref_tr, t_tr = _timed(reference_triple, K, m_max, lmax)
        row.update(triple_ref_s=t_tr, x_vs_triple=t_tr / t_ours, identical_triple=list(ours) == ref_tr)
    return row


_CHILD = """
import json, resource, sys, time, tracemalloc
import numpy as np
sys.path.insert(0, {here!r})
from kts import planted
from egoflow.segment import kts
x = planted({n}, seed=1).astype(np.float32)
tracemalloc.start()  # numpy reports its buffers to tracemalloc: the peak is KTS's own working memory
t0 = time.perf_counter()
b = kts.segment(x, max_change_points={m}, lmax={lmax}, kernel="cosine")
dt = time.perf_counter() - t0
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({{"N": {n}, "lmax": {lmax}, "max_cp": {m}, "segments": len(b) - 1, "seconds": dt,
                  "kts_peak_gb": peak / 2**30, "features_gb": x.nbytes / 2**30,
                  "process_max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""


def memory(n: int, m_max: int, lmax) -> dict:
    import os
    code = _CHILD.format(here=os.path.dirname(os.path.abspath(__file__)), n=n, m=m_max, lmax=lmax)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes only (smoke run)")
    ap.add_argument("--skip-triple", action="store_true", help="skip the pure-Python triple loop")
    ap.add_argument("--full-band", action="store_true", help="also N = 30 000 with unbounded lmax")
    args = ap.parse_args()
    sizes = [(300, 30, 100)] if args.quick else [(1000, 50, 200), (4000, 100, 200)]
    print("== KTS speed (auto selection of m, cosine kernel, same K for all) ==")
    for n, m, lmax in sizes:
        row = speed(n, m, lmax, triple=not args.skip_triple)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    print("== KTS peak memory, segment() from features [N, 512] ==")
    mem = [(2000, 100, 200)] if args.quick else [(4000, 100, 200), (4000, 20, None), (30000, 1500, 200)]
    if args.full_band:
        mem.append((30000, 10, None))
    for n, m, lmax in mem:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in memory(n, m, lmax).items()}))


if __name__ == "__main__":
    main()
