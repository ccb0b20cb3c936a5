"""Packed copy of a feature set: same arrays as per-video reads; never used once stale."""
import numpy as np

from egoflow.features_store import FeatureStore, packed


def make(tmp_path, n=9, D=6):
    rng = np.random.default_rng(0)
    s = FeatureStore(str(tmp_path / "s.zarr"))
    s.create_feature_set("f", {"e": 1}, dim=D)
    for i in range(n):
        T = 3 + (i * 5) % 11
        s.write_video("f", f"v{i}", rng.standard_normal((T, D)), np.arange(T) * 0.5, {"fps": 2.0})
    s.record_failure("f", "bad", "decode", "corrupt")
    return s


def per_video(s):
    return {u: s.read_video("f", u) for u in s.videos("f")}


def same(a, b):
    assert list(a) == list(b)
    for u in a:
        np.testing.assert_array_equal(a[u].feats, b[u].feats)
        np.testing.assert_array_equal(a[u].times, b[u].times)
        assert a[u].feats.dtype == np.float32 and a[u].attrs["fps"] == b[u].attrs["fps"]


def test_pack_equals_per_video_and_is_used(tmp_path):
    s = make(tmp_path)
    ref = per_video(s)
    assert s.pack("f", chunk_rows=7) == {"videos": 9, "rows": sum(len(v.times) for v in ref.values())}
    assert s.videos("f") == sorted(ref) and s.info("f")["videos_incomplete"] == 0  # _packed is not a video
    got = packed.load_packed(s.feature_set_group("f"))
    assert got is not None
    same(got, ref)
    same(s.load_feature_set("f"), ref)
    sub = ["v7", "v2"]  # a subset spanning chunk boundaries, in the caller's order
    same(s.load_feature_set("f", sub), {u: ref[u] for u in sub})
    assert s.failures("f")[0]["video_uid"] == "bad" and s.verify() == []


def test_any_write_makes_the_pack_unused(tmp_path):
    s = make(tmp_path)
    s.pack("f")
    s.write_video("f", "v3", np.ones((2, 6)), [0.0, 1.0])  # rewrite in place: same listing
    assert packed.load_packed(s.feature_set_group("f")) is None
    np.testing.assert_array_equal(s.load_feature_set("f")["v3"].feats, np.ones((2, 6)))
    s.pack("f")
    s.delete_video("f", "v1")
    assert packed.load_packed(s.feature_set_group("f")) is None and "v1" not in s.load_feature_set("f")


def test_pending_video_completed_after_packing(tmp_path):
    s = make(tmp_path)
    fs = s.feature_set_group("f").group
    fs.create_group("v99", attributes={"complete": False, "num_steps": 2})  # a writer in progress
    s.pack("f")
    assert packed.load_packed(s.feature_set_group("f")) is not None
    g = fs["v99"]
    g.create_array("feats", data=np.ones((2, 6), np.float16))
    g.create_array("times", data=np.zeros(2))
    g.update_attributes({"complete": True})  # committed without any other write (drop raced away)
    assert packed.load_packed(s.feature_set_group("f")) is None and "v99" in s.load_feature_set("f")
