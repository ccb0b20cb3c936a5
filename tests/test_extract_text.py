import json

import pytest

from egoflow.extract.clip import create_encoder
from egoflow.extract.text import TextSourceError, encode_files, strings_from_file
from egoflow.features_store import FeatureStore


def _nlq(path, queries):
    lq = [{"clip_start_sec": 1.0, "clip_end_sec": 2.0, "query": q} for q in queries]
    path.write_text(json.dumps({"videos": [{"video_uid": "v", "clips": [{"clip_uid": "c", "video_start_sec": 0.0,
        "video_end_sec": 8.0, "annotations": [{"annotation_uid": "a", "language_queries": lq}]}]}]}))


def test_strings_of_each_kind(tmp_path):
    _nlq(tmp_path / "nlq.json", ["where is it?", "where is it?", "what did I cut?"])
    assert strings_from_file(tmp_path / "nlq.json") == ("nlq", ["where is it?", "what did I cut?"])
    (tmp_path / "mq.json").write_text(json.dumps({"videos": [{"video_uid": "v", "clips": [{"clip_uid": "c",
        "video_start_sec": 0.0, "video_end_sec": 8.0, "annotations": [{"labels": [{"label": "use_phone", "start_time": 0, "end_time": 1}]}]}]}]}))
    assert strings_from_file(tmp_path / "mq.json", prompt="a photo of {}") == ("mq", ["a photo of use_phone"])
    (tmp_path / "narration.json").write_text(json.dumps({"v": {"narration_pass_1": {"narrations": [
        {"timestamp_sec": 1.0, "narration_text": "#C C opens the door"}]}}}))
    assert strings_from_file(tmp_path / "narration.json") == ("narrations", ["#C C opens the door"])
    (tmp_path / "classes.txt").write_text("cup\n\nplate\n")
    assert strings_from_file(tmp_path / "classes.txt") == ("lines", ["cup", "plate"])
    (tmp_path / "Charades_v1_classes.txt").write_text("c000 Holding some clothes\nc001 Putting clothes somewhere\n")
    assert strings_from_file(tmp_path / "Charades_v1_classes.txt", prompt="a person {}") == (
        "classes", ["a person Holding some clothes", "a person Putting clothes somewhere"])
    (tmp_path / "mixed.txt").write_text("c000 Holding some clothes\ncup\n")  # not every line a class: plain lines
    assert strings_from_file(tmp_path / "mixed.txt")[0] == "lines"


def test_qfvs_folder_gives_the_summarizer_prompts(tmp_path):
    from egoflow.datasets.synthetic.qfvs import make_qfvs

    syn = make_qfvs(tmp_path / "qfvs", num_shots=(120, 120, 120, 120), queries_per_video=2)
    kind, strings = strings_from_file(syn.root)
    assert kind == "qfvs" and strings and all(s.startswith("There is") for s in strings)


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(TextSourceError, match="does not exist"):
        strings_from_file(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TextSourceError, match="bad.json: not valid JSON"):
        strings_from_file(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(TextSourceError, match="not an Ego4D"):
        strings_from_file(tmp_path / "other.json")


def test_encode_files_is_idempotent(tmp_path):
    _nlq(tmp_path / "nlq.json", ["where is the mug?", "what did I cut?"])
    enc = create_encoder("egoflow-tiny-ViT", "none", precision="fp32", device="cpu")
    url = str(tmp_path / "s.zarr")
    name, counts = encode_files(url, [tmp_path / "nlq.json"], enc)
    assert counts == {str(tmp_path / "nlq.json"): 2}
    s = FeatureStore(url)
    parts = list(s.root["texts"][name].group_keys())
    encode_files(url, [tmp_path / "nlq.json"], enc)  # nothing new: no new part written
    assert list(FeatureStore(url).root["texts"][name].group_keys()) == parts
    tf = s.load_texts(name, ["what did I cut?"])
    assert tf.pooled.shape == (1, 64) and tf.tokens.shape[2] == 64
