import numpy as np
import pytest

from egoflow.datasets.ego4d import load_narrations, load_nlq
from egoflow.datasets.synthetic.narrated import NarratedSpec, make_narrated, write_annotations, write_to_store
from egoflow.features_store import FeatureStore

SPEC = NarratedSpec(num_videos=3, num_concepts=10, dim=16, seed=3)


def test_deterministic_by_seed():
    a, b = make_narrated(SPEC), make_narrated(SPEC)
    assert a.narrations == b.narrations and a.queries == b.queries
    assert all(np.array_equal(a.videos[u][0], b.videos[u][0]) for u in a.videos)
    c = make_narrated(NarratedSpec(num_videos=3, num_concepts=10, dim=16, seed=4))
    assert c.narrations != a.narrations


def test_spec_needs_enough_concepts_for_distinct_segments():
    with pytest.raises(ValueError, match="num_concepts = 4"):
        make_narrated(NarratedSpec(num_concepts=4, segments=(3, 5)))


def test_planted_segments_narrations_and_queries_agree():
    d = make_narrated(SPEC)
    for uid, (feats, times, duration) in d.videos.items():
        segs = [s for s in d.segments if s.video_uid == uid]
        assert len({s.concept for s in segs}) == len(segs)  # a query has one answer per clip
        assert all(0 < s.start_sec < s.end_sec <= duration for s in segs)
        assert all(a.end_sec <= b.start_sec for a, b in zip(segs, segs[1:]))  # ordered, disjoint
        narrs = [n for n in d.narrations if n.video_uid == uid]
        assert len(narrs) == len(segs)
        for n, s in zip(narrs, segs):
            assert s.start_sec < n.time_sec < s.end_sec  # each narration inside its own segment
            assert f"object{s.concept:03d}" in n.text
        qs = [q for q in d.queries if q.video_uid == uid]
        assert [(q.start_sec, q.end_sec) for q in qs] == [(round(s.start_sec, 3), round(s.end_sec, 3)) for s in segs]
        assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5) and feats.shape == (len(times), 16)


def test_frames_are_closer_to_their_concept_text_than_to_others():
    d = make_narrated(SPEC)
    by_concept = {}
    for n in d.narrations:
        by_concept.setdefault(int(n.text.split("object")[1][:3]), d.texts[n.text])
    for s in d.segments:
        feats, times, _ = d.videos[s.video_uid]
        mean = feats[(times >= s.start_sec) & (times < s.end_sec)].mean(0)
        sims = {k: float(mean @ v) for k, v in by_concept.items()}
        assert max(sims, key=sims.get) == s.concept  # the signal is there, but through a modality gap
        assert sims[s.concept] < 0.95


def test_store_and_annotation_files_round_trip(tmp_path):
    d = make_narrated(SPEC)
    store = FeatureStore(str(tmp_path / "s.zarr"))
    fs, ts = write_to_store(d, store)
    assert store.videos(fs) == sorted(d.videos)
    vf = store.read_video(fs, "narrated001")
    assert np.allclose(vf.feats, d.videos["narrated001"][0]) and vf.attrs["duration_s"] == d.videos["narrated001"][2]
    q = d.queries[0].query
    assert np.allclose(store.load_texts(ts, [q]).pooled[0], d.texts[q])
    narr, nlq = write_annotations(d, tmp_path)
    assert load_narrations(narr) == sorted(d.narrations, key=lambda r: (r.video_uid, r.pass_name, r.time_sec))
    assert load_nlq(nlq) == d.queries


def test_charades_files_of_the_planted_videos(tmp_path):
    from egoflow.datasets.charades_ego import load_charades_classes, load_charades_ego
    from egoflow.datasets.synthetic.charades import write_narrated_charades

    d = make_narrated(SPEC)
    before = dict(d.texts)
    uids = sorted(d.videos)
    files = write_narrated_charades(d, {"train": uids[:2], "test": uids[2:]}, tmp_path)
    names = load_charades_classes(files["classes"])
    assert len(names) == SPEC.num_concepts and set(d.texts) == set(before) | set(names)
    # a class name is another wording of its concept: close to the concept's anchor, not equal to it
    cos = np.array([d.texts[n] @ d.anchors[k] for k, n in enumerate(names)])
    assert (cos > 0.5).all() and (cos < 0.95).all()
    again = make_narrated(SPEC)
    write_narrated_charades(again, {"train": uids[:2]}, tmp_path / "again")
    assert all(np.array_equal(again.texts[n], d.texts[n]) for n in names)  # deterministic in the seed
    rows = load_charades_ego(files["test"])
    assert [r.video_id for r in rows] == uids[2:]
    assert [(a.class_idx, a.start_sec) for a in rows[0].actions] == [
        (s.concept, round(s.start_sec, 2)) for s in d.segments if s.video_uid == uids[2]]
