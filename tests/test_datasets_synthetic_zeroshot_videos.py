"""EgoMCQ and EK-100 MIR files over the generated videos (datasets/synthetic/zeroshot_videos.py), read back by the
benchmarks' own loaders."""
from egoflow.datasets.egomcq import load_egomcq
from egoflow.datasets.ek100 import load_mir
from egoflow.datasets.synthetic.videos import CONCEPTS, make_dataset
from egoflow.datasets.synthetic.zeroshot_videos import write_video_egomcq, write_video_mir


def test_egomcq_and_mir_over_the_val_videos(tmp_path):
    ds = make_dataset(tmp_path / "d", num_videos=4, duration_s=20, size=(48, 32), seed=2)
    val = ds.splits["val"]
    items = load_egomcq(write_video_egomcq(ds, val, tmp_path / "egomcq.json", CONCEPTS, seed=0))
    segs = [s for u in val for s in ds.segments[u]]
    assert len(items) >= len(segs) and {i.type for i in items} == {1, 2}  # inter- and intra-video items
    for it in items:
        right = it.choices[it.answer]
        seg = next(s for s in ds.segments[right.video_uid] if abs(s.start - right.start_sec) < 1e-3)
        assert right.video_uid in val and it.query.endswith(f" the {seg.concept}")
        if it.type == 1:  # the distractors: other videos, other concepts
            assert len(it.choices) == 5 and sum(c.video_uid == right.video_uid for c in it.choices) == 1
        else:
            assert all(c.video_uid == right.video_uid for c in it.choices)
    mir = load_mir(write_video_mir(ds, val, tmp_path / "mir", CONCEPTS))
    assert len(mir.video_ids) == len(segs) and mir.relevancy.shape == (len(segs), len({s.concept for s in segs}))
    assert (mir.relevancy.sum(1) == 1).all()  # each segment relevant to its own concept's narration only
    assert all(t.startswith("#C C ") for t in mir.texts)
