"""Synthetic QFVS: real on-disk layout (read by egoflow.datasets.qfvs), planted summaries, store contents."""
import numpy as np
import pytest

from egoflow.datasets.qfvs import VIDEOS, concept_prompt, load_qfvs, qfvs_prompts
from egoflow.datasets.synthetic.qfvs import make_qfvs
from egoflow.features_store import FeatureStore
from egoflow.segment.shots import shot_features


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    d = tmp_path_factory.mktemp("qfvs")
    return make_qfvs(d / "data", str(d / "store.zarr"), num_shots=(120, 140, 110, 130), queries_per_video=5,
                     dim=16, summary_fraction=0.05, seed=3)


def test_layout_is_read_by_the_qfvs_reader(syn):
    gt = load_qfvs(syn.root)
    assert sorted(gt) == list(VIDEOS)
    for vid, v in gt.items():
        assert v.num_shots == syn.num_shots[vid]
        assert len(v.queries) == 5 and len(v.concepts) == 16
        for q in v.queries:
            assert len(q.users) == 3
            assert 2 <= len(q.oracle) <= int(round(0.05 * v.num_shots))
            # every oracle shot shows at least one of the query's concepts
            assert all(set(q.concepts) & v.shot_concepts[i] for i in q.oracle)
            assert all(0 <= i < v.num_shots for u in q.users for i in u)


def test_store_holds_frame_features_and_every_prompt(syn):
    store = FeatureStore(syn.store, mode="r")
    gt = load_qfvs(syn.root)
    for vid in VIDEOS:
        vf = store.read_video(syn.feature_set, vid)
        assert vf.feats.shape == (2 * syn.num_shots[vid], 16)  # two steps per 5-second shot
        shots = shot_features(vf.feats, vf.times, syn.num_shots[vid], 5.0, vid)
        assert shots.shape == (syn.num_shots[vid], 16)
        np.testing.assert_allclose(shots[3], vf.feats[6:8].mean(0), rtol=1e-5)
    tf = store.load_texts(syn.text_set, qfvs_prompts(gt))  # raises if any prompt is missing
    assert tf.tokens is not None and (tf.lengths >= 4).all()


def test_concept_shots_align_with_concept_text(syn):
    # the planted signal: shots showing a concept are closer to its text than shots without it
    store = FeatureStore(syn.store, mode="r")
    v = load_qfvs(syn.root)["P01"]
    f = store.read_video(syn.feature_set, "P01")
    x = shot_features(f.feats, f.times, v.num_shots, 5.0, "P01")
    tags = v.tag_matrix()
    for j, c in enumerate(v.concepts):
        if 3 <= tags[:, j].sum() < v.num_shots - 3:
            t = store.load_texts(syn.text_set, [concept_prompt(c)]).tokens[0, 3]
            s = x @ t
            assert s[tags[:, j]].mean() > s[~tags[:, j]].mean() + 1.0


def test_deterministic_by_seed(tmp_path):
    a = make_qfvs(tmp_path / "a", num_shots=(60, 60, 60, 60), queries_per_video=3, seed=5)
    b = make_qfvs(tmp_path / "b", num_shots=(60, 60, 60, 60), queries_per_video=3, seed=5)
    ga, gb = load_qfvs(a.root), load_qfvs(b.root)
    assert [q.oracle for q in ga["P02"].queries] == [q.oracle for q in gb["P02"].queries]
    assert ga["P03"].shot_concepts == gb["P03"].shot_concepts
    with pytest.raises(ValueError, match="one length per video"):
        make_qfvs(tmp_path / "c", num_shots=(60, 60))
