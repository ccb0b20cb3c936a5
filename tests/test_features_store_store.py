import json
import multiprocessing as mp
import uuid

import numpy as np
import pytest

from egoflow.features_store import FeatureSetMismatch, FeatureSetMissing, FeatureStore, StoreError, VideoMissing


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    url = str(tmp_path / "s.zarr") if request.param == "local" else f"memory://{uuid.uuid4().hex}"
    return FeatureStore(url)


def _video(rng, T=7, D=8):
    return rng.standard_normal((T, D)).astype(np.float32), np.arange(T) * 0.5 + 0.25


def test_write_read_roundtrip_and_schema(store):
    rng = np.random.default_rng(0)
    h = store.create_feature_set("fs", {"model": "m", "fps": 2.0}, dim=8)
    f, t = _video(rng)
    store.write_video("fs", "vid-1", f, t, {"fps": 2.0, "duration_s": 3.5})
    vf = store.read_video("fs", "vid-1")
    assert vf.feats.dtype == np.float32 and vf.times.dtype == np.float64
    np.testing.assert_allclose(vf.feats, f, atol=2e-3)  # stored float16 by default
    np.testing.assert_array_equal(vf.times, t)
    assert vf.attrs["complete"] is True and vf.attrs["num_steps"] == 7 and vf.attrs["fps"] == 2.0
    info = store.feature_set_info("fs")
    assert info["config_hash"] == h and info["dim"] == 8 and info["dtype"] == "float16"
    assert info["extractor"] == {"model": "m", "fps": 2.0}
    assert store.videos("fs") == ["vid-1"]
    assert FeatureStore(store.url, mode="r").videos("fs") == ["vid-1"]


def test_float32_option_keeps_precision(store):
    rng = np.random.default_rng(1)
    store.create_feature_set("fs32", {"m": 1}, dim=8, dtype="float32")
    f, t = _video(rng)
    store.write_video("fs32", "v", f, t)
    np.testing.assert_array_equal(store.read_video("fs32", "v").feats, f)


def test_same_config_reopens_different_config_is_error(store):
    h1 = store.create_feature_set("fs", {"model": "m", "fps": 2.0}, dim=8)
    assert store.create_feature_set("fs", {"fps": 2.0, "model": "m"}, dim=8) == h1  # key order irrelevant
    with pytest.raises(FeatureSetMismatch, match="fps"):
        store.create_feature_set("fs", {"model": "m", "fps": 4.0}, dim=8)
    with pytest.raises(FeatureSetMismatch):
        store.create_feature_set("fs", {"model": "m", "fps": 2.0}, dim=16)


def test_incomplete_video_is_invisible_and_redone(store):
    rng = np.random.default_rng(2)
    store.create_feature_set("fs", {"m": 1}, dim=8)
    # simulate a writer killed after the arrays but before "complete": group without the commit flag
    g = store.root["fs"].create_group("half", attributes={"complete": False})
    g.create_array("feats", data=np.zeros((3, 8), np.float16))
    assert store.videos("fs") == []
    assert store.videos("fs", include_incomplete=True) == ["half"]
    with pytest.raises(VideoMissing, match="not complete"):
        store.read_video("fs", "half")
    f, t = _video(rng)
    store.write_video("fs", "half", f, t)
    assert store.videos("fs") == ["half"] and store.read_video("fs", "half").feats.shape == (7, 8)
    assert store.verify() == []


def test_bad_writes_are_rejected_and_keep_existing(store):
    rng = np.random.default_rng(3)
    store.create_feature_set("fs", {"m": 1}, dim=8)
    f, t = _video(rng)
    store.write_video("fs", "v", f, t)
    with pytest.raises(StoreError, match="feats must be"):
        store.write_video("fs", "v", f[:, :4], t)
    with pytest.raises(StoreError, match="NaN"):
        store.write_video("fs", "v", np.full_like(f, np.nan), t)
    with pytest.raises(StoreError, match="non-decreasing"):
        store.write_video("fs", "v", f, t[::-1])
    with pytest.raises(StoreError, match="invalid video uid"):
        store.write_video("fs", "../x", f, t)
    assert store.read_video("fs", "v").feats.shape == (7, 8)  # nothing already written was lost
    with pytest.raises(FeatureSetMissing, match="nope"):
        store.videos("nope")


def test_failures_recorded_and_cleared_on_success(store):
    rng = np.random.default_rng(4)
    store.create_feature_set("fs", {"m": 1}, dim=8)
    store.record_failure("fs", "bad", "decode", "moov atom not found", {"path": "/x/bad.mp4"})
    assert [(f["video_uid"], f["stage"], f["reason"]) for f in store.failures("fs")] == \
        [("bad", "decode", "moov atom not found")]
    assert store.info("fs")["videos_failed"] == 1 and store.videos("fs") == []
    store.write_video("fs", "bad", *_video(rng))
    assert store.failures("fs") == [] and store.videos("fs") == ["bad"]


