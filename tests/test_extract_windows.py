"""Clip windows: start rule, streaming packer vs a direct construction, padded tail on a real video."""
import numpy as np
import pytest

from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.video import iter_frames, iter_windows
from egoflow.extract.windows import WindowPacker, window_starts, window_times


def test_window_starts_hand_worked():
    assert window_starts(10, 4, 2) == [0, 2, 4, 6]  # last window [6, 10) ends exactly at the end
    assert window_starts(11, 4, 2) == [0, 2, 4, 6, 8]  # [8, 11) + 1 padded frame: frame 10 kept
    assert window_starts(3, 4, 2) == [0]  # shorter than one window: one padded window
    assert window_starts(10, 2, 4) == [0, 4, 8]  # stride > window skips frames by design, tail kept
    assert window_starts(11, 2, 4) == [0, 4, 8]  # frame 10 would start a window after [8, 10): no
    assert window_starts(0, 4, 2) == []
    assert window_starts(16, 16, 16) == [0]


def test_window_times():
    t = np.arange(5) + 0.5
    np.testing.assert_allclose(window_times(t, 4, 2), [(0.5 + 3.5) / 2, (2.5 + 4.5) / 2])


def reference(frames, times, window, stride):
    out = []
    n = len(frames)
    for s in window_starts(n, window, stride):
        idx = [min(i, n - 1) for i in range(s, s + window)]
        out.append((frames[idx], (times[s] + times[min(s + window, n) - 1]) / 2))
    return out


@pytest.mark.parametrize("n,window,stride", [(1, 4, 2), (10, 4, 2), (11, 4, 2), (23, 8, 8), (23, 2, 5), (40, 16, 4)])
def test_packer_matches_reference_for_any_batching(n, window, stride):
    rng = np.random.default_rng(n * 100 + window)
    frames = rng.integers(0, 255, size=(n, 2, 3, 3), dtype=np.uint8)
    times = np.sort(rng.uniform(0, 100, n))
    packer, got, i = WindowPacker(window, stride), [], 0
    while i < n:
        b = int(rng.integers(1, 7))
        got += packer.push(frames[i:i + b], times[i:i + b])
        assert len(packer.frames) <= window + stride + 7  # bounded buffer
        i += b
    got += packer.finish()
    ref = reference(frames, times, window, stride)
    assert len(got) == len(ref)
    for (c, t), (rc, rt) in zip(got, ref):
        assert c.shape == (window, 2, 3, 3) and np.array_equal(c, rc) and t == pytest.approx(rt)


def test_iter_windows_on_video_pads_tail(tmp_path):
    v = make_video(tmp_path / "w.mp4", [(0, 2.2, "red kettle")], size=(64, 48))
    frames, times = (np.concatenate(x) for x in zip(*iter_frames(v.path, 5, backend="pyav")))
    assert len(frames) == 11  # 2.2 s at 5 fps
    clips, ctimes = (np.concatenate(x) for x in zip(*iter_windows(v.path, 5, window=4, stride=2, batch_size=2,
                                                                 backend="pyav")))
    assert clips.shape == (5, 4, 48, 64, 3) and clips.dtype == np.uint8
    assert np.array_equal(clips[-1, :3], frames[8:11]) and np.array_equal(clips[-1, 3], frames[10])  # padded
    assert ctimes[-1] == pytest.approx((times[8] + times[10]) / 2)  # centre of its real frames
    assert ctimes[0] == pytest.approx((times[0] + times[3]) / 2)
    assert np.all(np.diff(ctimes) > 0)


def test_iter_windows_rejects_bad_args(tmp_path):
    with pytest.raises(ValueError):
        iter_windows(tmp_path / "x.mp4", 5, window=0, stride=1)
