"""EK-100 action recognition, OSCC, PNR and EgoTaskQA metrics on hand-worked examples, through `egoflow evaluate`."""
import json
from pathlib import Path

import numpy as np
import pytest

from egoflow.cli import main
from egoflow.datasets.errors import PredictionError
from egoflow.datasets.fho import load_fho_oscc_pnr
from egoflow.evaluate.benchmarks import get_benchmark
from egoflow.evaluate.parity import ParityWarning
from egoflow.formats import ek100_actions_submission, write_submission

EK_HEAD = "narration_id,participant_id,video_id,start_timestamp,stop_timestamp,narration,verb_class,noun_class\n"


def test_ek100_topk_by_hand(tmp_path):
    gt = tmp_path / "EPIC_100_validation.csv"
    gt.write_text(EK_HEAD + "P01_01_0,P01,P01_01,00:00:01.00,00:00:02.00,x,1,2\n"
                            "P01_01_1,P01,P01_01,00:00:03.00,00:00:04.00,y,0,0\n")
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"version": "0.2", "challenge": "action_recognition", "results": {
        "P01_01_0": {"verb": {"0": 0.5, "1": 0.9, "2": 0.1}, "noun": {"0": 1.0, "1": 2.0, "2": 0.5},
                     "action": {"1,1": 0.5, "1,2": 0.3}}}}))
    with pytest.warns(ParityWarning, match="1 of 2 segments have no prediction: missing='official'"):
        m = get_benchmark("ek100-actions").evaluate(str(gt), str(pred))
    # segment 0: verb rank 0, noun rank 2 (two better), action rank 1; segment 1 has no prediction: not scored
    assert m["verb top1"] == 1.0 and m["noun top1"] == 0.0 and m["noun top5"] == 1.0
    assert m["action top1"] == 0.0 and m["action top5"] == 1.0 and m["num_missing"] == 1
    with pytest.warns(ParityWarning, match="missing='wrong' \\(counted as wrong\\)"):
        m = get_benchmark("ek100-actions").evaluate(str(gt), str(pred), missing="wrong")
    assert m["verb top1"] == 0.5 and m["noun top1"] == 0.0 and m["noun top5"] == 0.5
    assert m["action top1"] == 0.0 and m["action top5"] == 0.5 and m["num_evaluated"] == 2
    pred.write_text(json.dumps({"results": {"nope": {}}}))
    with pytest.raises(PredictionError, match="results.nope: not a segment"):
        get_benchmark("ek100-ar").evaluate(str(gt), str(pred))


def test_ek100_submission_builder_keeps_top_actions():
    rec = {"a": {"verb": [0.1, 3.0, 0.2], "noun": [2.0, 0.0, 0.1, 0.3]}}
    sub = ek100_actions_submission(rec, top_actions=5)
    acts = sub["results"]["a"]["action"]
    assert len(acts) == 5 and max(acts, key=acts.get) == "1,0"  # argmax verb, argmax noun
    assert sub["results"]["a"]["verb"]["1"] == 3.0  # verb/noun entries are the logits given


def fho(tmp_path):
    clips = [{"unique_id": u, "video_uid": "v", "parent_start_sec": 10.0, "parent_end_sec": 18.0,
              "parent_start_frame": 300, "parent_end_frame": 540, "state_change": sc, "parent_pnr_frame": p}
             for u, sc, p in (("a", True, 420), ("b", False, None), ("c", True, 500))]
    p = tmp_path / "fho_oscc-pnr_val.json"
    p.write_text(json.dumps({"clips": clips}))
    return p


def test_oscc_accuracy_missing_is_wrong(tmp_path):
    gt, pred = fho(tmp_path), tmp_path / "oscc.json"
    write_submission("oscc", [{"unique_id": "a", "state_change": True}, {"unique_id": "b", "state_change": True}],
                     pred)
    m = get_benchmark("oscc").evaluate(str(gt), str(pred))
    assert m["accuracy"] == pytest.approx(1 / 3) and m["num_missing"] == 1


