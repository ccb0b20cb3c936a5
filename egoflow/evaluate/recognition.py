"""Clip-level recognition benchmarks of the linear heads: EK-100 action recognition, Ego4D OSCC and PNR, EgoTaskQA.

- EK-100 (the challenge's ``evaluate.py``): top-1/top-5 accuracy of verb, noun and action; see ``ek100_ar``.
- OSCC: accuracy of the predicted state change (the baseline's ``state_change_accuracy``); missing = wrong.
- PNR: mean |predicted - true| PNR offset in seconds over the clips with a state change (the baseline's
  ``keyframe_distance``: frames from the clip start divided by the clip's fps); every such clip must be predicted.
- EgoTaskQA: exact-match accuracy overall and per reasoning type (a question counts once per listed tag, twice
  for a tag its type list repeats), as the baselines' ``ReasongingTypeAccCalculator``; missing = wrong.
"""
from __future__ import annotations

import numpy as np

from egoflow.datasets.egotaskqa import load_egotaskqa, load_egotaskqa_predictions
from egoflow.datasets.errors import AnnotationError, PredictionError
from egoflow.datasets.fho import load_fho_oscc_pnr, load_oscc_submission, load_pnr_submission
from egoflow.evaluate.ek100_ar import ek100_actions_metrics, evaluate_ek100_actions_files

__all__ = ["ek100_actions_metrics", "evaluate_ek100_actions_files", "evaluate_oscc_files", "evaluate_pnr_files",
           "evaluate_egotaskqa_files", "egotaskqa_accuracy", "oscc_metrics", "pnr_metrics"]


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
    # the official keyframe_distance, operation for operation: |pred - (pnr - clip start)| frames / fps
    err_s = [abs(preds[c.unique_id] - (c.pnr_frame - c.start_frame)) / c.fps for c in pos]
    return {"abs_error_s": float(np.mean(err_s)), "num_clips": len(pos), "num_missing": 0}


def egotaskqa_accuracy(pred: dict[int, str], items) -> dict:
    """{"accuracy", "<tag>": accuracy per reasoning type, "num_<tag>"...} of answers by question index."""
    correct = np.array([pred.get(q.index) == q.answer for q in items], bool)
    out: dict = {"accuracy": float(correct.mean())}
    per: dict[str, list[bool]] = {}
    for q, ok in zip(items, correct):
        for t in q.tags:  # a tag listed twice counts twice, as the baselines' calculator
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

