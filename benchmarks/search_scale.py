"""Moment search at store scale, in one run: the approximate index ``egoflow search`` switches to (IVF + 4-bit PQ
fast scan + exact re-ranking, ``features_store/ann.py``) against the exact flat index, on clustered CLIP-like
steps (512-d, unit norm, videos / scenes / correlated consecutive steps: ``search_data.py``).

    python benchmarks/search_scale.py                       # 200 k steps (make bench)
    python benchmarks/search_scale.py --steps 10000000      # 10 M steps: 10 GB float16 memmap under --data
    python benchmarks/search_scale.py --crossover 20000,50000,100000,250000,500000

Printed: recall@10 of the approximate top-10 steps against the exact top-10 for 200 text-like queries, for each
(nprobe, rerank) of the grid and for the parameters ``choose_params`` picks, and the speed-up in query time over
the flat index. The flat cost is faiss's exact inner-product search (what ``IndexFlatIP.search`` runs) over all
N rows, measured chunk by chunk while computing the ground truth (a 10 M x 512 float32 flat index is 20 GB: it
does not fit here), plus a second figure timed right after the approximate search on one chunk and scaled
linearly to N (the machine is shared: this pairs the two under the same load). Both are batched (all queries in
one call, the flat index's best case); ``single`` is one query per call, as ``egoflow search`` runs.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_data as sd  # noqa: E402

from egoflow.features_store import ann  # noqa: E402


def recall_at(rows: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(a[:k]) & set(e[:k])) / k for a, e in zip(rows.tolist(), exact.tolist())]))


def moment_recall(rows: np.ndarray, exact: np.ndarray, gap: int = 2) -> float:
    """Share of the exact top-10 steps with an approximate hit within ``gap`` steps (rows are in video then time
    order): the moment ``egoflow search`` merges them into is found even when that very step is not."""
    hit = [np.abs(np.asarray(e)[:, None] - np.asarray(a)[None, :]).min(1) <= gap for a, e in zip(rows, exact)]
    return float(np.mean(hit))


def _rss_anon_gb() -> float | None:
    """Anonymous memory now (the memory map's file pages, counted in the peak RSS, are page cache)."""
    try:
        line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("RssAnon"))
        return round(int(line.split()[1]) / 2**20, 2)
    except (OSError, StopIteration):
        return None


def timed(fn, reps: int = 1):
    fn()  # warm-up (page cache, faiss buffers)
    t = time.perf_counter()
    for _ in range(reps):
        out = fn()
    return out, (time.perf_counter() - t) / reps


def flat_paired_ms(mm, q, rows: int = 262_144) -> dict:
    """ms per query of exact search over ``rows`` rows scaled to ``len(mm)``: batched (all queries per call) with
    the BLAS scan of ``search_data.exact_topk`` and with faiss's ``IndexFlatIP``, and one query per call."""
    import faiss

    x = np.asarray(mm[:rows], np.float32)
    scale = len(mm) / len(x)
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    _, blas = timed(lambda: sd.exact_topk(x, q, 10, log=lambda s: None))
    _, fb = timed(lambda: flat.search(q, 10))
    _, one = timed(lambda: [flat.search(q[i:i + 1], 10) for i in range(10)])
    return {"blas": blas / len(q) * 1e3 * scale, "faiss": fb / len(q) * 1e3 * scale, "single": one / 10 * 1e3 * scale}


