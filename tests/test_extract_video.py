"""Video reading: the sampling rule, timing on 29.97 / VFR / rotated video, backend agreement, streaming,
fallback, and every bad-input case."""
import fractions
import tracemalloc

import av
import numpy as np
import pytest

from egoflow.datasets.synthetic.faults import make_fault_files, unreadable_is_enforced
from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract import _decord, _pyav, sparse, video, video_types
from egoflow.extract.video import Sampler, VideoReadError, iter_frames, num_samples, output_size, probe, sample_times

BACKENDS = ["pyav", "decord"]


def collect(it):
    frames, times = [], []
    for f, t in it:
        assert f.dtype == np.uint8 and f.ndim == 4 and f.shape[-1] == 3 and t.dtype == np.float64
        assert len(f) == len(t)
        frames.append(f)
        times.append(t)
    return np.concatenate(frames), np.concatenate(times)


def encode_indexed(path, pts, time_base, rotation=0, size=(64, 48)):
    """Frame i is flat grey 6*i with a white block in the display's top-left corner: pixels say which
    source frame a reader picked."""
    W, H = size
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=30)
    cw, ch = (H, W) if rotation in (90, 270) else (W, H)
    stream.width, stream.height, stream.pix_fmt = cw, ch, "yuv420p"
    stream.codec_context.time_base = stream.time_base = time_base
    stream.options = {"preset": "ultrafast", "g": "10"}
    if rotation:
        stream.set_display_rotation(-rotation)
    for i, p in enumerate(pts):
        img = np.full((H, W, 3), 6 * i, np.uint8)
        img[:12, :16] = 255
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(img, k=rotation // 90)), format="rgb24")
        frame.pts, frame.time_base = int(p), time_base
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def brute_force(frame_times, end, fps):
    """Independent statement of the rule: for each target, scan for the frame whose interval holds it."""
    bounds = list(frame_times[1:]) + [end]
    out, k = [], 0
    while (k + 0.5) / fps < end - 1e-9:
        t = (k + 0.5) / fps
        i = max(j for j in range(len(frame_times)) if frame_times[j] <= t + 1e-9)
        out.append((i, (frame_times[i] + bounds[i]) / 2))
        k += 1
    return out


# ---- the sampling rule, no video ----

def test_sample_times_hand_worked():
    idx, t = sample_times(np.array([0.0, 0.1, 0.3, 0.35]), 0.5, fps=4)  # targets 0.125, 0.375
    assert idx.tolist() == [1, 3]
    np.testing.assert_allclose(t, [0.2, 0.425])


def test_sample_times_ties_go_to_later_frame_at_30fps():
    # at 1.875 fps every target (8k+4)/15 s lies exactly on a 30 fps frame boundary (frame 16k+8)
    pts = np.arange(300)
    idx, t = sample_times(pts, 300, 1.875, time_base=fractions.Fraction(1, 30))
    assert len(idx) == 19  # k + 0.5 < 10 s * 1.875 = 18.75: k = 0..18, the last target at 9.87 s
    assert idx.tolist() == [16 * k + 8 for k in range(19)]
    np.testing.assert_allclose(t, (idx + 0.5) / 30)


def test_num_samples():
    assert num_samples(600.0, 1.875) == 1125
    assert num_samples(10.0, 1.0) == 10
    assert num_samples(0.5, 1.0) == 0  # t0 = 0.5 is not inside [0, 0.5)
    assert num_samples(0.51, 1.0) == 1


@pytest.mark.parametrize("seed", range(5))
def test_sampler_matches_vectorised_rule_on_random_vfr(seed):
    rng = np.random.default_rng(seed)
    tb = fractions.Fraction(1, 90000)
    pts = np.cumsum(np.concatenate([[1234], rng.integers(500, 9000, size=300)]))
    end = int(2 * pts[-1] - pts[-2])
    fps = float(rng.choice([1.875, 5.0, 30000 / 1001, 60.0]))
    idx, times = sample_times(pts, end, fps, time_base=tb)
    s, got = Sampler(fps), []
    bounds = list(pts[1:]) + [end]
    for i, (_a, b) in enumerate(zip(pts, bounds)):
        got += [i] * s.take(((int(b) - int(pts[0])) * tb.numerator) / tb.denominator)
    assert got == idx.tolist()
    sec = (pts - pts[0]) / 90000
    ref = brute_force(sec, (end - pts[0]) / 90000, fps)
    assert [i for i, _ in ref] == idx.tolist()
    np.testing.assert_allclose(times, [c for _, c in ref], atol=1e-9)


def test_output_size_shorter_side_like_clip_resize():
    assert output_size(480, 640, 224) == (224, 298)
    assert output_size(640, 480, 224) == (298, 224)
    assert output_size(480, 640, (100, 50)) == (100, 50)
    assert output_size(480, 640, None) == (480, 640)
    with pytest.raises(ValueError):
        output_size(480, 640, 0)


# ---- real files ----

@pytest.fixture(scope="module")
def vids(tmp_path_factory):
    d = tmp_path_factory.mktemp("vids")
    v = {"cfr": make_video(d / "cfr.mp4", [(0, 2, "red kettle"), (2, 4, "blue mug")], size=(96, 64)),
         "ntsc": make_video(d / "ntsc.mp4", [(0, 4, "red kettle")], fps=fractions.Fraction(30000, 1001),
                            size=(96, 64)),
         "vfr": make_video(d / "vfr.mp4", [(0, 4, "yellow phone")], size=(96, 64), vfr=True),
         "rot": make_video(d / "rot.mp4", [(0, 2, "purple book")], size=(64, 96), rotation=90),
         "upright": make_video(d / "upright.mp4", [(0, 2, "purple book")], size=(64, 96)),
         "long": make_video(d / "long.mp4", [(0, 10, "green cutting board")], size=(96, 64))}
    tb = fractions.Fraction(1, 1000)
    vfr_pts = np.cumsum([0, 33, 17, 50, 33, 33, 67, 20, 13, 33, 40, 33, 26, 33, 50, 33, 33, 17, 16, 33, 33])
    v["indexed_vfr"] = (encode_indexed(d / "ivfr.mp4", vfr_pts, tb), vfr_pts / 1000)
    v["indexed_rot"] = encode_indexed(d / "irot.mp4", np.arange(20) * 33, tb, rotation=270)
    return v


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,fps", [("cfr", 1.875), ("ntsc", 1.875), ("ntsc", 30000 / 1001), ("vfr", 7.5),
                                     ("vfr", 1.875)])
