"""Synthetic videos and the Ego4D-format annotations around them."""
import fractions
import json
import re

import numpy as np
import pytest

from egoflow.datasets.synthetic.faults import BAD, GOOD, make_fault_files
from egoflow.datasets.synthetic.videos import CONCEPTS, Segment, make_dataset, make_video
from egoflow.extract.video import iter_frames, probe

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def frames_at(path, fps=2.0):
    return [np.concatenate(x) for x in zip(*iter_frames(path, fps, backend="pyav"))]


def test_make_video_segments_look_different(tmp_path):
    segs = [(2 * i, 2 * i + 2, c.name) for i, c in enumerate(CONCEPTS)]
    v = make_video(tmp_path / "a.mp4", segs, size=(96, 64), gop_s=1.0)
    info = probe(v.path)
    assert (info.width, info.height, info.rotation) == (96, 64, 0)
    assert len(v.frame_times) == info.num_frames == 30 * 2 * len(CONCEPTS)
    assert v.duration_s == pytest.approx(2 * len(CONCEPTS))
    frames, times = frames_at(v.path, fps=1.0)  # two frames per segment, at 0.5 s and 1.5 s into it
    means = frames.reshape(len(frames), -1, 3).mean(1)
    within = np.abs(means[0::2] - means[1::2]).max(1)  # same concept: similar colours
    across = [np.abs(means[2 * i] - means[2 * j]).max() for i in range(len(CONCEPTS)) for j in range(i)]
    assert within.max() < 25 and min(across) > 30
    assert not np.array_equal(frames[0], frames[1])  # things move inside a segment
    assert frames[0].std() > 8  # textured, not a flat colour


def test_make_video_deterministic_and_seeded(tmp_path):
    a = frames_at(make_video(tmp_path / "a.mp4", [(0, 2, "red kettle")], size=(64, 48), seed=3).path)[0]
    b = frames_at(make_video(tmp_path / "b.mp4", [(0, 2, "red kettle")], size=(64, 48), seed=3).path)[0]
    c = frames_at(make_video(tmp_path / "c.mp4", [(0, 2, "red kettle")], size=(64, 48), seed=4).path)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_make_video_ntsc_vfr_rotation(tmp_path):
    n = make_video(tmp_path / "n.mp4", [(0, 2, "blue mug")], fps=fractions.Fraction(30000, 1001), size=(64, 48))
    assert probe(n.path).avg_fps == pytest.approx(30000 / 1001)
    np.testing.assert_allclose(np.diff(n.frame_times), 1001 / 30000)
    v = make_video(tmp_path / "v.mp4", [(0, 2, "blue mug")], size=(64, 48), vfr=True)
    gaps = np.diff(v.frame_times)
    assert gaps.min() < 0.02 < 0.04 < gaps.max()  # really variable
    r = make_video(tmp_path / "r.mp4", [(0, 2, "blue mug")], size=(48, 64), rotation=270)
    info = probe(r.path)
    assert (info.width, info.height, info.rotation) == (48, 64, 270)
    with pytest.raises(ValueError):
        make_video(tmp_path / "x.mp4", [(0, 1, "blue mug")], size=(63, 48))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ds"), num_videos=3, duration_s=20, size=(64, 48), seed=5)


def test_dataset_files_and_splits(dataset):
    ds = dataset
    assert set(ds.annotations) == {"nlq_train", "nlq_val", "moments_train", "moments_val", "narration",
                                   "charades_train", "charades_val", "charades_classes"}
    assert len(ds.splits["train"]) == 2 and len(ds.splits["val"]) == 1
    assert not set(ds.splits["train"]) & set(ds.splits["val"])
    for uid, path in ds.videos.items():
        assert UUID.match(uid) and path.name == f"{uid}.mp4" and path.exists()
        assert probe(path).duration_s == pytest.approx(20, abs=0.05)
        assert ds.segments[uid] and all(0 <= s.start < s.end <= 20 for s in ds.segments[uid])


def test_dataset_charades_files_read_back(dataset):
    from egoflow.datasets.charades_ego import load_charades_classes, load_charades_ego
    from egoflow.datasets.synthetic.videos import CONCEPTS

    names = load_charades_classes(dataset.annotations["charades_classes"])
    assert len(names) == len(CONCEPTS) and all(c.name in n for c, n in zip(CONCEPTS, names))
    for split in ("train", "val"):
        rows = load_charades_ego(dataset.annotations[f"charades_{split}"])
        assert [r.video_id for r in rows] == dataset.splits[split]
        for r in rows:  # one action per concept segment, the concept's class, the segment's times
            want = [(CONCEPTS.index(next(c for c in CONCEPTS if c.name == s.concept)), round(s.start, 2),
                     round(s.end, 2)) for s in dataset.segments[r.video_id]]
            assert [(a.class_idx, a.start_sec, a.end_sec) for a in r.actions] == want
            assert r.length_sec == pytest.approx(20)


