import json
import math
import warnings
from pathlib import Path

import pytest

from egoflow.datasets.errors import PredictionError
from egoflow.datasets.records import NLQQuery
from egoflow.evaluate.nlq import evaluate_nlq, evaluate_nlq_files, window_iou
from egoflow.evaluate.parity import ParityWarning

FIXTURES = Path(__file__).parent / "fixtures"


def gtq(idx, s, e, text="q"):
    return NLQQuery("v", "c", "a", idx, text, 0.0, 100.0, s, e)


def pred(idx, windows):
    return {"clip_uid": "c", "annotation_uid": "a", "query_idx": idx, "predicted_times": windows}


GT = [gtq(0, 2, 6), gtq(1, 2, 6), gtq(2, 0, 2), gtq(3, 10, 20)]
# Worked on paper (IoU union = hull, recall needs IoU > t strictly):
#   q0 top1 [2,6] IoU 1                               -> hits everywhere, top1 IoU 1
#   q1 top1 [0,4]: inter 2, hull 6 -> 1/3; rank2 [3,5]: 2/4 = .5; rank4 [2,6.5]: 4/4.5 = .889
#   q2 top1 [0,4]: 2/4 = 0.5 exactly -> not > 0.5; > 0.3
#   q3 top1 [30,40]: 0; rank 3 [12,20]: 0.8
PREDS = [pred(0, [[2, 6]]), pred(1, [[0, 4], [3, 5], [50, 60], [2, 6.5]]), pred(2, [[0, 4]]),
         pred(3, [[30, 40], [0, 1], [12, 20]])]


def test_hand_worked_recall_and_miou():
    r = evaluate_nlq(GT, PREDS)
    assert r["R@1 IoU=0.3"] == pytest.approx(3 / 4)  # q0, q1 (1/3), q2 (0.5)
    assert r["R@1 IoU=0.5"] == pytest.approx(1 / 4)  # only q0: q2's IoU is exactly 0.5
    assert r["R@3 IoU=0.5"] == pytest.approx(2 / 4)  # q0, q3 (0.8); q1's rank-2 IoU is exactly 0.5
    assert r["R@5 IoU=0.5"] == pytest.approx(3 / 4)  # + q1 rank 4
    assert r["R@5 IoU=0.3"] == pytest.approx(1.0)
    assert r["mIoU"] == pytest.approx((1 + 1 / 3 + 0.5 + 0) / 4)
    assert (r["num_queries"], r["num_evaluated"], r["num_missing"]) == (4, 4, 0)
    curve = r["curves"]["recall_vs_iou"]
    assert curve["R@1"][curve["iou"].index(0.3)] == r["R@1 IoU=0.3"]


def test_missing_predictions_are_skipped_as_official_or_misses():
    with pytest.warns(ParityWarning, match="2 answerable queries have no prediction: missing='miss'"):
        miss = evaluate_nlq(GT, PREDS[:2], missing="miss")
    assert miss["num_missing"] == 2 and miss["R@1 IoU=0.3"] == pytest.approx(2 / 4)
    assert miss["mIoU"] == pytest.approx((1 + 1 / 3) / 4)
    with pytest.warns(ParityWarning, match="missing='skip' \\(official"):
        skip = evaluate_nlq(GT, PREDS[:2])  # default: the official script's averaging
    assert skip["num_evaluated"] == 2 and skip["R@1 IoU=0.3"] == pytest.approx(1.0)


def test_degenerate_inputs():
    with pytest.warns(ParityWarning):
        none = evaluate_nlq(GT, [], missing="miss")
    assert none["R@5 IoU=0.3"] == 0.0 and none["mIoU"] == 0.0 and none["num_missing"] == 4
    with pytest.raises(PredictionError, match="no prediction"), pytest.warns(ParityWarning):
        evaluate_nlq(GT, [])
    # empty window list = miss; zero-length ground truth and prediction at the same instant: NaN (official) or 0
    with pytest.warns(ParityWarning, match="1 top-1 window\\(s\\) have zero union.*mIoU is NaN"):
        r = evaluate_nlq([gtq(0, 5, 5), gtq(1, 1, 3)], [pred(0, [[5, 5]]), pred(1, [])])
    assert math.isnan(r["mIoU"]) and r["num_empty_predictions"] == 1 and r["num_zero_union_top1"] == 1
    with pytest.warns(ParityWarning, match="zero_union='zero' \\(IoU 0\\)"):
        r = evaluate_nlq([gtq(0, 5, 5), gtq(1, 1, 3)], [pred(0, [[5, 5]]), pred(1, [])], zero_union="zero")
    assert r["mIoU"] == 0.0
    # duplicate windows and ties are harmless
    r = evaluate_nlq([gtq(0, 0, 10)], [pred(0, [[0, 4], [0, 4], [0, 10]])])
    assert r["R@1 IoU=0.3"] == 1 and r["R@1 IoU=0.5"] == 0 and r["R@3 IoU=0.5"] == 1
    assert window_iou(__import__("numpy").array([[1.0, 1.0]]), 1.0, 1.0).tolist() == [0.0]


