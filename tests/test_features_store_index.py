"""FeatureIndex: faiss and numpy agree with a plain brute-force search; rows map to (video, time); save/load."""
import numpy as np
import pytest

from egoflow.features_store import FeatureStore
from egoflow.features_store import index as index_mod
from egoflow.features_store.index import FeatureIndex, SearchIndexError

D = 16
BACKENDS = ["numpy"] + (["faiss"] if index_mod.faiss is not None else [])


def reference_topk(vectors, queries, k):
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    s = q @ v.T
    return np.argsort(-s, axis=1)[:, :k], np.sort(s, axis=1)[:, ::-1][:, :k]


@pytest.fixture()
def store(tmp_path):
    rng = np.random.default_rng(0)
    s = FeatureStore(str(tmp_path / "s.zarr"))
    s.create_feature_set("f", {"encoder": "test"}, dim=D, dtype="float32")
    for i, T in enumerate([7, 12, 5]):
        s.write_video("f", f"vid{i}", rng.standard_normal((T, D)), np.arange(T) * 0.5 + 0.25, {"fps": 2.0})
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_matches_brute_force(backend):
    rng = np.random.default_rng(1)
    vec, q = rng.standard_normal((3000, D)), rng.standard_normal((5, D))
    ix = FeatureIndex(D, backend=backend)
    ix.add(vec[:1000], [f"a{i}" for i in range(1000)], np.arange(1000.0))
    ix.add(vec[1000:], [f"b{i}" for i in range(2000)], np.arange(2000.0))
    res = ix.search(q, k=7)
    rows, scores = reference_topk(vec, q, 7)
    np.testing.assert_array_equal(res.rows, rows)
    np.testing.assert_allclose(res.scores, scores, rtol=1e-5, atol=1e-5)
    r = rows[0, 0]
    assert res.labels[0][0] == (f"a{r}" if r < 1000 else f"b{r - 1000}")
    assert res.times[0, 0] == (r if r < 1000 else r - 1000)