def test_times_follow_the_rule(vids, backend, name, fps):
    v = vids[name]
    frames, times = collect(iter_frames(v.path, fps, backend=backend))
    ref = brute_force(v.frame_times, v.duration_s, fps)
    assert len(times) == len(ref) == num_samples(v.duration_s, fps)
    np.testing.assert_allclose(times, [c for _, c in ref], atol=1e-6)
    gaps = np.diff(np.append(v.frame_times, v.duration_s))
    for k, ((i, _), t) in enumerate(zip(ref, times)):  # within half a source frame of the target
        assert abs(t - (k + 0.5) / fps) <= gaps[i] / 2 + 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_vfr_pixels_come_from_the_chosen_frame(vids, backend):
    path, pts = vids["indexed_vfr"]
    end = 2 * pts[-1] - pts[-2]
    frames, times = collect(iter_frames(path, 12.0, backend=backend))
    ref = brute_force(pts, end, 12.0)
    assert len(frames) == len(ref)
    for f, (i, centre), t in zip(frames, ref, times):
        assert abs(float(f[30:, 30:].mean()) - 6 * i) < 3, (i, f[30:, 30:].mean())
        assert abs(t - centre) < 1e-9


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_applied(vids, backend):
    info = probe(vids["rot"].path)
    assert (info.width, info.height, info.rotation) == (64, 96, 90)
    rot, _ = collect(iter_frames(vids["rot"].path, 2, backend=backend))
    up, _ = collect(iter_frames(vids["upright"].path, 2, backend="pyav"))
    assert rot.shape == up.shape == (4, 96, 64, 3)
    right = np.abs(rot.astype(int) - up).mean()
    wrong = np.abs(rot.astype(int) - up[:, ::-1, ::-1]).mean()  # 180 degrees off, e.g. 270 vs 90
    assert right < 4 and wrong > 3 * right
    small, _ = collect(iter_frames(vids["rot"].path, 2, size=40, backend=backend))
    assert small.shape == (4, 60, 40, 3)  # shorter side 40 of the portrait display, aspect kept
    frames, _ = collect(iter_frames(vids["indexed_rot"], 5, backend=backend))  # 270: white block top-left
    assert frames.shape[1:] == (48, 64, 3)
    assert (frames[:, :10, :14].mean() > 240) and (frames[:, -10:, -14:].mean() < 200)


@pytest.mark.parametrize("name,size", [("cfr", None), ("ntsc", 40), ("vfr", (50, 70)), ("rot", 30)])
def test_backends_agree(vids, name, size):
    a, ta = collect(iter_frames(vids[name].path, 3.0, size=size, backend="pyav"))
    b, tb = collect(iter_frames(vids[name].path, 3.0, size=size, backend="decord"))
    assert np.array_equal(ta, tb)  # bit-identical times: both use the integer pts
    assert a.shape == b.shape
    diff = np.abs(a.astype(int) - b).mean()
    assert diff < (0.5 if size is None else 3.0)  # same decoder; scalers differ slightly when resizing


def test_probe(vids):
    info = probe(vids["ntsc"].path)
    assert info.rotation == 0 and (info.width, info.height) == (96, 64)
    assert abs(info.avg_fps - 30000 / 1001) < 1e-6 and abs(info.duration_s - 4.0) < 0.05
    assert info.num_frames == len(vids["ntsc"].frame_times)
    assert info.backend == video.AUTO_ORDER[0] == "pyav"  # the measured faster backend goes first
    assert probe(vids["ntsc"].path, backend="decord").backend == "decord"


