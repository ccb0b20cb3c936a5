"""Planted NLQ benchmark: windows where the queries say, solvable by an oracle, hard for random windows."""
import json

import numpy as np
import pytest

from egoflow.datasets.ego4d import load_nlq
from egoflow.datasets.synthetic.nlq import make_synthetic_nlq, write_nlq_json
from egoflow.evaluate.nlq import evaluate_nlq
from egoflow.features_store import FeatureStore


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    store = FeatureStore(str(tmp_path_factory.mktemp("syn") / "s.zarr"))
    return store, make_synthetic_nlq(store, num_videos=8, seed=3)


def random_windows(queries, rng, k=5):
    """Chance baseline: k random windows per query with lengths like the answers'."""
    lengths = np.array([q.end_sec - q.start_sec for q in queries])
    out = []
    for q in queries:
        ln = rng.choice(lengths, size=k)
        st = rng.uniform(0, q.clip_duration - ln)
        out.append({"clip_uid": q.clip_uid, "annotation_uid": q.annotation_uid, "query_idx": q.query_idx,
                    "predicted_times": np.stack([st, st + ln], 1).tolist()})
    return out


def test_layout_and_splits(synth):
    store, data = synth
    assert len(data.train) == 6 * 2 * 4 and len(data.val) == 2 * 2 * 4
    assert not {q.video_uid for q in data.train} & {q.video_uid for q in data.val}
    assert store.feature_set_info(data.feature_set)["dim"] == data.video_dim
    by_clip = {}
    for q in data.train + data.val:
        assert 0 <= q.start_sec < q.end_sec <= q.clip_duration and 3.0 <= q.end_sec - q.start_sec <= 7.0 + 1e-3
        by_clip.setdefault(q.clip_uid, []).append((q.start_sec, q.end_sec))
    for wins in by_clip.values():  # answer windows of one clip never overlap
        wins.sort()
        assert all(a[1] <= b[0] for a, b in zip(wins, wins[1:]))
    tf = store.load_texts(data.text_set, [q.query for q in data.val])
    assert tf.tokens.shape[1:] == (6, data.text_dim) and (tf.lengths == 6).all()


def test_deterministic(tmp_path):
    a = make_synthetic_nlq(FeatureStore(str(tmp_path / "a.zarr")), num_videos=3, seed=1)
    b = make_synthetic_nlq(FeatureStore(str(tmp_path / "b.zarr")), num_videos=3, seed=1)
    assert a.train == b.train and a.val == b.val
    fa = FeatureStore(str(tmp_path / "a.zarr")).read_video(a.feature_set, "synvid000").feats
    fb = FeatureStore(str(tmp_path / "b.zarr")).read_video(b.feature_set, "synvid000").feats
    np.testing.assert_array_equal(fa, fb)


def test_oracle_solves_it_and_chance_is_low(synth):
    """An oracle that knows the planted visual prototypes finds the answers; random windows rarely do."""
    store, data = synth
    queries = data.train + data.val
    videos = store.load_feature_set(data.feature_set)
    # recover each concept's visual prototype from the training answers (mean of in-window features)
    protos = {}
    for q in data.train:
        v = videos[q.video_uid]
        sel = (v.times >= q.clip_video_start_sec + q.start_sec) & (v.times <= q.clip_video_start_sec + q.end_sec)
        protos.setdefault(q.query, []).append(v.feats[sel].mean(0))
    preds = []
    for q in queries:
        if q.query not in protos:
            continue
        v = videos[q.video_uid].slice(q.clip_video_start_sec, q.clip_video_end_sec)
        score = v.feats @ np.mean(protos[q.query], 0)
        on = score > 0.5 * score.max()
        i = int(np.argmax(score))  # grow the peak into the run of high-score steps around it
        lo, hi = i, i
        while lo > 0 and on[lo - 1]:
            lo -= 1
        while hi < len(on) - 1 and on[hi + 1]:
            hi += 1
        preds.append({"clip_uid": q.clip_uid, "annotation_uid": q.annotation_uid, "query_idx": q.query_idx,
                      "predicted_times": [[float(v.times[lo] - 0.5), float(v.times[hi] + 0.5)]]})
    answered = [q for q in queries if q.query in protos]
    oracle = evaluate_nlq(answered, preds)["R@1 IoU=0.5"]
    rng = np.random.default_rng(0)
    chance = np.mean([evaluate_nlq(queries, random_windows(queries, rng))["R@1 IoU=0.3"] for _ in range(5)])
    assert oracle > 0.8, oracle
    assert chance < 0.15, chance


def test_write_nlq_json_round_trips_through_the_reader(synth, tmp_path):
    _, data = synth
    path = write_nlq_json(data.val, tmp_path / "nlq_val.json")
    assert json.loads(path.read_text())["videos"][0]["clips"][0]["annotations"][0]["language_queries"]
    back = load_nlq(path)
    key = lambda q: (q.clip_uid, q.annotation_uid, q.query_idx)  # noqa: E731
    assert sorted(back, key=key) == sorted(data.val, key=key)


def test_impossible_layout_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="num_concepts"):
        make_synthetic_nlq(FeatureStore(str(tmp_path / "x.zarr")), num_concepts=3)
    with pytest.raises(ValueError, match="do not fit"):
        make_synthetic_nlq(FeatureStore(str(tmp_path / "y.zarr")), clip_sec=20.0)
