"""Fused extraction (egoflow.extract.fused.extract + encoder): dual window sets through the pipeline and the CLI,
tail windows, query-conditioned sets with reuse (equal to the full model per query), the store reader.

Random-initialised tiny models (egovlpv2-tiny, clip-fused-egoflow-tiny-ViT); a toy BPE vocabulary written here."""
import json

import numpy as np
import pytest

from egoflow.cli import main
from egoflow.datasets.synthetic.videos import make_video
from egoflow.extract.fused.encoder import create_fused_encoder
from egoflow.extract.fused.extract import iter_windows, merge_queries, queries_from_file
from egoflow.extract.fused.tokenizer import write_tiny_vocab
from egoflow.extract.pipeline import ExtractConfig, extract
from egoflow.extract.query import extract_conditioned
from egoflow.extract.windows import window_starts, window_times
from egoflow.features_store import FeatureStore, StoreError, VideoMissing
from egoflow.features_store.conditioned import (
    conditioned_queries,
    is_conditioned,
    read_conditioned,
    read_conditioned_scores,
)

WORDS = ["person", "opens", "the", "door", "red", "kettle", "blue", "mug"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("fvideos")
    make_video(d / "vid-a.mp4", [(0, 2, "red kettle"), (2, 4.2, "blue mug")], fps=10, size=(48, 40), seed=1)
    return d


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return str(write_tiny_vocab(tmp_path_factory.mktemp("tok"), WORDS))


@pytest.fixture(scope="module")
def enc(tok):
    return create_fused_encoder("egovlpv2-tiny", "none", tok, num_frames=4, precision="fp32", device="cpu")


def test_dual_windows_cover_the_tail(videos, enc, tmp_path):
    cfg = ExtractConfig(fps=5.0, stride=3)
    summary, name = extract([str(videos)], str(tmp_path / "s.zarr"), enc, cfg, progress=False)
    assert summary.ok and name == "fused-egovlpv2-tiny-none-5fps-w4s3"
    vf = FeatureStore(str(tmp_path / "s.zarr")).read_video(name, "vid-a")
    n = {"frames": 0}
    windows = [w for c, _ in iter_windows(videos / "vid-a.mp4", enc, cfg, counter=n) for w in c]
    starts = window_starts(n["frames"], 4, 3)
    assert n["frames"] == 21 and len(starts) == len(vf.times) == len(windows) == 7
    assert (starts[-1] + 4) > n["frames"]  # the last window runs past the end: kept, padded
    tail = windows[-1]
    real = n["frames"] - starts[-1]
    assert all((tail[k] == tail[real - 1]).all() for k in range(real, 4))  # last real frame repeated, not zeros
    np.testing.assert_allclose(vf.feats[-1], enc.encode_windows(tail[None])[0], atol=2e-3)  # fp16 store
    assert np.abs(vf.feats).sum(1).min() > 0 and np.allclose(np.linalg.norm(vf.feats, axis=1), 1, atol=2e-3)
    assert vf.attrs["window"] == {"frames": 4, "stride": 3}
    from egoflow.extract.video import iter_frames

    t = np.concatenate([ts for _, ts in iter_frames(videos / "vid-a.mp4", 5.0, size=enc.image_size)])
    np.testing.assert_allclose(vf.times, window_times(t, 4, 3))  # tail time: centre of its real frames


def test_conditioned_reuse_equals_full_model(videos, enc, tmp_path):
    store = FeatureStore(str(tmp_path / "c.zarr"))
    qs = ["person opens the door", "red kettle"]
    cfg = ExtractConfig(fps=5.0)
    s1, name = extract_conditioned([str(videos)], store, enc, qs, cfg, progress=False)
    s2, _ = extract_conditioned([str(videos)], store, enc, qs, cfg, feature_set="full", progress=False,
                                    reuse=False)
    assert s1.ok and s2.ok and is_conditioned(store, name)
    a, b = read_conditioned(store, name, "vid-a", qs[0]), read_conditioned(store, "full", "vid-a", qs[0])
    assert a.feats.shape == (6, enc.fused_dim) and np.abs(a.feats).max() > 0.1
    np.testing.assert_allclose(a.feats, b.feats, atol=2e-3)  # float16 store of numbers equal to ~1e-6
    assert conditioned_queries(store, name, "vid-a") == qs
    sc = read_conditioned_scores(store, name, "vid-a", qs[1])
    assert sc.shape == (6,) and ((sc > 0) & (sc < 1)).all()
    np.testing.assert_allclose(sc, read_conditioned_scores(store, "full", "vid-a", qs[1]), atol=1e-5)
    with pytest.raises(VideoMissing, match="was not extracted"):
        read_conditioned(store, name, "vid-a", "blue mug")
    with pytest.raises(StoreError, match="not query-conditioned"):
        extract([str(videos)], store, enc, ExtractConfig(fps=5.0), feature_set="dual", progress=False)
        read_conditioned(store, "dual", "vid-a", qs[0])
    assert store.verify() == []
    # rerun: the clip is complete with these queries -> skipped
    s3, _ = extract_conditioned([str(videos)], store, enc, qs[:1], cfg, progress=False)
    assert s3.count("skipped") == 1


def test_conditioned_features_depend_on_query_when_fused(videos, tok, tmp_path):
    import torch

    e = create_fused_encoder("egovlpv2-tiny", "none", tok, num_frames=4, precision="fp32", device="cpu",
                             batch_size=3)
    with torch.no_grad():
        for p in e.model.alphas():
            p.fill_(1.0)
    clips = next(iter(iter_windows(videos / "vid-a.mp4", e, ExtractConfig(fps=5.0))))[0]
    tokens = e.window_tokens(clips)
    f1, s1 = e.conditioned(tokens, "red kettle")
    f2, _ = e.conditioned(tokens, "blue mug")
    assert np.abs(f1 - f2).max() > 1e-4 and s1.shape == (len(clips),) and ((s1 >= 0) & (s1 <= 1)).all()
    for p in e.model.alphas():
        p.data.zero_()
    f1, _ = e.conditioned(tokens, "red kettle")
    f2, _ = e.conditioned(tokens, "blue mug")
    np.testing.assert_array_equal(f1, f2)  # alpha = 0: the text cannot change the video feature


def test_cli_fused_dual_and_queries(videos, tok, tmp_path):
    store = str(tmp_path / "cli.zarr")
    rc = main(["extract", str(videos), "--store", store, "--encoder", "fused", "--model", "egovlpv2-tiny",
               "--num-frames", "4", "--fps", "5", "--tokenizer", tok, "--precision", "fp32", "--quiet"])
    assert rc == 0
    q = tmp_path / "q.json"
    q.write_text(json.dumps({"vid-a": ["the door"]}))
    rc = main(["extract", str(videos), "--store", store, "--encoder", "fused", "--model", "egovlpv2-tiny",
               "--num-frames", "4", "--fps", "5", "--tokenizer", tok, "--precision", "fp32", "--quiet",
               "--queries", str(q)])
    assert rc == 0
    s = FeatureStore(store, mode="r")
    assert s.feature_sets() == ["fused-egovlpv2-tiny-none-5fps-w4s4", "fused-egovlpv2-tiny-none-5fps-w4s4-query"]
    assert read_conditioned(s, s.feature_sets()[1], "vid-a", "the door").feats.shape[0] == \
        s.read_video(s.feature_sets()[0], "vid-a").feats.shape[0]
    # one flag for frames per window: --window (the clip spelling) sets the fused F too; two values are refused
    assert main(["extract", str(videos), "--store", store, "--encoder", "fused", "--model", "egovlpv2-tiny",
                 "--window", "4", "--fps", "5", "--tokenizer", tok, "--precision", "fp32", "--quiet"]) == 0
    assert FeatureStore(store, mode="r").feature_sets()[0] == "fused-egovlpv2-tiny-none-5fps-w4s4"
    with pytest.raises(SystemExit) as e:
        main(["extract", str(videos), "--store", store, "--encoder", "fused", "--num-frames", "4", "--window", "8"])
    assert e.value.code == 2


def test_clip_fused_dual_equals_frozen_clip_windows(videos, tmp_path):
    from egoflow.extract.clip import create_encoder

    e = create_fused_encoder("clip-fused-egoflow-tiny-ViT", "none", num_frames=4, precision="fp32", device="cpu")
    c = create_encoder("egoflow-tiny-ViT", "none", precision="fp32", device="cpu")
    url = str(tmp_path / "cf.zarr")
    _, n1 = extract([str(videos)], url, e, ExtractConfig(fps=5.0), progress=False)
    _, n2 = extract([str(videos)], url, c, ExtractConfig(fps=5.0, window=4), progress=False)
    s = FeatureStore(url)
    a, b = s.read_video(n1, "vid-a"), s.read_video(n2, "vid-a")
    # full windows are identical; the tail differs by design (fused pads by repetition, CLIP averages real frames)
    np.testing.assert_allclose(a.feats[:-1], b.feats[:-1], atol=2e-3)
    np.testing.assert_allclose(a.times, b.times)


def test_queries_from_file(tmp_path):
    nlq = {"videos": [{"video_uid": "v", "clips": [{"clip_uid": "c1", "annotations": [
        {"language_queries": [{"query": "where is the mug?"}, {"query": "where is the mug?"}, {"x": 1}]}]}]}]}
    p = tmp_path / "nlq.json"
    p.write_text(json.dumps(nlq))
    assert queries_from_file(p) == {"c1": ["where is the mug?"]}
    (tmp_path / "q.txt").write_text("a\n\nb\n")
    assert queries_from_file(tmp_path / "q.txt") == ["a", "b"]
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(ValueError, match="expected"):
        queries_from_file(tmp_path / "bad.json")


def test_repeated_queries_files_merge():
    """``--queries A --queries B``: per-video files join per uid (order kept, once each); .txt lists join; a .txt
    list (every video) with a per-video file is refused."""
    assert merge_queries([{"a": ["x", "y"]}, {"a": ["y", "z"], "b": ["w"]}]) == {"a": ["x", "y", "z"], "b": ["w"]}
    assert merge_queries([["x"], ["x", "y"]]) == ["x", "y"]
    with pytest.raises(ValueError, match="cannot be combined"):
        merge_queries([["x"], {"a": ["y"]}])
