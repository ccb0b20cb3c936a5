"""`encode-text`'s composition: the strings of annotation files encoded once into a text set (tiny random-init
encoder: no weights can be downloaded here)."""
import json

from egoflow.encode_text import encode_files
from egoflow.extract.clip import create_encoder
from egoflow.features_store import FeatureStore


def _nlq(path, queries):
    lq = [{"clip_start_sec": 1.0, "clip_end_sec": 2.0, "query": q} for q in queries]
    clip = {"clip_uid": "c", "video_start_sec": 0.0, "video_end_sec": 8.0,
            "annotations": [{"annotation_uid": "a", "language_queries": lq}]}
    path.write_text(json.dumps({"videos": [{"video_uid": "v", "clips": [clip]}]}))


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
