"""Kernel temporal segmentation (KTS, Potapov et al., ECCV 2014): exact, vectorised, banded.

The cost of a segment ``[t, l)`` of shots is its within-segment kernel scatter
``J(t, l) = sum_i K_ii - (1 / (l - t)) * sum_{i,j in [t, l)} K_ij``. ``kts_dp`` finds the ``m`` change points
minimising the summed cost (dynamic program over ``I[k, l]`` = best cost of the first ``l`` shots cut into
``k + 1`` segments); ``kts_auto`` picks ``m`` with the original penalty
``I[m, N] / N + vmax * m / (2N) * (log(N / m) + 1)``.

Exactness: ``J`` is computed with exactly the floating-point operations of the public implementation
(diagonal prefix sums ``D`` and 2-D prefix sums ``P = cumsum(cumsum(K, 0), 1)``, then
``(D[l] - D[t]) - (((P[l,l] + P[t,t]) - P[l,t]) - P[t,l]) / (l - t)``), so the values are bitwise those of a
straightforward implementation; the DP takes the first minimum (smallest ``t``) like ``np.argmin``. Hence the
change points are identical, ties included.

Memory: ``P`` is streamed in row blocks (never N x N) and only the band ``lmin <= l - t <= lmax`` of ``J`` is
kept, in row chunks of ``l`` (``O(N * (lmax + chunk))`` float64; the lower triangle only when ``lmax`` is
unbounded). The DP loops over the number of change points ``k`` and over row chunks; all positions of a chunk
are one numpy operation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRAM_BLOCK = 64  # Gram rows are always computed in these blocks, so gram() and the streamed rows agree bitwise
KERNELS = ("linear", "cosine", "rbf")


class KTSError(ValueError):
    """Bad input to KTS (non-finite features, too few shots for the segments asked, infeasible limits)."""


# ----------------------------------------------------------------------------------------------- kernels
def _prepare(features, kernel: str, gamma: float | None):
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise KTSError(f"features must be a non-empty [N, D] array, got shape {x.shape}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise KTSError(f"features contain NaN/inf in {rows.size} row(s), first: {rows[:5].tolist()}")
    if kernel not in KERNELS:
        raise KTSError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")
    if kernel == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if kernel in ("linear", "cosine"):
        # The scatter of a linear kernel is translation invariant; centring keeps the prefix sums small (better
        # float64 numerics on long videos) without changing the objective.
        return (x - x.mean(axis=0)).astype(np.float32), None
    g = 1.0 / x.shape[1] if gamma is None else float(gamma)
    return x.astype(np.float32), (g, np.einsum("nd,nd->n", x, x))


def _gram_rows(x: np.ndarray, extra, r0: int, r1: int) -> np.ndarray:
    """Rows ``[r0, r1)`` of the kernel matrix, [r1 - r0, N] float64, built from GRAM_BLOCK-row products.

    The products run in float32 (store features are float16/32; this is 5x faster than float64 on CPU);
    everything downstream of K is float64.
    """
    out = np.empty((r1 - r0, x.shape[0]))
    for b0 in range(r0, r1, GRAM_BLOCK):
        b1 = min(r1, b0 + GRAM_BLOCK)
        blk = (x[b0:b1] @ x.T).astype(np.float64)
        if extra is not None:  # rbf
            g, sq = extra
            blk = np.exp(-g * np.maximum(sq[b0:b1, None] + sq[None, :] - 2.0 * blk, 0.0))
        out[b0 - r0:b1 - r0] = blk
    return out


def gram(features, kernel: str = "cosine", gamma: float | None = None) -> np.ndarray:
    """Full kernel matrix [N, N] float64 of ``features`` [N, D] (for small N and for reference checks)."""
    x, extra = _prepare(features, kernel, gamma)
    return _gram_rows(x, extra, 0, x.shape[0])


# ----------------------------------------------------------------------------------------------- costs
@dataclass
class BandCosts:
    """Within-segment costs on the band ``lmin <= l - t <= lmax``, stored by row chunks of segment ends ``l``."""
    n: int  # number of shots N
    lmin: int  # shortest allowed segment
    lmax: int  # longest allowed segment
    chunks: list  # (l0, l1, tlo, thi): rows l in [l0, l1), columns t in [tlo, thi)
    rects: list  # rects[c][l - l0, t - tlo] = J(t, l), inf outside the band
    jmin: float  # smallest finite cost (slightly negative only through rounding); used by the early stop
    jsum0: float  # cost of the whole video as one segment (inf if N > lmax)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.rects)


def _chunk_size(n: int, width: int) -> int:
    c = GRAM_BLOCK * min(8, max(1, math.ceil(width / 2 / GRAM_BLOCK)))
    return c


def band_costs(source, n: int, lmin: int = 1, lmax: int | None = None) -> BandCosts:
    """Band of segment costs from ``source`` = a kernel matrix [N, N] or a callable ``rows(r0, r1) -> K[r0:r1]``.

    P is streamed one chunk of rows at a time: its upper part ``P[t, l]`` (t < l) is parked in the rect of the
    chunk that owns row ``l``, and consumed when that chunk's own rows ``P[l, :]`` arrive.
    """
    lmax = n if lmax is None else int(min(lmax, n))
    if not 1 <= lmin <= lmax:
        raise KTSError(f"need 1 <= lmin <= lmax, got lmin={lmin}, lmax={lmax}")
    rows = (lambda r0, r1: np.array(source[r0:r1], dtype=np.float64)) if not callable(source) else source
    csz = _chunk_size(n, lmax - lmin + 1)
    chunks, rects = [], []
    for l0 in range(1, n + 1, csz):  # segment ends l = 1..N; chunk rows of P = rows l0..l1-1 = K rows l0-1..l1-2
        l1 = min(n + 1, l0 + csz)
        tlo, thi = max(0, l0 - lmax), max(max(0, l0 - lmax) + 1, l1 - lmin)
        chunks.append((l0, l1, tlo, thi))
        rects.append(np.zeros((l1 - l0, thi - tlo)))  # zeros = P[0, l] for t = 0
    pdiag, dcum = np.zeros(n + 1), np.zeros(n + 1)
    ccarry, dcarry = None, 0.0
    jmin = np.inf
    for c, (l0, l1, tlo, thi) in enumerate(chunks):
        kb = rows(l0 - 1, l1 - 1)  # K rows, [rows, N]
        diag = kb[np.arange(l1 - l0), np.arange(l0 - 1, l1 - 1)].copy()
        diag[0] = dcarry + diag[0]  # same sequential sums as cumsum([0] + diag)
        dcum[l0:l1] = np.cumsum(diag)
        dcarry = dcum[l1 - 1]
        if ccarry is not None:  # column prefix sums continue from the previous block, in the same order
            kb[0] = ccarry + kb[0]
        np.cumsum(kb, axis=0, out=kb)
        ccarry = kb[-1].copy()
        pb = np.zeros((l1 - l0, n + 1))
        np.cumsum(kb, axis=1, out=pb[:, 1:])  # pb[i, b] = P[l0 + i, b]
        del kb
        pdiag[l0:l1] = pb[np.arange(l1 - l0), np.arange(l0, l1)]
        # upper role: rows t of this block park P[t, l] in every chunk whose columns hold t
        for c2 in range(c, len(chunks)):
            m0, m1, ulo, uhi = chunks[c2]
            ts, te = max(ulo, l0), min(uhi, l1)
            if m0 > l1 - 1 + lmax:
                break
            if ts < te:
                rects[c2][:, ts - ulo:te - ulo] = pb[ts - l0:te - l0, m0:m1].T
        # lower role: rows l of this block complete J(t, l) for their band
        ll = np.arange(l0, l1)[:, None]
        tt = np.arange(tlo, thi)[None, :]
        r = rects[c]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            s = pdiag[l0:l1, None] + pdiag[None, tlo:thi]
            s -= pb[:, tlo:thi]
            s -= r
            s /= ll - tt
            np.subtract(dcum[l0:l1, None] - dcum[None, tlo:thi], s, out=r)
        d = ll - tt
        r[(d < lmin) | (d > lmax)] = np.inf
        if r.size:
            jmin = min(jmin, float(r.min()))
    jsum0 = float(rects[-1][-1, 0]) if chunks[-1][2] == 0 else np.inf
    return BandCosts(n, lmin, lmax, chunks, rects, jmin, jsum0)


# ----------------------------------------------------------------------------------------------- DP
def _dp(costs: BandCosts, m_max: int, keep_back: bool, stop=None):
    """Rows k = 0..m_max of the DP. Returns (scores [k_done + 1] = I[k, N], back list of int32 [N + 1] rows).

    ``stop(k, score_k) -> bool`` ends the recursion early (used by the exact early stop of ``kts_auto``).
    """
    n, lmin, lmax = costs.n, costs.lmin, costs.lmax
    prev = np.full(n + 1, np.inf)
    prev[0] = 0.0  # "-1 change points": the first segment starts at 0
    scores, back = [], []
    buf = np.empty(max(r.size for r in costs.rects))
    for k in range(m_max + 1):
        cur = np.full(n + 1, np.inf)
        brow = np.zeros(n + 1, dtype=np.int32) if keep_back else None
        # reachable: prev is finite only for t in [k*lmin, k*lmax]; cur for l in [(k+1)*lmin, (k+1)*lmax]
        t_lo, t_hi = k * lmin, k * lmax + 1
        for (l0, l1, tlo, thi), r in zip(costs.chunks, costs.rects):
            if l1 <= (k + 1) * lmin or l0 > (k + 1) * lmax or thi <= t_lo or tlo >= t_hi:
                continue
            cand = buf[:r.size].reshape(r.shape)
            np.add(prev[tlo:thi], r, out=cand)
            j = cand.argmin(axis=1)  # first minimum = smallest t, as in the reference
            cur[l0:l1] = cand[np.arange(l1 - l0), j]
            if keep_back:
                brow[l0:l1] = j + tlo
        scores.append(cur[n])
        if keep_back:
            back.append(brow)
        prev = cur
        if stop is not None and stop(k, cur[n]):
            break
    return np.array(scores), back


def _backtrack(back: list, m: int, n: int) -> np.ndarray:
    cps, cur = np.zeros(m, dtype=np.int64), n
    for k in range(m, 0, -1):
        cur = int(back[k][cur])
        cps[k - 1] = cur
    return cps


def _check_feasible(n: int, m: int, lmin: int, lmax: int) -> None:
    if n < (m + 1) * lmin:
        raise KTSError(f"{n} shots cannot form {m + 1} segments of at least {lmin} shot(s) ({m} change points)")
    if n > (m + 1) * lmax:
        raise KTSError(f"{n} shots cannot form {m + 1} segments of at most lmax={lmax} shots; raise lmax "
                       f"or the number of change points")


def kts_dp(K, m: int, *, lmin: int = 1, lmax: int | None = None, costs: BandCosts | None = None):
    """Exactly ``m`` change points of kernel matrix ``K`` [N, N]: (cps int [m], score = I[m, N])."""
    costs = costs or band_costs(K, np.shape(K)[0], lmin, lmax)
    _check_feasible(costs.n, m, costs.lmin, costs.lmax)
    scores, back = _dp(costs, m, keep_back=True)
    return _backtrack(back, m, costs.n), float(scores[m])


def penalties(n: int, m_max: int, vmax: float = 1.0, desc_rate: float = 1.0) -> np.ndarray:
    """Penalty of 0..m_max change points: ``vmax * m / (2 N') * (log(N' / m) + 1)``, N' = N * desc_rate."""
    n2 = n * desc_rate
    ncp = np.arange(1, m_max + 1)
    return np.concatenate([[0.0], (vmax * ncp / (2.0 * n2)) * (np.log(float(n2) / ncp) + 1)])


