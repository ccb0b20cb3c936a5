"""Fault class 1 (issue 12): nothing silently wrong is stored.

Truncated Matroska/WebM (no per-stream duration field), two writers claiming one feature set with different
configs at the same instant, a kill during ``extract --force``'s removal, and ``store verify`` catching a
complete video without arrays or with too few steps for its duration. Videos are generated; the encoder is the
random-init tiny test config.
"""
import faulthandler
import json
import multiprocessing as mp
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.clip import create_encoder
from egoflow.extract.pipeline import ExtractConfig, extract
from egoflow.extract.video import VideoReadError, iter_frames
from egoflow.features_store import FeatureSetMismatch, FeatureStore

TINY = "egoflow-tiny-ViT"


@pytest.fixture(scope="module")
def encoder():
    return create_encoder(TINY, "none", precision="fp32", device="cpu")


@pytest.fixture(scope="module")
def cut_videos(tmp_path_factory):
    """(full, truncated-to-a-third) pairs for .mkv (x264) and .webm (VP9): containers without stream durations."""
    d = tmp_path_factory.mktemp("cut")
    out = {}
    for ext, codec in ((".mkv", "libx264"), (".webm", "libvpx-vp9")):
        full = make_video(d / f"full-{ext[1:]}{ext}", [(0, 6, "red kettle")], fps=30, size=(64, 48), codec=codec,
                          gop_s=1).path
        data = full.read_bytes()
        cut = d / f"cut-{ext[1:]}{ext}"
        cut.write_bytes(data[:len(data) // 3])
        out[ext] = (full, cut)
    return out


@pytest.mark.parametrize("ext", [".mkv", ".webm"])
def test_truncated_matroska_is_a_decode_failure(cut_videos, ext):
    full, cut = cut_videos[ext]
    assert sum(len(t) for _, t in iter_frames(full, 1.0, size=32)) == 6
    with pytest.raises(VideoReadError, match="truncated"):
        for _ in iter_frames(cut, 1.0, size=32):
            pass


def test_truncated_matroska_is_not_stored_complete(cut_videos, encoder, tmp_path):
    url = str(tmp_path / "s.zarr")
    paths = [str(p) for pair in cut_videos.values() for p in pair]
    summary, name = extract(paths, url, encoder, ExtractConfig(fps=1.0), progress=False)
    status = {r.video_uid: (r.status, r.reason) for r in summary.results}
    assert status["full-mkv"][0] == status["full-webm"][0] == "done"
    for uid in ("cut-mkv", "cut-webm"):
        assert status[uid][0] == "failed" and "truncated" in status[uid][1]
    store = FeatureStore(url)
    assert store.videos(name) == ["full-mkv", "full-webm"] and store.verify() == []
    assert store.video_attrs(name, "full-mkv")["duration_s"] == pytest.approx(6.0)


def test_duration_never_claims_more_than_was_decoded(monkeypatch, tmp_path):
    """A container whose duration says 6 s (e.g. audio outlasting the video) while 2 s were decoded."""
    from egoflow.extract import durations, video

    class Info:
        duration_s = 6.0

    monkeypatch.setattr(video, "probe", lambda path, backend="auto": Info())
    got = durations.duration_attrs(tmp_path / "x.mkv", np.array([0.5, 1.5]), 1.0)
    assert got == {"duration_s": 2.0, "declared_duration_s": 6.0}
    assert durations.duration_attrs(tmp_path / "x.mkv", np.arange(6) + 0.5, 1.0) == {"duration_s": 6.0}


def _store_with_video(tmp_path, T=6, attrs=None):
    s = FeatureStore(str(tmp_path / "v.zarr"))
    s.create_feature_set("fs", {"fps": 1.0}, dim=4)
    s.write_video("fs", "v", np.ones((T, 4)), np.arange(T) + 0.5, attrs or {"fps": 1.0, "duration_s": 6.0})
    return s


def test_verify_flags_steps_disagreeing_with_duration(tmp_path):
    s = _store_with_video(tmp_path, T=2)  # complete, 2 steps, but claims 6 s at 1 fps
    problems = s.verify()
    assert len(problems) == 1 and "fs/v" in problems[0] and "2 steps" in problems[0]
    ok = _store_with_video(tmp_path / "ok", T=6)
    assert ok.verify() == []
    win = FeatureStore(str(tmp_path / "w.zarr"))
    win.create_feature_set("fs", {"fps": 2.0}, dim=4)  # 12 frames, windows of 4 every 4 -> 3 windows
    win.write_video("fs", "v", np.ones((3, 4)), np.arange(3.0),
                    {"fps": 2.0, "duration_s": 6.0, "window": {"frames": 4, "stride": 4}})
    win.write_video("fs", "w", np.ones((1, 4)), np.arange(1.0),
                    {"fps": 2.0, "duration_s": 6.0, "window": {"frames": 4, "stride": 4}})
    assert [p.split(":")[0] for p in win.verify()] == ["fs/w"]


def test_verify_flags_complete_video_without_arrays(tmp_path):
    s = _store_with_video(tmp_path)
    shutil.rmtree(tmp_path / "v.zarr" / "fs" / "v" / "feats")
    problems = s.verify()
    assert len(problems) == 1 and problems[0].startswith("fs/v: unreadable arrays")


class Killed(Exception):
    """Raised where a kill -9 would land (an Exception: zarr's IO loop thread must survive it)."""


def test_kill_during_force_removal_leaves_video_incomplete(tmp_path, monkeypatch):
    """``extract --force`` rewrites a complete video: its old group is removed first. A kill in the middle of
    that removal (arrays gone, group metadata still there) must not leave a complete video without arrays."""
    s = _store_with_video(tmp_path)
    real = zarr.storage.LocalStore.delete_dir

    async def killed_midway(self, prefix):
        if prefix.endswith("fs/v"):
            shutil.rmtree(tmp_path / "v.zarr" / "fs" / "v" / "feats")
            raise Killed  # stands for kill -9 between two file deletions
        return await real(self, prefix)

    monkeypatch.setattr(zarr.storage.LocalStore, "delete_dir", killed_midway)
    with pytest.raises(Killed):
        s.write_video("fs", "v", np.ones((6, 4)), np.arange(6) + 0.5, {"fps": 1.0, "duration_s": 6.0})
    monkeypatch.setattr(zarr.storage.LocalStore, "delete_dir", real)
    again = FeatureStore(s.url)
    assert not again.is_complete("fs", "v") and again.videos("fs") == [] and again.verify() == []


def test_simultaneous_set_creation_one_config_wins(tmp_path, monkeypatch):
    """Both writers pass zarr's "group absent" check before either writes (forced here by making create_group
    overwrite): before the claim, each read back its own attrs and both were accepted."""
    real = zarr.Group.create_group

    def racing_create(self, name, **kw):  # the later of two racing writes wins: attrs are overwritten
        try:
            return real(self, name, **kw)
        except zarr.errors.ContainsGroupError:
            self[name].update_attributes(kw.get("attributes") or {})
            return self[name]

    monkeypatch.setattr(zarr.Group, "create_group", racing_create)
    url = str(tmp_path / "s.zarr")
    a, b = FeatureStore(url), FeatureStore(url)
    monkeypatch.setattr(zarr.Group, "__contains__", lambda self, key: False)  # both see "absent"
    a.create_feature_set("fs", {"fps": 2.0}, dim=4)
    with pytest.raises(FeatureSetMismatch, match="fps"):
        b.create_feature_set("fs", {"fps": 1.0}, dim=4)
    monkeypatch.undo()
    assert FeatureStore(url).feature_set_info("fs")["extractor"] == {"fps": 2.0}


def _race(url, fps, barrier, q):
    code = 0
    faulthandler.dump_traceback_later(120, exit=True)  # a hung child fails the trial instead of the CI job
    try:
        s = FeatureStore(url)
        barrier.wait()
        s.create_feature_set("fs", {"fps": fps}, dim=4)
        q.put(("ok", fps))
    except FeatureSetMismatch:
        q.put(("mismatch", fps))
    except Exception as e:  # noqa: BLE001 - any other error fails the test (reported through the queue)
        q.put((f"error {type(e).__name__}: {e}", fps))
        code = 1
    q.close()
    q.join_thread()  # flush the result before leaving
    os._exit(code)  # a forked child skips the parent's exit handlers


def _config_trials(root, trials, out):
    """Every trial from a fresh (spawned) process: forking from it is safe (the pytest process may hold threads
    of earlier tests whose locks a forked child could inherit mid-use)."""
    ctx = mp.get_context("fork")
    bad = []
    for trial in range(trials):
        url = str(Path(root) / f"t{trial}.zarr")
        FeatureStore(url)
        barrier, q = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(url, 1.0 + (i % 2), barrier, q)) for i in range(4)]
        for p in procs:
            p.start()
        results = [q.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(30)
        stored = json.loads((Path(url) / "fs" / "zarr.json").read_text())["attributes"]["extractor"]["fps"]
        accepted = {fps for status, fps in results if status == "ok"}
        if [p.exitcode for p in procs] != [0] * 4 or accepted != {stored}:
            bad.append((trial, results, stored))
    out.put(bad)


def test_simultaneous_set_creation_processes(tmp_path):
    """4 processes released together, 2 configs, 20 trials: every accepted writer has the stored config."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    coordinator = ctx.Process(target=_config_trials, args=(tmp_path, 20, out))
    coordinator.start()
    bad = out.get(timeout=900)
    coordinator.join(60)
    assert bad == []
