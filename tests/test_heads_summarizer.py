"""Summarizer head: shapes, segment isolation, decode, bad input, and it beats random scores on a held-out video."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from egoflow.datasets.qfvs import query_prompt
from egoflow.evaluate.qfvs import evaluate_qfvs_files
from egoflow.heads import runner
from egoflow.heads.summarizer import Config, SummarizerDataError, build
from egoflow.heads.summarizer.protocol import random_baseline


def _batch(n=(30, 22), seed=0):
    g = torch.Generator().manual_seed(seed)
    b, N = len(n), max(n)
    shots = torch.randn(b, N, 8, generator=g)
    seg_rows, segments = [], torch.full((b, N), -1)
    for i, k in enumerate(n):
        bnd = [0, k // 3, k // 2, k]
        for s, (a, e) in enumerate(zip(bnd[:-1], bnd[1:])):
            seg_rows.append(torch.arange(a, e) + i * N)
            segments[i, a:e] = s
    seg_index = torch.full((len(seg_rows), max(len(r) for r in seg_rows)), -1)
    for r, x in enumerate(seg_rows):
        seg_index[r, :len(x)] = x
    mask = torch.arange(N)[None] < torch.tensor(n)[:, None]
    return {"feats": shots, "mask": mask, "text": torch.randn(b, 3, 5, 6, generator=g),
            "text_mask": torch.ones(b, 3, 5, dtype=torch.bool),
            "labels": (torch.rand(b, 3, N, generator=g) < 0.1).float(),
            "seg_index": seg_index, "segments": segments, "num_shots": torch.tensor(n),
            "video": ["P01", "P02"], "query": ["A_B", "A_C"]}


def test_shapes_loss_and_segment_isolation():
    torch.manual_seed(0)
    model, crit, decode = build(Config(video_dim=8, text_dim=6, dim=16, num_heads=2, dropout=0.0, top_percent=0.1))
    model.eval()
    b = _batch()
    out = model(b)["logits"]
    assert out.shape == (2, 3, 30)
    loss = crit(model(b), b)
    assert torch.isfinite(loss["loss"]) and loss["loss"] > 0
    # shots attend only within their KTS segment: changing the last segment leaves the first ones unchanged
    b2 = dict(b, feats=b["feats"].clone())
    b2["feats"][0, 15:30] += 5.0
    out2 = model(b2)["logits"]
    torch.testing.assert_close(out2[0, :, :15], out[0, :, :15])
    assert not torch.allclose(out2[0, :, 15:30], out[0, :, 15:30])
    torch.testing.assert_close(out2[1], out[1])
    preds = decode({"logits": out}, b)
    assert [len(p["shots"]) for p in preds] == [3, 2]  # top 10%, at least one
    assert preds[0]["times"][0] == [preds[0]["shots"][0] * 5.0, preds[0]["shots"][0] * 5.0 + 5.0]


def test_decode_caps_shots_per_segment():
    b = _batch(n=(30, 30))
    logits = torch.full((2, 3, 30), -5.0)
    logits[:, :, 15:30] = torch.linspace(5, 4, 15)  # the best shots are all in the last segment
    _, _, decode = build(Config(top_percent=0.2, max_per_segment=2))
    shots = decode({"logits": logits}, b)[0]["shots"]
    seg = b["segments"][0]
    assert len(shots) == 6 and max(np.bincount(seg[shots].numpy())) <= 3  # cap 2, then filled with the best
    _, _, plain = build(Config(top_percent=0.2, max_per_segment=0))
    assert plain({"logits": logits}, b)[0]["shots"] == list(range(15, 21))


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    from egoflow.datasets.synthetic.qfvs import make_qfvs
    d = tmp_path_factory.mktemp("qfvs")
    return make_qfvs(d / "data", str(d / "store.zarr"), num_shots=(200, 220, 180, 200), queries_per_video=20,
                     summary_fraction=0.05, dim=32, seed=0)


HEAD = dict(dim=32, kts_lmax=40, top_percent=0.05, dropout=0.1)


def test_beats_random_scores_on_held_out_video(syn, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is fastest, and the suite shares the cores
    try:
        m = runner.train("summarizer", syn.store, syn.feature_set, syn.root, tmp_path / "run",
                         text_set=syn.text_set, head_overrides=HEAD,
                         train_overrides=dict(epochs=12, batch_size=4, lr=3e-3, progress=False, warmup_steps=5,
                                              seed=0))
    finally:
        torch.set_num_threads(threads)
    rand = [random_baseline(syn.store, syn.feature_set, syn.root, videos=("P04",), text_set=syn.text_set,
                            head_overrides=HEAD, seed=s)["F1"] for s in range(5)]
    print(f"held-out P04: summarizer F1 {m['F1']:.3f}, random scores F1 {np.mean(rand):.3f}")
    assert m["F1"] > np.mean(rand) + 0.1 and m["F1"] > 1.4 * np.mean(rand)
    # the written predictions are what `egoflow evaluate qfvs` scores, with the same number
    again = evaluate_qfvs_files(syn.root, tmp_path / "run" / "predictions.json")
    assert again["F1"] == pytest.approx(m["F1"])
    out = runner.predict("summarizer", tmp_path / "run", syn.store, syn.root, tmp_path / "pred.json")
    predicted = json.loads(Path(out).read_text())["results"]
    assert predicted == json.loads((tmp_path / "run" / "predictions.json").read_text())["results"]


def test_bad_annotations_and_texts(syn, tmp_path):
    import shutil

    from egoflow.datasets.errors import AnnotationError
    from egoflow.features_store import FeatureStore
    root = tmp_path / "bad"
    shutil.copytree(syn.root, root)
    oracle = root / "origin_data" / "Query-Focused_Summaries" / "Oracle_Summaries" / "P01"
    f = sorted(oracle.iterdir())[0]
    f.rename(oracle / "Book_Unicorn_oracle.txt")  # a concept that is not in the dictionary
    with pytest.raises(AnnotationError, match="not in Dictionary"):
        runner.train("summarizer", syn.store, syn.feature_set, root, tmp_path / "r1", text_set=syn.text_set,
                     head_overrides=HEAD)
    (oracle / "Book_Unicorn_oracle.txt").rename(oracle / "_Book_oracle.txt")  # empty concept
    with pytest.raises(AnnotationError, match="CONCEPT1_CONCEPT2"):
        runner.train("summarizer", syn.store, syn.feature_set, root, tmp_path / "r2", text_set=syn.text_set,
                     head_overrides=HEAD)
    (oracle / "_Book_oracle.txt").unlink()
    store = FeatureStore(syn.store)
    store.write_texts("partial", [query_prompt("Book", "Car")], np.zeros((1, 32)), config={"k": 1})
    with pytest.raises(SummarizerDataError, match="prompts missing from text set 'partial'"):
        runner.train("summarizer", syn.store, syn.feature_set, root, tmp_path / "r3", text_set="partial",
                     head_overrides=HEAD)
    with pytest.raises(SummarizerDataError, match="also a training video"):
        runner.train("summarizer", syn.store, syn.feature_set, root, tmp_path / "r4", text_set=syn.text_set,
                     head_overrides={**HEAD, "test_video": "P01"})
    with pytest.raises(SummarizerDataError, match="'P04' has no complete features"):
        runner.train("summarizer", syn.store, "qfvs-synthetic", root, tmp_path / "r5", text_set=syn.text_set,
                     head_overrides={**HEAD, "train_videos": ("P01",), "test_video": "P04"},
                     train_overrides=dict(epochs=1)) if store.delete_video(syn.feature_set, "P04") is None else None


def test_query_conditioned_feature_set(syn, tmp_path):
    """A fused-extractor set holding each video's features under every query prompt gives the same samples as the
    plain set; the flag must match the set; training runs on it."""
    from egoflow.datasets.qfvs import load_qfvs
    from egoflow.features_store import FeatureStore
    from egoflow.features_store.conditioned import write_conditioned
    from egoflow.heads.registry import head_config
    from egoflow.heads.summarizer.data import load_split

    store = FeatureStore(syn.store)
    name = "qfvs-cond"
    store.create_feature_set(name, {"encoder": "fused", "conditioned": "query"}, dim=32, dtype="float32")
    videos = load_qfvs(syn.root)
    for uid, v in videos.items():
        if uid not in store.videos(syn.feature_set):
            continue  # test_bad_annotations_and_texts deletes P04 from the shared store
        vf = store.read_video(syn.feature_set, uid)
        prompts = sorted({query_prompt(*q.concepts) for q in v.queries})
        write_conditioned(store, name, uid, prompts, np.stack([vf.feats] * len(prompts)), vf.times)
    cfg = head_config("summarizer", video_dim=32, text_dim=32, **HEAD)
    cond_cfg = head_config("summarizer", video_dim=32, text_dim=32, conditioned=True, **HEAD)
    _, plain = load_split(store, syn.feature_set, syn.text_set, syn.root, ["P01"], cfg)
    _, cond = load_split(store, name, syn.text_set, syn.root, ["P01"], cond_cfg)
    assert len(plain) == len(cond) == len(videos["P01"].queries)
    for a, b in zip(plain, cond):
        assert a.name == b.name and torch.equal(a.labels, b.labels)
        torch.testing.assert_close(a.video.shots, b.video.shots, atol=1e-3, rtol=0)  # the plain set is float16
    with pytest.raises(SummarizerDataError, match="is query-conditioned: set conditioned=true"):
        load_split(store, name, syn.text_set, syn.root, ["P01"], cfg)
    m = runner.train("summarizer", store, name, syn.root, tmp_path / "cond", text_set=syn.text_set,
                     head_overrides={**HEAD, "conditioned": True, "train_videos": ("P01", "P02"),
                                     "test_video": "P03"},
                     train_overrides=dict(epochs=1, batch_size=4, progress=False))
    assert 0.0 <= m["F1"] <= 1.0
