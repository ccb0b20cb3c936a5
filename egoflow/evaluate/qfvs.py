"""QFVS precision / recall / F1 with concept-IoU shot similarity and maximum-weight bipartite matching.

Definition (Sharghi et al. 2017, as the evaluation code used by QFVS papers, e.g. EgoVLPv2's
``semantic_evaluation.py``): the similarity of two shots is the IoU of their concept-tag sets (0 when both are
empty); the predicted and the reference summary are matched one-to-one maximising the total similarity;
precision = total / |predicted|, recall = total / |reference|, F1 their harmonic mean (0 when both are 0).
A maximum-weight bipartite matching with non-negative weights has the same total as the rectangular assignment
problem, which ``scipy.optimize.linear_sum_assignment(maximize=True)`` solves exactly.

Aggregation: scores are computed per query, averaged over each video's queries, then over videos (the per-video
columns and the "Average" column of QFVS tables). Summaries are used as given (a repeated shot counts twice, as in
the reference code); an empty prediction scores 0 (the reference code divides by zero).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from egoflow.datasets.errors import PredictionError, read_json
from egoflow.datasets.qfvs import QFVSVideo, load_qfvs


def _as_matrix(shot_concepts) -> np.ndarray:
    if isinstance(shot_concepts, np.ndarray):
        return shot_concepts.astype(bool)
    names = sorted(set().union(*shot_concepts)) if len(shot_concepts) else []
    col = {c: i for i, c in enumerate(names)}
    out = np.zeros((len(shot_concepts), len(names)), dtype=bool)
    for i, tags in enumerate(shot_concepts):
        out[i, [col[t] for t in tags]] = True
    return out


def concept_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise concept IoU of binary tags a [P, C] and b [R, C] -> [P, R]; 0 where both are untagged."""
    a = a.astype(np.int64)
    b = b.astype(np.int64)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def qfvs_scores(pred_shots, ref_shots, shot_concepts) -> dict:
    """Precision, recall, F1 of one predicted summary against one reference (0-based shot indices);
    ``shot_concepts``: binary tags [num_shots, num_concepts] or one set of concept names per shot."""
    tags = _as_matrix(shot_concepts)
    pred, ref = list(pred_shots), list(ref_shots)
    if not pred or not ref:
        return {"precision": 0.0, "recall": 0.0, "F1": 0.0}
    w = concept_iou(tags[pred], tags[ref])
    rows, cols = linear_sum_assignment(w, maximize=True)
    total = float(w[rows, cols].sum())
    p, r = total / len(pred), total / len(ref)
    return {"precision": p, "recall": r, "F1": 2 * p * r / (p + r) if p + r > 0 else 0.0}


def _pred_for(preds: dict, video: str, q, source):
    by_query = preds.get(video, {})
    shots = by_query.get(q.name, by_query.get("_".join(q.concepts[::-1])))
    return shots


def _check_predictions(predictions, videos: dict[str, QFVSVideo], source) -> dict:
    preds = predictions.get("results", predictions) if isinstance(predictions, dict) else predictions
    if not isinstance(preds, dict):
        raise PredictionError(source, None, "expected {video_id: {CONCEPT1_CONCEPT2: [shot, ...]}}")
    for vid, by_query in preds.items():
        if vid not in videos:
            raise PredictionError(source, vid, f"unknown video (ground truth has {sorted(videos)})")
        if not isinstance(by_query, dict):
            raise PredictionError(source, vid, "expected an object keyed by query (CONCEPT1_CONCEPT2)")
        names = {q.name for q in videos[vid].queries} | {"_".join(q.concepts[::-1]) for q in videos[vid].queries}
        for name, shots in by_query.items():
            where = f"{vid}.{name}"
            if name not in names:
                raise PredictionError(source, where, "query not in the ground truth")
            if not isinstance(shots, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in shots):
                raise PredictionError(source, where, "expected a list of integer shot indices (0-based)")
            bad = [s for s in shots if not 0 <= s < videos[vid].num_shots]
            if bad:
                raise PredictionError(source, where, f"shot(s) {bad[:5]} outside 0..{videos[vid].num_shots - 1}")
    return preds


def evaluate_qfvs(videos: dict[str, QFVSVideo], predictions: dict, reference: str = "oracle",
                  source="predictions") -> dict:
    """Score {video_id: {CONCEPT1_CONCEPT2: [0-based shots]}} against the oracle (default) or the mean over
    user summaries (``reference="users"``). Missing queries score 0 and are counted in ``num_missing``."""
    if reference not in ("oracle", "users"):
        raise ValueError(f"reference must be 'oracle' or 'users', got {reference!r}")
    preds = _check_predictions(predictions, videos, source)
    per_video, per_query, n_missing, n_queries = {}, {}, 0, 0
    for vid, video in videos.items():
        tags = video.tag_matrix()
        rows = {}
        for q in video.queries:
            refs = [q.oracle] if reference == "oracle" else list(q.users)
            if not refs:
                raise ValueError(f"{vid} {q.name}: no user summaries were loaded")
            shots = _pred_for(preds, vid, q, source)
            n_queries += 1
            if shots is None:
                n_missing += 1
                shots = []
            scores = [qfvs_scores(shots, ref, tags) for ref in refs]
            rows[q.name] = {k: float(np.mean([s[k] for s in scores])) for k in ("precision", "recall", "F1")}
        per_query[vid] = rows
        per_video[vid] = {k: float(np.mean([r[k] for r in rows.values()])) if rows else 0.0
                          for k in ("precision", "recall", "F1")}
    out = {k: float(np.mean([v[k] for v in per_video.values()])) for k in ("F1", "precision", "recall")}
    out.update(num_videos=len(per_video), num_queries=n_queries, num_missing=n_missing, reference=reference,
               per_video=per_video, per_query=per_query)
    return out


def evaluate_qfvs_files(gt_root, pred_path, videos=None, **kwargs) -> dict:
    """``evaluate_qfvs`` on the QFVS ``origin_data`` folder and a JSON predictions file; only the videos named in
    the predictions are evaluated unless ``videos`` is given (QFVS is tested one held-out video at a time)."""
    preds = read_json(pred_path, PredictionError)
    body = preds.get("results", preds) if isinstance(preds, dict) else None
    if not isinstance(body, dict):
        raise PredictionError(pred_path, None, "expected {video_id: {CONCEPT1_CONCEPT2: [shot, ...]}}")
    gt = load_qfvs(gt_root, videos=tuple(videos or sorted(body)))
    return evaluate_qfvs(gt, preds, source=str(pred_path), **kwargs)