def test_pnr_error_is_the_official_keyframe_distance(tmp_path):
    gt, pred = fho(tmp_path), tmp_path / "pnr.json"
    write_submission("pnr", [{"unique_id": "a", "pnr_frame": 150.0}, {"unique_id": "b", "pnr_frame": 0.0},
                             {"unique_id": "c", "pnr_frame": 200.0}], pred)
    fps = (540 - 300 + 1) / 8.0  # clip_frame / clip_len of the official loader
    want = np.mean([abs(150 - 120) / fps, abs(200 - 200) / fps])  # b has no state change: not scored
    assert get_benchmark("pnr").evaluate(str(gt), str(pred))["abs_error_s"] == pytest.approx(want)
    write_submission("pnr", [{"unique_id": "a", "pnr_frame": 150.0}], pred)
    with pytest.raises(PredictionError, match="1 state-change clip\\(s\\) have no pnr_frame, e.g. 'c'"):
        get_benchmark("pnr").evaluate(str(gt), str(pred))


def test_egotaskqa_per_type_via_cli(tmp_path):
    base = {"interval": "v|fpv1|0|30", "category": ["world"], "semantic": "object", "structural": "query",
            "reference": "direct"}
    qs = [{**base, "question": "q0", "answer": "a", "type": ["descriptive"]},
          {**base, "question": "q1", "answer": "b", "type": ["predictive"]},
          {**base, "question": "q2", "answer": "c", "type": ["descriptive"], "category": ["intent"]}]
    gt = tmp_path / "val_qas.json"
    gt.write_text(json.dumps(qs))
    pred = tmp_path / "pred.json"
    write_submission("egotaskqa", [{"index": 0, "answer": "a"}, {"index": 1, "answer": "x"}], pred)
    assert main(["evaluate", "egotaskqa", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "report.json").read_text())["pred"]["egotaskqa"]
    assert m["accuracy"] == pytest.approx(1 / 3) and m["num_missing"] == 1
    assert m["descriptive"] == 0.5 and m["predictive"] == 0.0 and m["world"] == 0.5 and m["intent"] == 0.0
    assert m["per_type_counts"] == {"descriptive": 2, "world": 2, "object": 3, "query": 3, "direct": 3,
                                    "predictive": 1, "intent": 1}


FIXTURES = Path(__file__).parent / "fixtures"


def test_pnr_equals_recorded_official_keyframe_distance(tmp_path):
    """fixtures/official_fho_pnr.json: the official keyframe_distance per clip, fractional PNR frames included
    (clip f: ground truth 62.5 and a prediction of 62.5 -> 0, no rounding before the error)."""
    rec = json.loads((FIXTURES / "official_fho_pnr.json").read_text())
    gt, pred = tmp_path / "gt.json", tmp_path / "pnr.json"
    gt.write_text(json.dumps({"clips": rec["clips"]}))
    write_submission("pnr", rec["predictions"], pred)
    m = get_benchmark("pnr").evaluate(str(gt), str(pred))
    assert m["abs_error_s"] == rec["official_mean_s"] and m["num_clips"] == len(rec["official_per_clip_s"])
    clips = load_fho_oscc_pnr(gt, task="pnr")
    assert clips[0].pnr_frame == 400.4 and clips[-1].pnr_frame == 62.5  # kept as written


def test_egotaskqa_repeated_tags_count_as_the_official_calculator(tmp_path):
    """fixtures/official_egotaskqa.json: ReasongingTypeAccCalculator counts a tag listed twice twice."""
    rec = json.loads((FIXTURES / "official_egotaskqa.json").read_text())
    gt, pred = tmp_path / "val_qas.json", tmp_path / "pred.json"
    gt.write_text(json.dumps(rec["questions"]))
    write_submission("egotaskqa", rec["predictions"], pred)
    m = get_benchmark("egotaskqa").evaluate(str(gt), str(pred))
    for t, want in rec["official_acc"].items():
        assert m[t] == want, t
    assert m["per_type_counts"] == rec["official_counts"]
    assert m["descriptive"] == 0.75 and rec["official_counts"]["descriptive"] == 4  # q0 lists it twice
