import json

import numpy as np
import pytest

from egoflow.datasets.egomcq import load_egomcq, load_egomcq_predictions
from egoflow.datasets.errors import AnnotationError, PredictionError


def clip(v, s, e, text="#C C picks a cup"):
    return {"video_uid": v, "clip_start": s, "clip_end": e, "clip_text": text, "tag_noun": "[1]", "tag_verb": "[2]"}


def write(tmp_path, items):
    p = tmp_path / "egomcq.json"
    p.write_text(json.dumps(items))
    return p


ITEMS = {"0": {"query": clip("v0", 1, 2), "choices": {str(i): clip(f"v{i}", i, i + 1) for i in range(5)},
               "answer": 0, "types": 1},
         "1": {"query": clip("v9", "3.5", "4.0", "#C C opens"),
               "choices": {str(i): clip("v9", i, "9.5") for i in range(5)},
               "answer": 3, "types": 2}}


def test_reads_items(tmp_path):
    items = load_egomcq(write(tmp_path, ITEMS))
    assert [it.item_id for it in items] == ["0", "1"]
    assert items[1].query == "#C C opens" and items[1].is_intra and items[1].answer == 3
    assert items[1].choices[2].end_sec == 9.5 and len(items[0].choices) == 5


@pytest.mark.parametrize("patch, match", [
    ({"answer": 7}, r"1.answer: 7 is not a choice index"),
    ({"types": 3}, r"1.types: expected 1 \(inter-video\) or 2"),
    ({"choices": {"0": {"video_uid": "v", "clip_start": "x", "clip_end": 1}}}, r"1.choices.0.clip_start"),
])
def test_malformed(tmp_path, patch, match):
    bad = json.loads(json.dumps(ITEMS))
    bad["1"].update(patch)
    with pytest.raises(AnnotationError, match=match):
        load_egomcq(write(tmp_path, bad))


def test_predictions(tmp_path):
    items = load_egomcq(write(tmp_path, ITEMS))
    p = tmp_path / "pred.json"
    p.write_text(json.dumps({"results": {"0": [0.1, 0.9, 0, 0, 0]}}))
    scores, missing = load_egomcq_predictions(p, items)
    assert scores[0].tolist() == [0.1, 0.9, 0, 0, 0] and missing == ["1"] and np.isinf(scores[1]).all()
    p.write_text(json.dumps({"0": 2, "1": 3}))
    scores, missing = load_egomcq_predictions(p, items)
    assert scores.argmax(1).tolist() == [2, 3] and missing == []
    p.write_text(json.dumps({"5": 1}))
    with pytest.raises(PredictionError, match="'5': item id not in egomcq.json"):
        load_egomcq_predictions(p, items)
    p.write_text(json.dumps({"0": [1, 2]}))
    with pytest.raises(PredictionError, match="expected 5 scores"):
        load_egomcq_predictions(p, items)
