"""End-to-end extraction on tiny generated videos: results, faults, reruns, kill -9, windows, the CLI."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from egoflow.cli import main
from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.clip import create_encoder
from egoflow.extract.pipeline import ExtractConfig, InputError, discover_videos, extract, pool_windows
from egoflow.features_store import FeatureSetMismatch, FeatureStore

TINY = "egoflow-tiny-ViT"


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    segs = [(0, 3, "red kettle"), (3, 6, "blue mug")]
    make_video(d / "vid-a.mp4", segs, fps=30, size=(96, 72), seed=1)
    make_video(d / "vid-b.mp4", segs[:1], fps=30, size=(96, 72), seed=2)
    (d / "zero.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video\n" * 50)
    return d


@pytest.fixture(scope="module")
def encoder():
    return create_encoder(TINY, "none", precision="fp32", device="cpu")


def test_extract_good_and_bad_videos(videos, encoder, tmp_path):
    url = str(tmp_path / "s.zarr")
    inputs = [str(videos), str(videos / "missing.mp4")]
    summary, name = extract(inputs, url, encoder, ExtractConfig(fps=2.0), progress=False)
    assert (summary.count("done"), summary.count("failed")) == (2, 3) and not summary.ok
    reasons = {r.video_uid: (r.stage, r.reason) for r in summary.results if r.status == "failed"}
    assert set(reasons) == {"zero", "text", "missing"}
    assert "not found" in reasons["missing"][1] or "cannot access" in reasons["missing"][1]
    store = FeatureStore(url)
    assert store.videos(name) == ["vid-a", "vid-b"]
    assert {f["video_uid"] for f in store.failures(name)} == {"zero", "text", "missing"}
    a = store.read_video(name, "vid-a")
    assert a.feats.shape == (12, encoder.dim)  # 6 s at 2 fps
    # sampled frame k stands for [k/2, (k+1)/2): its frame's centre lies inside that interval
    k = np.arange(12)
    assert np.all(a.times >= k / 2.0) and np.all(a.times < (k + 1) / 2.0)
    np.testing.assert_allclose(np.linalg.norm(a.feats, axis=1), 1.0, atol=1e-2)
    info = store.feature_set_info(name)["extractor"]
    assert info["model"] == TINY and info["fps"] == 2.0 and info["pretrained"] == "none"
    # the two concepts give different features: the encoder sees the pixels
    assert float(a.feats[:6].mean(0) @ a.feats[6:].mean(0)) < 0.999
    assert store.verify() == []


def test_rerun_skips_complete_redoes_changed_and_failed(videos, encoder, tmp_path):
    url = str(tmp_path / "s.zarr")
    extract([str(videos)], url, encoder, ExtractConfig(fps=2.0), progress=False)
    s2, _ = extract([str(videos)], url, encoder, ExtractConfig(fps=2.0), progress=False)
    status = {r.video_uid: r.status for r in s2.results}
    assert status == {"vid-a": "skipped", "vid-b": "skipped", "zero": "failed", "text": "failed"}
    os.utime(videos / "vid-b.mp4", (time.time() + 5, time.time() + 5))  # the source changed
    s3, _ = extract([str(videos)], url, encoder, ExtractConfig(fps=2.0), progress=False)
    assert {r.video_uid: r.status for r in s3.results}["vid-b"] == "done"


def test_different_settings_same_name_is_error(videos, encoder, tmp_path):
    url = str(tmp_path / "s.zarr")
    extract([str(videos / "vid-b.mp4")], url, encoder, ExtractConfig(fps=2.0), feature_set="F", progress=False)
    with pytest.raises(FeatureSetMismatch, match="fps"):
        extract([str(videos / "vid-b.mp4")], url, encoder, ExtractConfig(fps=4.0), feature_set="F", progress=False)
    assert FeatureStore(url).videos("F") == ["vid-b"]  # nothing already written is lost


def test_windows_pool_frame_features(videos, encoder, tmp_path):
    url = str(tmp_path / "s.zarr")
    cfg = ExtractConfig(fps=2.0, window=4, stride=3)
    _, name = extract([str(videos / "vid-a.mp4")], url, encoder, cfg, progress=False)
    assert name.endswith("-w4s3")
    w = FeatureStore(url).read_video(name, "vid-a")
    _, fname = extract([str(videos / "vid-a.mp4")], url, encoder, ExtractConfig(fps=2.0), progress=False)
    fr = FeatureStore(url).read_video(fname, "vid-a")
    # 12 frames, windows start at 0, 3, 6, 9 (the last one has 3 real frames: kept, not dropped)
    assert w.feats.shape[0] == 4 and w.attrs["window"] == {"frames": 4, "stride": 3}
    ref = fr.feats[9:12].mean(0)
    np.testing.assert_allclose(w.feats[3], ref / np.linalg.norm(ref), atol=5e-3)
    np.testing.assert_allclose(w.times[3], (fr.times[9] + fr.times[11]) / 2)


def test_pool_windows_tail():
    f = np.arange(10, dtype=np.float32)[:, None]
    out, t = pool_windows(f, np.arange(10.0), window=4, stride=4, normalize=False)
    np.testing.assert_allclose(out[:, 0], [1.5, 5.5, 8.5])
    np.testing.assert_allclose(t, [1.5, 5.5, 8.5])


def test_discover_videos_list_and_duplicates(videos, tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text(f"# comment\n{videos / 'vid-a.mp4'}\n\n{videos / 'vid-b.mp4'}\n")
    assert [p.name for p in discover_videos([str(lst)])] == ["vid-a.mp4", "vid-b.mp4"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "vid-a.mp4").write_bytes(b"x")
    with pytest.raises(InputError, match="vid-a"):
        discover_videos([str(videos / "vid-a.mp4"), str(tmp_path / "sub" / "vid-a.mp4")])


def test_cli_extract_exit_code_and_store_commands(videos, tmp_path, capsys):
    url = str(tmp_path / "s.zarr")
    rc = main(["extract", str(videos), "--store", url, "--model", TINY, "--fps", "2", "--quiet",
               "--precision", "fp32"])
    out = capsys.readouterr().out
    assert rc == 1 and "done 2, skipped 0, failed 2" in out and "text" in out
    assert main(["store", "verify", "--store", url]) == 0
    assert main(["store", "info", "--store", url]) == 0
    out = capsys.readouterr().out
    assert "2 complete, 2 failed" in out and "FAILED zero" in out
    assert main(["store", "ls", "--store", url]) == 0
    assert "2 videos" in capsys.readouterr().out
    assert main(["store", "info", "--store", str(tmp_path / "absent.zarr")]) == 2


def _complete_count(url):
    try:
        s = FeatureStore(url, mode="r")
        return sum(len(s.videos(n)) for n in s.feature_sets())
    except Exception:  # noqa: BLE001 - store not created yet
        return 0


@pytest.mark.parametrize("when", ["early", "after_first_video"])
def test_kill_9_then_rerun_finishes(tmp_path, when):
    d = tmp_path / "v"
    d.mkdir()
    for i in range(4):
        make_video(d / f"k{i}.mp4", [(0, 8, "red kettle")], fps=30, size=(96, 72), seed=i)
    url = str(tmp_path / "s.zarr")
    cmd = [sys.executable, "-m", "egoflow.cli", "extract", str(d), "--store", url, "--model", TINY,
           "--fps", "4", "--quiet", "--precision", "fp32", "--batch-size", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    if when == "early":
        time.sleep(3.0)  # somewhere in start-up, model creation or the first video
    else:
        while _complete_count(url) < 1 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stdout + rc.stderr
    assert "done" in rc.stdout and "failed 0" in rc.stdout
    s = FeatureStore(url)
    (name,) = s.feature_sets()
    assert s.videos(name) == ["k0", "k1", "k2", "k3"] and s.verify() == []
    assert main(["store", "verify", "--store", url]) == 0


def test_every_fault_is_recorded_and_the_good_files_complete(tmp_path, encoder, monkeypatch):
    from egoflow.datasets.synthetic.faults import BAD, GOOD, make_fault_files, unreadable_is_enforced

    files = make_fault_files(tmp_path / "faults")
    if not unreadable_is_enforced(files["unreadable"]):  # running as root: refuse access the way the OS would
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, m, *a, **k: False if Path(p) == files["unreadable"]
                            else real_access(p, m, *a, **k))
    url = str(tmp_path / "s.zarr")
    summary, name = extract([str(files[k]) for k in BAD + GOOD], url, encoder, ExtractConfig(fps=2.0),
                            progress=False)
    status = {r.video_uid: r for r in summary.results}
    for k in BAD:
        r = status[files[k].stem]
        assert r.status == "failed" and r.reason, k  # every bad file: a failure with a reason
    for k in GOOD:
        assert status[files[k].stem].status == "done", (k, status[files[k].stem].reason)
    s = FeatureStore(url)
    assert sorted(s.videos(name)) == sorted(files[k].stem for k in GOOD)  # nothing partial is complete
    assert {f["video_uid"] for f in s.failures(name)} == {files[k].stem for k in BAD}
    assert "truncated" in {f["video_uid"] for f in s.failures(name)}  # frames decoded before the cut: not kept
    rot = s.read_video(name, "rotated_90")
    assert rot.feats.shape[0] == 4 and s.verify() == []