def test_lazy_and_streaming(vids, monkeypatch):
    calls = []
    real = _pyav.to_rgb
    monkeypatch.setattr(_pyav, "to_rgb", lambda *a: calls.append(1) or real(*a))
    it = iter_frames(vids["long"].path, 10, batch_size=4, backend="pyav")
    assert calls == []  # probing decodes nothing for the output
    frames, times = next(it)
    assert len(frames) == 4 and len(calls) == 4  # one batch converted, not the video
    it.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_constant_memory(vids, backend):
    tracemalloc.start()
    n = 0
    for frames, _ in iter_frames(vids["long"].path, 10, batch_size=4, backend=backend):
        n += len(frames)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    total = n * 64 * 96 * 3
    assert n == 100 and peak < total / 4  # only a few batches alive at any time, never the whole video


@pytest.mark.parametrize("order", [("pyav", "decord"), ("decord", "pyav")])
def test_failure_mid_file_falls_back_without_gaps(vids, monkeypatch, order):
    ref_f, ref_t = collect(iter_frames(vids["cfr"].path, 5, batch_size=3, backend="pyav"))
    module = {"pyav": sparse, "decord": _decord}[order[0]]  # PyAV reads through the sparse path by default
    real = module.read

    def flaky(*args, **kwargs):
        it = real(*args, **kwargs)
        yield next(it)
        yield next(it)
        raise VideoReadError("x.mp4", "decode", "simulated decode error")

    monkeypatch.setattr(video, "AUTO_ORDER", order)
    monkeypatch.setattr(module, "read", flaky)
    f, t = collect(iter_frames(vids["cfr"].path, 5, batch_size=3, backend="auto"))
    assert np.array_equal(t, ref_t) and np.abs(f.astype(int) - ref_f).mean() < 0.5  # no gap, no duplicate
    with pytest.raises(VideoReadError, match="simulated"):
        collect(iter_frames(vids["cfr"].path, 5, batch_size=3, backend=order[0]))


def test_decord_failure_becomes_video_read_error(vids, monkeypatch):
    def broken(*args, **kwargs):
        raise _decord.DecordFailed("simulated decord bug")
        yield

    monkeypatch.setattr(_decord, "read", broken)
    with pytest.raises(VideoReadError, match="decord: simulated") as info:
        collect(iter_frames(vids["cfr"].path, 5, backend="decord"))
    assert info.value.stage == "decode"
    monkeypatch.setattr(video, "AUTO_ORDER", ("decord", "pyav"))
    assert len(collect(iter_frames(vids["cfr"].path, 5, backend="auto"))[1]) == 20  # PyAV took over


def test_bad_arguments(vids):
    with pytest.raises(ValueError):
        iter_frames(vids["cfr"].path, 0)
    with pytest.raises(ValueError):
        iter_frames(vids["cfr"].path, 1, backend="opencv")


# ---- bad input ----

@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    return make_fault_files(tmp_path_factory.mktemp("faults"))


EXPECTED = {  # name -> (stage, words in the reason)
    "missing": ("open", "not found"), "zero_byte": ("open", "empty"), "not_video": ("open", "not a readable"),
    "corrupt": ("open", "corrupt"), "truncated_index": ("open", "corrupt"), "audio_only": ("open", "no video"),
    "one_frame": ("probe", "1 frame"), "unreadable": ("open", "permission"), "truncated": ("decode", "truncated"),
}


@pytest.mark.parametrize("backend", ["auto", "pyav", "decord"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_raises_clear_error(faults, name, backend):
    path = faults[name]
    if name == "unreadable" and not unreadable_is_enforced(path):
        pytest.skip("running as a user that can read chmod-000 files (root): permissions are not enforced")
    stage, words = EXPECTED[name]
    with pytest.raises(VideoReadError) as info:
        collect(iter_frames(path, 2.0, backend=backend))
    err = info.value
    assert err.stage == stage and words in err.reason and str(path) in str(err)


def test_truncated_yields_good_frames_then_raises(faults):
    got = []
    with pytest.raises(VideoReadError, match="truncated"):
        for _frames, times in iter_frames(faults["truncated"], 10.0, batch_size=1, backend="auto"):
            got.extend(times)
    assert len(got) >= 10 and max(got) < 1.6  # the file is cut near 1.5 s of 3 s


def test_good_special_cases_read(faults):
    for name, shape in [("ntsc_2997", (64, 96)), ("vfr", (64, 96)), ("rotated_90", (96, 64))]:
        frames, times = collect(iter_frames(faults[name], 2.0))
        assert frames.shape[1:3] == shape and len(times) >= 4 and np.all(np.diff(times) > 0)


def test_permission_denied_reported(faults, monkeypatch):
    # root reads chmod-000 files, so simulate the kernel's answer for an ordinary user
    monkeypatch.setattr(video_types.os, "access", lambda p, mode: False)
    with pytest.raises(VideoReadError, match="permission denied") as info:
        iter_frames(faults["ntsc_2997"], 2.0)
    assert info.value.stage == "open"
