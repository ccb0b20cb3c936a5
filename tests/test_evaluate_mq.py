import json

import numpy as np
import pytest

from egoflow.datasets.errors import PredictionError
from egoflow.datasets.records import MQClip, MQInstance
from egoflow.evaluate.mq import ParityWarning, evaluate_mq, evaluate_mq_files, interpolated_ap

GT = [MQClip("v", "c1", 0, 480, [MQInstance("cut", 0, 10), MQInstance("cut", 20, 30), MQInstance("wash", 5, 15)]),
      MQClip("v", "c2", 480, 960, [MQInstance("cut", 0, 4), MQInstance("wash", 0, 2, primary=False)])]


def det(label, s, e, score):
    return {"label": label, "score": score, "segment": [s, e]}


PREDS = {"version": "1.0", "results": {
    "c1": [det("cut", 0, 10, .9), det("cut", 21, 30, .8), det("cut", 0, 9, .7), det("wash", 5, 10, .6),
           det("jump", 0, 1, .99)],
    "c2": [det("cut", 0, 2, .95)]}}


def test_interpolated_ap_hand_worked():
    # precision envelope: [2/3, 2/3, 1/2] over recall steps of 1/3 -> (2/3 + 2/3 + 0) / 3
    assert interpolated_ap(np.array([0, .5, 2 / 3, .5]), np.array([0, 1 / 3, 2 / 3, 2 / 3])) == pytest.approx(4 / 9)
    assert interpolated_ap(np.array([1.0, 1.0]), np.array([.5, 1.0])) == pytest.approx(1.0)


def test_hand_worked_ap_and_recall():
    r = evaluate_mq(GT, PREDS, tious=(0.5, 0.6), recall_ks=(1,), recall_tious=(0.3, 0.5, 0.95))
    # cut (3 gt) ranked .95 (tIoU .5), .9 (1.0), .8 (.9), .7 ([0,9]: its best gt is taken -> FP)
    #   t=.5: TP TP TP FP -> AP 1;  t=.6: FP TP TP FP -> AP 4/9.   wash: tIoU .5 -> AP 1 at .5 (>=), 0 at .6
    assert r["per_class"]["cut"]["AP@tIoU=0.5"] == pytest.approx(1.0)
    assert r["per_class"]["cut"]["AP@tIoU=0.6"] == pytest.approx(4 / 9)
    assert r["AP@tIoU=0.5"] == pytest.approx(1.0)
    assert r["AP@tIoU=0.6"] == pytest.approx(2 / 9)
    assert r["mAP"] == pytest.approx(11 / 18)
    # Recall@1x: c1 cut keeps its top-2 cut predictions (2 instances), IoU must be > t (strict)
    assert r["R@1 tIoU=0.3"] == pytest.approx(1.0)
    assert r["R@1 tIoU=0.5"] == pytest.approx(2 / 4)  # wash and c2's cut sit exactly at 0.5
    assert r["R@1 tIoU=0.95"] == pytest.approx(1 / 4)
    assert (r["num_classes"], r["num_instances"], r["num_unknown_label_predictions"]) == (2, 4, 1)
    assert set(r["per_class"]) == {"cut", "wash"}  # non-primary labels are not ground truth


def test_default_keys_and_missing_clip():
    r = evaluate_mq(GT, {"c1": PREDS["results"]["c1"]})  # bare results mapping; c2 missing
    assert r["num_missing"] == 1
    assert {"mAP", "AP@tIoU=0.1", "AP@tIoU=0.5", "R@1 tIoU=0.3", "R@5 tIoU=0.7"} <= set(r)
    assert r["R@5 tIoU=0.3"] == pytest.approx(3 / 4)  # c2's instance is a miss


def test_degenerate_inputs():
    empty = evaluate_mq(GT, {"version": "1.0", "results": {}})
    assert empty["mAP"] == 0.0 and empty["R@5 tIoU=0.3"] == 0.0 and empty["num_missing"] == 2
    # duplicate detections: the second copy is a false positive; a tie keeps AP well defined
    one = [MQClip("v", "c", 0, 10, [MQInstance("a", 0, 10)])]
    r = evaluate_mq(one, {"c": [det("a", 0, 10, .5), det("a", 0, 10, .5)]}, tious=(0.5,))
    assert r["mAP"] == pytest.approx(1.0)
    # zero-length detection on a zero-length instance: official tIoU NaN matches (warned); "no-match" gives 0
    zero = ([MQClip("v", "c", 0, 10, [MQInstance("a", 3, 3)])], {"c": [det("a", 3, 3, 1)]})
    with pytest.warns(ParityWarning, match="zero-length"):
        r = evaluate_mq(*zero)
    assert r["mAP"] == 1.0 and not np.isnan(r["R@1 tIoU=0.3"])
    r = evaluate_mq(*zero, zero_length="no-match")
    assert r["mAP"] == 0.0 and not np.isnan(r["R@1 tIoU=0.3"])


@pytest.mark.parametrize("preds, match", [
    ({"zz": []}, "results.zz: clip_uid not in the ground truth"),
    ({"c1": [det("cut", 5, 1, .5)]}, r"results.c1\[0\].segment: segment ends"),
    ({"c1": [{"label": "cut", "segment": [0, 1]}]}, r"results.c1\[0\]: expected \{label"),
    ({"c1": [det("cut", 0, 1, "high")]}, r"results.c1\[0\].score"),
    ({"version": "1.0", "results": [1]}, "expected an object keyed by clip_uid"),
])
def test_bad_predictions(preds, match):
    with pytest.raises(PredictionError, match=match):
        evaluate_mq(GT, preds)


def test_files(tmp_path):
    gt = tmp_path / "moments_val.json"
    gt.write_text(json.dumps({"videos": [{"video_uid": "v", "clips": [{
        "clip_uid": "c1", "video_start_sec": 0, "video_end_sec": 480, "annotations": [{"labels": [
            {"label": "cut", "start_time": 0, "end_time": 10, "primary": True}]}]}]}]}))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"version": "1.0", "results": {"c1": [det("cut", 0, 10, 1)]}}))
    assert evaluate_mq_files(gt, pred)["mAP"] == 1.0
    pred.write_text("[1, 2")
    with pytest.raises(PredictionError, match="invalid JSON"):
        evaluate_mq_files(gt, pred)