def kts_auto(K=None, max_change_points: int | None = None, vmax: float = 1.0, *, lmin: int = 1,
             lmax: int | None = None, desc_rate: float = 1.0, costs: BandCosts | None = None,
             back_budget_bytes: int = 512 << 20):
    """Change points with their number chosen by the KTS penalty: (cps int [m*], costs [k_done + 1]).

    ``costs[m] = I[m, N] / N + penalty(m)``; m* is its first minimum over 0..max_change_points. The DP stops as
    soon as no larger m can win: the penalty grows with m and I[m, N] >= (m + 1) * min(J, 0), so once
    ``penalty(k) - slack > best`` every later cost is larger (exact; rounding covered by the slack).
    """
    costs = costs or band_costs(K, np.shape(K)[0], lmin, lmax)
    n, lmin, lmax = costs.n, costs.lmin, costs.lmax
    m_max = n // lmin - 1 if max_change_points is None else min(int(max_change_points), n // lmin - 1)
    if m_max < 0:
        raise KTSError(f"max_change_points must be >= 0, got {max_change_points}")
    _check_feasible(n, m_max, lmin, lmax)
    pen = penalties(n, m_max, vmax, desc_rate)
    jneg = (m_max + 1) * max(-costs.jmin, 0.0) / n * (1 + 1e-6)
    state = {"best": np.inf}

    def stop(k: int, score: float) -> bool:
        state["best"] = min(state["best"], score / float(n) + pen[k])
        if k + 1 > m_max or not np.isfinite(state["best"]):
            return False
        slack = 1e-9 * (abs(state["best"]) + pen[k + 1] + 1.0) + jneg
        return bool(pen[k + 1] - slack > state["best"])

    keep = (m_max + 1) * (n + 1) * 4 <= back_budget_bytes
    scores, back = _dp(costs, m_max, keep_back=keep, stop=stop)
    total = scores / float(n) + pen[:len(scores)]
    m_best = int(np.argmin(total))
    if not keep:  # second pass, only as deep as needed, with back-pointers
        _, back = _dp(costs, m_best, keep_back=True)
    return _backtrack(back, m_best, n), total