def test_numpy_chunked_top_k_equals_unchunked():
    rng = np.random.default_rng(2)
    v, q = rng.standard_normal((500, D)).astype(np.float32), rng.standard_normal((3, D)).astype(np.float32)
    s1, r1 = index_mod._brute_force(v, q, 9, chunk=64)  # top-k merged across 8 chunks
    s2, r2 = index_mod._brute_force(v, q, 9, chunk=10_000)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_allclose(s1, s2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_feature_set_rows_map_to_video_and_time(store, backend):
    ix = FeatureIndex.from_feature_set(store, "f", backend=backend)
    assert len(ix) == 7 + 12 + 5
    q = store.read_video("f", "vid1").feats[4]  # a step's own vector finds itself first (cosine 1)
    res = ix.search(q, k=3)
    assert res.hits(0)[0][:2] == ("vid1", 4 * 0.5 + 0.25)
    assert res.scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert res.rows.shape == (1, 3) and res.labels[0][0] == "vid1"


def test_fewer_rows_than_k_is_padded():
    ix = FeatureIndex(D, backend="numpy")
    ix.add(np.eye(D)[:2], ["x", "y"], [1.0, 2.0])
    res = ix.search(np.eye(D)[1], k=4)
    assert res.rows.tolist() == [[1, 0, -1, -1]] and res.labels[0] == ["y", "x", None, None]
    assert [h[0] for h in res.hits(0)] == ["y", "x"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_and_staleness(store, backend, tmp_path):
    path = FeatureIndex.default_path(store, "f")
    assert path == tmp_path / "s.zarr.index" / "f"
    ix = FeatureIndex.for_feature_set(store, "f", backend=backend)
    assert (path / "index.json").exists()
    q = np.random.default_rng(3).standard_normal((2, D))
    back = FeatureIndex.load(path, store, backend=backend)
    a, b = ix.search(q, 5), back.search(q, 5)
    np.testing.assert_array_equal(a.rows, b.rows)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    assert a.labels == b.labels
    store.write_video("f", "vid9", np.ones((3, D)), [0.0, 1.0, 2.0])  # set changed: saved index is stale
    with pytest.raises(SearchIndexError, match="stale"):
        FeatureIndex.load(path, store)
    assert len(FeatureIndex.for_feature_set(store, "f", backend=backend)) == 24 + 3  # rebuilt


def test_text_set_index_and_text_queries(store):
    strings = ["open the fridge", "cut onion", "wash hands"]
    emb = np.random.default_rng(4).standard_normal((3, D)).astype(np.float32)
    store.write_texts("t", strings, emb)
    tix = FeatureIndex.from_text_set(store, "t", strings)
    assert tix.search(emb[2], k=1).labels[0][0] == "wash hands"
    assert np.isnan(tix.search(emb[2], k=1).times[0, 0])
    fix = FeatureIndex.from_feature_set(store, "f")
    ref_rows, _ = reference_topk(np.concatenate([store.read_video("f", u).feats for u in store.videos("f")]),
                                 emb[:1], 4)
    np.testing.assert_array_equal(fix.search_texts(store, "t", strings[:1], k=4).rows, ref_rows)


def test_errors(store):
    ix = FeatureIndex(D, backend="numpy")
    with pytest.raises(SearchIndexError, match=r"\[N, 16\]"):
        ix.add(np.ones((2, D + 1)), ["a", "b"])
    with pytest.raises(SearchIndexError, match="index dim"):
        ix.search(np.ones(D + 1))
    with pytest.raises(SearchIndexError, match="not local"):
        FeatureIndex.default_path(FeatureStore("memory://idx"), "f")
    with pytest.raises(SearchIndexError, match="no index"):
        FeatureIndex.load("/nonexistent/index")


# ---------------------------------------------------------------- approximate index (IVF-PQ + exact re-ranking)
def clustered_store(path, videos=30, steps=120, dim=32, seed=0):
    """Video-like steps: each video a few scenes around its own direction, consecutive steps correlated."""
    rng = np.random.default_rng(seed)
    s = FeatureStore(str(path))
    s.create_feature_set("c", {"encoder": "test"}, dim=dim, dtype="float32")
    for v in range(videos):
        base = rng.standard_normal(dim)
        scenes = base + 0.6 * rng.standard_normal((4, dim))
        walk = np.cumsum(0.15 * rng.standard_normal((steps, dim)), axis=0)
        feats = scenes[np.arange(steps) * 4 // steps] + walk + 0.3 * rng.standard_normal((steps, dim))
        s.write_video("c", f"v{v:02d}", feats, np.arange(steps) * 0.5, {"fps": 2.0})
    return s


@pytest.mark.skipif(index_mod.faiss is None, reason="the approximate index is faiss's")
def test_approximate_above_threshold_with_recall(tmp_path):
    store = clustered_store(tmp_path / "s.zarr")
    n = 30 * 120
    flat = FeatureIndex.from_feature_set(store, "c", approx_min_rows=n + 1)  # one row short of the threshold
    approx = FeatureIndex.from_feature_set(store, "c", approx_min_rows=n)
    forced = FeatureIndex.from_feature_set(store, "c", approx_min_rows=n, exact=True)
    assert (flat.kind, approx.kind, forced.kind) == ("flat", "ivfpq", "flat")
    assert approx.params.nlist >= 16 and approx.build["type"] == "ivfpq" and approx.build["rows"] == n
    rng = np.random.default_rng(5)
    rows = np.concatenate([store.read_video("c", u).feats for u in store.videos("c")])
    q = rows[rng.choice(n, 40, replace=False)] + 1.0 * rng.standard_normal((40, rows.shape[1]))  # noisy queries
    exact, got = flat.search(q, 10), approx.search(q, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(got.rows.tolist(), exact.rows.tolist())])
    assert recall >= 0.95
    same = got.rows == exact.rows  # rows found by both: same (video, time) and the exact score (re-ranked)
    np.testing.assert_allclose(got.scores[same], exact.scores[same], atol=2e-3)  # float16 rows
    assert [lab for lab, m in zip(got.labels[0], same[0]) if m] == [lab for lab, m in zip(exact.labels[0], same[0])
                                                                     if m]
    with pytest.raises(SearchIndexError, match="add\\(\\) needs a flat one"):
        approx.add(rows[:1], ["x"])


@pytest.mark.skipif(index_mod.faiss is None, reason="the approximate index is faiss's")
def test_build_recorded_stale_rebuilt_and_exact_forces_flat(tmp_path):
    import json

    store = clustered_store(tmp_path / "s.zarr", videos=12, steps=100)
    path = FeatureIndex.default_path(store, "c")
    ix = FeatureIndex.for_feature_set(store, "c", approx_min_rows=1000)
    meta = json.loads((path / "index.json").read_text())
    b = meta["build"]
    assert b["type"] == "ivfpq" and b["rows"] == 1200 and b["dim"] == 32 and b["build_s"] > 0
    assert b["params"]["nlist"] == ix.params.nlist and b["config_hash"] == store.feature_set_info("c")["config_hash"]
    assert (path / "ivfpq.faiss").exists() and np.load(path / "vectors.npy", mmap_mode="r").dtype == np.float16
    q = np.random.default_rng(6).standard_normal((3, 32))
    back = FeatureIndex.load(path, store)
    assert back.kind == "ivfpq" and isinstance(back._vectors16, np.memmap)  # rows stay on disk
    np.testing.assert_array_equal(back.search(q, 5).rows, ix.search(q, 5).rows)
    same = FeatureIndex.for_feature_set(store, "c", approx_min_rows=1000)  # fresh: loaded, not rebuilt
    assert same.build["build_s"] == b["build_s"]
    store.write_video("c", "v99", np.ones((7, 32)), np.arange(7.0))  # the set changed: stale -> rebuilt
    with pytest.raises(SearchIndexError, match="stale"):
        FeatureIndex.load(path, store)
    new = FeatureIndex.for_feature_set(store, "c", approx_min_rows=1000)
    assert new.kind == "ivfpq" and len(new) == 1207
    assert json.loads((path / "index.json").read_text())["build"]["rows"] == 1207
    flat = FeatureIndex.for_feature_set(store, "c", approx_min_rows=1000, exact=True)  # --exact: rebuilt flat
    assert flat.kind == "flat" and json.loads((path / "index.json").read_text())["build"]["type"] == "flat"
    assert not (path / "ivfpq.faiss").exists() and FeatureIndex.load(path, store).kind == "flat"
