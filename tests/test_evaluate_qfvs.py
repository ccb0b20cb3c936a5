import json

import numpy as np
import pytest

from egoflow.datasets.errors import PredictionError
from egoflow.datasets.qfvs import QFVSQuery, QFVSVideo
from egoflow.evaluate.qfvs import concept_iou, evaluate_qfvs, evaluate_qfvs_files, qfvs_scores

# shot tags: 0 {A,B}  1 {A}  2 {C}  3 {}  4 {A,B,C}
SHOTS = [frozenset("AB"), frozenset("A"), frozenset("C"), frozenset(), frozenset("ABC")]


def test_concept_iou_hand_worked():
    tags = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert concept_iou(tags, tags).tolist() == [[1, .5, 0], [.5, 1, 0], [0, 0, 0]]  # empty vs empty -> 0


def test_scores_hand_worked():
    # pred {1, 2}, ref {0, 4}: IoU(1,0)=1/2, IoU(1,4)=1/3, IoU(2,0)=0, IoU(2,4)=1/3
    # best matching: 1-0 (1/2) + 2-4 (1/3) = 5/6 (the other one gives 1/3 + 0)
    s = qfvs_scores([1, 2], [0, 4], SHOTS)
    assert s["precision"] == pytest.approx(5 / 12) and s["recall"] == pytest.approx(5 / 12)
    # pred {0, 1, 2} vs ref {0}: only one edge is used -> total 1
    s = qfvs_scores([0, 1, 2], [0], SHOTS)
    assert (s["precision"], s["recall"]) == pytest.approx((1 / 3, 1.0))
    assert s["F1"] == pytest.approx(2 * (1 / 3) / (4 / 3))


def test_scores_degenerate():
    assert qfvs_scores([], [0], SHOTS) == {"precision": 0.0, "recall": 0.0, "F1": 0.0}
    assert qfvs_scores([3], [3], SHOTS)["F1"] == 0.0  # untagged shots are never similar
    dup = qfvs_scores([0, 0], [0, 4], SHOTS)  # repeated shot counts twice, as the reference code does
    assert dup["precision"] == pytest.approx((1 + 2 / 3) / 2)


def video(vid="P01"):
    return QFVSVideo(vid, SHOTS, [QFVSQuery(vid, ("A", "B"), (0, 4), users=((0,), (4,))),
                                  QFVSQuery(vid, ("A", "C"), (2,))], concepts=["A", "B", "C"])


def test_aggregate_per_video_then_mean_and_missing():
    vids = {"P01": video("P01"), "P02": video("P02")}
    r = evaluate_qfvs(vids, {"P01": {"A_B": [0, 4], "C_A": [2]}})  # reversed pair name accepted
    assert r["per_video"]["P01"]["F1"] == pytest.approx(1.0)
    assert r["per_video"]["P02"]["F1"] == 0.0 and r["num_missing"] == 2
    assert r["F1"] == pytest.approx(0.5) and r["num_queries"] == 4
    users = evaluate_qfvs({"P01": QFVSVideo("P01", SHOTS, video().queries[:1])}, {"P01": {"A_B": [0]}},
                          reference="users")
    # A_B vs users {0} -> 1 and {4} -> IoU 2/3
    assert users["per_query"]["P01"]["A_B"]["F1"] == pytest.approx((1 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="no user summaries"):
        evaluate_qfvs({"P01": QFVSVideo("P01", SHOTS, [QFVSQuery("P01", ("A", "C"), (2,))])}, {}, reference="users")


@pytest.mark.parametrize("preds, match", [
    ({"P09": {}}, "P09: unknown video"),
    ({"P01": {"A_Z": [1]}}, "P01.A_Z: query not in the ground truth"),
    ({"P01": {"A_B": [7]}}, r"shot\(s\) \[7\] outside 0..4"),
    ({"P01": {"A_B": ["1"]}}, "integer shot indices"),
])
def test_bad_predictions(preds, match):
    with pytest.raises(PredictionError, match=match):
        evaluate_qfvs({"P01": video()}, preds)


def test_files(tmp_path):
    base = tmp_path / "data" / "origin_data"
    (base / "Dense_per_shot_tags" / "P01").mkdir(parents=True)
    (base / "Dense_per_shot_tags" / "Dictionary.txt").write_text("'A'\n'B'\n'C'\n")
    (base / "Dense_per_shot_tags" / "P01" / "P01.txt").write_text("A,B\nA\nC\n\nA,B,C\n")
    odir = base / "Query-Focused_Summaries" / "Oracle_Summaries" / "P01"
    odir.mkdir(parents=True)
    (odir / "A_B_oracle.txt").write_text("1\n5\n")
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"P01": {"A_B": [0, 4]}}))
    r = evaluate_qfvs_files(tmp_path, pred)
    assert r["F1"] == pytest.approx(1.0) and r["num_videos"] == 1
