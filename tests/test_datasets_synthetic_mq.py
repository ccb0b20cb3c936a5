"""The planted MQ benchmark: what it writes into the store and into the Ego4D-format annotation file."""
import numpy as np
import pytest

from egoflow.datasets.ego4d import load_mq
from egoflow.datasets.synthetic.mq import make_synthetic_mq, write_mq_json
from egoflow.features_store import FeatureStore


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    store = FeatureStore(str(tmp_path_factory.mktemp("syn") / "s.zarr"))
    return store, make_synthetic_mq(store, num_videos=8, clips_per_video=3, empty_clip_fraction=0.2, seed=3)


def test_split_by_video_and_store_contents(data):
    store, d = data
    tv, vv = {c.video_uid for c in d.train}, {c.video_uid for c in d.val}
    assert tv and vv and not tv & vv
    assert store.videos(d.feature_set) == sorted(tv | vv)
    assert store.feature_set_info(d.feature_set)["dim"] == d.dim


def test_instances_short_long_in_bounds_and_disjoint(data):
    _, d = data
    clips = d.train + d.val
    lengths = []
    for c in clips:
        segs = sorted((i.start_sec, i.end_sec) for i in c.instances)
        for (s, e), nxt in zip(segs, segs[1:] + [(np.inf, np.inf)]):
            assert 0 <= s < e <= c.clip_duration and e <= nxt[0]
            lengths.append(e - s)
        assert all(i.label in d.labels for i in c.instances)
    lengths = np.array(lengths)
    assert (lengths <= 5.0).any() and (lengths >= 12.0).any()  # both duration regimes are present
    assert any(not c.instances for c in clips)  # some clips have no instance
    assert len({i.label for c in clips for i in c.instances}) == len(d.labels)


def test_planted_steps_carry_their_class(data):
    """Mean feature inside instances of a class is closer to other instances of that class than to others."""
    store, d = data
    means, labs = [], []
    for c in d.train:
        vf = store.read_video(d.feature_set, c.video_uid).slice(c.clip_video_start_sec, c.clip_video_end_sec)
        for i in c.instances:
            sel = (vf.times >= i.start_sec) & (vf.times <= i.end_sec)
            bg = vf.feats[~sel].mean(0)  # remove the clip's background so the class signal remains
            means.append(vf.feats[sel].mean(0) - bg)
            labs.append(i.label)
    m = np.stack(means)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    sim = m @ m.T
    labs = np.array(labs)
    same = labs[:, None] == labs[None]
    np.fill_diagonal(same, False)
    other = labs[:, None] != labs[None]
    assert sim[same].mean() > sim[other].mean() + 0.3


def test_json_round_trip(data, tmp_path):
    _, d = data
    path = write_mq_json(d.val, tmp_path / "moments_val.json")
    back = {c.clip_uid: c for c in load_mq(path)}
    assert set(back) == {c.clip_uid for c in d.val}
    for c in d.val:
        b = back[c.clip_uid]
        assert (b.video_uid, b.clip_video_start_sec, b.clip_video_end_sec) == (
            c.video_uid, c.clip_video_start_sec, c.clip_video_end_sec)
        assert [(i.label, i.start_sec, i.end_sec, i.primary) for i in b.instances] == \
            [(i.label, i.start_sec, i.end_sec, i.primary) for i in c.instances]


def test_deterministic(tmp_path):
    a = make_synthetic_mq(FeatureStore(str(tmp_path / "a.zarr")), num_videos=3, seed=7)
    b = make_synthetic_mq(FeatureStore(str(tmp_path / "b.zarr")), num_videos=3, seed=7)
    assert a.train == b.train and a.val == b.val