def test_dataset_nlq_format(dataset):
    for split in ("train", "val"):
        d = json.loads(dataset.annotations[f"nlq_{split}"].read_text())
        assert {"version", "description", "videos"} <= set(d)
        assert sorted(v["video_uid"] for v in d["videos"]) == sorted(dataset.splits[split])
        for v in d["videos"]:
            assert v["split"] == split
            for clip in v["clips"]:
                assert UUID.match(clip["clip_uid"])
                dur = clip["video_end_sec"] - clip["video_start_sec"]
                for ann in clip["annotations"]:
                    assert UUID.match(ann["annotation_uid"])
                    for q in ann["language_queries"]:
                        assert {"clip_start_sec", "clip_end_sec", "video_start_sec", "video_end_sec",
                                "video_start_frame", "video_end_frame", "template", "query", "slot_x",
                                "verb_x"} <= set(q)
                        assert 0 <= q["clip_start_sec"] < q["clip_end_sec"] <= dur + 1e-6
                        assert q["video_start_sec"] == pytest.approx(clip["video_start_sec"] + q["clip_start_sec"])
                        assert q["slot_x"] in q["query"]
                        assert q["video_start_frame"] == round(q["video_start_sec"] * 30)
                        seg = Segment(q["video_start_sec"], q["video_end_sec"], q["slot_x"])
                        assert seg in dataset.segments[v["video_uid"]]  # the answer is the concept's segment


def test_dataset_mq_and_narrations(dataset):
    activity = {c.activity: c.name for c in CONCEPTS}
    for split in ("train", "val"):
        d = json.loads(dataset.annotations[f"moments_{split}"].read_text())
        for v in d["videos"]:
            for clip in v["clips"]:
                assert {"clip_uid", "video_start_sec", "video_end_sec", "video_start_frame", "annotations"} <= set(clip)
                for ann in clip["annotations"]:
                    assert UUID.match(ann["annotator_uid"])
                    for lab in ann["labels"]:
                        assert lab["primary"] is True and lab["label"] in activity
                        assert lab["video_start_time"] == pytest.approx(clip["video_start_sec"] + lab["start_time"])
                        seg = Segment(lab["video_start_time"], lab["video_end_time"], activity[lab["label"]])
                        assert seg in dataset.segments[v["video_uid"]]
    n = json.loads(dataset.annotations["narration"].read_text())
    assert set(n) == set(dataset.videos)
    for uid, entry in n.items():
        narr = entry["narration_pass_1"]["narrations"]
        assert narr and entry["narration_pass_1"]["summaries"]
        for x in narr:
            assert x["narration_text"].startswith("#C C ") and x["timestamp_frame"] == round(x["timestamp_sec"] * 30)
            inside = [s for s in dataset.segments[uid] if s.start <= x["timestamp_sec"] < s.end]
            assert (inside[0].concept in x["narration_text"]) if inside else ("looks around" in x["narration_text"])


def test_dataset_reads_with_the_ego4d_loaders(dataset):
    from egoflow.datasets import ego4d

    queries = ego4d.load_nlq(dataset.annotations["nlq_train"])
    assert len(queries) == sum(len(dataset.segments[u]) for u in dataset.splits["train"])
    clips = ego4d.load_mq(dataset.annotations["moments_val"])
    assert sum(len(c.instances) for c in clips) == sum(len(dataset.segments[u]) for u in dataset.splits["val"])
    assert len(ego4d.load_narrations(dataset.annotations["narration"])) > 0


def test_dataset_deterministic(dataset, tmp_path):
    again = make_dataset(tmp_path, num_videos=3, duration_s=20, size=(64, 48), seed=5)
    assert list(again.videos) == list(dataset.videos)
    for key, path in dataset.annotations.items():
        assert again.annotations[key].read_text() == path.read_text()
    other = make_dataset(tmp_path / "o", num_videos=1, duration_s=20, size=(64, 48), seed=6)
    assert not set(other.videos) & set(dataset.videos)


def test_fault_files_cover_the_list(tmp_path):
    files = make_fault_files(tmp_path)
    assert set(BAD) | set(GOOD) <= set(files)
    assert not files["missing"].exists() and files["zero_byte"].stat().st_size == 0
    assert (files["unreadable"].stat().st_mode & 0o777) == 0
    assert files["truncated"].stat().st_size > 0 and files["not_video"].read_text().startswith("this is")


def test_make_benchmark_video_small(tmp_path):
    from egoflow.datasets.synthetic.videos import make_benchmark_video

    v = make_benchmark_video(tmp_path / "b.mp4", minutes=0.8, size=(64, 48), gop_s=2.0)
    assert v.duration_s == pytest.approx(48) and [s.concept for s in v.segments[:2]] == [c.name for c in CONCEPTS[:2]]
    assert v.segments[-1].end == pytest.approx(48) and probe(v.path).num_frames == 48 * 30