def test_queries_without_text_are_not_counted_missing():
    gt = [gtq(0, 2, 6), gtq(1, 2, 6, text="")]
    assert evaluate_nlq(gt, [PREDS[0]])["num_unanswerable"] == 1
    assert evaluate_nlq(gt, [PREDS[0]])["R@1 IoU=0.5"] == 1.0
    assert evaluate_nlq(gt, [PREDS[0], pred(1, [[0, 1]])])["R@1 IoU=0.5"] == 0.5  # scored when predicted


@pytest.mark.parametrize("bad, match", [
    ([pred(9, [[0, 1]])], "not in the ground truth"),
    ([pred(0, [[0, 1]]), pred(0, [[0, 2]])], r"results\[1\]: second prediction"),
    ([pred(0, [[3, 1]])], r"results\[0\].predicted_times\[0\]: window ends"),
    ([pred(0, [[0, "x"]])], r"predicted_times\[0\]\[1\]: expected a number"),
    ([{"clip_uid": "c", "annotation_uid": "a", "predicted_times": []}], r"results\[0\].query_idx: missing"),
])
def test_bad_predictions_raise_clear_errors(bad, match):
    with pytest.raises(PredictionError, match=match):
        evaluate_nlq(GT, bad)


def test_files_round_trip(tmp_path):
    gt = tmp_path / "nlq_val.json"
    lq = [{"clip_start_sec": 2, "clip_end_sec": 6, "query": "a"}, {"clip_start_sec": 0, "clip_end_sec": 2,
          "query": "b"}, {"clip_start_sec": 1, "clip_end_sec": 2}]
    gt.write_text(json.dumps({"videos": [{"video_uid": "v1", "clips": [{
        "clip_uid": "c1", "video_start_sec": 10.0, "video_end_sec": 40.0,
        "annotations": [{"annotation_uid": "a1", "language_queries": lq}]}]}]}))
    p = tmp_path / "pred.json"
    p.write_text(json.dumps({"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": [
        {"clip_uid": "c1", "annotation_uid": "a1", "query_idx": 0, "predicted_times": [[2, 6]]},
        {"clip_uid": "c1", "annotation_uid": "a1", "query_idx": 1, "predicted_times": [[0, 4]]}]}))
    r = evaluate_nlq_files(gt, p)
    assert r["R@1 IoU=0.5"] == 0.5 and r["num_queries"] == 2 and r["num_unanswerable"] == 1
    p.write_text(json.dumps({"version": "1.0", "challenge": "ego4d_mq_challenge", "results": []}))
    with pytest.raises(PredictionError, match="challenge"):
        evaluate_nlq_files(gt, p)


@pytest.mark.parametrize("case", ["partial", "zero_union", "zero_union_rank2"])
def test_equals_recorded_official_nlq_script(tmp_path, case):
    """evaluate_ego4d_nlq.py's numbers (recorded in fixtures/official_nlq.json) on a partial submission and on
    zero-union pairs, under the defaults; the named options change exactly what the warnings say."""
    rec = json.loads((FIXTURES / "official_nlq.json").read_text())
    (tmp_path / "gt.json").write_text(json.dumps(rec["ground_truth"]))
    (tmp_path / "p.json").write_text(json.dumps(rec["cases"][case]["submission"]))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        m = evaluate_nlq_files(tmp_path / "gt.json", tmp_path / "p.json")
    for k, want in rec["cases"][case]["official"].items():
        if want is None:  # official NaN
            assert math.isnan(m[k]), k
        else:
            assert abs(m[k] - want) <= 1e-15, (k, m[k], want)
    texts = [str(w.message) for w in seen if issubclass(w.category, ParityWarning)]
    assert any("zero union" in t for t in texts) == (case == "zero_union")
    assert any("no prediction" in t for t in texts) == (case == "partial")
    if case == "partial":
        with pytest.warns(ParityWarning):
            miss = evaluate_nlq_files(tmp_path / "gt.json", tmp_path / "p.json", missing="miss")
        assert miss["R@1 IoU=0.3"] == pytest.approx(m["R@1 IoU=0.3"] * 5 / 8)
    if case == "zero_union":
        with pytest.warns(ParityWarning):
            zero = evaluate_nlq_files(tmp_path / "gt.json", tmp_path / "p.json", zero_union="zero")
        assert zero["R@1 IoU=0.3"] == m["R@1 IoU=0.3"] and not math.isnan(zero["mIoU"])
