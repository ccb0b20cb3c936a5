"""Retrieval metrics: EgoMCQ accuracy and EPIC-Kitchens-100 multi-instance retrieval (mAP, nDCG).

EgoMCQ: a question is answered correctly when the highest-scoring of its 5 candidates is the answer (ties go to
the lower index, as ``argmax``). ``types`` 1 = inter-video, 2 = intra-video (EgoVLP's dataset: "1 for inter; 2 for
intra"), mapped by value. The reference metrics name groups by position instead, ``zip(torch.unique(types),
group_list)``: EgoVLP's ``egomcq_accuracy_metrics`` has ``["Intra-video", "Inter-video"]``, so it prints type 1
(inter) as "Intra-video" and type 2 as "Inter-video" whenever both are present, and a lone type as "Intra-video";
EgoVLPv2's ``egomcq_accuracy_metrics_ensemble`` / ``_vtm`` have ``["Inter-video", "Intra-video"]``: right with
both present, a lone type printed as "Inter-video". See docs/evaluate.md.

EK-100 MIR (``mAP.py`` / ``nDCG.py`` of the EPIC-Kitchens evaluation, used by the challenge and EgoVLP):
similarity and relevancy are [videos, texts]; "V2T" ranks texts for each video (rows), "T2V" ranks videos for each
text (the transposes).

- mAP: ranking by ``np.argsort(-sim)`` as the official code (so ties break the same way), AP of a query = mean
  over the items with relevancy exactly 1 of "precision" at their rank k, where the official precision is the
  *sum of relevancies* (not the count of relevant items) of the first k items divided by k: partially relevant
  items raise it. With binary relevancy this is the usual AP.
- nDCG: DCG = sum over the first k ranks of relevancy / log2(rank + 1), k = number of items with relevancy > 0 for
  that query, ranking by ``np.argsort(sim)[::-1]`` (official tie order); IDCG is the same sum for the ranking by
  relevancy itself; nDCG = mean over queries of DCG / IDCG.
- "mAP" and "nDCG" are the averages of the two directions.

A query without any relevant item makes the official mean NaN; here such queries are left out and counted
(``num_queries_without_relevant``). The EK-100 test relevancy has none.
"""
from __future__ import annotations

import numpy as np

INTER, INTRA = 1, 2  # EgoMCQ "types" values


def egomcq_accuracy(scores, answers, types, missing=None) -> dict:
    """{"Inter-video", "Intra-video", "num_inter", "num_intra", "num_missing"}: accuracy of scores [N, 5] given
    answer indices [N] and types [N] (1 inter, 2 intra). Rows flagged in ``missing`` [N] bool count as wrong.
    A type without questions has no accuracy key (rather than NaN)."""
    scores = np.asarray(scores, dtype=float)
    answers = np.asarray(answers, dtype=np.int64)
    types = np.asarray(types, dtype=np.int64)
    if scores.ndim != 2 or answers.shape != (len(scores),) or types.shape != (len(scores),):
        raise ValueError(f"scores [N, C], answers [N], types [N] expected; got {scores.shape}, "
                         f"{answers.shape}, {types.shape}")
    bad = sorted(set(types.tolist()) - {INTER, INTRA})
    if bad:
        raise ValueError(f"EgoMCQ types must be 1 (inter-video) or 2 (intra-video); got {bad}")
    correct = scores.argmax(axis=1) == answers
    missing = np.zeros(len(scores), bool) if missing is None else np.asarray(missing, bool)
    correct &= ~missing
    out: dict = {}
    for value, name, count in ((INTER, "Inter-video", "num_inter"), (INTRA, "Intra-video", "num_intra")):
        sel = types == value
        if sel.any():
            out[name] = float(correct[sel].mean())
        out[count] = int(sel.sum())
    out["num_missing"] = int(missing.sum())
    return out


