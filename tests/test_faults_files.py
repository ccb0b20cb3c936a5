"""Fault matrix, part 2 (issue 22): the line-list readers (QFVS folders, class lists, answer sets, EK-100 MIR),
prediction files (scores, keys given twice) and ``encode-text`` on videos the store does not hold. Every case:
exit 2 (or the reader's error), one line naming the file and the line/key. Model files: ``test_faults_models.py``.
"""
from __future__ import annotations

import glob
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from egoflow.cli import main
from egoflow.datasets.errors import AnnotationError, PredictionError

NON_UTF8 = b"caf\xe9\n"


def _last_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


# ---- QFVS folders -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qfvs(tmp_path_factory):
    from egoflow.datasets.synthetic.qfvs import make_qfvs

    root = tmp_path_factory.mktemp("qfvs")
    make_qfvs(root / "data", num_shots=(30, 30, 30, 30), num_concepts=4, queries_per_video=1)
    return root / "data"


QFVS_FAULTS = {  # fault -> (file glob under origin_data, new content, where, message)
    "type": ("Query-Focused_Summaries/Oracle_Summaries/P01/*_oracle.txt", b"1\nfive\n", "line 2",
             "expected a shot index"),
    "negative": ("Query-Focused_Summaries/Oracle_Summaries/P01/*_oracle.txt", b"-3\n", "line 1", "outside 1..30"),
    "beyond": ("Query-Focused_Summaries/Oracle_Summaries/P01/*_oracle.txt", b"1\n31\n", "line 2", "outside 1..30"),
    "400-digit int": ("Query-Focused_Summaries/Oracle_Summaries/P01/*_oracle.txt", b"9" * 400, "line 1",
                      "out of range (400 digits)"),
    "5000-digit int": ("Query-Focused_Summaries/Oracle_Summaries/P01/*_oracle.txt", b"9" * 5000, "line 1",
                       "out of range (5000 digits)"),
    "non-UTF-8": ("Dense_per_shot_tags/P01/P01.txt", NON_UTF8, "line 1 (byte 3)", "not UTF-8"),
    "unknown id": ("Dense_per_shot_tags/P01/P01.txt", b"Nosuchconcept\n", "line 1", "not in Dictionary.txt"),
}


def _qfvs_copy(qfvs: Path, dst: Path, fault: str) -> tuple[Path, Path]:
    import shutil

    shutil.copytree(qfvs, dst)
    pattern, content, _, _ = QFVS_FAULTS[fault]
    (target,) = [Path(p) for p in glob.glob(str(dst / "origin_data" / pattern))][:1] or [None]
    target.write_bytes(content)
    return dst, target


@pytest.mark.parametrize("fault", QFVS_FAULTS)
@pytest.mark.parametrize("command", ["reader", "evaluate qfvs", "encode-text", "train summarizer"])
def test_qfvs(qfvs, tmp_path, capsys, store, fault, command):
    from egoflow.datasets.qfvs import load_qfvs

    root, target = _qfvs_copy(qfvs, tmp_path / "q", fault)
    _, _, where, message = QFVS_FAULTS[fault]
    if command == "reader":
        with pytest.raises(AnnotationError) as e:
            load_qfvs(root)
        msg = str(e.value)
    else:
        pred = tmp_path / "pred.json"
        pred.write_text(json.dumps({"P01": {}}))
        argv = {"evaluate qfvs": ["evaluate", "qfvs", "--gt", str(root), "--pred", str(pred), "--out",
                                  str(tmp_path / "r")],
                "encode-text": ["encode-text", str(root), "--store", store, *ENCODE],
                "train summarizer": ["train", "summarizer", "--store", store, "--feature-set", "f", "--text-set", "t",
                                     "--annotations", str(root), "--out", str(tmp_path / "run")]}[command]
        assert main(argv) == 2
        msg = _last_line(capsys)
    assert f"{target}: {where}" in msg and message in msg, msg


