"""MQ clips + feature store -> resampled tensors: exact time maps, stitching, and the bad-input policy."""
import numpy as np
import pytest
import torch

from egoflow.datasets.records import MQClip, MQInstance
from egoflow.features_store import FeatureStore
from egoflow.heads.vsgn.data import (
    MQDataError,
    MQDataset,
    check_feature_dim,
    collate,
    label_vocabulary,
    load_clip_features,
    positions_to_seconds,
    resample,
    seconds_to_positions,
)


@pytest.fixture
def store(tmp_path):
    """Video 'v0': 100 s at 2 fps, 3-dim features whose first channel equals the timestamp."""
    st = FeatureStore(str(tmp_path / "s.zarr"))
    st.create_feature_set("fs", {"name": "test"}, dim=3, dtype="float32")
    times = (np.arange(200) + 0.5) / 2
    feats = np.stack([times, np.ones_like(times), -times], axis=1)
    st.write_video("fs", "v0", feats, times)
    return st


def clip(uid="c0", start=10.0, end=50.0, inst=(("a", 2.0, 6.0),), video="v0"):
    return MQClip(video, uid, start, end, [MQInstance(lab, s, e) for lab, s, e in inst])


def test_positions_seconds_are_exact_inverses():
    sec = np.array([0.0, 1.25, 39.999, 40.0])
    pos = seconds_to_positions(sec, 40.0, 64)
    np.testing.assert_allclose(pos, sec * 1.6)
    np.testing.assert_allclose(positions_to_seconds(pos, 40.0, 64), sec, atol=1e-12)


def test_resample_interpolates_at_step_centres():
    times = np.array([0.5, 1.5, 2.5, 3.5])  # 1 fps over a 4 s clip
    feats = np.stack([times * 10, np.ones(4)], axis=1)
    out, valid = resample(feats, times, 4.0, 8)  # step i centred at (i + 0.5) * 0.5 s
    ctr = (np.arange(8) + 0.5) * 0.5
    # linear inside [0.5, 3.5]; nearest stored value outside
    np.testing.assert_allclose(out[:, 0], np.clip(ctr, 0.5, 3.5) * 10, rtol=1e-6)
    assert valid.all() and out.dtype == np.float32


def test_resample_marks_steps_far_from_any_feature_invalid():
    times = np.array([0.5, 1.5])  # features stop at 2 s, the clip lasts 8 s (video ended early)
    _, valid = resample(np.ones((2, 1)), times, 8.0, 8)
    assert valid[:3].all() and not valid[3:].any()


def test_dataset_targets_in_positions(store):
    c = clip(inst=(("b", 2.0, 6.0), ("a", 30.0, 40.0)))
    labels = label_vocabulary([c])
    assert labels == ["a", "b"]
    ds = MQDataset([c], load_clip_features(store, "fs", [c]), labels, 64)
    s = ds[0]
    assert s.feats.shape == (64, 3) and s.mask.all() and s.duration == 40.0
    np.testing.assert_allclose(s.gt_segments, [[3.2, 9.6], [48.0, 64.0]], rtol=1e-6)  # x 64/40
    assert s.gt_labels.tolist() == [2, 1]
    # first channel is the video time of the stored step: clip time 0 = video time 10
    np.testing.assert_allclose(s.feats[:, 0], 10.0 + (np.arange(64) + 0.5) * 40 / 64, atol=1e-4)
    np.testing.assert_allclose(s.parts[0], [0, 64, 40.0])


def test_clip_without_instances_is_kept(store):
    c = clip(inst=())
    ds = MQDataset([c], load_clip_features(store, "fs", [c]), ["a"], 32)
    b = collate([ds[0]])
    assert b["gt_labels"].shape == (1, 1) and b["gt_labels"].sum() == 0


def test_missing_video_and_empty_clip_errors_name_the_clip(store):
    gone, empty = clip("gone", video="nope"), clip("empty", start=150.0, end=160.0)  # video ends at 100 s
    with pytest.raises(MQDataError, match="clip gone: video nope"):
        load_clip_features(store, "fs", [gone])
    with pytest.raises(MQDataError, match="clip empty: no feature steps"):
        load_clip_features(store, "fs", [empty])
    ok = clip("ok")
    got = load_clip_features(store, "fs", [gone, empty, ok], on_missing="skip")
    assert list(got) == ["ok"]


def test_unknown_label_error_or_ignored(store):
    c = clip(inst=(("a", 1, 2), ("zzz", 3, 4)))
    sl = load_clip_features(store, "fs", [c])
    with pytest.raises(MQDataError, match=r"clip c0: label\(s\) \['zzz'\]"):
        MQDataset([c], sl, ["a"], 32)
    s = MQDataset([c], sl, ["a"], 32, unknown_labels="ignore")[0]
    assert s.gt_labels.tolist() == [1]


def test_dimension_mismatch(store):
    assert check_feature_dim(store, "fs", 3) == 3
    with pytest.raises(MQDataError, match="has dim 3.*video_dim=512"):
        check_feature_dim(store, "fs", 512)


def test_single_feature_step_clip_is_resampled(store):
    c = clip("tiny", start=10.1, end=10.6)  # holds exactly one stored step (10.25 s)
    s = MQDataset([c], load_clip_features(store, "fs", [c]), ["a"], 16, unknown_labels="ignore")[0]
    assert s.feats.shape == (16, 3) and np.allclose(s.feats[:, 0], 10.25)


def test_self_stitching_layout(store):
    c = clip(start=10.0, end=20.0, inst=(("a", 2.0, 4.0),))  # 20 stored steps <= 0.4 * 64
    ds = MQDataset([c], load_clip_features(store, "fs", [c]), ["a"], 64, stitching=True, stitch_gap=4)
    s = ds[0]
    n, gap, m = 20, 4, 64 - 20 - 4
    assert s.part.tolist() == [0] * n + [-1] * gap + [1] * m
    assert not s.mask[n:n + gap].any() and s.mask[:n].all() and s.mask[n + gap:].all()
    np.testing.assert_allclose(s.parts, [[0, n, 10.0], [n + gap, m, 10.0]])
    # the instance appears at the original scale and magnified in the second part
    np.testing.assert_allclose(s.gt_segments, [[4.0, 8.0], [n + gap + 0.2 * m, n + gap + 0.4 * m]], rtol=1e-6)
    assert collate([s])["part"].shape == (1, 64)
    # a long clip is not stitched
    long = clip(start=0.0, end=90.0)
    s2 = MQDataset([long], load_clip_features(store, "fs", [long]), ["a"], 64, stitching=True)[0]
    assert (s2.part == 0).all() and s2.parts[1, 1] == 0


def test_collate_pads_ground_truth(store):
    cs = [clip("x", inst=(("a", 1, 2), ("a", 3, 4), ("a", 5, 6))), clip("y", inst=())]
    ds = MQDataset(cs, load_clip_features(store, "fs", cs), ["a"], 32)
    b = collate([ds[0], ds[1]])
    assert b["feats"].shape == (2, 32, 3) and b["mask"].dtype == torch.bool
    assert b["gt_segments"].shape == (2, 3, 2) and b["gt_labels"].tolist() == [[1, 1, 1], [0, 0, 0]]
    assert b["clip_uid"] == ["x", "y"] and "part" not in b
