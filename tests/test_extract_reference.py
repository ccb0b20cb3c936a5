"""Reference-loader parity: egoflow's frame rules and transforms against indices and pixels recorded from the
EgoVLPv2 loaders (facebookresearch/EgoVLPv2@550c059, run outside the repo on the generated index videos; see
tests/fixtures/recipes/gen_video.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from egoflow.extract import reference as R

FIX = Path(__file__).parent / "fixtures" / "recipes"
sys.path.insert(0, str(FIX))
from gen_video import read_index  # noqa: E402

CASES = json.loads((FIX / "reference_loaders.json").read_text())["cases"]
ARR = np.load(FIX / "reference_loaders.npz")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _indices(c, path):
    a, rule = c["args"], c["rule"]
    vlen, fps = R.count_frames(path)
    if rule == "egoclip-cv2":
        return R.egoclip_indices(a["start"], a["end"], a["frames"], vlen)
    if rule == "epic-decord":
        return R.epic_indices(a["start"], a["end"], a["frames"], fps)
    if rule == "charades-cv2":
        return R.charades_indices(a["frames"], vlen)
    return R.start_end_indices(a["start"], a["end"], a["frames"], a["rate"], vlen)


def _frames(path, idx, pre_resize=0):
    order = np.argsort(idx, kind="stable")
    fr = np.concatenate([f for f, _ in R.read_frames(path, sorted(idx), pre_resize=pre_resize)])
    return fr[np.argsort(order)]


@pytest.mark.parametrize("c", CASES, ids=[f"{c['recipe']}-{i}" for i, c in enumerate(CASES)])
def test_frames_and_pixels_equal_the_reference_loader(c):
    # charades reads the 480p originals; every other reference reads the height-256 copies
    path = FIX / ("index30.mp4" if c["rule"] == "charades-cv2" else "index30_ht256.mp4")
    idx = _indices(c, path)
    fr = _frames(path, idx)
    assert [read_index(f) for f in fr] == c["shown"]  # the frames the reference SHOWS (cv2 off-by-one included)
    mode = "short224-crop224" if c["rule"] == "epic-decord" else "crop256-224"
    x = R.transform(fr, mode, MEAN, STD).numpy()
    assert list(x.shape) == c["shape"] and x.dtype == np.float32
    p = x[::max(1, len(x) // 4)][:4, :, ::16, ::16]
    np.testing.assert_allclose(p, ARR[c["key"] + "_patch"], atol=1e-4)
    np.testing.assert_allclose(x.mean((2, 3)), ARR[c["key"] + "_mean"], atol=1e-4)


def test_decoder_pre_resize_is_close_to_the_offline_ffmpeg_copy():
    """The decoder's height-256 resize vs the file pre-resized offline (bicubic 4:2:0 + x264 CRF 23): what is
    left is the offline re-encode; measured 2.1/255 mean on this synthetic texture (docs/recipes.md)."""
    idx = list(range(0, 150, 10))
    a = _frames(FIX / "index30.mp4", idx, pre_resize=256)
    b = _frames(FIX / "index30_ht256.mp4", idx)
    assert a.shape == b.shape == (len(idx), 256, 454, 3)
    d = np.abs(a.astype(np.float64) - b)
    assert d.mean() < 3.0 and [read_index(f) for f in a] == idx


def test_reference_rules_edge_cases():
    # a clip shorter than F frames repeats its last frame; index 0 and 1 both show frame 0 (cv2 seek to -1)
    assert R.egoclip_indices(0.0, 0.1, 4, 1000) == [0, 0, 1, 1]
    # a clip across a 600 s chunk boundary reads the second chunk past the boundary frame
    idx = R.egoclip_indices(599.5, 600.5, 4, 40000)
    assert idx[0] < 18000 and idx[-1] > 18000
    with pytest.raises(R.ShortVideoError):
        R.charades_indices(32, 20)
    with pytest.raises(R.ShortVideoError):
        R.start_end_indices(0.0, 0.2, 16, 1.87, 6)
    assert R.pre_resize_hw(1080, 1920, 256) == (256, 454)
    with pytest.raises(ValueError):
        R.transform(np.zeros((1, 8, 8, 3), np.uint8), "bicubic", MEAN, STD)


EGO4D = json.loads((FIX / "ego4d_features.json").read_text())


def test_clip_1875fps_features_sit_on_the_ego4d_feature_grid():
    """Ego4D's features (ego4d/features: 32-frame windows every 16 frames at 30 fps, last window back-padded)
    against egoflow's frame-level 1.875 fps samples: feature k of both starts at frame 16k (the index -> time grid
    the annotations use, k / 1.875 s); egoflow's frame is 16k + 8, the centre of stride step k, inside window k
    (whose centre is 16k + 16). Decoded on the index video, and by the sampling rule for 32..240 frames."""
    from egoflow.extract.video import iter_frames
    from egoflow.extract.video_types import sample_times

    fr = np.concatenate([f for f, _ in iter_frames(FIX / "index30.mp4", 1.875, size=None, backend="pyav")])
    shown = [read_index(f) for f in fr]
    wins = EGO4D["windows"]
    assert shown == [16 * k + 8 for k in range(len(wins))]  # 9 features each side on 150 frames
    for k, (f, w) in enumerate(zip(shown, wins)):
        assert f in w["shown"] and len(w["shown"]) == 32
        if k < len(wins) - 1:  # not back-padded: window k holds frames 16k .. 16k + 31
            assert w["shown"] == list(range(16 * k, 16 * k + 32)) and f == w["shown"][0] + 8
    assert wins[-1]["shown"] == list(range(118, 150))  # back-padded: the last 32 frames
    for n, grid in EGO4D["grid"].items():
        n = int(n)
        idx, _ = sample_times(np.arange(n) / 30, n / 30, 1.875)
        starts = [round(s * 30) for s, _ in grid]
        assert starts[:-1] == [16 * j for j in range(len(grid) - 1)] and grid[-1][1] * 30 <= n + 1e-6
        extra = 1 if n % 16 == 0 or n % 16 > 8 else 0  # egoflow's last step centre inside the video, no full window
        assert len(idx) == len(grid) + extra, n
        for k, f in enumerate(idx):
            s, e = grid[min(k, len(grid) - 1)]
            assert s * 30 - 1e-6 <= f < e * 30 - 1e-6, (n, k)  # every egoflow frame lies in window k (or the last)


QFVS = json.loads((FIX / "qfvs_loader.json").read_text())
QARR = np.load(FIX / "qfvs_loader.npz")


def test_qfvs_windows_and_pixels_equal_the_reference_with_its_crop_fixed():
    """EgoVLPv2's QFVS extraction (5 consecutive images per window, drop_last, RandomResizedCrop(224, bicubic))
    recorded on JPGs of the index video at 6.4 images/s (32 images) with the crop fixed to the centre square:
    the egovlpv2-qfvs recipe's windows (tail=drop) hold the same frames, and its preprocessing (shorter side 224,
    centre crop) gives pixels within 0.03 on average (JPEG q95 and PIL's bicubic vs the decoder's)."""
    from types import SimpleNamespace

    import torch

    from egoflow.extract.fused.extract import iter_windows
    from egoflow.extract.pipeline import ExtractConfig
    from egoflow.recipes import get_recipe

    spec = get_recipe("egovlpv2-qfvs").encoder_spec()
    assert (spec.frames, spec.tail, spec.transform, spec.pre_resize) == (5, "drop", "", 0)
    cfg = ExtractConfig(fps=QFVS["images_per_s"], window=5, stride=5)

    def windows(tail):
        enc = SimpleNamespace(cfg=SimpleNamespace(num_frames=5, frame_rule="", tail=tail), image_size=224)
        return np.concatenate([w for w, _ in iter_windows(FIX / "index30.mp4", enc, cfg)])
    w = windows(spec.tail)
    assert [[read_index(f) for f in win] for win in w] == [r["shown"] for r in QFVS["windows"]]  # 6: tail dropped
    assert len(windows("")) == 7  # egoflow's default pads the 2-image tail into a 7th window
    from egoflow.extract.fused.encoder import FusedEncoder

    me = SimpleNamespace(cfg=SimpleNamespace(transform=spec.transform), image_size=224, device="cpu",
                         dtype=torch.float32, mean=torch.tensor(MEAN).view(1, 3, 1, 1),
                         std=torch.tensor(STD).view(1, 3, 1, 1))  # the encoder's settings at egovlpv2-base's 224 px
    diffs = []
    for j, win in enumerate(w):
        x = FusedEncoder.preprocess(me, win).numpy()
        assert list(x.shape) == QFVS["windows"][j]["shape"]
        diffs.append(np.abs(x[:, :, ::16, ::16] - QARR[f"qfvs{j}_patch"]).mean())
        np.testing.assert_allclose(x.mean((2, 3)), QARR[f"qfvs{j}_mean"], atol=0.03)
    assert np.mean(diffs) < 0.03  # measured 0.024; crop256-224 (the recipe's version 1) gave 0.034
