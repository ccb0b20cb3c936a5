"""NLQ annotations joined with the store: slicing, resampling with exact times, labels, padding, bad input."""
import numpy as np
import pytest
import torch

from egoflow.datasets.records import NLQQuery
from egoflow.features_store import FeatureStore
from egoflow.heads.vslnet.data import (
    AnnotationOutOfRange,
    EmptySplit,
    FeatureDimMismatch,
    MissingFeatures,
    collate_nlq,
    highlight_labels,
    load_nlq_split,
    resample_steps,
    step_boundaries,
    time_to_index,
)


def test_step_boundaries_partition_the_clip():
    starts, ends = step_boundaries(np.array([0.5, 1.5, 2.5, 3.5]), duration=4.2)
    np.testing.assert_allclose(starts, [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(ends, [1.0, 2.0, 3.0, 4.2])
    s1, e1 = step_boundaries(np.array([0.3]), duration=2.0)  # one step covers the whole clip
    np.testing.assert_allclose([s1[0], e1[0]], [0.0, 2.0])


def test_resample_averages_bins_and_keeps_exact_extents():
    t = 10
    feats = np.arange(t, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    starts, ends = np.arange(t) * 1.0, np.arange(1, t + 1) * 1.0
    f2, s2, e2 = resample_steps(feats, starts, ends, max_len=4)
    # edges = round(linspace(0, 10, 5)) = [0, 2, 5, 8, 10] (round half to even: 2.5 -> 2, 7.5 -> 8)
    np.testing.assert_allclose(f2[:, 0], [0.5, 3.0, 6.0, 8.5])
    np.testing.assert_allclose(s2, [0, 2, 5, 8])
    np.testing.assert_allclose(e2, [2, 5, 8, 10])
    same = resample_steps(feats, starts, ends, max_len=10)
    assert same[0] is feats  # short enough: untouched


def test_resample_random_lengths_cover_the_clip():
    rng = np.random.default_rng(0)
    for t in (129, 300, 1001):
        starts, ends = step_boundaries(np.sort(rng.uniform(0, 100, t)), 100.0)
        f, s, e = resample_steps(rng.standard_normal((t, 3)).astype(np.float32), starts, ends, 128)
        assert f.shape == (128, 3) and s[0] == 0.0 and e[-1] == 100.0
        np.testing.assert_array_equal(s[1:], e[:-1])  # still a partition: no gaps, no overlaps


def test_time_to_index_and_highlight_labels():
    starts, ends = np.array([0.0, 1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert time_to_index(1.2, 3.7, starts, ends) == (1, 3)
    assert time_to_index(1.0, 3.0, starts, ends) == (1, 2)  # an end on a boundary belongs to the earlier step
    assert time_to_index(-0.5, 9.0, starts, ends) == (0, 4)  # clamped into the clip
    assert time_to_index(2.5, 2.5, starts, ends) == (2, 2)
    # ext = round(0.5 * 4) = 2 steps each side of steps 3..6
    np.testing.assert_array_equal(highlight_labels(3, 6, 12, 0.5), [0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(highlight_labels(0, 1, 5, 0.1), [1, 1, 0, 0, 0])  # round(0.2) = 0


def _q(video="v0", clip="c0", s=2.0, e=4.0, text="where is the cup?", c0=10.0, c1=30.0, idx=0):
    return NLQQuery(video_uid=video, clip_uid=clip, annotation_uid=f"{clip}_a", query_idx=idx, query=text,
                    clip_video_start_sec=c0, clip_video_end_sec=c1, start_sec=s, end_sec=e)


@pytest.fixture()
def store(tmp_path):
    st = FeatureStore(str(tmp_path / "s.zarr"))
    st.create_feature_set("fs", {"name": "test"}, dim=4, dtype="float32")
    for v, dur in (("v0", 40.0), ("v1", 400.0)):
        times = np.arange(0.5, dur, 1.0)
        feats = np.stack([times, np.zeros_like(times), np.ones_like(times), -times], 1).astype(np.float32)
        st.write_video("fs", v, feats, times, attrs={"duration_s": dur})
    strings = ["where is the cup?", "what did I cut?"]
    tokens = np.zeros((2, 5, 3), np.float32)
    tokens[0, :3], tokens[1, :5] = 1.0, 2.0
    st.write_texts("tx", strings, pooled=np.ones((2, 6), np.float32), tokens=tokens, lengths=np.array([3, 5]))
    return st


def test_load_split_slices_clip_and_maps_labels(store):
    qs = [_q(), _q(text="what did I cut?", s=0.0, e=0.0, idx=1), _q(video="v1", clip="c1", c0=0.0, c1=300.0,
                                                                     s=150.0, e=160.0)]
    ds = load_nlq_split(store, "fs", qs, text_set="tx", max_pos_len=128, video_dim=4, text_dim=3,
                        drop_zero_length=True)
    assert ds.dropped_zero_length == 1 and len(ds) == 2
    a = ds[0]
    # clip [10, 30] of v0: steps at video times 10.5 .. 29.5 -> 20 steps; clip times 0.5 .. 19.5
    assert a["feats"].shape == (20, 4)
    np.testing.assert_allclose(a["feats"][:, 0], np.arange(10.5, 30.0, 1.0))
    assert a["step_starts"][0] == 0.0 and a["step_ends"][-1] == 20.0
    assert (a["start_idx"], a["end_idx"]) == (2, 3)  # [2, 4] s -> steps [2, 3) and [3, 4)
    assert a["text"].shape == (3, 3) and np.all(a["text"] == 1.0)  # valid tokens only
    b = ds[1]  # 300 s clip at 1 step/s resampled to 128 steps, times exact
    assert b["feats"].shape == (128, 4)
    s, e = b["start_idx"], b["end_idx"]
    assert b["step_starts"][s] <= 150.0 < b["step_ends"][s] and b["step_starts"][e] < 160.0 <= b["step_ends"][e]
    assert b["highlight"][s:e + 1].all() and b["highlight"].sum() < 20


def test_zero_length_kept_when_not_dropping(store):
    ds = load_nlq_split(store, "fs", [_q(s=3.0, e=3.0)], text_set="tx", drop_zero_length=False)
    assert len(ds) == 1 and ds.dropped_zero_length == 0 and ds[0]["start_idx"] == ds[0]["end_idx"] == 3


def test_collate_pads_and_masks(store):
    qs = [_q(), _q(clip="c2", c0=0.0, c1=5.0, s=1.0, e=2.0, text="what did I cut?")]
    ds = load_nlq_split(store, "fs", qs, text_set="tx")
    b = collate_nlq([ds[0], ds[1]])
    assert b["feats"].shape == (2, 20, 4) and b["text"].shape == (2, 5, 3)
    assert b["mask"].sum(1).tolist() == [20, 5] and b["text_mask"].sum(1).tolist() == [3, 5]
    assert torch.all(b["feats"][1, 5:] == 0) and b["highlight"][1, 5:].sum() == 0
    assert b["step_ends"][1, 4].item() == 5.0 and b["index"].tolist() == [0, 1]


def test_bad_input_is_reported_before_training(store):
    with pytest.raises(MissingFeatures, match="feature set 'nope'"):
        load_nlq_split(store, "nope", [_q()], text_set="tx")
    with pytest.raises(FeatureDimMismatch, match="dim 4 .*video_dim=8"):
        load_nlq_split(store, "fs", [_q()], text_set="tx", video_dim=8)
    with pytest.raises(FeatureDimMismatch, match="text_dim=7"):
        load_nlq_split(store, "fs", [_q()], text_set="tx", text_dim=7)
    with pytest.raises(MissingFeatures, match="'ghost'"):
        load_nlq_split(store, "fs", [_q(), _q(video="ghost")], text_set="tx")
    with pytest.raises(MissingFeatures, match="never seen"):
        load_nlq_split(store, "fs", [_q(text="never seen")], text_set="tx")
    with pytest.raises(MissingFeatures, match="text set 'notexts'"):
        load_nlq_split(store, "fs", [_q()], text_set="notexts")
    with pytest.raises(AnnotationOutOfRange, match="c0_a#0 clip c0 .*video v0"):
        load_nlq_split(store, "fs", [_q(c0=30.0, c1=50.0)], text_set="tx")  # v0 is 40 s long
    with pytest.raises(AnnotationOutOfRange, match="answer \\[15.0, 25.0\\]"):
        load_nlq_split(store, "fs", [_q(s=15.0, e=25.0)], text_set="tx")  # clip is 20 s long
    with pytest.raises(AnnotationOutOfRange, match="answer"):
        load_nlq_split(store, "fs", [_q(s=5.0, e=4.0)], text_set="tx")
    with pytest.raises(EmptySplit, match="val split has no queries"):
        load_nlq_split(store, "fs", [], text_set="tx", split="val")
    with pytest.raises(EmptySplit, match="after dropping 1 zero-length"):
        load_nlq_split(store, "fs", [_q(s=1.0, e=1.0)], text_set="tx", drop_zero_length=True)


def test_skip_missing_drops_and_counts(store):
    qs = [_q(), _q(video="ghost", clip="g"), _q(clip="c9", text="never seen", idx=1)]
    ds = load_nlq_split(store, "fs", qs, text_set="tx", skip_missing=True)
    assert [q.clip_uid for q in ds.queries] == ["c0"] and ds.skipped_missing == 2
    with pytest.raises(EmptySplit, match="skipping 1"):
        load_nlq_split(store, "fs", [_q(video="ghost")], text_set="tx", skip_missing=True)