def segment(features, max_change_points: int | None = None, lmax: int | None = None, vmax: float = 1.0,
            kernel: str = "cosine", *, n_change_points: int | None = None, lmin: int = 1,
            gamma: float | None = None, desc_rate: float = 1.0, max_memory_gb: float = 8.0) -> np.ndarray:
    """KTS on ``features`` [N, D] -> boundaries int64 [m + 2] = [0, cp_1, ..., cp_m, N].

    Segment i covers shots ``[b[i], b[i+1])``. ``n_change_points`` fixes m; otherwise m is chosen by the KTS
    penalty among 0..max_change_points (default: every feasible m). ``lmax`` (default unbounded) caps the
    segment length; it also bounds memory (O(N * lmax) float64) and time (O(m N lmax)).
    """
    x, extra = _prepare(features, kernel, gamma)
    n = x.shape[0]
    if n_change_points is not None:
        _check_feasible(n, int(n_change_points), lmin, n if lmax is None else min(lmax, n))
    width = (n if lmax is None else min(lmax, n)) - lmin + 1
    csz = _chunk_size(n, width)
    est = 8 * (n * (min(width, n) + csz) + 3 * csz * n)
    if est > max_memory_gb * 2**30:
        raise KTSError(f"KTS on {n} shots with lmax={lmax} needs ~{est / 2**30:.1f} GB (> max_memory_gb="
                       f"{max_memory_gb}); pass a smaller lmax")
    costs = band_costs(lambda r0, r1: _gram_rows(x, extra, r0, r1), n, lmin, lmax)
    if n_change_points is not None:
        cps, _ = kts_dp(None, int(n_change_points), costs=costs)
    else:
        cps, _ = kts_auto(None, max_change_points, vmax, desc_rate=desc_rate, costs=costs)
    return np.concatenate([[0], cps, [n]]).astype(np.int64)


def segment_ids(boundaries) -> np.ndarray:
    """Per-shot segment index [N] from boundaries [m + 2]."""
    b = np.asarray(boundaries, dtype=np.int64)
    return np.repeat(np.arange(len(b) - 1), np.diff(b))