def run(n: int, a, params: ann.AnnParams | None = None, grid: bool = True, log=print) -> dict:
    import faiss

    root = Path(a.data)
    mm = sd.steps(root, n, log=log)
    q = sd.queries(mm, a.queries)
    gt = sd.ground_truth(root, mm, q, 10, log=log)
    p = params or ann.choose_params(n, mm.shape[1])
    if a.nlist or a.pq_m:
        p = ann.AnnParams(**{**p.as_dict(), **({"nlist": a.nlist} if a.nlist else {}),
                             **({"pq_m": a.pq_m} if a.pq_m else {})})
    if a.prebuilt:  # an index built earlier with these parameters (e.g. while the data was generated)
        index, build = faiss.read_index(a.prebuilt), json.loads(Path(a.prebuilt).with_suffix(".json").read_text())
        assert (build["nlist"], build["pq_m"]) == (p.nlist, p.pq_m), (build, p)
        p = ann.AnnParams(**{**p.as_dict(), "train_rows": build["train_rows"]})
    else:
        index, build = ann.build(mm, p, log=log)
    out = {"steps": n, "dim": mm.shape[1], "queries": len(q), "params": p.as_dict(), **build,
           "index_mb": round(faiss.serialize_index(index).nbytes / 2**20, 1),
           "vectors_mb_on_disk": round(mm.nbytes / 2**20, 1),
           "flat_ms_per_query": round(gt["flat_s"] / len(q) * 1e3, 3), "threads": faiss.omp_get_max_threads()}
    points = [(p.nprobe, p.rerank)]
    if grid:
        points += [(npb, r) for npb in a.nprobes for r in a.reranks if (npb, r) != points[0] and npb <= p.nlist]
    res = []
    for npb, r in points:
        (_, rows), dt = timed(lambda npb=npb, r=r: ann.search(index, mm, q, 10, npb, r))
        res.append({"nprobe": npb, "rerank": r, "recall@10": round(recall_at(rows, gt["rows"]), 4),
                    "moment_recall": round(moment_recall(rows, gt["rows"]), 4),
                    "ms_per_query": round(dt / len(q) * 1e3, 3)})
    chosen = res[0]
    _, single = timed(lambda: [ann.search(index, mm, q[i:i + 1], 10, p.nprobe, p.rerank) for i in range(20)])
    paired = flat_paired_ms(mm, q)
    fs = paired["single"]
    ratios = []  # the load of a shared machine drifts: flat chunk and approximate search back to back, 3 times
    x = np.asarray(mm[:262_144], np.float32)
    for _ in range(3):
        _, tf = timed(lambda: sd.exact_topk(x, q, 10, log=lambda s: None))
        _, ta = timed(lambda: ann.search(index, mm, q, 10, p.nprobe, p.rerank))
        ratios.append(tf * len(mm) / len(x) / ta)
    fb = chosen["ms_per_query"] * float(np.median(ratios))
    out.update({"flat_paired_ms_per_query": {k: round(v, 3) for k, v in paired.items()},
                "chosen": chosen, "approx_single_ms": round(single / 20 * 1e3, 3),
                "speedup_vs_flat": round(out["flat_ms_per_query"] / chosen["ms_per_query"], 1),
                "speedup_vs_flat_paired": round(fb / chosen["ms_per_query"], 1),
                "paired_ratios": [round(v, 1) for v in ratios], "rss_anon_gb": _rss_anon_gb(),
                "speedup_single": round(fs / (single / 20 * 1e3), 1),
                "grid": sorted(res, key=lambda d: (d["nprobe"], d["rerank"])),
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200_000, help="stored steps (rows)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--data", default="/tmp/egoflow_search_bench", help="folder for the float16 memmap and the"
                    " cached ground truth (10 M steps: 10 GB)")
    ap.add_argument("--nprobes", default="8,16,32,64", help="grid of lists scanned")
    ap.add_argument("--reranks", default="200,400,800", help="grid of candidates re-scored exactly")
    ap.add_argument("--nlist", type=int, default=0, help="override choose_params' lists")
    ap.add_argument("--pq-m", type=int, default=0, help="override choose_params' PQ sub-quantizers")
    ap.add_argument("--crossover", default="", help="comma-separated sizes: approximate vs flat at each (chosen"
                    " parameters only), instead of the grid")
    ap.add_argument("--prebuilt", default="", help="a faiss index file (+ .json with nlist, pq_m, train_s, add_s,"
                    " train_rows) built earlier over these steps")
    ap.add_argument("--threads", type=int, default=0, help="faiss threads (0: faiss default)")
    a = ap.parse_args()
    a.nprobes = [int(x) for x in a.nprobes.split(",")]
    a.reranks = [int(x) for x in a.reranks.split(",")]
    import faiss

    if a.threads:
        faiss.omp_set_num_threads(a.threads)

    def log(s):
        print(s, file=sys.stderr, flush=True)

    if a.crossover:
        print(f"{'steps':>10} {'nlist':>6} {'nprobe':>6} {'recall@10':>9} {'flat ms/q':>9} {'approx ms/q':>11} "
              f"{'x':>6} {'flat 1q ms':>10} {'approx 1q ms':>12} {'x':>6}")
        for n in [int(x) for x in a.crossover.split(",")]:
            r = run(n, a, grid=False, log=log)
            c = r["chosen"]
            fb = min(r["flat_paired_ms_per_query"]["blas"], r["flat_paired_ms_per_query"]["faiss"])
            print(f"{n:>10,} {r['params']['nlist']:>6} {c['nprobe']:>6} {c['recall@10']:>9.3f} {fb:>9.3f} "
                  f"{c['ms_per_query']:>11.3f} {r['speedup_vs_flat_paired']:>6.1f} "
                  f"{r['flat_paired_ms_per_query']['single']:>10.2f} {r['approx_single_ms']:>12.3f} "
                  f"{r['speedup_single']:>6.1f}", flush=True)
        return
    r = run(a.steps, a, log=log)
    print(json.dumps(r, indent=1))
    c = r["chosen"]
    print(f"{a.steps:,} steps: recall@10 {c['recall@10']:.3f} (exact steps within 2 of a hit: "
          f"{c['moment_recall']:.3f}; nprobe {c['nprobe']}, rerank {c['rerank']}, "
          f"nlist {r['params']['nlist']}, PQ{r['params']['pq_m']}x4fs); speed-up vs flat {r['speedup_vs_flat']}x "
          f"(paired {r['speedup_vs_flat_paired']}x, one query per call {r['speedup_single']}x); build "
          f"{r['train_s'] + r['add_s']:.0f} s; index {r['index_mb']} MB in memory + vectors on disk")


if __name__ == "__main__":
    main()
