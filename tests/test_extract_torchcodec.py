"""GPU decode backend selection (egoflow.extract._torchcodec): fallback and --strict without a GPU; the GPU path
itself runs only where CUDA and torchcodec are present (benchmarks/gpu_extract.py measures it there)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from egoflow.cli import main
from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract import _torchcodec, video
from egoflow.extract.video import iter_frames, probe


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    # rotated: on a GPU machine the test below also checks that torchcodec's frames get the display rotation once
    return make_video(tmp_path_factory.mktemp("tc") / "v.mp4", [(0, 2, "red kettle")], size=(48, 64),
                      rotation=90).path


def test_resolve_on_a_machine_without_gpu_decoding(monkeypatch):
    monkeypatch.setattr(_torchcodec, "unavailable", lambda: "no CUDA device")
    said = []
    assert _torchcodec.resolve("torchcodec-cuda", warn=said.append) == "pyav"
    assert said == ["note: --backend torchcodec-cuda unavailable (no CUDA device); decoding on the CPU with PyAV"]
    with pytest.raises(_torchcodec.GpuDecodeUnavailable, match="no CUDA device.*--strict"):
        _torchcodec.resolve("torchcodec-cuda", strict=True)
    assert _torchcodec.resolve("decord", strict=True) == "decord"  # other backends are not touched


def test_reasons_name_what_is_missing(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _torchcodec.unavailable() == "no CUDA device"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(__import__("sys").modules, "torchcodec", None)  # import torchcodec -> ImportError
    monkeypatch.setitem(__import__("sys").modules, "torchcodec.decoders", None)
    assert "torchcodec is not installed" in _torchcodec.unavailable()


@pytest.mark.skipif(_torchcodec.unavailable() is None, reason="GPU decoding works here: fallback not exercised")
def test_iter_frames_falls_back_to_pyav_once(clip, caplog, monkeypatch):
    monkeypatch.setattr(video, "_GPU_FALLBACK", [])
    ref = list(iter_frames(clip, 4.0, size=32, backend="pyav"))
    with caplog.at_level("WARNING", logger="egoflow.extract.video"):
        got = list(iter_frames(clip, 4.0, size=32, backend="torchcodec-cuda"))
        list(iter_frames(clip, 4.0, size=32, backend="torchcodec-cuda"))
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(ref, got))
    assert len(ref) == len(got) and isinstance(got[0][0], np.ndarray)
    assert sum("unavailable" in r.message for r in caplog.records) == 1  # one line, not one per video
    assert probe(clip, "torchcodec-cuda").backend == "torchcodec-cuda"


@pytest.mark.skipif(_torchcodec.unavailable() is None, reason="GPU decoding works here: --strict does not fail")
def test_cli_strict_exits_2_and_writes_nothing(clip, tmp_path, capsys):
    store = tmp_path / "s.zarr"
    rc = main(["extract", str(clip), "--store", str(store), "--model", "egoflow-tiny-ViT", "--pretrained", "none",
               "--backend", "torchcodec-cuda", "--strict", "--quiet"])
    assert rc == 2 and not store.exists()
    assert "torchcodec-cuda" in capsys.readouterr().err


@pytest.mark.skipif(_torchcodec.unavailable() is not None, reason="needs CUDA + torchcodec (not on this machine)")
def test_gpu_frames_stay_on_the_gpu_and_match_the_cpu_choice(clip):  # pragma: no cover - GPU machines only
    cpu = list(iter_frames(clip, 4.0, size=32, backend="pyav"))
    gpu = list(iter_frames(clip, 4.0, size=32, backend="torchcodec-cuda"))
    assert gpu[0][0].is_cuda and gpu[0][0].dtype == torch.uint8
    assert np.array_equal(np.concatenate([t for _, t in cpu]), np.concatenate([t for _, t in gpu]))
    diff = np.abs(np.concatenate([f for f, _ in cpu]).astype(int) - torch.cat([f for f, _ in gpu]).cpu().numpy())
    assert diff.mean() < 4  # same frames; NVDEC colour conversion and the GPU resize differ a little


def test_gpu_benchmark_rows_measure_pyav_and_name_why_gpu_is_not_measured(clip):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_extract.py"
    spec = importlib.util.spec_from_file_location("gpu_extract", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.backend_rows(str(clip), 4.0, {"model": "egoflow-tiny-ViT", "precision": "fp32", "batch": 4}, "cpu")
    assert [r["backend"] for r in rows] == ["pyav", "torchcodec-cuda"]
    assert all(rows[0][k] > 0 for k in ("decode_fps", "encode_fps", "end_to_end_fps"))
    why = _torchcodec.unavailable()
    assert rows[1] == {"backend": "torchcodec-cuda", "unavailable": why} if why else rows[1]["decode_fps"] > 0


class _FakeDecoder:
    """torchcodec.decoders.VideoDecoder's interface over PyAV (CPU): exercises the GPU reader's frame choice,
    batching and geometry without a GPU. Frames are indexed in presentation order, as torchcodec does."""

    def __init__(self, path, device="cuda", seek_mode="exact"):
        import av

        with av.open(str(path)) as c:
            frames = sorted(c.decode(c.streams.video[0]), key=lambda f: f.pts)
            self.frames = torch.stack([torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1)
                                       for f in frames])
        self.metadata = type("M", (), {"num_frames": len(self.frames)})()  # no .rotation: the reader rotates
        self.device = device

    def get_frames_at(self, indices):
        return type("B", (), {"data": self.frames[indices]})()


def test_gpu_reader_takes_the_cpu_readers_frames(tmp_path, monkeypatch):
    import sys
    import types

    from egoflow.datasets.synthetic.videos import make_video

    v = make_video(tmp_path / "r.mp4", [(0, 2, "red kettle"), (2, 4, "blue mug")], size=(48, 64), gop_s=0.5,
                   rotation=90, vfr=True)
    fake = types.ModuleType("torchcodec.decoders")
    fake.VideoDecoder = _FakeDecoder
    monkeypatch.setitem(sys.modules, "torchcodec", types.ModuleType("torchcodec"))
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", fake)
    info = probe(v.path)
    got = list(_torchcodec.read(v.path, info, 5.0, (64, 48), batch_size=4, device="cpu"))
    ref = list(iter_frames(v.path, 5.0, size=None, batch_size=4, backend="pyav"))
    assert [len(b[0]) for b in got] == [len(b[0]) for b in ref]
    for (gf, gt), (rf, rt) in zip(got, ref):
        assert isinstance(gf, torch.Tensor) and gf.dtype == torch.uint8 and gf.shape[1:] == (64, 48, 3)
        assert np.array_equal(gt, rt)  # same frames chosen, same times
        assert np.array_equal(gf.numpy(), rf)  # native size: no resize, the same RGB conversion, rotation applied
    small = torch.cat([b[0] for b in _torchcodec.read(v.path, info, 5.0, (32, 24), 4, device="cpu")])
    assert small.shape[1:] == (32, 24, 3)  # resized on the device, after the rotation

    class Rotating(_FakeDecoder):  # torchcodec >= 0.8: frames come rotated, metadata.rotation says so
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.frames = torch.rot90(self.frames, k=-1, dims=(2, 3))
            self.metadata.rotation = -90.0

    fake.VideoDecoder = Rotating
    again = list(_torchcodec.read(v.path, info, 5.0, (64, 48), batch_size=4, device="cpu"))
    assert all(np.array_equal(a[0].numpy(), b[0]) for a, b in zip(again, ref))  # rotated once, not twice
