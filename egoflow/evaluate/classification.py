"""Video-level classification metrics: Charades(-Ego) mAP, top-k accuracy, PNR keyframe error.

Charades mAP follows ``Charades_v1_classify.m`` (the official MATLAB script):

- per class, videos are sorted by descending score with a *stable* sort (MATLAB's ``sort``), AP = mean of the
  precision at the rank of each positive (no interpolation), mAP = mean of the per-class APs;
- a video with no label at all has its scores set to -inf (the script never finds its id, so it ranks last), and
  a video missing from the submission has -inf scores too.
- A class with no positive video has AP 0/0 in the MATLAB script, which turns the mean into NaN. Here such classes
  are left out of the mean, as the Python port used for CharadesEgo by EgoVLP/EgoVLPv2 does (``nanmean``); the two
  agree whenever every class has a positive, as on the official test sets. ``charades_map_report`` says how many
  classes were evaluated.
"""
from __future__ import annotations

import numpy as np


def _check_2d(scores, labels):
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must both be [videos, classes]")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    return scores, labels.astype(bool)


def average_precision_ranked(scores: np.ndarray, positive: np.ndarray) -> float:
    """Non-interpolated AP of one class (stable descending sort); NaN when there is no positive."""
    order = np.argsort(-scores, kind="stable")
    hits = positive[order]
    npos = int(hits.sum())
    if npos == 0:
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / npos)


def charades_map_report(scores, labels) -> dict:
    """{"mAP", "wAP" (weighted by class size), "per_class_AP" (NaN for classes without positives),
    "num_classes_evaluated", "num_classes"} for scores/labels [N videos, C classes]."""
    scores, labels = _check_2d(scores, labels)
    fixed = scores.copy()
    fixed[~labels.any(axis=1)] = -np.inf
    ap = np.array([average_precision_ranked(fixed[:, c], labels[:, c]) for c in range(labels.shape[1])])
    ok = ~np.isnan(ap)
    if not ok.any():
        raise ValueError("charades_map: no class has a positive example")
    size = labels.sum(axis=0)
    return {"mAP": float(ap[ok].mean()), "wAP": float((ap[ok] * size[ok]).sum() / size.sum()),
            "per_class_AP": ap.tolist(), "num_classes_evaluated": int(ok.sum()), "num_classes": int(len(ap))}


def charades_map(scores, labels) -> float:
    """Charades video-level mAP of scores [N, C] against binary labels [N, C] (see module docstring)."""
    return charades_map_report(scores, labels)["mAP"]


def topk_accuracy(scores, targets, ks=(1, 5)) -> dict:
    """{"top1": ..., "top5": ...}: fraction of rows whose target is among the k highest scores [N, C].

    Ties are broken towards the lower class index (as ``argmax``), so top-1 equals argmax accuracy.
    """
    scores = np.asarray(scores, dtype=float)
    targets = np.asarray(targets, dtype=np.int64)
    if scores.ndim != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(f"scores must be [N, C] and targets [N]; got {scores.shape} and {targets.shape}")
    if len(targets) == 0:
        raise ValueError("topk_accuracy: no samples")
    if (targets < 0).any() or (targets >= scores.shape[1]).any():
        raise ValueError(f"targets must lie in 0..{scores.shape[1] - 1}")
    mine = scores[np.arange(len(targets)), targets][:, None]
    cls = np.arange(scores.shape[1])[None, :]
    rank = (scores > mine).sum(1) + ((scores == mine) & (cls < targets[:, None])).sum(1)  # 0-based
    return {f"top{k}": float(np.mean(rank < k)) for k in ks}


def pnr_abs_error(pred_sec, gt_sec, has_state_change=None) -> float:
    """Ego4D PNR keyframe localisation: mean |predicted - true| keyframe time in seconds over the clips with a
    state change (``has_state_change`` [N] bool; all when None). Frame-based predictions: pass
    ``frame / fps`` for both (the official error is in seconds after dividing frame offsets by the fps)."""
    pred = np.asarray(pred_sec, dtype=float)
    gt = np.asarray(gt_sec, dtype=float)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ")
    keep = np.ones(pred.shape, bool) if has_state_change is None else np.asarray(has_state_change, bool)
    if not keep.any():
        raise ValueError("pnr_abs_error: no clip with a state change to score")
    return float(np.mean(np.abs(pred[keep] - gt[keep])))


def ek100_action_accuracy(verb_scores, noun_scores, verbs, nouns, ks=(1, 5)) -> dict:
    """EPIC-KITCHENS-100 action recognition top-k of verb, noun and action ``{"verb top1": ..., ...}``.

    ``verb_scores [N, V]`` / ``noun_scores [N, M]`` are per-class scores (logits or log-likelihoods); the action
    score of (v, n) is ``softmax(verb)[v] * softmax(noun)[n]`` as in the official baselines, and an action is
    right only when both its verb and noun are.
    """
    v, n = np.asarray(verb_scores, float), np.asarray(noun_scores, float)
    out = {f"verb {k}": x for k, x in topk_accuracy(v, verbs, ks).items()}
    out.update({f"noun {k}": x for k, x in topk_accuracy(n, nouns, ks).items()})
    pv = np.exp(v - v.max(1, keepdims=True))
    pn = np.exp(n - n.max(1, keepdims=True))
    pv, pn = pv / pv.sum(1, keepdims=True), pn / pn.sum(1, keepdims=True)
    action = (pv[:, :, None] * pn[:, None, :]).reshape(len(v), -1)
    targets = np.asarray(verbs, np.int64) * n.shape[1] + np.asarray(nouns, np.int64)
    out.update({f"action {k}": x for k, x in topk_accuracy(action, targets, ks).items()})
    return out
