"""Ego4D FHO OSCC/PNR annotation reader and challenge submission readers: fields, fps, and errors naming the clip."""
import json

import pytest

from egoflow.datasets.errors import AnnotationError, PredictionError
from egoflow.datasets.fho import load_fho_oscc_pnr, load_oscc_submission, load_pnr_submission


def clip(uid, pnr=None, sc=None, start=10.0, frames=(300, 540)):
    d = {"unique_id": uid, "video_uid": "vid", "parent_start_sec": start, "parent_end_sec": start + 8.0,
         "parent_start_frame": frames[0], "parent_end_frame": frames[1], "clip_uid": "c"}
    if sc is not None:
        d["state_change"] = sc
    if pnr is not None or sc is not None:
        d["parent_pnr_frame"] = pnr
    return d


def write(tmp_path, clips, wrap=True, name="fho.json"):
    p = tmp_path / name
    p.write_text(json.dumps({"version": "1", "clips": clips} if wrap else clips))
    return p


def test_reads_official_layout_and_bare_list(tmp_path):
    clips = [clip("a", 420, True), clip("b", None, False)]
    for wrap in (True, False):
        got = load_fho_oscc_pnr(write(tmp_path, clips, wrap), task="pnr")
        assert [c.unique_id for c in got] == ["a", "b"]
        a = got[0]
        assert a.state_change is True and a.pnr_frame == 420 and got[1].pnr_frame is None
        assert a.fps == pytest.approx(241 / 8.0)  # the official loader's (frames + 1) / seconds
        assert a.pnr_offset_sec == pytest.approx(120 / (241 / 8.0))


def test_pnr_frame_outside_clip_names_clip(tmp_path):
    with pytest.raises(AnnotationError,
                       match=r"clips\[1\] \(b\)\.parent_pnr_frame.*outside the clip's frames 300..540"):
        load_fho_oscc_pnr(write(tmp_path, [clip("a", 400, True), clip("b", 600, True)]))


def test_task_requirements(tmp_path):
    p = write(tmp_path, [clip("a")])  # test split: no labels
    assert load_fho_oscc_pnr(p)[0].state_change is None
    with pytest.raises(AnnotationError, match=r"clips\[0\] \(a\)\.state_change: missing key"):
        load_fho_oscc_pnr(p, task="oscc")
    with pytest.raises(AnnotationError, match="state-change clip without a PNR frame"):
        load_fho_oscc_pnr(write(tmp_path, [clip("a", None, True)]), task="pnr")
    with pytest.raises(AnnotationError, match="unique_id appears twice"):
        load_fho_oscc_pnr(write(tmp_path, [clip("a", 400, True), clip("a", 400, True)]))
    with pytest.raises(AnnotationError, match="missing list of clips"):
        load_fho_oscc_pnr(write(tmp_path, {"videos": []}, wrap=False))


def test_submissions(tmp_path):
    clips = load_fho_oscc_pnr(write(tmp_path, [clip("a", 420, True), clip("b", None, False)]))
    p = tmp_path / "oscc.json"
    p.write_text(json.dumps([{"unique_id": "a", "state_change": True}]))
    preds, missing = load_oscc_submission(p, clips)
    assert preds == {"a": True} and missing == ["b"]
    p.write_text(json.dumps([{"unique_id": "zzz", "pnr_frame": 3}]))
    with pytest.raises(PredictionError, match=r"\[0\]\.unique_id: 'zzz' is not a clip"):
        load_pnr_submission(p, clips)
    p.write_text(json.dumps([{"unique_id": "a", "pnr_frame": "x"}]))
    with pytest.raises(PredictionError, match=r"\[0\]\.pnr_frame: expected a number"):
        load_pnr_submission(p, clips)
