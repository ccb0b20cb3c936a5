import json
import pickle
import warnings

import numpy as np
import pytest

from egoflow.datasets.errors import AnnotationError, PredictionError
from egoflow.evaluate.benchmarks import BENCHMARKS, get_benchmark
from egoflow.evaluate.parity import ParityWarning


def test_registry_names():
    assert {"nlq", "mq", "qfvs", "egomcq", "charades", "ek100-mir"} <= set(BENCHMARKS)
    assert get_benchmark("CharadesEgo").name == "charades"
    with pytest.raises(KeyError, match="unknown benchmark"):
        get_benchmark("kinetics")


def test_egomcq_files(tmp_path):
    def c(v):
        return {"video_uid": v, "clip_start": 0, "clip_end": 1, "clip_text": "t"}

    gt = tmp_path / "egomcq.json"
    gt.write_text(json.dumps({str(i): {"query": c("q"), "choices": {str(j): c(f"v{j}") for j in range(5)},
                                       "answer": i % 5, "types": 1 + i % 2} for i in range(4)}))
    pred = tmp_path / "p.json"
    pred.write_text(json.dumps({"0": 0, "1": 1, "2": 0}))  # item 2 wrong (answer 2), item 3 missing
    r = get_benchmark("egomcq").evaluate(gt, pred)
    assert (r["Inter-video"], r["Intra-video"], r["num_missing"]) == (0.5, 0.5, 1)


def test_charades_files(tmp_path):
    gt = tmp_path / "test.csv"
    gt.write_text("id,actions\nA,c000 0 1\nB,c001 0 1\nC,c000 1 2;c001 0 1\n")
    pred = tmp_path / "sub.txt"
    pred.write_text("A 0.9 0.1\nB 0.2 0.8\n")  # C missing: -inf scores rank it last
    r = get_benchmark("charades").evaluate(gt, pred, num_classes=2)
    assert r["mAP"] == pytest.approx((1 + 2 / 3) / 2 * 1) and r["num_missing"] == 1
    pred.write_text("Z 0.9 0.1\n")
    with pytest.raises(PredictionError, match="Z: video id not in the ground truth"):
        get_benchmark("charades").evaluate(gt, pred, num_classes=2)
    # without num_classes the submission's width is the class count, in text and JSON alike
    pred.write_text("A 0.9 0.1\nB 0.2 0.8\n")
    js = tmp_path / "sub.json"
    js.write_text(json.dumps({"results": {"A": [0.9, 0.1], "B": [0.2, 0.8]}}))
    for p in (pred, js):
        assert get_benchmark("charades").evaluate(gt, p)["mAP"] == pytest.approx(r["mAP"])
    js.write_text(json.dumps({"results": {"A": [0.9, 0.1], "B": [0.2]}}))
    with pytest.raises(PredictionError, match="B: expected 2 numeric scores"):
        get_benchmark("charades").evaluate(gt, js)
    pred.write_text("A 0.9\nB 0.2\n")  # one score per video, but the ground truth has class c001
    with pytest.raises(AnnotationError, match="video B.*class c001.*1 scores per video"):
        get_benchmark("charades").evaluate(gt, pred)


def test_mir_files(tmp_path):
    (tmp_path / "relevancy").mkdir()
    (tmp_path / "EPIC_100_retrieval_test.csv").write_text("narration_id,narration\nv0,a\nv1,b\n")
    (tmp_path / "EPIC_100_retrieval_test_sentence.csv").write_text("narration_id,narration\nv0,a\nv1,b\n")
    rel = tmp_path / "relevancy" / "caption_relevancy_EPIC_100_retrieval_test.pkl"
    rel.write_bytes(pickle.dumps(np.eye(2)))
    sub = tmp_path / "test.pkl"
    sub.write_bytes(pickle.dumps({"sim_mat": np.array([[.9, .1], [.2, .8]]), "vis_ids": ["v0", "v1"],
                                  "txt_ids": ["v0", "v1"]}))
    for gt in (tmp_path, rel):  # the folder or the relevancy pickle inside it
        r = get_benchmark("ek100-mir").evaluate(gt, sub)
        assert r["mAP"] == 1.0 and r["nDCG"] == 1.0 and r["curves"]["pr V2T"]["recall"][-1] == 1.0


def test_ek100_actions_benchmark_files(tmp_path):
    from egoflow.datasets.synthetic.actions import write_narrated_ek100
    from egoflow.datasets.synthetic.narrated import NarratedSpec, make_narrated
    from egoflow.formats import write_submission

    d = make_narrated(NarratedSpec(num_videos=3, num_concepts=6, dim=8, seed=0))
    p = write_narrated_ek100(d, {"validation": sorted(d.videos)}, tmp_path)
    segs = d.segments
    recs = {f"{s.video_uid}_{[x for x in segs if x.video_uid == s.video_uid].index(s)}":
            {"verb": [1.0 if c == s.concept % 4 else 0.0 for c in range(4)],
             "noun": [1.0 if c == s.concept else 0.0 for c in range(6)]} for s in segs}
    first = next(iter(recs))
    recs[first]["noun"] = [0.0] * 6  # one wrong noun: a tie, broken towards class 0 with ties="stable"
    write_submission("ek100-ar", recs, tmp_path / "pred.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParityWarning)  # the tie may or may not change a hit
        m = get_benchmark("ek100-ar").evaluate(p["validation"], tmp_path / "pred.json", ties="stable")
    wrong = 0 if segs[0].concept == 0 else 1
    assert m["verb top1"] == 1.0 and m["noun top1"] == pytest.approx(1 - wrong / len(segs))
    assert m["num_segments"] == len(segs) and m["num_missing"] == 0
    sub = json.loads((tmp_path / "pred.json").read_text())
    sub["results"]["nope_0"] = sub["results"][first]
    (tmp_path / "bad.json").write_text(json.dumps(sub))
    with pytest.raises(PredictionError, match="nope_0.*not a segment of"):
        get_benchmark("ek100-ar").evaluate(p["validation"], tmp_path / "bad.json")