def _check(sim, rel):
    sim = np.asarray(sim, dtype=float)
    rel = np.asarray(rel, dtype=float)
    if sim.ndim != 2 or sim.shape != rel.shape:
        raise ValueError(f"similarity {sim.shape} and relevancy {rel.shape} must both be [videos, texts]")
    if np.isnan(sim).any():
        raise ValueError("similarity contains NaN")
    return sim, rel


def mir_map(sim, rel) -> tuple[float, int]:
    """(mean AP over queries = rows, number of rows without a relevant item, which are left out)."""
    sim, rel = _check(sim, rel)
    ranked = np.take_along_axis(rel, np.argsort(-sim, axis=1), axis=1)
    hits = ranked == 1
    npos = hits.sum(axis=1)
    prec = np.cumsum(ranked, axis=1) / np.arange(1, sim.shape[1] + 1)  # relevancy mass, as the official code
    ok = npos > 0
    if not ok.any():
        raise ValueError("mir_map: no query has a relevant item")
    ap = (prec * hits).sum(axis=1)[ok] / npos[ok]
    return float(ap.mean()), int((~ok).sum())


def _dcg(rel_ranked: np.ndarray, k: np.ndarray) -> np.ndarray:
    discount = 1.0 / np.log2(np.arange(rel_ranked.shape[1]) + 2)
    used = np.arange(rel_ranked.shape[1])[None, :] < k[:, None]
    return (rel_ranked * discount * used).sum(axis=1)


def mir_ndcg(sim, rel) -> tuple[float, int]:
    """(mean nDCG over queries = rows, number of rows without relevancy > 0, which are left out)."""
    sim, rel = _check(sim, rel)
    k = (rel > 0).sum(axis=1)
    ranked = np.take_along_axis(rel, np.argsort(sim, axis=1)[:, ::-1], axis=1)
    ideal = np.take_along_axis(rel, np.argsort(rel, axis=1)[:, ::-1], axis=1)
    ok = k > 0
    if not ok.any():
        raise ValueError("mir_ndcg: no query has a relevant item")
    return float((_dcg(ranked, k)[ok] / _dcg(ideal, k)[ok]).mean()), int((~ok).sum())


def mir_metrics(sim, rel) -> dict:
    """EK-100 MIR metrics from similarity and relevancy [videos, texts], fractions (the leaderboard shows %)."""
    out = {}
    for tag, s, r in (("V2T", sim, rel), ("T2V", np.asarray(sim).T, np.asarray(rel).T)):
        out[f"mAP {tag}"], n1 = mir_map(s, r)
        out[f"nDCG {tag}"], n2 = mir_ndcg(s, r)
        out[f"num_queries_without_relevant {tag}"] = max(n1, n2)
    out["mAP"] = (out["mAP V2T"] + out["mAP T2V"]) / 2
    out["nDCG"] = (out["nDCG V2T"] + out["nDCG T2V"]) / 2
    return out


def pr_curve(sim, relevant, points: int = 50) -> dict:
    """Mean precision and recall over queries (rows) at ranks 1..N, subsampled to ``points`` ranks, for the
    report's PR plot. ``relevant`` [Q, N] bool; rows without a relevant item are skipped."""
    sim = np.asarray(sim, dtype=float)
    hits = np.take_along_axis(np.asarray(relevant, bool), np.argsort(-sim, axis=1), axis=1)
    hits = hits[hits.any(axis=1)]
    if len(hits) == 0:
        return {"rank": [], "precision": [], "recall": []}
    tp = np.cumsum(hits, axis=1)
    ranks = np.unique(np.linspace(1, hits.shape[1], min(points, hits.shape[1])).round().astype(int))
    prec = (tp / np.arange(1, hits.shape[1] + 1)).mean(axis=0)[ranks - 1]
    rec = (tp / hits.sum(axis=1, keepdims=True)).mean(axis=0)[ranks - 1]
    return {"rank": ranks.tolist(), "precision": prec.tolist(), "recall": rec.tolist()}
