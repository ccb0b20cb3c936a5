"""Ego4D Natural Language Queries: Recall@k at IoU thresholds and mean IoU, as Ego4D's evaluation script.

Definitions (EGO4D/episodic-memory, NLQ/VSLNet/utils/evaluate_ego4d_nlq.py):

- IoU of a predicted window and the answer window uses the *hull* as union: ``max(ends) - min(starts)`` (equal to
  the usual union whenever the windows overlap; zero intersection otherwise).
- A query is recalled at (k, t) when one of its first k predicted windows has IoU **strictly greater** than t
  (``>``, so IoU exactly 0.5 does not count at 0.5).
- mIoU is the mean over queries of the IoU of the *top-1* window.
- The official script averages over the predictions it is given: ``missing="skip"`` (default) does the same;
  ``missing="miss"`` averages over every answerable ground-truth query, a missing prediction counting as a miss
  with IoU 0. With a complete submission the two agree; both report ``num_missing``.
- A window pair with zero union (a zero-length prediction on the same instant as a zero-length answer) has IoU
  0/0 = NaN in the official script (``zero_union="nan"``, default): never a hit, and a NaN top-1 IoU makes mIoU
  NaN. ``zero_union="zero"`` gives IoU 0 instead (mIoU stays a number). A ``ParityWarning`` says when an input
  hits either choice.

Deliberate difference on an input the official script cannot score: an empty ``predicted_times`` list is a miss
instead of a crash. Ground-truth queries without query text cannot be answered (the baseline drops them); they
are scored when a prediction exists, otherwise left out and counted in ``num_unanswerable``.
"""
from __future__ import annotations

import warnings

import numpy as np

from egoflow.datasets.ego4d import load_nlq_report
from egoflow.datasets.errors import AnnotationError, Checker, PredictionError, read_json
from egoflow.datasets.records import NLQQuery
from egoflow.evaluate.parity import ParityWarning
from egoflow.formats import temporal_iou

CURVE_IOUS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # IoU grid of the recall-vs-IoU plot


def recall_key(k: int, t: float) -> str:
    return f"R@{k} IoU={t:g}"


def window_iou(windows: np.ndarray, start: float, end: float, zero_union: float = 0.0) -> np.ndarray:
    """IoU of windows [P, 2] with one window; union as the hull (official), ``zero_union`` where it is empty."""
    return temporal_iou(windows, (start, end), empty=zero_union)[:, 0]


def _segments(value, where: str, source) -> np.ndarray:
    """[[s, e], ...] -> float array [P, 2]; malformed entries raise PredictionError naming ``where``."""
    if not isinstance(value, list):
        raise PredictionError(source, where, f"expected a list of [start, end] windows, got {value!r:.80}")
    out = np.zeros((len(value), 2))
    ck = Checker(source, PredictionError)  # the shared rules: finite, plausible, non-negative seconds
    for i, w in enumerate(value):
        if not (isinstance(w, (list, tuple)) and len(w) == 2):
            raise PredictionError(source, f"{where}[{i}]", f"expected [start, end] numbers, got {w!r:.80}")
        w = [ck.time(x, f"{where}[{i}][{j}]") for j, x in enumerate(w)]
        if w[1] < w[0]:
            raise PredictionError(source, f"{where}[{i}]", f"window ends ({w[1]}) before it starts ({w[0]})")
        out[i] = w
    return out


def index_predictions(predictions: list[dict], source="predictions") -> dict[tuple, np.ndarray]:
    """Official NLQ result entries -> {(clip_uid, annotation_uid, query_idx): windows [P, 2]} (validated)."""
    if not isinstance(predictions, list):
        raise PredictionError(source, "results", f"expected a list of entries, got {type(predictions).__name__}")
    out: dict[tuple, np.ndarray] = {}
    for i, p in enumerate(predictions):
        where = f"results[{i}]"
        if not isinstance(p, dict):
            raise PredictionError(source, where, f"expected an object, got {type(p).__name__}")
        for key in ("clip_uid", "annotation_uid", "query_idx", "predicted_times"):
            if key not in p:
                raise PredictionError(source, f"{where}.{key}", "missing key")
        qidx = p["query_idx"]
        if isinstance(qidx, bool) or not isinstance(qidx, int):
            raise PredictionError(source, f"{where}.query_idx", f"expected an integer, got {qidx!r}")
        key = (str(p["clip_uid"]), str(p["annotation_uid"]), qidx)
        if key in out:
            raise PredictionError(source, where, f"second prediction for query {key}")
        out[key] = _segments(p["predicted_times"], f"{where}.predicted_times", source)
    return out


