"""Ego4D Moment Queries: ActivityNet-style interpolated AP per class and tIoU, and Ego4D's Recall@kx.

Definitions (EGO4D/episodic-memory MQ/Evaluation, derived from the ActivityNet detection code):

- Ground truth = the *primary* instances; a class is evaluated when it has at least one ground-truth instance,
  and mAP at a tIoU is the plain mean over those classes; "mAP" is the mean over the tIoU thresholds.
- AP: the predictions of a class over all clips are ranked by descending score (``np.argsort(score)[::-1]`` on
  the predictions in file order, as the official code, which also fixes how ties are broken); each takes the
  not-yet-matched ground truth of its clip with the highest tIoU if that tIoU is **>=** the threshold, else it is
  a false positive. tIoU here is intersection / (len_a + len_b - intersection). AP is the VOC-2011 interpolated
  area under the precision/recall curve. Predictions for a label absent from the ground truth are ignored (and
  counted); a class without predictions has AP 0.
- Recall@kx at tIoU t (Ego4D's "k"): for every clip and every ground-truth label in it with n instances, the first
  k*n predictions of that label in the clip (by descending score) are kept; an instance is recalled when one of
  them has IoU **strictly greater** than t (union = hull here, as in the official retrieval code). The recall is
  the fraction of all instances recalled. A clip without predictions recalls nothing (the official code crashes).

Edge inputs follow the official code by default, with a named option for the more sensible reading; a
``ParityWarning`` says when an input triggers the difference:

- ``recall_order="file"`` (official): Recall@kx keeps the first k*n predictions *in file order*, so a file not
  sorted by score is scored as written; ``"score"`` re-sorts by descending score (stable) first.
- ``zero_length="official"``: a zero-length prediction against a zero-length ground truth of the same clip has
  tIoU 0/0 = NaN in the official AP code, and NaN is never ``< threshold``, so it matches at every threshold;
  ``"no-match"`` gives such pairs tIoU 0.

A prediction for a clip_uid absent from the ground truth raises PredictionError (official: false positive).
"""
from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np

from egoflow.datasets.ego4d import load_mq
from egoflow.datasets.errors import Checker, PredictionError, read_json
from egoflow.datasets.records import MQClip
from egoflow.evaluate.parity import ParityWarning
from egoflow.formats import temporal_iou

RECALL_ORDERS = ("file", "score")  # official first
ZERO_LENGTH = ("official", "no-match")  # official first


def ap_key(t: float) -> str:
    return f"AP@tIoU={t:g}"