# ---- class lists and answer sets ----------------------------------------------------------------------------------
LISTS = {  # reader -> (file name, loader, {fault: (content, where, message)})
    "charades classes": ("Charades_v1_classes.txt", "egoflow.datasets.charades_ego:load_charades_classes", {
        "empty": (b"", "", "no classes"), "non-UTF-8": (b"c000 " + NON_UTF8, "line 1 (byte 8)", "not UTF-8"),
        "type": (b"c000 Holding\ncX Putting\n", "line 2", "bad class id"),
        "400-digit int": (b"c" + b"9" * 400 + b" Holding\n", "line 1", "bad class id"),
        "out of order": (b"c000 a\nc000 b\n", "line 2", "out of order")}),
    "ek100 classes": ("EPIC_100_verb_classes.csv", "egoflow.datasets.ek100_actions:load_ek100_classes", {
        "empty": (b"id,key\n", "", "no classes"),
        "non-UTF-8": (b"id,key\n0," + NON_UTF8, "line 2 (byte 12)", "not UTF-8"),
        "type": (b"id,key\nzero,take\n", "row 2.id", "expected an integer class index"),
        "400-digit int": (b"id,key\n" + b"9" * 400 + b",take\n", "row 2.id", "out of range (400 digits)"),
        "duplicate key": (b"id,key\n0,take\n0,put\n", "row 3", "appears twice"),
        "extra field": (b"id,key\n0,take,extra\n", "row 2", "3 fields, the header has 2")}),
    "egotaskqa answers": ("answer_set.txt", "egoflow.datasets.egotaskqa:load_answer_set", {
        "empty": (b"\n", "", "no answers"), "non-UTF-8": (b"yes\n" + NON_UTF8, "line 2 (byte 7)", "not UTF-8"),
        "duplicate key": (b"yes\nno\nyes\n", "answer 3", "appears twice")}),
}
LIST_CASES = [(r, f) for r, (_, _, faults) in LISTS.items() for f in faults]


def _loader(spec: str):
    import importlib

    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("reader,fault", LIST_CASES)
def test_list_readers(tmp_path, reader, fault):
    name, loader, faults = LISTS[reader]
    content, where, message = faults[fault]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AnnotationError) as e:
        _loader(loader)(path)
    assert f"{path}: {where}" in str(e.value) and message in str(e.value), str(e.value)


def test_empty_class_list_is_blamed_on_the_class_list_not_the_csv(tmp_path, store, capsys):
    """`predict charades` with an empty classes file: the classes file is named, not CharadesEgo_v1_test.csv."""
    csv = tmp_path / "CharadesEgo_v1_test.csv"
    csv.write_text("id,actions\nV001,c001 1.0 4.0\n")
    classes = tmp_path / "Charades_v1_classes.txt"
    classes.write_text("")
    assert main(["predict", "charades", "--store", store, "--feature-set", "f", "--text-set", "t", "--annotations",
                 str(csv), "--classes", str(classes), "--out", str(tmp_path / "p.txt")]) == 2
    line = _last_line(capsys)
    assert f"{classes}: no classes" in line and str(csv) not in line