def evaluate_nlq(ground_truth: list[NLQQuery], predictions: list[dict], ks=(1, 3, 5), ious=(0.3, 0.5),
                 missing: str = "skip", source="predictions", zero_union: str = "nan") -> dict:
    """Score official NLQ result entries (clip-time windows, best first) against ``ground_truth``.

    Returns {"R@k IoU=t": fraction, ..., "mIoU": fraction, counts, "curves": {"recall_vs_iou": ...}}.
    A prediction for a query that is not in ``ground_truth`` raises PredictionError (wrong split or uids).
    """
    if missing not in ("miss", "skip") or zero_union not in ("nan", "zero"):
        raise ValueError(f"missing must be 'skip'/'miss' and zero_union 'nan'/'zero'; got {missing}, {zero_union}")
    gt: dict[tuple, NLQQuery] = {}
    for q in ground_truth:
        gt[(q.clip_uid, q.annotation_uid, q.query_idx)] = q
    if not gt:
        raise ValueError("evaluate_nlq: no ground-truth queries")
    preds = index_predictions(predictions, source)
    unknown = [k for k in preds if k not in gt]
    if unknown:
        raise PredictionError(source, "results", f"{len(unknown)} prediction(s) for queries not in the ground "
                              f"truth, e.g. (clip_uid, annotation_uid, query_idx)={unknown[0]}")
    for key, windows in preds.items():  # a window past the clip's end is not a position in this clip
        q = gt[key]
        dur = q.clip_video_end_sec - q.clip_video_start_sec
        if len(windows) and dur > 0 and windows.max() > dur + max(1.0, 0.01 * dur):
            raise PredictionError(source, f"results (clip_uid, annotation_uid, query_idx)={key}",
                                  f"window ends at {windows.max():g} s, past the clip's {dur:g} s")
    curve_ts = sorted(set(CURVE_IOUS) | set(ious))
    kmax = max(ks)
    hits = []  # per scored query: [len(ks), len(curve_ts)] booleans
    top1 = []
    n_missing = n_unanswerable = n_empty = n_nan = 0
    ts = np.array(curve_ts)
    for key, q in gt.items():
        windows = preds.get(key)
        if windows is None:
            if not q.query:
                n_unanswerable += 1
                continue
            n_missing += 1
            if missing == "skip":
                continue
            windows = np.zeros((0, 2))
        if len(windows) == 0 and key in preds:
            n_empty += 1
        iou = window_iou(windows[:kmax], q.start_sec, q.end_sec, np.nan)  # NaN marks a zero union
        n_nan += bool(len(iou) and np.isnan(iou[0]))
        if zero_union == "zero":
            iou = np.nan_to_num(iou, nan=0.0)
        with np.errstate(invalid="ignore"):  # official: (IoU > t)[:k].any(), a NaN IoU is never a hit
            hits.append(np.stack([(iou[:k, None] > ts[None, :]).any(axis=0) for k in ks]))
        top1.append(iou[0] if len(iou) else 0.0)
    if n_missing:
        how = "official: averaged over the predicted queries" if missing == "skip" else "counted as misses"
        warnings.warn(f"{source}: {n_missing} answerable queries have no prediction: missing={missing!r} ({how}); "
                      f"missing={'miss' if missing == 'skip' else 'skip'!r} gives other numbers", ParityWarning,
                      stacklevel=2)
    if n_nan:
        how = "IoU NaN as the official script, so mIoU is NaN" if zero_union == "nan" else "IoU 0"
        warnings.warn(f"{source}: {n_nan} top-1 window(s) have zero union with their answer (the same instant): "
                      f"zero_union={zero_union!r} ({how}); zero_union={'zero' if zero_union == 'nan' else 'nan'!r} "
                      "gives another mIoU", ParityWarning, stacklevel=2)
    if not hits:
        raise PredictionError(source, None, "no prediction matches a ground-truth query")
    rate = np.mean(np.stack(hits), axis=0)  # [len(ks), len(curve_ts)]
    out: dict = {}
    for ki, k in enumerate(ks):
        for t in ious:
            out[recall_key(k, t)] = float(rate[ki, curve_ts.index(t)])
    out["mIoU"] = float(np.mean(top1))
    out.update(num_queries=len(gt) - n_unanswerable, num_evaluated=len(hits), num_missing=n_missing,
               num_unanswerable=n_unanswerable, num_empty_predictions=n_empty, num_zero_union_top1=n_nan,
               missing_policy=missing, zero_union=zero_union)
    out["curves"] = {"recall_vs_iou": {"iou": [float(t) for t in curve_ts],
                                       **{f"R@{k}": rate[ki].tolist() for ki, k in enumerate(ks)}}}
    return out


def load_nlq_predictions(path) -> list[dict]:
    """Result entries of an official NLQ submission file (or a bare list of entries)."""
    data = read_json(path, PredictionError)
    if isinstance(data, list):
        return data
    if not isinstance(data, dict) or "results" not in data:
        raise PredictionError(path, "results", "missing key (expected the Ego4D NLQ submission format)")
    challenge = data.get("challenge")
    if challenge is not None and challenge != "ego4d_nlq_challenge":
        raise PredictionError(path, "challenge", f"{challenge!r} is not 'ego4d_nlq_challenge'")
    return data["results"]


def load_nlq_ground_truth(gt_path) -> list[NLQQuery]:
    """Every scorable query of an NLQ file: zero-length windows and text-less queries kept, as the official
    script scores any query it is given a prediction for."""
    queries, stats = load_nlq_report(gt_path, keep_missing_query=True, keep_zero_length=True)
    bad = [d for d in stats.dropped if d[3] == "reversed window"]
    if bad:  # blame the ground truth here, not the predictions later ("prediction for a query not in the gt")
        c, a, qi, _ = bad[0]
        raise AnnotationError(gt_path, f"clip {c}, annotation {a}, language_queries[{qi}]",
                              f"ground-truth window ends before it starts ({len(bad)} such queries)")
    return queries


def evaluate_nlq_files(gt_path, pred_path, **kwargs) -> dict:
    """``evaluate_nlq`` on an ``nlq_val.json``-style file and an official submission file."""
    return evaluate_nlq(load_nlq_ground_truth(gt_path), load_nlq_predictions(pred_path), source=str(pred_path),
                        **kwargs)