def recall_key(k: int, t: float) -> str:
    return f"R@{k} tIoU={t:g}"


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC-2011 AP: area under the precision envelope (max precision at any higher recall), recall padded to 1."""
    prec = np.concatenate([[0.0], precision, [0.0]])
    rec = np.concatenate([[0.0], recall, [1.0]])
    prec = np.maximum.accumulate(prec[::-1])[::-1]
    steps = np.nonzero(rec[1:] != rec[:-1])[0] + 1
    return float(np.sum((rec[steps] - rec[steps - 1]) * prec[steps]))


def segment_tiou(seg: np.ndarray, others: np.ndarray, zero_length: str = "official") -> np.ndarray:
    """tIoU of one segment [2] with segments [G, 2]; union = sum of lengths - intersection (ActivityNet).

    An empty union (both zero-length) is NaN with ``zero_length="official"`` (0/0 in the official code), else 0.
    """
    return temporal_iou(seg, others, union="sum", empty=np.nan if zero_length == "official" else 0.0)[0]


def class_ap(gt: dict[str, np.ndarray], preds: list[tuple[str, float, float, float]], tious,
             zero_length: str = "official") -> np.ndarray:
    """AP [len(tious)] of one class: ``gt`` clip_uid -> segments [G, 2]; ``preds`` (clip_uid, s, e, score).

    A NaN tIoU (official zero-length pairs) is never below a threshold, so it matches, as in the official loop.
    """
    ap = np.zeros(len(tious))
    npos = sum(len(v) for v in gt.values())
    if not preds or npos == 0:
        return ap
    scores = np.array([p[3] for p in preds], dtype=float)
    order = np.argsort(scores)[::-1]  # same call as the official code: the same tie order
    tp = np.zeros((len(tious), len(preds)))
    locked = {c: np.full((len(tious), len(g)), False) for c, g in gt.items()}
    for rank, i in enumerate(order):
        clip, s, e, _ = preds[i]
        segs = gt.get(clip)
        if segs is None or len(segs) == 0:
            continue  # false positive at every threshold
        tiou = segment_tiou(np.array([s, e]), segs, zero_length)
        by_tiou = tiou.argsort()[::-1]  # NaNs sort last, so first here: the official order
        for ti, thr in enumerate(tious):
            for j in by_tiou:
                if tiou[j] < thr:
                    break
                if locked[clip][ti, j]:
                    continue
                locked[clip][ti, j] = True
                tp[ti, rank] = 1
                break
    tp_cum = np.cumsum(tp, axis=1)
    fp_cum = np.cumsum(1 - tp, axis=1)
    for ti in range(len(tious)):
        ap[ti] = interpolated_ap(tp_cum[ti] / (tp_cum[ti] + fp_cum[ti]), tp_cum[ti] / npos)
    return ap


def _validate(predictions, source) -> dict[str, list[tuple[str, float, float, float]]]:
    """Official MQ results -> {clip_uid: [(label, s, e, score)]} in file order, checked."""
    results = predictions.get("results", predictions) if isinstance(predictions, dict) else predictions
    if isinstance(predictions, dict) and "results" in predictions and not isinstance(results, dict):
        raise PredictionError(source, "results", "expected an object keyed by clip_uid")
    if not isinstance(results, dict):
        raise PredictionError(source, None, "expected {'version', 'results': {clip_uid: [...]}}")
    out = {}
    ck = Checker(source, PredictionError)
    for clip, entries in results.items():
        where = f"results.{clip}"
        if not isinstance(entries, list):
            raise PredictionError(source, where, f"expected a list, got {type(entries).__name__}")
        rows = []
        for i, p in enumerate(entries):
            w = f"{where}[{i}]"
            if not isinstance(p, dict) or not all(k in p for k in ("label", "score", "segment")):
                raise PredictionError(source, w, "expected {label, score, segment}")
            seg, score = p["segment"], p["score"]
            if not (isinstance(seg, (list, tuple)) and len(seg) == 2):
                raise PredictionError(source, f"{w}.segment", f"expected [start, end] numbers, got {seg!r:.80}")
            seg = [ck.time(x, f"{w}.segment[{j}]") for j, x in enumerate(seg)]  # the shared rules
            if seg[1] < seg[0]:
                raise PredictionError(source, f"{w}.segment", f"segment ends ({seg[1]}) before it starts ({seg[0]})")
            score = ck.score(score, f"{w}.score")  # finite, |score| <= 1e30: 1e308 or a 400-digit int is corrupt
            rows.append((str(p["label"]), float(seg[0]), float(seg[1]), score))
        out[str(clip)] = rows
    return out


def evaluate_mq(ground_truth: list[MQClip], predictions: dict, tious=(0.1, 0.2, 0.3, 0.4, 0.5),
                recall_ks=(1, 5), recall_tious=(0.3, 0.5, 0.7), source="predictions",
                recall_order: str = "file", zero_length: str = "official") -> dict:
    """Score MQ detections ({"version", "results": {clip_uid: [{label, score, segment}]}} or the results
    mapping, clip time) against ``ground_truth``. Returns fractions keyed "mAP", "AP@tIoU=t", "R@k tIoU=t",
    "per_class" {label: {"AP": mean AP, "AP@tIoU=t": ...}} and counts. ``recall_order`` / ``zero_length``:
    official edge behaviour by default (module docstring)."""
    if recall_order not in RECALL_ORDERS:
        raise ValueError(f"recall_order must be one of {RECALL_ORDERS}, got {recall_order!r}")
    if zero_length not in ZERO_LENGTH:
        raise ValueError(f"zero_length must be one of {ZERO_LENGTH}, got {zero_length!r}")
    preds = _validate(predictions, source)
    known = {c.clip_uid for c in ground_truth}
    unknown = sorted(set(preds) - known)
    if unknown:
        raise PredictionError(source, f"results.{unknown[0]}", f"clip_uid not in the ground truth "
                              f"({len(unknown)} unknown clip(s)); wrong split?")
    gt_by_class: dict[str, dict[str, list]] = {}  # label -> clip -> segments; insertion order = official index
    for c in ground_truth:
        for inst in c.instances:
            if inst.primary:
                gt_by_class.setdefault(inst.label, defaultdict(list))[c.clip_uid].append((inst.start_sec, inst.end_sec))
    if not gt_by_class:
        raise ValueError("evaluate_mq: the ground truth has no primary instances")
    pred_by_class: dict[str, list] = defaultdict(list)
    n_unknown_label = 0
    for clip, rows in preds.items():
        for label, s, e, score in rows:
            if label in gt_by_class:
                pred_by_class[label].append((clip, s, e, score))
            else:
                n_unknown_label += 1
    per_class = {}
    ap = np.zeros((len(gt_by_class), len(tious)))
    for ci, (label, g) in enumerate(gt_by_class.items()):
        ap[ci] = class_ap({k: np.array(v, dtype=float) for k, v in g.items()}, pred_by_class.get(label, []), tious,
                          zero_length)
        per_class[label] = {"AP": float(ap[ci].mean()), **{ap_key(t): float(a) for t, a in zip(tious, ap[ci])}}
    out: dict = {"mAP": float(ap.mean())}
    out.update({ap_key(t): float(ap[:, ti].mean()) for ti, t in enumerate(tious)})
    n_zero = sum(1 for label, rows in pred_by_class.items() for clip, s, e, _ in rows if s == e
                 and any(a == b for a, b in gt_by_class[label].get(clip, [])))
    if n_zero:
        warnings.warn(f"{source}: {n_zero} zero-length prediction(s) meet a zero-length ground truth: the official "
                      f"AP counts them as matches at every tIoU (zero_length={zero_length!r}; 'no-match' gives "
                      "tIoU 0)", ParityWarning, stacklevel=2)
    out.update(mq_recall(ground_truth, preds, recall_ks, recall_tious, recall_order, source))
    gt_clips = [c for c in ground_truth if any(i.primary for i in c.instances)]
    out.update(num_clips=len(gt_clips), num_classes=len(gt_by_class),
               num_instances=int(sum(len(v) for g in gt_by_class.values() for v in g.values())),
               num_predictions=int(sum(len(r) for r in preds.values())),
               num_missing=sum(1 for c in gt_clips if c.clip_uid not in preds),
               num_unknown_label_predictions=n_unknown_label, num_zero_length_pairs=n_zero,
               recall_order=recall_order, zero_length=zero_length, per_class=per_class)
    return out


def mq_recall(ground_truth: list[MQClip], preds: dict, ks, tious, order: str = "file",
              source="predictions") -> dict:
    """Ego4D Recall@kx (see module docstring); ``preds`` as returned by ``_validate``; ``order``: "file"
    (official: the first k*n in file order) or "score" (re-sorted by descending score)."""
    unsorted = 0
    recalled = np.zeros((len(ks), len(tious)))
    total = 0
    for c in ground_truth:
        by_label: dict[str, list] = defaultdict(list)
        for inst in c.instances:
            if inst.primary:
                by_label[inst.label].append((inst.start_sec, inst.end_sec))
        for label, segs in by_label.items():
            gts = np.array(segs, dtype=float)
            total += len(gts)
            mine = [(s, e, sc) for lab, s, e, sc in preds.get(c.clip_uid, []) if lab == label]
            if not mine:
                continue
            scores = np.array([m[2] for m in mine])
            unsorted += bool(np.any(np.diff(scores) > 0))
            rank = np.argsort(-scores, kind="stable") if order == "score" else np.arange(len(mine))
            ranked = np.array([mine[i][:2] for i in rank], dtype=float)
            iou = temporal_iou(ranked, gts)  # [P, G]
            for ki, k in enumerate(ks):
                top = iou[: k * len(gts)]
                for ti, t in enumerate(tious):
                    recalled[ki, ti] += int(np.sum((top > t).any(axis=0)))
    if unsorted:
        warnings.warn(f"{source}: predictions of {unsorted} (clip, label) group(s) are not sorted by score: "
                      f"recall_order={order!r} ({'official: file order' if order == 'file' else 're-sorted'}; "
                      "the other choice gives different Recall@k)", ParityWarning, stacklevel=2)
    rate = recalled / max(total, 1)
    return {recall_key(k, t): float(rate[ki, ti]) for ki, k in enumerate(ks) for ti, t in enumerate(tious)}


def load_mq_predictions(path) -> dict:
    data = read_json(path, PredictionError)
    if not isinstance(data, dict):
        raise PredictionError(path, None, "expected {'version', 'results': {clip_uid: [...]}}")
    return data


def evaluate_mq_files(gt_path, pred_path, **kwargs) -> dict:
    """``evaluate_mq`` on a ``moments_val.json``-style file and an official detection results file."""
    return evaluate_mq(load_mq(gt_path), load_mq_predictions(pred_path), source=str(pred_path), **kwargs)
