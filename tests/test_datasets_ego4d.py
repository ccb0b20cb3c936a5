import json

import pytest

from egoflow.datasets.ego4d import load_mq, load_narrations, load_nlq, load_nlq_report, mq_label_vocabulary
from egoflow.datasets.errors import AnnotationError


def nlq_file(tmp_path, queries, name="nlq_val.json"):
    """One video, one clip [10, 40] s of video time, one annotation holding ``queries``."""
    data = {"version": "v1", "videos": [{"video_uid": "v1", "split": "val", "clips": [{
        "clip_uid": "c1", "video_start_sec": 10.0, "video_end_sec": 40.0, "clip_start_sec": 0.0,
        "clip_end_sec": 30.0, "annotations": [{"annotation_uid": "a1", "language_queries": queries}]}]}]}
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def q(s, e, text="where is the cup?", **extra):
    return {"clip_start_sec": s, "clip_end_sec": e, "video_start_sec": s + 10, "video_end_sec": e + 10,
            "query": text, "template": "Objects: Where is object X?", **extra}


def test_nlq_reads_real_format_and_counts_drops(tmp_path):
    p = nlq_file(tmp_path, [q(1.0, 3.5), {k: v for k, v in q(2, 4).items() if k != "query"}, q(5, 5),
                            q(8, 9, text="  ")])
    queries, stats = load_nlq_report(p)
    assert [x.query_idx for x in queries] == [0]  # the index counts dropped entries too
    first = queries[0]
    assert (first.video_uid, first.clip_uid, first.annotation_uid) == ("v1", "c1", "a1")
    assert (first.start_sec, first.end_sec, first.clip_duration) == (1.0, 3.5, 30.0)
    assert first.template.startswith("Objects")
    assert (stats.num_entries, stats.missing_query, stats.zero_length, stats.reversed_window) == (4, 2, 1, 0)
    assert len(stats.dropped) == 3 and "2 without query text" in stats.summary()


@pytest.mark.parametrize("window, message", [((7, 6), "ends before it starts"), ((-1, 2), "negative time"),
                                             ((2, 45), "past the end of its 30 s clip"), ((0, 1e308), "plausible")])
def test_nlq_impossible_windows_are_errors_not_drops(tmp_path, window, message):
    """A reversed, negative, absurd or past-the-clip answer is an error in every command (not a silent drop)."""
    p = nlq_file(tmp_path, [q(1, 2), q(*window)])
    with pytest.raises(AnnotationError, match=rf"nlq_val.json: videos\[0\].clips\[0\].annotations\[0\]"
                                              rf".language_queries\[1\].*{message}"):
        load_nlq_report(p)


def test_nlq_keep_flags(tmp_path):
    p = nlq_file(tmp_path, [q(1, 2), {"clip_start_sec": 2, "clip_end_sec": 4}, q(5, 5)])
    assert len(load_nlq(p)) == 1
    kept, _ = load_nlq_report(p, keep_missing_query=True, keep_zero_length=True)
    assert [x.query_idx for x in kept] == [0, 1, 2] and kept[1].query == ""


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d.pop("videos"), "videos"),
    (lambda d: d["videos"][0]["clips"][0].pop("clip_uid"), "videos[0].clips[0].clip_uid"),
    (lambda d: d["videos"][0]["clips"][0]["annotations"][0]["language_queries"][0].update(clip_end_sec="3"),
     "language_queries[0].clip_end_sec"),
    (lambda d: d["videos"][0]["clips"][0].update(video_end_sec=5.0), "videos[0].clips[0]"),
])
def test_nlq_malformed_names_file_and_key(tmp_path, mutate, where):
    p = nlq_file(tmp_path, [q(1, 2)])
    d = json.loads(p.read_text())
    mutate(d)
    p.write_text(json.dumps(d))
    with pytest.raises(AnnotationError) as e:
        load_nlq(p)
    assert str(p) in str(e.value) and where in str(e.value)


def test_bad_json_and_missing_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"videos": [\n  {"video_uid": }')
    with pytest.raises(AnnotationError, match=r"broken.json: line 2"):
        load_nlq(p)
    with pytest.raises(AnnotationError, match="file not found"):
        load_mq(tmp_path / "nope.json")


def mq_file(tmp_path, clips):
    p = tmp_path / "moments_val.json"
    p.write_text(json.dumps({"videos": [{"video_uid": "v1", "split": "val", "clips": clips}]}))
    return p


def lab(label, s, e, primary=True):
    return {"label": label, "start_time": s, "end_time": e, "video_start_time": s, "video_end_time": e,
            "primary": primary}


def test_mq_reads_clips_instances_and_vocabulary(tmp_path):
    p = mq_file(tmp_path, [
        {"clip_uid": "c1", "video_start_sec": 0, "video_end_sec": 480,
         "annotations": [{"annotator_uid": "x", "labels": [lab("cut", 1, 5), lab("wash", 3, 9, False)]}]},
        {"clip_uid": "c2", "video_start_sec": 480, "video_end_sec": 960, "annotations": []},
        {"clip_uid": "c1", "video_start_sec": 0, "video_end_sec": 480,
         "annotations": [{"labels": [lab("stir", 2, 4)]}]},
    ])
    clips = load_mq(p)
    assert [c.clip_uid for c in clips] == ["c1", "c2"]
    assert [(i.label, i.primary) for i in clips[0].instances] == [("cut", True), ("wash", False), ("stir", True)]
    assert clips[1].instances == [] and clips[1].clip_duration == 480
    assert mq_label_vocabulary(clips) == ["cut", "stir", "wash"]
    assert mq_label_vocabulary(clips, primary_only=True) == ["cut", "stir"]


def test_mq_malformed(tmp_path):
    p = mq_file(tmp_path, [{"clip_uid": "c1", "video_start_sec": 0, "video_end_sec": 480,
                            "annotations": [{"labels": [lab("cut", 9, 5)]}]}])
    with pytest.raises(AnnotationError, match=r"labels\[0\]: window ends before it starts"):
        load_mq(p)
    p = mq_file(tmp_path, [{"clip_uid": "c1", "video_start_sec": 0, "video_end_sec": 480,
                            "annotations": [{"labels": [{"label": "cut", "start_time": 1}]}]}])
    with pytest.raises(AnnotationError, match=r"labels\[0\].end_time: missing key"):
        load_mq(p)


def test_narrations(tmp_path):
    p = tmp_path / "narration.json"
    p.write_text(json.dumps({
        "v1": {"narration_pass_1": {"narrations": [
            {"timestamp_sec": 5.0, "timestamp_frame": 150, "narration_text": "#C C cuts onion"},
            {"timestamp_sec": 1.5, "timestamp_frame": 45, "narration_text": "#C C opens door"}]},
            "narration_pass_2": {"narrations": [{"timestamp_sec": 2.0, "narration_text": "#C C walks"}]}},
        "v2": {"status": "redacted"}}))
    ns = load_narrations(p)
    assert [(n.video_uid, n.pass_name, n.time_sec) for n in ns] == [
        ("v1", "narration_pass_1", 1.5), ("v1", "narration_pass_1", 5.0), ("v1", "narration_pass_2", 2.0)]
    assert ns[0].text == "#C C opens door"
    assert load_narrations(p, passes=("narration_pass_2",), video_uids=["v1"])[0].text == "#C C walks"
    p.write_text(json.dumps({"v1": {"narration_pass_1": {"narrations": [{"timestamp_sec": "x",
                                                                         "narration_text": "a"}]}}}))
    with pytest.raises(AnnotationError, match=r"v1.narration_pass_1.narrations\[0\].timestamp_sec"):
        load_narrations(p)