def test_is_complete_checks_source(store):
    rng = np.random.default_rng(5)
    store.create_feature_set("fs", {"m": 1}, dim=8)
    src = {"path": "/v.mp4", "bytes": 10, "mtime": 5}
    store.write_video("fs", "v", *_video(rng), {"source": src})
    assert store.is_complete("fs", "v", src)
    assert not store.is_complete("fs", "v", {**src, "bytes": 11})
    assert not store.is_complete("fs", "other")


def test_verify_finds_corrupted_complete_video(tmp_path):
    s = FeatureStore(str(tmp_path / "s.zarr"))
    s.create_feature_set("fs", {"m": 1}, dim=8)
    s.write_video("fs", "v", *_video(np.random.default_rng(6)))
    meta = tmp_path / "s.zarr" / "fs" / "v" / "zarr.json"
    d = json.loads(meta.read_text())
    d["attributes"]["num_steps"] = 99
    meta.write_text(json.dumps(d))
    problems = FeatureStore(str(tmp_path / "s.zarr")).verify()
    assert len(problems) == 1 and "fs/v" in problems[0]


def test_truncated_metadata_counts_as_incomplete(tmp_path):
    s = FeatureStore(str(tmp_path / "s.zarr"))
    s.create_feature_set("fs", {"m": 1}, dim=8)
    s.write_video("fs", "v", *_video(np.random.default_rng(7)))
    meta = tmp_path / "s.zarr" / "fs" / "v" / "zarr.json"
    meta.write_text(meta.read_text()[:20])  # writer killed mid-way through the commit
    s2 = FeatureStore(str(tmp_path / "s.zarr"))
    assert s2.videos("fs") == [] and not s2.is_complete("fs", "v")
    s2.write_video("fs", "v", *_video(np.random.default_rng(7)))
    assert s2.videos("fs") == ["v"] and s2.verify() == []


def test_not_an_egoflow_store(tmp_path):
    import zarr

    g = zarr.open_group(str(tmp_path / "other.zarr"), mode="w", zarr_format=3)
    g.create_group("x")
    with pytest.raises(StoreError, match="not an egoflow store"):
        FeatureStore(str(tmp_path / "other.zarr"))
    with pytest.raises(StoreError, match="no feature store"):
        FeatureStore(str(tmp_path / "absent.zarr"), mode="r")


def test_slice_to_clip_time():
    from egoflow.features_store import VideoFeatures

    vf = VideoFeatures(np.arange(10, dtype=np.float32)[:, None], np.arange(10) + 0.5)
    c = vf.slice(2.0, 5.0)
    np.testing.assert_array_equal(c.times, [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(c.feats[:, 0], [2, 3, 4])


def test_load_feature_set_bulk(store):
    rng = np.random.default_rng(8)
    store.create_feature_set("fs", {"m": 1}, dim=8)
    data = {f"v{i}": _video(rng, T=3 + i) for i in range(12)}
    for uid, (f, t) in data.items():
        store.write_video("fs", uid, f, t)
    got = store.load_feature_set("fs")
    assert sorted(got) == sorted(data)
    for uid, (f, t) in data.items():
        np.testing.assert_allclose(got[uid].feats, f, atol=2e-3)
        np.testing.assert_array_equal(got[uid].times, t)


def test_texts_roundtrip_dedup_and_missing(store):
    rng = np.random.default_rng(9)
    P, T = rng.standard_normal((3, 8)), rng.standard_normal((3, 5, 8))
    assert store.write_texts("t", ["a", "b", "a"], P, T, [2, 5, 2], {"model": "m"}) == 2
    assert store.write_texts("t", ["b", "c"], P[:2], T[:2, :4], [4, 3], {"model": "m"}) == 1
    tf = store.load_texts("t", ["c", "a", "b"])
    np.testing.assert_allclose(tf.pooled, np.stack([P[1], P[0], P[1]]), atol=1e-6)  # "c" came second in call 2
    np.testing.assert_array_equal(tf.lengths, [3, 2, 5])
    assert tf.tokens.shape == (3, 5, 8)
    np.testing.assert_allclose(tf.tokens[1, :2], T[0, :2], atol=2e-3)
    assert np.all(tf.tokens[1, 2:] == 0)  # zero-padded past the length
    with pytest.raises(KeyError, match="'zzz'"):
        store.load_texts("t", ["a", "zzz"])
    with pytest.raises(FeatureSetMismatch):
        store.write_texts("t", ["d"], P[:1], config={"model": "other"})


def _writer(url, uid, seed):
    s = FeatureStore(url)
    s.create_feature_set("fs", {"m": 1}, dim=8)
    rng = np.random.default_rng(seed)
    for k in range(5):
        s.write_video("fs", f"{uid}-{k}", *_video(rng, T=50))


def test_concurrent_writer_processes(tmp_path):
    url = str(tmp_path / "s.zarr")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, f"w{i}", i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    s = FeatureStore(url)
    assert len(s.videos("fs")) == 20 and s.verify() == []
