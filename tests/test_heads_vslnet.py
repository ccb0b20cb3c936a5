"""VSLNet head: masking, span decoding, losses, training from the store on planted data, run files, bad input."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from egoflow.datasets.synthetic.nlq import make_synthetic_nlq, write_nlq_json
from egoflow.evaluate.nlq import evaluate_nlq
from egoflow.features_store import FeatureStore
from egoflow.heads import runner, vslnet
from egoflow.heads.registry import head_config
from egoflow.heads.vslnet.data import AnnotationOutOfRange, EmptySplit, FeatureDimMismatch, MissingFeatures
from egoflow.heads.vslnet.layers import highlight_loss
from egoflow.heads.vslnet.model import Decode, topk_spans

TINY = dict(video_dim=6, text_dim=5, dim=16, num_heads=2, conv_layers=1, max_pos_len=32, dropout=0.0)
HEAD = dict(dim=32, num_heads=4, conv_layers=1, dropout=0.1, max_pos_len=64)
TRAIN = dict(epochs=10, batch_size=16, lr=5e-3, schedule="constant", progress=False, device="cpu", seed=0)


def _batch(lengths, qlens, cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    b, t, n = len(lengths), max(lengths), max(qlens)
    batch = {"feats": torch.randn(b, t, cfg.video_dim, generator=g), "text": torch.randn(b, n, cfg.text_dim,
                                                                                         generator=g),
             "mask": torch.arange(t)[None] < torch.tensor(lengths)[:, None],
             "text_mask": torch.arange(n)[None] < torch.tensor(qlens)[:, None]}
    batch["feats"][~batch["mask"]] = 0
    batch["text"][~batch["text_mask"]] = 0
    return batch


@pytest.mark.parametrize("mask_conv_padding", [True, False])
def test_padding_and_valid_outputs(mask_conv_padding):
    """With the egoflow option a clip's outputs do not depend on its batch's padding; the baseline (option off)
    lets its position-embedded padding leak through the convolutions into the last valid steps."""
    torch.manual_seed(0)
    cfg = vslnet.Config(**TINY, mask_conv_padding=mask_conv_padding)
    model, _, _ = vslnet.build(cfg)
    model.eval()
    both = _batch([7, 12], [3, 5], cfg)
    alone = {k: v[:1, :7] if k in ("feats", "mask") else v[:1, :3] for k, v in both.items()}
    with torch.no_grad():
        out_b, out_a = model(both), model(alone)
    for k in ("start_logits", "end_logits", "highlight_logits"):
        assert out_b[k].shape == (2, 12)
        if mask_conv_padding:
            torch.testing.assert_close(out_b[k][0, :7], out_a[k][0], rtol=1e-4, atol=1e-4)
        else:
            assert (out_b[k][0, :7] - out_a[k][0]).abs().max() > 1e-3
        assert (out_b[k][0, 7:] <= -1e29).all()  # padding can never be picked


def test_topk_spans_hand_worked():
    # P(start) = [.5, .3, .2], P(end) = [.1, .2, .7] (log-probabilities as logits)
    s = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    e = torch.log(torch.tensor([[0.1, 0.2, 0.7]]))
    si, ei, sc = topk_spans(s, e, torch.ones(1, 3, dtype=torch.bool), k=4)
    # valid (s <= e) pair scores: (0,2) .35, (1,2) .21, (2,2) .14, (0,1) .10, (1,1) .06, (0,0) .05
    assert list(zip(si[0].tolist(), ei[0].tolist())) == [(0, 2), (1, 2), (2, 2), (0, 1)]
    torch.testing.assert_close(sc[0], torch.tensor([0.35, 0.21, 0.14, 0.10]))
    mask = torch.tensor([[True, True, False]])  # step 2 is padding: only (0,0), (0,1), (1,1) exist
    si, ei, sc = topk_spans(s, e, mask, k=5)
    assert sorted(zip(si[0][sc[0] >= 0].tolist(), ei[0][sc[0] >= 0].tolist())) == [(0, 0), (0, 1), (1, 1)]


def test_decode_returns_distinct_windows_in_seconds():
    dec = Decode(topk=5)
    t = 6
    out = {"start_logits": torch.randn(2, t), "end_logits": torch.randn(2, t)}
    starts = torch.tensor([[0.0, 1.5, 3.0, 4.5, 6.0, 7.5]] * 2, dtype=torch.float64)
    batch = {"mask": torch.tensor([[True] * 6, [True, True] + [False] * 4]), "step_starts": starts,
             "step_ends": starts + 1.5}
    p0, p1 = dec(out, batch)
    assert len(p0["windows"]) == 5 and len({tuple(w) for w in p0["windows"]}) == 5
    assert p0["scores"] == sorted(p0["scores"], reverse=True)
    for a, b in p0["windows"]:
        assert a < b and a in starts[0].tolist() and a >= 0 and b <= 9.0
    assert len(p1["windows"]) == 3 and all(b <= 3.0 for _, b in p1["windows"])  # only 3 pairs in 2 steps


def test_criterion_and_highlight_loss():
    logits = torch.tensor([[0.0, 0.0, 5.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False]])
    # weights 2 (foreground) and 1, padded step ignored: (2*log 2 + log 2) / 2 valid steps
    torch.testing.assert_close(highlight_loss(logits, labels, mask), torch.tensor(1.5 * np.log(2), dtype=torch.float32))
    cfg = vslnet.Config(**TINY)
    model, crit, _ = vslnet.build(cfg)
    batch = _batch([5, 8], [2, 4], cfg)
    batch.update(start_idx=torch.tensor([1, 2]), end_idx=torch.tensor([3, 6]), highlight=torch.zeros(2, 8))
    losses = crit(model(batch), batch)
    assert losses["loss"].ndim == 0 and torch.isfinite(losses["loss"])
    torch.testing.assert_close(losses["loss"].detach(), losses["span_loss"] + 5.0 * losses["highlight_loss"])
    losses["loss"].backward()
    assert model.video_proj.linear.weight.grad.abs().sum() > 0 and model.query_proj.weight.grad.abs().sum() > 0


def test_config_errors():
    with pytest.raises(ValueError, match="head 'vslnet' has no config key\\(s\\) \\['hidden'\\]"):
        head_config("vslnet", hidden=3)
    with pytest.raises(ValueError, match="divisible"):
        vslnet.build(vslnet.Config(dim=30, num_heads=8))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("vsl")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model on a shared CPU: extra threads only add contention
    store = FeatureStore(str(root / "s.zarr"))
    data = make_synthetic_nlq(store, num_videos=32, seed=0)
    metrics = runner.train("vslnet", store, data.feature_set, data.train, root / "run", val_annotations=data.val,
                                      text_set=data.text_set, head_overrides=HEAD, train_overrides=TRAIN)
    yield SimpleNamespace(root=root, store=store, data=data, metrics=metrics, run=root / "run")
    torch.set_num_threads(threads)


def test_beats_chance_by_a_wide_margin_on_held_out_clips(trained):
    val = trained.data.val
    rng = np.random.default_rng(0)
    lengths = np.array([q.end_sec - q.start_sec for q in trained.data.train])
    chance = []
    for _ in range(10):  # random windows with training-like lengths
        preds = []
        for q in val:
            ln = rng.choice(lengths, size=5)
            st = rng.uniform(0, q.clip_duration - ln)
            preds.append({"clip_uid": q.clip_uid, "annotation_uid": q.annotation_uid, "query_idx": q.query_idx,
                          "predicted_times": np.stack([st, st + ln], 1).tolist()})
        chance.append(evaluate_nlq(val, preds)["R@1 IoU=0.3"])
    chance = float(np.mean(chance))
    m = trained.metrics
    assert chance < 0.15, chance
    assert m["R@1 IoU=0.3"] > max(0.5, 4 * chance), (m, chance)
    assert m["R@5 IoU=0.3"] >= m["R@1 IoU=0.3"] and m["R@1 IoU=0.5"] > 2 * chance


def test_run_directory_files(trained):
    run, data = trained.run, trained.data
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["head"] == "vslnet" and cfg["benchmark"] == "nlq" and cfg["store"] == trained.store.url
    assert cfg["feature_set"] == data.feature_set and cfg["text_set"] == data.text_set
    assert cfg["head_config"]["video_dim"] == data.video_dim and cfg["head_config"]["text_dim"] == data.text_dim
    sub = json.loads((run / "predictions.json").read_text())
    assert sub["version"] == "1.0" and sub["challenge"] == "ego4d_nlq_challenge"
    assert len(sub["results"]) == len(data.val)
    for r in sub["results"]:
        assert set(r) == {"clip_uid", "annotation_uid", "query_idx", "predicted_times"}
        wins = r["predicted_times"]
        assert len(wins) == 5 and len({tuple(w) for w in wins}) == 5
        assert all(0.0 <= a <= b <= 64.0 for a, b in wins)
    assert json.loads((run / "metrics.json").read_text())["R@1 IoU=0.3"] == trained.metrics["R@1 IoU=0.3"]
    assert (run / "best.pt").exists() and (run / "last.pt").exists()


def test_predict_from_store_reproduces_the_run_predictions(trained, tmp_path):
    gt = write_nlq_json(trained.data.val, tmp_path / "val.json")  # the file route, as `egoflow predict` uses
    out = runner.predict("vslnet", trained.run, trained.store.url, gt, tmp_path / "pred.json")
    key = lambda r: (r["clip_uid"], r["annotation_uid"], r["query_idx"])  # noqa: E731
    ours = sorted(json.loads(open(out).read())["results"], key=key)
    ref = sorted(json.loads((trained.run / "predictions.json").read_text())["results"], key=key)
    assert [key(r) for r in ours] == [key(r) for r in ref]
    np.testing.assert_allclose([r["predicted_times"] for r in ours], [r["predicted_times"] for r in ref], atol=1e-5)


def test_resume_continues_from_last_checkpoint(trained):
    before = json.loads((trained.run / "history.json").read_text())
    runner.train("vslnet", trained.store, trained.data.feature_set, trained.data.train, trained.run,
                            val_annotations=trained.data.val, text_set=trained.data.text_set, head_overrides=HEAD,
                            train_overrides={**TRAIN, "epochs": TRAIN["epochs"] + 1})
    after = json.loads((trained.run / "history.json").read_text())
    assert len(after) == len(before) + 1 and after[:len(before)] == before  # earlier epochs were not redone


def test_bad_input_fails_before_training(trained, tmp_path):
    s, d = trained.store, trained.data
    cases = [
        (FeatureDimMismatch, dict(feature_set=d.feature_set, head_overrides={"video_dim": 99})),
        (FeatureDimMismatch, dict(feature_set=d.feature_set, head_overrides={"text_dim": 7})),
        (MissingFeatures, dict(feature_set="clip-missing")),
        (AnnotationOutOfRange, dict(feature_set=d.feature_set,
                                    annotations=[d.train[0].__class__(**{**d.train[0].__dict__,
                                                                         "clip_video_end_sec": 1e4})])),
        (EmptySplit, dict(feature_set=d.feature_set, val_annotations=[])),
        (EmptySplit, dict(feature_set=d.feature_set, annotations=[])),
    ]
    for i, (exc, kw) in enumerate(cases):
        out = tmp_path / f"bad{i}"
        kw = {"annotations": d.train[:8], "val_annotations": d.val[:4], **kw}
        with pytest.raises(exc):
            runner.train("vslnet", s, kw.pop("feature_set"), kw.pop("annotations"), out, text_set=d.text_set,
                                    train_overrides=TRAIN, **kw)
        assert not (out / "last.pt").exists()


def test_demo_step_quick(trained, tmp_path):
    d = trained.data
    ctx = SimpleNamespace(store=trained.store.url, feature_set=d.feature_set, text_set=d.text_set,
                          nlq_train=write_nlq_json(d.train[:32], tmp_path / "train.json"),
                          nlq_val=write_nlq_json(d.val[:16], tmp_path / "val.json"), out_dir=tmp_path / "demo",
                          device="cpu", seed=0, quick=True)
    res = vslnet.SPEC.demo(ctx, runner)
    assert res["benchmark"] == "nlq" and 0.0 <= res["metrics"]["R@1 IoU=0.3"] <= 1.0
    assert res["metrics"]["num_queries"] == 16 and res["gt"] == str(ctx.nlq_val)
    assert len(json.loads(open(res["predictions"]).read())["results"]) == 16


def test_query_conditioned_feature_set_reads_one_sequence_per_clip_and_query(trained, tmp_path):
    """A fused-extractor (clip, query) set holding the same clip features gives the same samples as the plain
    set; the flag must match the set (a clear error otherwise); training and prediction run on it."""
    from egoflow.features_store.conditioned import write_conditioned
    from egoflow.heads.vslnet.data import load_nlq_split

    s, d = trained.store, trained.data
    name = "cond"
    s.create_feature_set(name, {"encoder": "fused", "conditioned": "query"}, dim=d.video_dim, dtype="float32")
    by_clip = {}
    for q in d.train[:24] + d.val[:8]:
        by_clip.setdefault(q.clip_uid, []).append(q)
    for clip, qs in by_clip.items():
        q0 = qs[0]
        vf = s.read_video(d.feature_set, q0.video_uid)
        sel = (vf.times >= q0.clip_video_start_sec) & (vf.times <= q0.clip_video_end_sec)
        texts = sorted({q.query for q in qs})
        write_conditioned(s, name, clip, texts, np.stack([vf.feats[sel]] * len(texts)),
                          vf.times[sel] - q0.clip_video_start_sec)
    kw = dict(text_set=d.text_set, max_pos_len=64)
    plain = load_nlq_split(s, d.feature_set, d.train[:24], **kw)
    cond = load_nlq_split(s, name, d.train[:24], conditioned=True, **kw)
    for a, b in zip(plain, cond):
        np.testing.assert_allclose(a["feats"], b["feats"], atol=1e-3)  # the plain set is float16
        assert (a["start_idx"], a["end_idx"]) == (b["start_idx"], b["end_idx"])
    with pytest.raises(MissingFeatures, match="is query-conditioned: set conditioned=true"):
        load_nlq_split(s, name, d.train[:24], **kw)
    with pytest.raises(MissingFeatures, match="no query-conditioned features"):
        load_nlq_split(s, name, d.train[24:30], conditioned=True, **kw)
    m = runner.train("vslnet", s, name, d.train[:24], tmp_path / "cond", val_annotations=d.val[:8],
                     text_set=d.text_set, head_overrides={**HEAD, "conditioned": True},
                     train_overrides={**TRAIN, "epochs": 2})
    assert m["num_queries"] == 8 and 0.0 <= m["R@1 IoU=0.3"] <= 1.0
