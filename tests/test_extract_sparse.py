"""Sparse decoding (egoflow.extract.sparse) gives exactly the frames and times of a full decode.

Every case encodes a tiny video with PyAV (96x64, 3 s) in a GOP structure that matters for dependencies and
compares iter_frames(decode="sparse") with iter_frames(decode="full") bit for bit.
"""
from __future__ import annotations

import fractions

import av
import numpy as np
import pytest

from egoflow.cli import build_parser
from egoflow.extract import _pyav, sparse
from egoflow.extract.results import Summary, VideoResult
from egoflow.extract.video import iter_frames

X264 = {
    "ibbp-pyramid": {"x264-params": "bframes=3:b-pyramid=normal:keyint=15:min-keyint=15:scenecut=0"},
    "ibbp-flat": {"x264-params": "bframes=2:b-pyramid=none:keyint=15:min-keyint=15:scenecut=0"},
    "ippp": {"x264-params": "bframes=0:keyint=30:min-keyint=30:scenecut=0"},
    "all-intra": {"x264-params": "keyint=1"},
    "open-gop": {"x264-params": "bframes=3:open-gop=1:keyint=15:min-keyint=15:scenecut=0"},
}
X265 = {
    "hevc-open-gop": {"x265-params": "keyint=15:bframes=3:log-level=error"},  # x265's default: CRA + RASL
    "hevc-closed": {"x265-params": "keyint=15:bframes=3:open-gop=0:log-level=error"},
    # sub-layers 0-2: TRAIL_N pictures in sub-layer 1 are referenced by sub-layer 2, so they must be decoded
    "hevc-temporal-layers": {"x265-params": "keyint=15:bframes=3:temporal-layers=3:log-level=error"},
}
HAVE_X265 = "libx265" in av.codecs_available


def encode(path, codec="libx264", opts=None, vfr=False, n=90, size=(96, 64), fps=30, fmt="yuv420p"):
    """A moving textured picture (so P/B frames really predict) of n frames; VFR: irregular gaps of 0.5-1.5
    frame periods in a 1/90000 time base."""
    rng = np.random.default_rng(0)
    W, H = size
    tb = fractions.Fraction(1, 90000) if vfr else fractions.Fraction(1, fps)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = W, H, fmt
        s.options = dict(opts or {})
        s.codec_context.time_base = tb
        if vfr:
            s.time_base = tb
        base = rng.integers(0, 255, (H + 64, W + 64, 3), dtype=np.uint8)
        p = 0
        for i in range(n):
            img = base[(2 * i) % 64:(2 * i) % 64 + H, (3 * i) % 64:(3 * i) % 64 + W].copy()
            img[(5 * i) % H:(5 * i) % H + 8] = (37 * i) % 255
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = p, tb
            p += int(rng.choice([1500, 3000, 4500])) if vfr else 1
            for pk in s.encode(f):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return path


def both(path, fps, size=None, batch=7):
    notes = []
    out = []
    for decode in ("full", "sparse"):
        parts = list(iter_frames(path, fps, size=size, batch_size=batch, decode=decode,
                                 notes=notes if decode == "sparse" else None))
        out.append((np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])))
    return out[0], out[1], notes


def fed(path, fps):
    c, s = _pyav.open_video(path)
    try:
        plan, reason = sparse.make_plan(path, c, s, fps, 0)
    finally:
        c.close()
    return plan, reason


def assert_same(full, sp):
    assert full[0].shape == sp[0].shape and len(full[0]) > 0
    assert np.array_equal(full[0], sp[0]), "sparse frames differ from the full decode"
    assert np.array_equal(full[1], sp[1]), "sparse times differ from the full decode"


