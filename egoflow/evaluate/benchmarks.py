"""The benchmarks ``egoflow evaluate`` knows: how to score a (ground truth, predictions) file pair, and which
metrics head the report table. Each ``evaluate(gt, pred)`` returns a metrics dict whose scalar entries are the
table columns; nested entries ("curves", "per_class", ...) feed plots and report.json.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from egoflow.datasets.charades_ego import label_matrix, load_charades_ego, load_charades_submission
from egoflow.datasets.egomcq import load_egomcq, load_egomcq_predictions
from egoflow.datasets.ek100 import load_mir, load_mir_submission
from egoflow.datasets.errors import AnnotationError, PredictionError, read_json
from egoflow.evaluate.captions import evaluate_captions_files
from egoflow.evaluate.classification import charades_map_report
from egoflow.evaluate.mq import evaluate_mq_files
from egoflow.evaluate.nlq import evaluate_nlq_files
from egoflow.evaluate.qfvs import evaluate_qfvs_files
from egoflow.evaluate.recognition import (
    evaluate_egotaskqa_files,
    evaluate_ek100_actions_files,
    evaluate_oscc_files,
    evaluate_pnr_files,
)
from egoflow.evaluate.retrieval import egomcq_accuracy, mir_metrics, pr_curve


@dataclass(frozen=True)
class Benchmark:
    name: str  # CLI name
    evaluate: Callable[[str, str], dict]  # (ground-truth path, predictions path) -> metrics
    headline: tuple[str, ...]  # table columns, in order (missing ones are skipped)
    gt_help: str  # what --gt must point to
    percent: bool = True  # fractions shown as percentages in the report


def evaluate_egomcq_files(gt_path, pred_path) -> dict:
    items = load_egomcq(gt_path)
    scores, missing = load_egomcq_predictions(pred_path, items)
    ids = set(missing)
    return egomcq_accuracy(scores, [it.answer for it in items], [it.type for it in items],
                           missing=[it.item_id in ids for it in items])


def _charades_scores(pred_path, ids: list[str], num_classes: int | None) -> tuple[np.ndarray, int]:
    """Scores [N, C] in ground-truth order from a submission .txt or a JSON {id: [scores]}; -inf if missing.
    ``num_classes`` None: every line must have as many scores as the first."""
    if str(pred_path).endswith(".json"):
        data = read_json(pred_path, PredictionError)
        data = data.get("results", data) if isinstance(data, dict) else data
        if not isinstance(data, dict) or not data:
            raise PredictionError(pred_path, None, "expected a non-empty {video_id: [scores]}")
        preds = {}
        for k, v in data.items():
            try:
                arr = np.asarray(v, dtype=float) if isinstance(v, list) else None
            except (TypeError, ValueError):
                arr = None
            num_classes = num_classes or (len(arr) if arr is not None else None)
            if arr is None or arr.shape != (num_classes,) or np.isnan(arr).any():
                raise PredictionError(pred_path, k, f"expected {num_classes or 'a list of'} numeric scores")
            preds[k] = arr
    else:
        preds = load_charades_submission(pred_path, num_classes)
    unknown = sorted(set(preds) - set(ids))
    if unknown:
        raise PredictionError(pred_path, unknown[0], f"video id not in the ground truth ({len(unknown)} unknown)")
    num_classes = len(next(iter(preds.values())))
    out = np.full((len(ids), num_classes), -np.inf)
    for i, v in enumerate(ids):
        if v in preds:
            out[i] = preds[v]
    return out, sum(v not in preds for v in ids)


def evaluate_charades_files(gt_path, pred_path, num_classes: int | None = None, ties: str = "numpy") -> dict:
    """mAP of a CharadesEgo submission; the class count is the submission's (157 for the official classes)
    unless ``num_classes`` is given, and a ground-truth class beyond it is an error naming the video."""
    videos = load_charades_ego(gt_path)
    scores, n_missing = _charades_scores(pred_path, [v.video_id for v in videos], num_classes)
    num_classes = scores.shape[1]
    for v in videos:
        if v.classes and v.classes[-1] >= num_classes:
            raise AnnotationError(gt_path, f"video {v.video_id}", f"class c{v.classes[-1]:03d}, but the "
                                  f"predictions {pred_path} have {num_classes} scores per video")
    out = charades_map_report(scores, label_matrix(videos, num_classes), ties=ties)
    out.update(num_videos=len(videos), num_missing=n_missing)
    return out


def evaluate_mir_files(gt_root, pred_path, split: str = "test") -> dict:
    """``gt_root``: the retrieval_annotations folder (or its relevancy .pkl, two levels below it)."""
    if str(gt_root).endswith(".pkl"):  # .../relevancy/caption_relevancy_EPIC_100_retrieval_{split}.pkl
        split = os.path.basename(str(gt_root))[: -len(".pkl")].rsplit("_", 1)[-1]
        gt_root = os.path.dirname(os.path.dirname(os.path.abspath(gt_root)))
    mir = load_mir(gt_root, split)
    sim, miss_v, miss_t = load_mir_submission(pred_path, mir)
    out = mir_metrics(sim, mir.relevancy)
    out.update(num_videos=len(mir.video_ids), num_texts=len(mir.text_ids), num_missing_videos=miss_v,
               num_missing_texts=miss_t,
               curves={"pr V2T": pr_curve(sim, mir.relevancy == 1), "pr T2V": pr_curve(sim.T, mir.relevancy.T == 1)})
    return out


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("nlq", evaluate_nlq_files,
              ("R@1 IoU=0.3", "R@1 IoU=0.5", "R@5 IoU=0.3", "R@5 IoU=0.5", "mIoU", "num_queries", "num_missing"),
              "Ego4D nlq_val.json"),
    Benchmark("mq", evaluate_mq_files,
              ("mAP", "AP@tIoU=0.1", "AP@tIoU=0.3", "AP@tIoU=0.5", "R@1 tIoU=0.5", "R@5 tIoU=0.5", "num_clips",
               "num_missing"), "Ego4D moments_val.json"),
    Benchmark("qfvs", evaluate_qfvs_files, ("F1", "precision", "recall", "num_queries", "num_missing"),
              "QFVS origin_data folder (Dense_per_shot_tags/, Query-Focused_Summaries/)"),
    Benchmark("egomcq", evaluate_egomcq_files, ("Inter-video", "Intra-video", "num_inter", "num_intra", "num_missing"),
              "egomcq.json"),
    Benchmark("charades", evaluate_charades_files, ("mAP", "wAP", "num_classes_evaluated", "num_videos",
                                                    "num_missing"), "CharadesEgo_v1_test_only1st.csv"),
    Benchmark("ek100-mir", evaluate_mir_files, ("mAP", "nDCG", "mAP V2T", "mAP T2V", "nDCG V2T", "nDCG T2V",
                                                "num_missing_videos", "num_missing_texts"),
              "EK-100 retrieval_annotations folder"),
    Benchmark("ek100-ar", evaluate_ek100_actions_files, ("action top1", "action top5", "verb top1", "verb top5",
                                                         "noun top1", "noun top5", "tail action top1",
                                                         "unseen action top1", "num_segments", "num_missing"),
              "EPIC_100_validation.csv"),
    Benchmark("oscc", evaluate_oscc_files, ("accuracy", "num_clips", "num_missing"), "fho_oscc-pnr_val.json"),
    Benchmark("pnr", evaluate_pnr_files, ("abs_error_s", "num_clips"), "fho_oscc-pnr_val.json", percent=False),
    Benchmark("egotaskqa", evaluate_egotaskqa_files, ("accuracy", "descriptive", "predictive", "counterfactual",
                                                      "explanatory", "num_questions", "num_missing"),
              "EgoTaskQA {direct,indirect}/val_qas.json"),
    Benchmark("captions", evaluate_captions_files, ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "num_captions",
                                                    "num_missing"),
              "Ego4D narration.json (references)", percent=False),
)}
ALIASES = {"charades-ego": "charades", "charadesego": "charades", "ek100": "ek100-mir", "epic-mir": "ek100-mir",
           "moments": "mq", "ek100-actions": "ek100-ar", "epic-ar": "ek100-ar", "ego4d-oscc": "oscc",
           "ego4d-pnr": "pnr"}


def get_benchmark(name: str) -> Benchmark:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[key]
