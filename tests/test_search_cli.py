"""`egoflow search`: query text tower of the set's model, faiss index, moments, contact sheet; errors for an empty
set, a stale index and an index of another feature set."""
import json

import numpy as np
import pytest

from egoflow.cli import main
from egoflow.extract.clip import create_encoder
from egoflow.features_store import FeatureStore
from egoflow.features_store.index import SearchIndexError
from egoflow.search_cli import SearchError, contact_sheet, merge_moments, search

TINY = "egoflow-tiny-ViT"
QUERY = "red kettle on the stove"


@pytest.fixture(scope="module")
def enc():
    return create_encoder(TINY, "none", precision="fp32", device="cpu")


def planted_store(path, enc, videos=("kitchen", "garden", "hall")):
    """Noise steps at 2 fps; video 'kitchen' holds QUERY's own text embedding from 10 to 12 s."""
    store = FeatureStore(str(path))
    fs = "clip-tiny-planted"
    store.create_feature_set(fs, enc.describe(), enc.dim, "float32")
    rng = np.random.default_rng(0)
    q = enc.encode_text([QUERY], tokens=False)[0][0]
    for uid in videos:
        times = (np.arange(60) + 0.5) / 2.0
        feats = rng.standard_normal((60, enc.dim)).astype(np.float32)
        if uid == "kitchen":
            hit = (times >= 10) & (times <= 12)
            feats[hit] = q + 0.01 * rng.standard_normal((hit.sum(), enc.dim))
        store.write_video(fs, uid, feats, times, {"fps": 2.0, "source": {"path": str(path / f"{uid}.mp4")}})
    return store, fs


def test_merge_moments():
    ms = merge_moments([("a", 1.0, 0.9), ("a", 1.5, 0.8), ("a", 5.0, 0.7), ("b", 1.0, 0.95), ("a", 2.4, 0.1)], 1.0)
    assert [(m.video_uid, m.start_sec, m.end_sec, m.score) for m in ms] == [
        ("b", 1.0, 1.0, 0.95), ("a", 1.0, 2.4, 0.9), ("a", 5.0, 5.0, 0.7)]
    assert ms[1].best_sec == 1.0 and len(ms[1].hits) == 3


