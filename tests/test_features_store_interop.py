"""Store <-> .pt / HDF5: round trips, the Ego4D time rule, bad files (the `egoflow store` verbs: test_cli.py)."""
import json

import h5py
import numpy as np
import pytest
import torch

from egoflow.features_store import FeatureSetMismatch, FeatureStore
from egoflow.features_store.interop import (
    SIDECAR,
    InteropError,
    export_hdf5,
    export_pt,
    import_hdf5,
    import_pt,
    step_times,
)

D = 8
EXTRACTOR = {"encoder": "clip", "model": "ViT-B-32", "fps": 2.0}


def make_store(path, n=3, seed=0):
    """Three videos of different lengths; v1 has irregular times (VFR-like) to test the full-list sidecar."""
    rng = np.random.default_rng(seed)
    s = FeatureStore(str(path))
    s.create_feature_set("src", EXTRACTOR, dim=D)
    for i in range(n):
        T = 5 + 3 * i
        times = (np.arange(T) + 0.5) / 2.0
        if i == 1:
            times = np.cumsum(rng.uniform(0.1, 0.9, T))
        s.write_video("src", f"v{i}", rng.standard_normal((T, D)).astype(np.float32), times,
                      {"fps": 2.0, "duration_s": float(times[-1] + 0.25), "source": {"path": f"/x/v{i}.mp4"}})
    return s


def assert_same_set(a, a_set, b, b_set):
    va, vb = a.load_feature_set(a_set), b.load_feature_set(b_set)
    assert sorted(va) == sorted(vb)
    for uid in va:
        # the store holds float16: float32 export and re-import must give back the same float16 values
        np.testing.assert_array_equal(va[uid].feats.astype(np.float16), vb[uid].feats.astype(np.float16))
        np.testing.assert_array_equal(va[uid].times, vb[uid].times)
        assert vb[uid].attrs["fps"] == va[uid].attrs["fps"]
        assert vb[uid].attrs["duration_s"] == pytest.approx(va[uid].attrs["duration_s"])
    assert b.feature_set_info(b_set)["extractor"] == a.feature_set_info(a_set)["extractor"]


def test_step_times_ego4d_windows_and_frames():
    # SlowFast: W=32, S=16 at 30 fps -> centres at (16 i + 16) / 30
    np.testing.assert_allclose(step_times(3, window_frames=32, stride_frames=16), [16 / 30, 32 / 30, 48 / 30])
    # 39 frames (1.3 s): Ego4D backs the last window up to frames [7, 39) -> centre 23 / 30
    np.testing.assert_allclose(step_times(2, window_frames=32, stride_frames=16, duration_s=1.3),
                               [16 / 30, 23 / 30])
    # frame features at 2 fps: step i is [i/2, (i+1)/2) -> centre (i + 0.5) / 2
    np.testing.assert_allclose(step_times(3, fps=2.0), [0.25, 0.75, 1.25])
    with pytest.raises(InteropError):
        step_times(3)


def test_pt_round_trip(tmp_path):
    a = make_store(tmp_path / "a.zarr")
    done = export_pt(a, "src", tmp_path / "pt")
    assert done == ["v0", "v1", "v2"]
    t = torch.load(tmp_path / "pt" / "v2.pt", weights_only=True)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (11, D)  # Ego4D layout
    side = json.loads((tmp_path / "pt" / SIDECAR).read_text())
    assert isinstance(side["videos"]["v0"]["times"], dict)  # regular times stored compactly
    assert isinstance(side["videos"]["v1"]["times"], list)  # irregular ones in full
    b = FeatureStore(str(tmp_path / "b.zarr"))
    rep = import_pt(b, "dst", tmp_path / "pt")
    assert rep.ok and rep.imported == ["v0", "v1", "v2"]
    assert_same_set(a, "src", b, "dst")
    assert import_pt(b, "dst", tmp_path / "pt").skipped == ["v0", "v1", "v2"]  # rerun: nothing redone


def test_hdf5_round_trip(tmp_path):
    a = make_store(tmp_path / "a.zarr")
    export_hdf5(a, "src", tmp_path / "f.h5", chunk_rows=4)
    with h5py.File(tmp_path / "f.h5") as h:
        assert h["v2/feats"].shape == (11, D) and h["v2/feats"].chunks == (4, D)
        assert h["v2/feats"].dtype == np.float16 and h["v2/times"].dtype == np.float64
    b = FeatureStore(str(tmp_path / "b.zarr"))
    rep = import_hdf5(b, "dst", tmp_path / "f.h5")
    assert rep.ok and len(rep.imported) == 3
    assert_same_set(a, "src", b, "dst")


