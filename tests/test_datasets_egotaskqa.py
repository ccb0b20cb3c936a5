"""EgoTaskQA question files: intervals -> store windows, reasoning tags, answer vocabulary, clear errors."""
import json

import pytest

from egoflow.datasets.egotaskqa import (
    answer_indices,
    answer_vocabulary,
    is_question_file,
    load_answer_set,
    load_egotaskqa,
    load_egotaskqa_predictions,
    questions_by_video,
)
from egoflow.datasets.errors import AnnotationError, PredictionError

Q = {"question": "what did I open?", "answer": "fridge", "interval": "S1_Cook|fpv2|30|90",
     "type": ["descriptive"], "category": ["world", "intent"], "semantic": "object", "structural": "query",
     "reference": "direct"}


def write(tmp_path, qs, name="val_qas.json"):
    p = tmp_path / name
    p.write_text(json.dumps(qs))
    return p


def test_reads_interval_and_tags(tmp_path):
    q2 = {**Q, "answer": "cup", "reasoning_type": "predictive$world$object$query$indirect"}
    items = load_egotaskqa(write(tmp_path, [Q, q2]), fps=30.0)
    a, b = items
    assert (a.video_uid, a.start_sec, a.end_sec) == ("S1_Cook_fpv2", 1.0, 3.0)
    assert a.tags == ("descriptive", "world", "intent", "object", "query", "direct")  # as split.py joins them
    assert b.tags == ("predictive", "world", "object", "query", "indirect")  # reasoning_type wins when present
    assert answer_vocabulary(items) == ["cup", "fridge"]


def test_question_without_clip_and_bad_interval(tmp_path):
    bad = {k: v for k, v in Q.items() if k != "interval"}
    with pytest.raises(AnnotationError, match=r"\[1\]\.interval: question 'what did I open\?' has no clip"):
        load_egotaskqa(write(tmp_path, [Q, bad]))
    with pytest.raises(AnnotationError, match=r"\[0\]\.interval: 'S1\|fpv1\|9' is not"):
        load_egotaskqa(write(tmp_path, [{**Q, "interval": "S1|fpv1|9"}]))
    with pytest.raises(AnnotationError, match="empty frame range 90..30"):
        load_egotaskqa(write(tmp_path, [{**Q, "interval": "S1|fpv1|90|30"}]))


def test_unknown_answer_names_question(tmp_path):
    p = write(tmp_path, [Q, {**Q, "answer": "toaster"}])
    items = load_egotaskqa(p)
    with pytest.raises(AnnotationError, match=r"val_qas.json: \[1\]\.answer: 'toaster' is not in the answer vocab"):
        answer_indices(items, ["fridge", "cup"], p)
    assert answer_indices(items[:1], ["cup", "fridge"], p) == [1]


def test_answer_set_file(tmp_path):
    (tmp_path / "answer_set.txt").write_text("yes\nno\n\nfridge\n")
    assert load_answer_set(tmp_path / "answer_set.txt") == ["yes", "no", "fridge"]
    assert answer_vocabulary([], tmp_path / "answer_set.txt") == ["yes", "no", "fridge"]
    (tmp_path / "answer_set.txt").write_text("yes\nyes\n")
    with pytest.raises(AnnotationError, match="answer 2: answer 'yes' appears twice"):
        load_answer_set(tmp_path / "answer_set.txt")


def test_predictions_reader(tmp_path):
    items = load_egotaskqa(write(tmp_path, [Q, Q]))
    p = tmp_path / "pred.json"
    p.write_text(json.dumps({"results": [{"index": 1, "answer": "cup"}]}))
    assert load_egotaskqa_predictions(p, items) == ({1: "cup"}, [0])
    p.write_text(json.dumps({"results": [{"index": 5, "answer": "cup"}]}))
    with pytest.raises(PredictionError, match=r"results\[0\]\.index: 5 is not a question index"):
        load_egotaskqa_predictions(p, items)


def test_questions_by_video_are_the_extraction_queries(tmp_path):
    """``extract --queries val_qas.json``: each store video's questions, file order, a repeated question once."""
    qs = [Q, {**Q, "question": "where is the cup?"}, {**Q, "interval": "S2_Cook|fpv1|0|60"}, Q]
    p = write(tmp_path, qs)
    assert is_question_file(p)
    assert questions_by_video(p) == {"S1_Cook_fpv2": ["what did I open?", "where is the cup?"],
                                     "S2_Cook_fpv1": ["what did I open?"]}
    nlq = tmp_path / "nlq.json"
    nlq.write_text(json.dumps({"videos": []}))
    assert not is_question_file(nlq) and not is_question_file(tmp_path / "q.txt")
    with pytest.raises(AnnotationError, match=r"\[0\]\.interval"):
        questions_by_video(write(tmp_path, [{**Q, "interval": "bad"}]))