@pytest.mark.parametrize("fault", ["empty", "400-digit int", "duplicate key"])
def test_ek100_class_lists_are_checked_by_evaluate_and_train(tmp_path, store, capsys, fault):
    _, _, faults = LISTS["ek100 classes"]
    content, where, message = faults[fault]
    (tmp_path / "EPIC_100_verb_classes.csv").write_bytes(content)
    (tmp_path / "EPIC_100_noun_classes.csv").write_text("id,key\n0,door\n")
    gt = tmp_path / "EPIC_100_validation.csv"
    gt.write_text("narration_id,video_id,start_timestamp,stop_timestamp,narration,verb_class,noun_class\n"
                  "P01_01_0,P01_01,00:00:01.00,00:00:03.00,open door,0,0\n")
    pred = tmp_path / "pred.json"
    pred.write_text("{}")
    for argv in (["evaluate", "ek100-ar", "--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "r")],
                 ["train", "linear-ek100", "--store", store, "--feature-set", "f", "--annotations", str(gt),
                  "--out", str(tmp_path / "run")]):
        assert main(argv) == 2
        line = _last_line(capsys)
        assert f"EPIC_100_verb_classes.csv: {where}" in line and message in line, line


# ---- EK-100 MIR ---------------------------------------------------------------------------------------------------
def _mir(root: Path, sentence: bytes, rel: np.ndarray) -> Path:
    (root / "relevancy").mkdir(parents=True)
    (root / "EPIC_100_retrieval_test.csv").write_text("narration_id,video_id,narration\nP01_01_0,P01_01,open door\n")
    (root / "EPIC_100_retrieval_test_sentence.csv").write_bytes(sentence)
    with open(root / "relevancy" / "caption_relevancy_EPIC_100_retrieval_test.pkl", "wb") as f:
        pickle.dump(rel, f)
    return root


@pytest.mark.parametrize("fault,sentence,where,message", [
    ("non-UTF-8", b"narration_id,narration\nP01_01_0," + NON_UTF8, "EPIC_100_retrieval_test_sentence.csv: line 2 (byte",
     "not UTF-8"),
    ("duplicate key", b"narration_id,narration\nP01_01_0,a\nP01_01_0,b\n",
     "EPIC_100_retrieval_test_sentence.csv: narration_id 'P01_01_0'", "duplicate id"),
])
def test_mir(tmp_path, capsys, fault, sentence, where, message):
    root = _mir(tmp_path / "mir", sentence, np.ones((1, 2 if fault == "duplicate key" else 1)))
    pred = tmp_path / "pred.pkl"
    pred.write_bytes(b"garbage")
    assert main(["evaluate", "ek100-mir", "--gt", str(root), "--pred", str(pred), "--out", str(tmp_path / "r")]) == 2
    line = _last_line(capsys)
    assert where in line and message in line, line


# ---- prediction files ---------------------------------------------------------------------------------------------
def _mq_gt(path: Path) -> Path:
    path.write_text(json.dumps({"videos": [{"video_uid": "v", "clips": [{
        "clip_uid": "c", "video_start_sec": 0, "video_end_sec": 30,
        "annotations": [{"labels": [{"label": "x", "start_time": 1, "end_time": 4, "primary": True}]}]}]}]}))
    return path


@pytest.mark.parametrize("score,text,message", [
    (1e308, None, "plausible"), (float("inf"), "Infinity", "plausible"), (None, "9" * 400, "out of range"),
    (None, "9" * 5000, "5000 digits"), ("high", None, "expected a number")])
def test_mq_prediction_scores(tmp_path, capsys, score, text, message):
    pred = tmp_path / "pred.json"
    body = json.dumps({"version": "1.0", "results": {"c": [{"label": "x", "score": 0.5 if text else score,
                                                            "segment": [1, 4]}]}})
    pred.write_text(body.replace("0.5", text) if text else body)
    assert main(["evaluate", "mq", "--gt", str(_mq_gt(tmp_path / "m.json")), "--pred", str(pred), "--out",
                 str(tmp_path / "r")]) == 2
    line = _last_line(capsys)
    assert str(pred) in line and message in line and ("results.c[0].score" in line or "line 1" in line), line


def test_duplicated_prediction_key_is_refused(tmp_path, capsys):
    """A JSON object with a key twice: parsers keep the last value silently; every reader refuses it."""
    from egoflow.datasets.egomcq import load_egomcq_predictions

    pred = tmp_path / "pred.json"
    pred.write_text('{"0": 1, "0": 0}')
    with pytest.raises(PredictionError, match=r"pred.json: key '0': appears twice"):
        load_egomcq_predictions(pred, [])


# ---- command-level checks -----------------------------------------------------------------------------------------
def test_encode_text_refuses_videos_the_store_does_not_hold(tmp_path, store, capsys):
    nlq = tmp_path / "nlq.json"
    nlq.write_text(json.dumps({"videos": [
        {"video_uid": "v", "clips": []},
        {"video_uid": "elsewhere", "clips": [{"clip_uid": "c", "video_start_sec": 0, "video_end_sec": 8,
                                              "annotations": [{"annotation_uid": "a", "language_queries": [
                                                  {"clip_start_sec": 1, "clip_end_sec": 2, "query": "q"}]}]}]}]}))
    assert main(["encode-text", str(nlq), "--store", store, *ENCODE]) == 2
    line = _last_line(capsys)
    assert f"{nlq}: videos[1].video_uid" in line and "'elsewhere' is in none of the feature sets" in line, line
    assert main(["encode-text", str(nlq), "--store", store, "--allow-unknown-videos", "--text-set", "u",
                 *ENCODE]) == 0


ENCODE = ["--model", "egoflow-tiny-ViT", "--precision", "fp32", "--device", "cpu"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    from egoflow.features_store import FeatureStore

    url = str(tmp_path_factory.mktemp("store") / "s.zarr")
    s = FeatureStore(url)
    s.create_feature_set("f", {"encoder": "test"}, dim=8)
    for uid in ("v", "P01", "P02", "P03", "P04"):
        s.write_video("f", uid, np.zeros((30, 8), np.float32), np.arange(30) + 0.5, attrs={"duration_s": 30.0})
    s.write_texts("t", ["a video of Holding"], np.zeros((1, 8), np.float32))
    return url


def test_ek100_submission_with_a_key_twice_is_refused(tmp_path, capsys):
    """The EK-100 action-recognition submission: a narration_id given twice is not resolved to its last value."""
    gt = tmp_path / "EPIC_100_validation.csv"
    gt.write_text("narration_id,video_id,start_timestamp,stop_timestamp,narration,verb_class,noun_class\n"
                  "P01_01_0,P01_01,00:00:01.00,00:00:03.00,open door,0,0\n")
    pred = tmp_path / "pred.json"
    one = '{"verb": {"0": 1.0}, "noun": {"0": 1.0}}'
    pred.write_text(f'{{"results": {{"P01_01_0": {one}, "P01_01_0": {one}}}}}')
    assert main(["evaluate", "ek100-ar", "--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "r")]) == 2
    assert f"{pred}: key 'P01_01_0': appears twice" in _last_line(capsys)