def test_pt_without_sidecar_uses_ego4d_rule(tmp_path):
    src = tmp_path / "pt"
    src.mkdir()
    torch.save(torch.ones(4, D), src / "a.pt")
    torch.save({"features": torch.ones(3, D), "times": torch.tensor([0.0, 1.0, 5.0])}, src / "b.pt")
    s = FeatureStore(str(tmp_path / "s.zarr"))
    rep = import_pt(s, "slowfast", src, window_frames=32, stride_frames=16)
    assert rep.ok
    a = s.read_video("slowfast", "a")
    np.testing.assert_allclose(a.times, (16 * np.arange(4) + 16) / 30)
    assert a.attrs["fps"] == pytest.approx(1.875) and a.attrs["window"]["frames"] == 32
    assert a.attrs["duration_s"] == pytest.approx((16 * 3 + 32) / 30)  # end of the last window
    np.testing.assert_array_equal(s.read_video("slowfast", "b").times, [0.0, 1.0, 5.0])  # the file's own times
    s2 = FeatureStore(str(tmp_path / "s2.zarr"))
    import_pt(s2, "frames", src, fps=2.0)
    np.testing.assert_allclose(s2.read_video("frames", "a").times, [0.25, 0.75, 1.25, 1.75])


def test_bad_pt_files_reported_and_others_imported(tmp_path):
    src = tmp_path / "pt"
    src.mkdir()
    torch.save(torch.randn(4, D), src / "good.pt")
    torch.save(torch.full((4, D), float("nan")), src / "nan.pt")
    torch.save(torch.randn(4), src / "flat.pt")
    torch.save(torch.randn(4, D + 1), src / "wide.pt")
    torch.save({"logits": torch.randn(4, D)}, src / "nokey.pt")
    torch.save([1, 2, 3], src / "list.pt")
    (src / "junk.pt").write_bytes(b"not a torch file")
    s = FeatureStore(str(tmp_path / "s.zarr"))
    rep = import_pt(s, "set", src, fps=1.0)
    assert rep.imported == ["good"]
    reasons = dict(rep.failed)
    assert sorted(k.rsplit("/", 1)[1] for k in reasons) == sorted(
        ["nan.pt", "flat.pt", "wide.pt", "nokey.pt", "list.pt", "junk.pt"])
    assert "NaN" in reasons[str(src / "nan.pt")] and "nan.pt" in reasons[str(src / "nan.pt")]
    assert "[T, D]" in reasons[str(src / "flat.pt")]
    assert f"dim {D + 1}" in reasons[str(src / "wide.pt")]
    assert "not a readable torch file" in reasons[str(src / "junk.pt")]
    failures = {f["video_uid"]: f for f in s.failures("set")}
    assert set(failures) == {"nan", "flat", "wide", "nokey", "list", "junk"}
    assert all(f["stage"] == "import" for f in failures.values())
    assert s.videos("set") == ["good"]  # nothing bad is visible to readers


def test_bad_hdf5_entries(tmp_path):
    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as h:
        h["bare"] = np.ones((3, D), np.float32)  # a bare dataset per video is accepted
        h.create_group("empty")
        h["cube"] = np.ones((2, 3, D), np.float32)
        h.create_group("nan")["feats"] = np.full((3, D), np.nan, np.float32)
    s = FeatureStore(str(tmp_path / "s.zarr"))
    rep = import_hdf5(s, "set", p, fps=1.0)
    assert rep.imported == ["bare"]
    reasons = dict(rep.failed)
    assert "without a features dataset" in reasons[f"{p}:/empty"]
    assert "[T, D]" in reasons[f"{p}:/cube"] and "NaN" in reasons[f"{p}:/nan"]
    (tmp_path / "not.h5").write_text("hello")
    with pytest.raises(InteropError, match="not.h5"):
        import_hdf5(s, "set", tmp_path / "not.h5")


def test_import_into_set_with_other_config_is_an_error(tmp_path):
    a = make_store(tmp_path / "a.zarr")
    export_pt(a, "src", tmp_path / "pt")
    b = FeatureStore(str(tmp_path / "b.zarr"))
    b.create_feature_set("dst", {"encoder": "other"}, dim=D)
    with pytest.raises(FeatureSetMismatch):
        import_pt(b, "dst", tmp_path / "pt")
