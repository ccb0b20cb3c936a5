"""Fault class 5, annotations (issue 12): every reader applies the shared checker (datasets/errors.py).

encode-text reads NLQ/MQ/narration files with the same readers as train and evaluate, so a malformed file is
one line naming the file and key path (exit 2), never a traceback or a silently dropped string. evaluate
rejects negative, absurd (1e308) and beyond-clip times, and a reversed ground-truth window blames the
ground-truth file, not the predictions.
"""
import json

import pytest

from egoflow.datasets.errors import AnnotationError, PredictionError
from egoflow.datasets.texts import annotation_strings
from egoflow.evaluate.cli import main as evaluate_main


def _ego4d(path, annotations):
    path.write_text(json.dumps({"videos": [{"video_uid": "v", "clips": [{
        "clip_uid": "c", "video_start_sec": 0, "video_end_sec": 30, "annotations": annotations}]}]}))
    return path


@pytest.mark.parametrize("annotations,where", [
    ([{"annotation_uid": "a", "language_queries": ["where is it?"]}], "language_queries[0]"),  # str, not object
    ([{"annotation_uid": "a", "language_queries": [{"clip_start_sec": 1, "clip_end_sec": 2, "query": 7}]}],
     "language_queries[0].query"),  # a non-string query was silently dropped before
    ([{"labels": [{"label": 3, "start_time": 0, "end_time": 1}]}], "labels[0].label"),  # int label
    ([{"labels": {"label": "x", "start_time": 0, "end_time": 1}}], "annotations[0].labels"),  # labels as dict
    ([{"labels": [{"label": "x", "start_time": 10 ** 400, "end_time": 1}]}], "labels[0].start_time"),  # overflow
])
def test_encode_text_malformed_ego4d_is_one_error_with_key_path(tmp_path, annotations, where):
    path = _ego4d(tmp_path / "ann.json", annotations)
    with pytest.raises(AnnotationError) as e:
        annotation_strings(path)
    msg = str(e.value)
    assert str(path) in msg and where in msg and "\n" not in msg and len(msg) < 300


def test_encode_text_cli_exit_2(tmp_path, capsys):
    from egoflow.cli import main

    path = _ego4d(tmp_path / "ann.json", [{"labels": {"label": "x"}}])
    rc = main(["encode-text", str(path), "--store", str(tmp_path / "s.zarr"), "--model", "egoflow-tiny-ViT",
               "--precision", "fp32", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "ann.json: videos[0].clips[0].annotations[0].labels" in err and "Traceback" not in err


def _nlq_gt(path, windows):
    lq = [{"clip_start_sec": s, "clip_end_sec": e, "query": f"q{i}"} for i, (s, e) in enumerate(windows)]
    return _ego4d(path, [{"annotation_uid": "a", "language_queries": lq}])


def _nlq_pred(path, windows):
    res = [{"clip_uid": "c", "annotation_uid": "a", "query_idx": i, "predicted_times": w} for i, w in
           enumerate(windows)]
    path.write_text(json.dumps({"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": res}))
    return path


def test_reversed_ground_truth_window_blames_the_gt_file(tmp_path, capsys):
    gt = _nlq_gt(tmp_path / "nlq_val.json", [(2, 6), (5, 1)])
    pred = _nlq_pred(tmp_path / "pred.json", [[[2, 6]], [[1, 5]]])
    assert evaluate_main(["nlq", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nlq_val.json" in err and "language_queries[1]" in err and "ends before it starts" in err
    assert "pred.json" not in err


@pytest.mark.parametrize("window,msg", [([-3, 2], "negative time"), ([0, 1e308], "plausible"),
                                        ([1, 45], "past the clip")])
def test_evaluate_rejects_impossible_times(tmp_path, capsys, window, msg):
    gt = _nlq_gt(tmp_path / "nlq_val.json", [(2, 6)])
    pred = _nlq_pred(tmp_path / "pred.json", [[window]])
    assert evaluate_main(["nlq", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "pred.json" in err and msg in err and "Traceback" not in err


def test_mq_prediction_times_use_the_shared_rules(tmp_path):
    from egoflow.evaluate.mq import _validate

    with pytest.raises(PredictionError, match=r"results.c\[0\].segment\[0\]: negative time"):
        _validate({"results": {"c": [{"label": "x", "score": 1.0, "segment": [-1, 2]}]}}, "p.json")
    with pytest.raises(PredictionError, match="plausible"):
        _validate({"results": {"c": [{"label": "x", "score": 1.0, "segment": [0, 1e308]}]}}, "p.json")