@pytest.mark.parametrize("vfr", [False, True], ids=["cfr", "vfr"])
@pytest.mark.parametrize("name", list(X264) + list(X265))
def test_sparse_equals_full(tmp_path, name, vfr):
    if name in X265 and not HAVE_X265:
        pytest.skip("PyAV's FFmpeg has no libx265 encoder: HEVC not covered in this run")
    codec, opts = ("libx265", X265[name]) if name in X265 else ("libx264", X264[name])
    path = encode(tmp_path / f"{name}.mp4", codec, opts, vfr=vfr)
    for fps in (1.875, 7.0, 45.0):  # sparse, dense, and above the source rate (repeated frames)
        full, sp, notes = both(path, fps)
        assert_same(full, sp)
        assert notes == [], notes  # judged, not silently decoded fully
    plan, _ = fed(path, 1.875)
    assert plan.fed < len(plan.pts)  # at 1.875 fps something is really skipped


@pytest.mark.skipif(not HAVE_X265, reason="PyAV's FFmpeg has no libx265 encoder: HEVC sub-layers not covered")
def test_hevc_sub_layer_non_reference_pictures_below_the_top_layer_are_kept(tmp_path):
    path = encode(tmp_path / "t.mp4", "libx265", X265["hevc-temporal-layers"])
    c, s = _pyav.open_video(path)
    pts, _, kinds, _ = sparse.demux(path, c, s)
    c.close()
    top = max(k.tid for k in kinds)
    low = [k.slnr and k.tid < top for k in kinds]
    assert top == 2 and any(low)  # the encoder really made them
    feed = sparse.choose_feed(pts, np.arange(len(pts)) == len(pts) - 1, kinds)  # only the last packet needed
    last_gop = np.flatnonzero([k.closed or k.cra for k in kinds])[-1]
    assert all(feed[i] for i in range(last_gop, len(pts) - 1) if low[i])  # needed by the top layer


def test_sparse_skips_what_it_should(tmp_path):
    intra = fed(encode(tmp_path / "i.mp4", opts=X264["all-intra"]), 1.875)[0]
    assert intra.fed == len(intra.samples)  # the samples' frames, nothing else
    ibbp = fed(encode(tmp_path / "b.mp4", opts=X264["ibbp-flat"]), 1.875)[0]
    assert ibbp.fed <= len(ibbp.pts) * 0.6  # 90 frames, 6 samples: the B frames no sample needs and GOP tails


def test_resized_and_resumed_frames_equal(tmp_path):
    path = encode(tmp_path / "b.mp4", opts=X264["ibbp-pyramid"])
    full, sp, _ = both(path, 5.0, size=32, batch=4)
    assert_same(full, sp)
    c, s = _pyav.open_video(path)
    c.close()
    from egoflow.extract.video import probe

    info = probe(path)
    later = list(sparse.read(str(path), info, 5.0, full[0].shape[1:3], 4, start_k=5))  # resume after 5 samples
    assert np.array_equal(np.concatenate([b[0] for b in later]), full[0][5:])
    assert np.array_equal(np.concatenate([b[1] for b in later]), full[1][5:])


def test_annex_b_transport_stream(tmp_path):
    path = encode(tmp_path / "b.ts", opts=X264["ibbp-pyramid"])  # MPEG-TS: start codes, not length prefixes
    full, sp, notes = both(path, 3.0)
    assert_same(full, sp)
    assert notes == [] and fed(path, 3.0)[0].fed < 90


def test_intra_only_codec(tmp_path):
    path = encode(tmp_path / "m.mkv", "mjpeg", fmt="yuvj420p")
    full, sp, notes = both(path, 2.0)
    assert_same(full, sp)
    assert notes == [] and fed(path, 2.0)[0].fed == 6  # 6 samples, nothing else


def test_unknown_codec_decodes_fully_and_says_why(tmp_path):
    path = encode(tmp_path / "v.mp4", "mpeg4", {"bf": "2", "g": "15"})
    full, sp, notes = both(path, 3.0)
    assert_same(full, sp)
    assert notes == ["codec mpeg4: frame dependencies unknown to sparse decoding"]
    res = [VideoResult("v", "done", str(path), note=notes[0]), VideoResult("w", "done", "w", note=notes[0])]
    line = Summary(res, 1.0).line()
    assert line.count("mpeg4") == 1 and "decoded fully, not sparse: 2 video(s)" in line


