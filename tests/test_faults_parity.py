"""Fault class 6 (issue 12): official parity on edge inputs, with the sensible reading as a named option.

Hand-worked cases, read off the official code (EGO4D/episodic-memory MQ/Evaluation: get_retrieval_performance.py
takes each clip's predictions of a label in file order; utils.segment_iou divides 0 by 0 for two zero-length
segments and eval_detection.py never finds NaN ``< threshold``), and the CharadesEgo reference (EgoVLP's
``mAP``: ``np.argsort(-scores)``, NumPy's default sort, unstable among ties for more than 16 items).
"""
import json
import warnings

import numpy as np
import pytest

from egoflow.datasets.records import MQClip, MQInstance
from egoflow.evaluate.classification import charades_map_report
from egoflow.evaluate.mq import evaluate_mq
from egoflow.evaluate.parity import ParityWarning


def det(label, s, e, score):
    return {"label": label, "segment": [s, e], "score": score}


def test_mq_recall_takes_file_order_by_default():
    gt = [MQClip("v", "c", 0, 60, [MQInstance("a", 0, 10)])]
    preds = {"c": [det("a", 0, 10, 0.1), det("a", 20, 30, 0.9)]}  # not sorted by score
    with pytest.warns(ParityWarning, match="not sorted by score"):
        official = evaluate_mq(gt, preds)
    # official: R@1 keeps the first 1x1 prediction in file order, [0, 10]: IoU 1 > 0.5 -> recalled
    assert official["R@1 tIoU=0.5"] == 1.0 and official["recall_order"] == "file"
    with pytest.warns(ParityWarning):
        resorted = evaluate_mq(gt, preds, recall_order="score")
    assert resorted["R@1 tIoU=0.5"] == 0.0 and resorted["R@5 tIoU=0.5"] == 1.0  # [20, 30] first: IoU 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sorted file: no warning, both orders agree
        sorted_ = evaluate_mq(gt, {"c": [det("a", 20, 30, 0.9), det("a", 0, 10, 0.1)]})
    assert sorted_["R@1 tIoU=0.5"] == 0.0


def test_mq_zero_length_prediction_on_zero_length_moment():
    # one clip: a zero-length moment at 3 s and a 10 s moment; one zero-length prediction at 5 s
    gt = [MQClip("v", "c", 0, 60, [MQInstance("a", 3, 3), MQInstance("a", 0, 10)])]
    preds = {"c": [det("a", 5, 5, 1.0)]}
    with pytest.warns(ParityWarning, match="zero-length"):
        official = evaluate_mq(gt, preds, tious=(0.1, 0.5, 0.9))
    # official tIoUs: [0/0 = NaN, 0/10 = 0]; NaN sorts first after argsort()[::-1] and is never < thr, so the
    # prediction matches the 3 s moment at every threshold: precision 1, recall 1/2 -> AP 0.5 everywhere
    assert official["AP@tIoU=0.1"] == official["AP@tIoU=0.9"] == 0.5 and official["num_zero_length_pairs"] == 1
    sensible = evaluate_mq(gt, preds, tious=(0.1, 0.5, 0.9), zero_length="no-match")
    assert sensible["mAP"] == 0.0


def test_mq_zero_length_exact_point_is_counted():
    gt = [MQClip("v", "c", 0, 60, [MQInstance("a", 3, 3)])]
    with pytest.warns(ParityWarning, match="1 zero-length"):
        r = evaluate_mq(gt, {"c": [det("a", 3, 3, 1.0)]})
    assert r["mAP"] == 1.0 and r["num_zero_length_pairs"] == 1


def _reference_ap(scores, positive, kind=None):
    """The reference's per-class AP loop, written out (test oracle): rank, then mean precision at positives."""
    order = np.argsort(-scores) if kind is None else np.argsort(-scores, kind=kind)
    tp = positive[order]
    prec = np.cumsum(tp) / np.arange(1, len(tp) + 1)
    return float(prec[tp].sum() / tp.sum())


def test_charades_tied_scores_follow_numpy_argsort():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 3, 20).astype(float)  # 20 videos, 3 score levels: many ties
    y = np.zeros((20, 2), bool)
    y[[1, 4, 7, 12, 15, 18], 0] = True
    y[:, 1] = ~y[:, 0]  # every video labelled (no -inf rows)
    scores = np.stack([s, -s], axis=1)
    ref, stable = _reference_ap(s, y[:, 0]), _reference_ap(s, y[:, 0], "stable")
    assert ref != stable  # the tie order matters for this input
    with pytest.warns(ParityWarning, match="tied scores"):
        r = charades_map_report(scores, y)
    assert r["per_class_AP"][0] == pytest.approx(ref, abs=1e-15)
    with pytest.warns(ParityWarning):
        r2 = charades_map_report(scores, y, ties="stable")
    assert r2["per_class_AP"][0] == pytest.approx(stable, abs=1e-15)


def test_charades_small_tie_hand_worked():
    # 3 videos, class 0: scores [0.5, 0.5, 0.9], only video 1 positive. Either order (n <= 16: NumPy's sort is
    # stable too) ranks 2, 0, 1: precision at the positive = 1/3 -> AP 1/3; no difference, so no warning.
    scores = np.array([[0.5, 0.1], [0.5, 0.9], [0.9, 0.2]])
    y = np.array([[0, 1], [1, 0], [0, 1]], bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = charades_map_report(scores, y)
    assert r["per_class_AP"][0] == pytest.approx(1 / 3)


def test_evaluate_cli_options(tmp_path, capsys):
    from egoflow.evaluate.cli import main

    gt = tmp_path / "moments_val.json"
    gt.write_text(json.dumps({"videos": [{"video_uid": "v", "clips": [{
        "clip_uid": "c", "video_start_sec": 0, "video_end_sec": 60,
        "annotations": [{"labels": [{"label": "a", "start_time": 0, "end_time": 10, "primary": True}]}]}]}]}))
    pred = tmp_path / "mq.json"
    pred.write_text(json.dumps({"version": "1.0", "results": {"c": [det("a", 0, 10, 0.1), det("a", 20, 30, 0.9)]}}))
    rows = {}
    for order in ("file", "score"):
        out = tmp_path / order
        with pytest.warns(ParityWarning):
            assert main(["mq", "--pred", str(pred), "--gt", str(gt), "--out", str(out),
                         "--mq-recall-order", order]) == 0
        rows[order] = json.loads(next(out.glob("*.json")).read_text())
    text = json.dumps(rows)
    assert '"recall_order": "file"' in text and '"recall_order": "score"' in text