def test_finds_planted_moment_cli(tmp_path, enc, capsys):
    store, fs = planted_store(tmp_path, enc)
    assert main(["search", QUERY, "--store", str(tmp_path), "--feature-set", fs, "-k", "4", "--out",
                 str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "kitchen" in out and "3 thumbnail(s) without a readable source" not in out
    res = json.loads((tmp_path / "out" / "search.json").read_text())
    assert all(h["video_uid"] == "kitchen" and 10 <= h["time"] <= 12 and h["score"] > 0.99 for h in res["hits"])
    assert [(m["video_uid"], m["start_sec"], m["end_sec"]) for m in res["moments"]] == [("kitchen", 10.25, 11.75)]
    assert (tmp_path / "out" / "search.png").stat().st_size > 1000
    assert (tmp_path.parent / f"{tmp_path.name}.index" / fs / "index.json").exists()  # saved beside the store


def test_approximate_index_and_exact_flag(tmp_path, enc, capsys):
    store, fs = planted_store(tmp_path, enc)  # 180 steps: approximate from 100 on
    approx = search(store, fs, QUERY, 4, encoder=enc, approx_min_rows=100)
    assert approx["index"]["type"] == "ivfpq" and approx["index"]["rows"] == 180
    assert all(h["video_uid"] == "kitchen" and 10 <= h["time"] <= 12 for h in approx["hits"])  # still found
    saved = tmp_path.parent / f"{tmp_path.name}.index" / fs / "index.json"
    assert json.loads(saved.read_text())["build"]["type"] == "ivfpq"
    exact = search(store, fs, QUERY, 4, encoder=enc, approx_min_rows=100, exact=True)
    assert exact["index"]["type"] == "flat" and json.loads(saved.read_text())["build"]["type"] == "flat"
    assert [h["time"] for h in exact["hits"]] == [h["time"] for h in approx["hits"]]
    ix = tmp_path / "myindex"  # an explicit --index that is approximate: --exact rebuilds it flat there
    search(store, fs, QUERY, 3, encoder=enc, index_path=ix, approx_min_rows=100)
    assert json.loads((ix / "index.json").read_text())["build"]["type"] == "ivfpq"
    assert main(["search", QUERY, "--store", str(tmp_path), "--feature-set", fs, "-k", "3", "--index", str(ix),
                 "--exact", "--model", TINY, "--pretrained", "none"]) == 0
    assert "kitchen" in capsys.readouterr().out
    assert json.loads((ix / "index.json").read_text())["build"]["type"] == "flat"


def test_contact_sheet_decodes_source_video(tmp_path, enc):
    from PIL import Image

    from egoflow.datasets.synthetic.videos import make_video
    from egoflow.extract.pipeline import ExtractConfig, extract

    make_video(tmp_path / "a.mp4", [(0, 2, "red kettle"), (2, 4, "blue mug")], fps=30, size=(96, 72), seed=1)
    _, fs = extract([str(tmp_path / "a.mp4")], str(tmp_path / "s.zarr"), enc, ExtractConfig(fps=2.0), progress=False)
    store = FeatureStore(str(tmp_path / "s.zarr"), mode="r")
    res = search(store, fs, "a blue mug", 4, encoder=enc)
    assert len(res["hits"]) == 4 and {h["video_uid"] for h in res["hits"]} == {"a"}
    png, missing = contact_sheet(res, store, tmp_path / "sheet.png")
    assert missing == 0
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[1] == 5 * 160 and img[30:140, :160].std() > 5  # a decoded frame, not a blank tile


def test_empty_stale_and_foreign_index(tmp_path, enc):
    store, fs = planted_store(tmp_path / "s", enc)
    empty = FeatureStore(str(tmp_path / "e"))
    empty.create_feature_set("none-yet", enc.describe(), enc.dim, "float32")
    with pytest.raises(SearchError, match="feature set 'none-yet' of .* has no complete video: nothing to search"):
        search(empty, "none-yet", QUERY, encoder=enc)
    ix = tmp_path / "myindex"
    search(store, fs, QUERY, 3, encoder=enc, index_path=ix)  # first use builds and saves it there
    other = "clip-tiny-other"
    store.create_feature_set(other, {**enc.describe(), "note": "another config"}, enc.dim, "float32")
    store.write_video(other, "kitchen", np.ones((4, enc.dim), np.float32), np.arange(4.0), {"fps": 1.0})
    with pytest.raises(SearchIndexError, match=f"index at {ix} was built from feature set '{fs}', not '{other}'"):
        search(store, other, QUERY, encoder=enc, index_path=ix)
    store.write_video(fs, "late", np.ones((4, enc.dim), np.float32), np.arange(4.0), {"fps": 1.0})
    with pytest.raises(SearchIndexError, match=f"index at {ix} is stale .* videos 3 vs 4"):
        search(store, fs, QUERY, encoder=enc, index_path=ix)
    assert search(store, fs, QUERY, 3, encoder=enc, index_path=ix, rebuild=True)["hits"][0]["video_uid"] == "kitchen"
    res = search(store, fs, "anything", 300, encoder=enc)  # the default index is rebuilt when stale
    assert {h["video_uid"] for h in res["hits"]} == {"kitchen", "garden", "hall", "late"}


def test_demo_hook_writes_contact_sheet(tmp_path, enc):
    from types import SimpleNamespace

    store, fs = planted_store(tmp_path / "s", enc)
    nlq = tmp_path / "nlq_val.json"
    q = {"query": QUERY, "clip_start_sec": 10.0, "clip_end_sec": 12.0, "video_start_sec": 10.0, "video_end_sec": 12.0}
    nlq.write_text(json.dumps({"videos": [{"video_uid": "kitchen", "clips": [{
        "clip_uid": "c1", "video_start_sec": 0.0, "video_end_sec": 30.0, "clip_start_sec": 0.0, "clip_end_sec": 30.0,
        "annotations": [{"annotation_uid": "a1", "language_queries": [q]}]}]}]}))
    from egoflow.search_cli import demo

    ctx = SimpleNamespace(store=str(tmp_path / "s"), feature_set=fs, nlq_val=nlq, out_dir=tmp_path / "run",
                          device="cpu")
    r = demo(ctx)
    assert r["query"] == QUERY and r["top_score"] > 0.99 and r["thumbnails_missing"] == r["moments"]
    assert (tmp_path / "run" / "search.png").exists() and (tmp_path / "run" / "index" / "index.json").exists()
