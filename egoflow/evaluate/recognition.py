"""Clip-level recognition benchmarks of the linear heads: EK-100 action recognition, Ego4D OSCC and PNR, EgoTaskQA.

- EK-100 (the challenge's ``evaluate.py``): top-1/top-5 accuracy of verb, noun and action, where an action is the
  (verb, noun) pair and its scores come from the submission's ``action`` entries (``"v,n": score``; a pair that
  is not listed is never ranked). A segment without a prediction counts as wrong.
- OSCC: accuracy of the predicted state change (the baseline's ``state_change_accuracy``); missing = wrong.
- PNR: mean |predicted - true| PNR offset in seconds over the clips with a state change (the baseline's
  ``keyframe_distance``: frames from the clip start divided by the clip's fps); every such clip must be predicted.
- EgoTaskQA: exact-match accuracy overall and per reasoning type (a question counts in each of its tags), as the
  baselines' ``ReasongingTypeAccCalculator``; missing = wrong.
"""
from __future__ import annotations

import numpy as np

from egoflow.datasets.egotaskqa import load_egotaskqa, load_egotaskqa_predictions
from egoflow.datasets.ek100_actions import load_ek100_actions
from egoflow.datasets.errors import AnnotationError, PredictionError, read_json
from egoflow.datasets.fho import load_fho_oscc_pnr, load_oscc_submission, load_pnr_submission
from egoflow.evaluate.classification import pnr_abs_error


def _rank_hits(score_dicts: list[dict | None], targets: list, ks=(1, 5)) -> dict:
    """Top-k hits where each row is a {label: score} dict; ties keep the dict's order, absent rows miss."""
    hits = {k: 0 for k in ks}
    for scores, t in zip(score_dicts, targets):
        if not scores or t not in scores:
            continue
        mine, vals = scores[t], np.fromiter(scores.values(), float, len(scores))
        ti = list(scores).index(t)
        rank = int((vals > mine).sum() + (vals[:ti] == mine).sum())
        for k in ks:
            hits[k] += rank < k
    return {f"top{k}": hits[k] / len(targets) for k in ks}


def _score_dict(path, nid: str, part: str, value) -> dict:
    if not isinstance(value, dict) or not value:
        raise PredictionError(path, f"results.{nid}.{part}", "expected a non-empty {class: score}")
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise PredictionError(path, f"results.{nid}.{part}.{k}", f"score {v!r} is not a finite number")
        out[str(k)] = float(v)
    return out


def evaluate_ek100_actions_files(gt_path, pred_path) -> dict:
    """EK-100 action recognition of a challenge JSON against ``EPIC_100_validation.csv``."""
    gt = load_ek100_actions(gt_path)
    if any(a.verb_class < 0 or a.noun_class < 0 for a in gt):
        raise AnnotationError(gt_path, None, "has no verb/noun labels (the test split cannot be scored here)")
    return ek100_actions_metrics(gt, read_json(pred_path, PredictionError), pred_path, gt_path)


def ek100_actions_metrics(gt, data, pred_path="predictions", gt_path="ground truth") -> dict:
    """Metrics of a challenge submission dict against action segments ``gt`` (``EK100Action`` records)."""
    res = data.get("results") if isinstance(data, dict) else None
    if not isinstance(res, dict):
        raise PredictionError(pred_path, "results", "expected {narration_id: {verb, noun, action}}")
    known = {a.narration_id for a in gt}
    unknown = sorted(set(res) - known)
    if unknown:
        raise PredictionError(pred_path, f"results.{unknown[0]}", f"not a segment of {gt_path} "
                              f"({len(unknown)} unknown)")
    rows = {p: [] for p in ("verb", "noun", "action")}
    for a in gt:
        r = res.get(a.narration_id)
        for part in rows:
            if r is not None and part not in r:
                raise PredictionError(pred_path, f"results.{a.narration_id}.{part}", "missing key")
            rows[part].append(None if r is None else _score_dict(pred_path, a.narration_id, part, r[part]))
    targets = {"verb": [str(a.verb_class) for a in gt], "noun": [str(a.noun_class) for a in gt],
               "action": [f"{a.verb_class},{a.noun_class}" for a in gt]}
    out: dict = {}
    for part, row in rows.items():
        for k, v in _rank_hits(row, targets[part]).items():
            out[f"{part} {k}"] = v
    out.update(num_segments=len(gt), num_missing=sum(a.narration_id not in res for a in gt))
    return out


def evaluate_oscc_files(gt_path, pred_path) -> dict:
    clips = load_fho_oscc_pnr(gt_path, task="oscc")
    return oscc_metrics(clips, *load_oscc_submission(pred_path, clips))


def oscc_metrics(clips, preds: dict[str, bool], missing: list[str]) -> dict:
    gone = set(missing)
    correct = [c.unique_id not in gone and preds[c.unique_id] == c.state_change for c in clips]
    return {"accuracy": float(np.mean(correct)), "num_clips": len(clips), "num_missing": len(missing),
            "positive_rate": float(np.mean([bool(c.state_change) for c in clips]))}


def evaluate_pnr_files(gt_path, pred_path) -> dict:
    clips = load_fho_oscc_pnr(gt_path, task="pnr")
    return pnr_metrics(clips, *load_pnr_submission(pred_path, clips), pred_path=pred_path, gt_path=gt_path)


def pnr_metrics(clips, preds: dict[str, float], missing: list[str], pred_path="predictions",
                gt_path="ground truth") -> dict:
    pos = [c for c in clips if c.state_change]
    lost = [c.unique_id for c in pos if c.unique_id in set(missing)]
    if lost:
        raise PredictionError(pred_path, None, f"{len(lost)} state-change clip(s) have no pnr_frame, e.g. "
                              f"{lost[0]!r}")
    if not pos:
        raise AnnotationError(gt_path, None, "no clip with a state change: PNR error undefined")
    pred_s = [preds[c.unique_id] / c.fps for c in pos]
    gt_s = [c.pnr_offset_sec for c in pos]
    return {"abs_error_s": pnr_abs_error(pred_s, gt_s), "num_clips": len(pos), "num_missing": 0}


def egotaskqa_accuracy(pred: dict[int, str], items) -> dict:
    """{"accuracy", "<tag>": accuracy per reasoning type, "num_<tag>"...} of answers by question index."""
    correct = np.array([pred.get(q.index) == q.answer for q in items], bool)
    out: dict = {"accuracy": float(correct.mean())}
    per: dict[str, list[bool]] = {}
    for q, ok in zip(items, correct):
        for t in dict.fromkeys(q.tags):
            per.setdefault(t, []).append(bool(ok))
    for t, oks in per.items():  # first-seen order, as the baselines' all_reasoning_types.txt
        out[t] = float(np.mean(oks))
    out["per_type_counts"] = {t: len(v) for t, v in per.items()}
    return out


def evaluate_egotaskqa_files(gt_path, pred_path, fps: float = 30.0) -> dict:
    items = load_egotaskqa(gt_path, fps)
    preds, missing = load_egotaskqa_predictions(pred_path, items)
    out = egotaskqa_accuracy(preds, items)
    out.update(num_questions=len(items), num_missing=len(missing))
    return out

