"""Which strings of each kind of annotation file get encoded, and clear errors for bad files."""
import json

import pytest

from egoflow.datasets.errors import AnnotationError
from egoflow.datasets.texts import TextSourceError, annotation_strings


def _nlq(path, queries):
    lq = [{"clip_start_sec": 1.0, "clip_end_sec": 2.0, "query": q} for q in queries]
    path.write_text(json.dumps({"videos": [{"video_uid": "v", "clips": [{"clip_uid": "c", "video_start_sec": 0.0,
        "video_end_sec": 8.0, "annotations": [{"annotation_uid": "a", "language_queries": lq}]}]}]}))


def test_strings_of_each_kind(tmp_path):
    _nlq(tmp_path / "nlq.json", ["where is it?", "where is it?", "what did I cut?"])
    assert annotation_strings(tmp_path / "nlq.json") == ("nlq", ["where is it?", "what did I cut?"])
    (tmp_path / "mq.json").write_text(json.dumps({"videos": [{"video_uid": "v", "clips": [{"clip_uid": "c",
        "video_start_sec": 0.0, "video_end_sec": 8.0,
        "annotations": [{"labels": [{"label": "use_phone", "start_time": 0, "end_time": 1}]}]}]}]}))
    assert annotation_strings(tmp_path / "mq.json", prompt="a photo of {}") == ("mq", ["a photo of use_phone"])
    (tmp_path / "narration.json").write_text(json.dumps({"v": {"narration_pass_1": {"narrations": [
        {"timestamp_sec": 1.0, "narration_text": "#C C opens the door"}]}}}))
    assert annotation_strings(tmp_path / "narration.json") == ("narrations", ["#C C opens the door"])
    (tmp_path / "classes.txt").write_text("cup\n\nplate\n")
    assert annotation_strings(tmp_path / "classes.txt") == ("lines", ["cup", "plate"])
    (tmp_path / "Charades_v1_classes.txt").write_text("c000 Holding some clothes\nc001 Putting clothes somewhere\n")
    assert annotation_strings(tmp_path / "Charades_v1_classes.txt", prompt="a person {}") == (
        "classes", ["a person Holding some clothes", "a person Putting clothes somewhere"])
    (tmp_path / "mixed.txt").write_text("c000 Holding some clothes\ncup\n")  # not every line a class: plain lines
    assert annotation_strings(tmp_path / "mixed.txt")[0] == "lines"


def test_qfvs_folder_gives_the_summarizer_prompts(tmp_path):
    from egoflow.datasets.synthetic.qfvs import make_qfvs

    syn = make_qfvs(tmp_path / "qfvs", num_shots=(120, 120, 120, 120), queries_per_video=2)
    kind, strings = annotation_strings(syn.root)
    assert kind == "qfvs" and strings and all(s.startswith("There is") for s in strings)


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(TextSourceError, match="does not exist"):
        annotation_strings(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(AnnotationError, match="bad.json: line 1 column 2: invalid JSON"):
        annotation_strings(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(TextSourceError, match="not an Ego4D"):
        annotation_strings(tmp_path / "other.json")