def test_plan_surprise_falls_back_to_full(tmp_path, monkeypatch):
    path = encode(tmp_path / "b.mp4", opts=X264["ibbp-flat"])
    real = sparse.make_plan

    def wrong(*a, **k):  # the second pass then finds packets that differ from the plan
        plan, reason = real(*a, **k)
        plan.pts = plan.pts.copy()
        plan.pts[40:] += 1
        return plan, reason

    monkeypatch.setattr(sparse, "make_plan", wrong)
    full, sp, notes = both(path, 7.0, batch=3)
    assert_same(full, sp)  # the samples before the surprise are kept, the rest come from a full decode
    assert len(notes) == 1 and notes[0].startswith("sparse decode fell back to full")


def test_cli_decode_option():
    ap = build_parser()
    assert ap.parse_args(["extract", "v.mp4", "--store", "s"]).decode == "sparse"
    assert ap.parse_args(["extract", "v.mp4", "--store", "s", "--decode", "full"]).decode == "full"
    with pytest.raises(SystemExit):
        ap.parse_args(["extract", "v.mp4", "--store", "s", "--decode", "fast"])
    with pytest.raises(ValueError, match="decode must be one of"):
        iter_frames("v.mp4", 1.0, decode="fast")


def test_rotated_ntsc_phone_video(tmp_path):
    from egoflow.datasets.synthetic.videos import make_video

    v = make_video(tmp_path / "r.mp4", [(0, 3, "red kettle")], fps=fractions.Fraction(30000, 1001), size=(48, 64),
                   gop_s=0.5, rotation=90)
    full, sp, notes = both(v.path, 1.875, size=32)
    assert_same(full, sp)
    assert notes == [] and full[0].shape[1:] == (42, 32, 3)  # portrait after the display rotation


def test_cli_decode_choice_travels_with_the_options_to_every_worker():
    """--decode is a field of the extraction options the flows carry (--prefect, --submit): no local-only flag."""
    from dataclasses import asdict

    from egoflow.cli import build_parser
    from egoflow.cli.args import options_from_args, spec_from_args
    from egoflow.extract.pipeline import ExtractConfig

    a = build_parser().parse_args(["extract", "v.mp4", "--store", "s.zarr", "--decode", "full", "--prefect"])
    cfg = options_from_args(a, spec_from_args(a))
    assert cfg.decode == "full" and ExtractConfig(**asdict(cfg)) == cfg  # the flow parameter round-trips


def test_extraction_stores_the_same_features_either_way_and_notes_full_decodes(tmp_path):
    from egoflow.extract.clip import create_encoder
    from egoflow.extract.pipeline import ExtractConfig, extract
    from egoflow.features_store import FeatureStore

    vids = tmp_path / "v"
    vids.mkdir()
    encode(vids / "b.mp4", opts=X264["ibbp-pyramid"])
    encode(vids / "m.mp4", "mpeg4", {"bf": "2", "g": "15"})
    enc = create_encoder("egoflow-tiny-ViT", "none", precision="fp32", device="cpu")
    out = {}
    for decode in ("sparse", "full"):
        url = str(tmp_path / f"{decode}.zarr")
        summary, name = extract([str(vids)], url, enc, ExtractConfig(fps=3.0, decode=decode), progress=False)
        out[decode] = (summary, [FeatureStore(url).read_video(name, uid) for uid in ("b", "m")])
    for s, f in zip(out["sparse"][1], out["full"][1]):
        assert np.array_equal(s.feats, f.feats) and np.array_equal(s.times, f.times)
    assert "decoded fully, not sparse: 1 video(s) (codec mpeg4" in out["sparse"][0].line()
    assert "decoded fully" not in out["full"][0].line()  # nothing asked for sparse there
