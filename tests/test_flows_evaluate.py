import json

import pytest

from egoflow.flows.deploy import make_task_runner
from egoflow.flows.evaluate import evaluate_flow


def _nlq_gt(path):
    q = {"clip_start_sec": 2.0, "clip_end_sec": 4.0, "video_start_sec": 12.0, "video_end_sec": 14.0,
         "query": "where is the mug?", "template": "x"}
    path.write_text(json.dumps({"version": "v1", "videos": [{"video_uid": "v", "clips": [{
        "clip_uid": "c", "video_start_sec": 10.0, "video_end_sec": 30.0, "clip_start_sec": 10.0,
        "clip_end_sec": 30.0, "annotations": [{"annotation_uid": "a", "language_queries": [
            q, {**q, "query": "b?", "clip_start_sec": 8.0, "clip_end_sec": 9.0}]}]}]}]}))


def test_evaluate_flow_reports_runs(tmp_path, prefect_harness):
    gt = tmp_path / "nlq_val.json"
    _nlq_gt(gt)
    run = tmp_path / "run1"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"benchmark": "nlq", "val_annotations": str(gt)}))
    (run / "predictions.json").write_text(json.dumps({"version": "1.0", "challenge": "ego4d_nlq_challenge",
                                                      "results": [
        {"clip_uid": "c", "annotation_uid": "a", "query_idx": 0, "predicted_times": [[2.0, 4.0]]},
        {"clip_uid": "c", "annotation_uid": "a", "query_idx": 1, "predicted_times": [[0.0, 1.0], [8.0, 9.0]]}]}))
    res = evaluate_flow([str(run)], str(tmp_path / "report"))
    m = res["run1"]["nlq"]
    assert m["R@1 IoU=0.3"] == pytest.approx(0.5) and m["R@3 IoU=0.3"] == pytest.approx(1.0)
    assert (tmp_path / "report" / "report.md").exists()


def test_task_runner_choice():
    assert type(make_task_runner("thread")).__name__ == "ThreadPoolTaskRunner"
    with pytest.raises(ValueError, match="unknown task runner"):
        make_task_runner("mpi")
