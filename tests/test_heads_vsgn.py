"""VSGN head: hand-worked geometry, losses and Soft-NMS; model I/O checks; training on the planted benchmark."""
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from egoflow.datasets.records import MQClip, MQInstance
from egoflow.datasets.synthetic.mq import make_synthetic_mq, write_mq_json
from egoflow.evaluate.mq import evaluate_mq, evaluate_mq_files
from egoflow.evaluate.parity import ParityWarning
from egoflow.features_store import FeatureStore
from egoflow.heads import runner, vsgn
from egoflow.heads.vsgn import VSGNInputError
from egoflow.heads.vsgn.data import MQDataError
from egoflow.heads.vsgn.layers import GraphConv, decode_segments, encode_segments, knn_indices, make_anchors
from egoflow.heads.vsgn.loss import auxiliary_targets, balanced_bce, giou_loss, match, segment_iou
from egoflow.heads.vsgn.post import class_scores, positions_to_seconds, soft_nms

TINY = dict(temporal_scale=64, hidden_dim=32, num_levels=3, num_head_layers=1, num_neighbours=4)


# ------------------------------------------------------------------------------------------ geometry
def test_anchor_layout():
    a = make_anchors(8, 2, (1.0, 2.0))
    assert a.shape == (8 * 2 + 4 * 2, 2)
    assert a[:2].tolist() == [[0.0, 1.0], [-0.5, 1.5]]  # level 0, step 0: widths 1 and 2 around 0.5
    assert a[16:18].tolist() == [[0.0, 2.0], [-1.0, 3.0]]  # level 1 (stride 2), step 0: widths 2, 4 around 1


def test_encode_decode_round_trip():
    anchors = torch.tensor([[0.0, 4.0], [10.0, 12.0]])
    gt = torch.tensor([[1.0, 3.5], [5.0, 20.0]])
    np.testing.assert_allclose(decode_segments(encode_segments(gt, anchors), anchors), gt, atol=1e-5)
    assert decode_segments(torch.zeros(2, 2), anchors).tolist() == anchors.tolist()


def test_iou_match_giou_hand_worked():
    iou = segment_iou(torch.tensor([[0.0, 2.0], [0.0, 1.0]]), torch.tensor([[1.0, 3.0], [2.0, 3.0]]))
    np.testing.assert_allclose(iou, [[1 / 3, 0.0], [0.0, 0.0]], atol=1e-6)
    m = match(torch.tensor([[0.6, 0.1], [0.2, 0.3], [0.1, 0.05]]), 0.5)
    assert m.tolist() == [0, 1, -1]  # row 1 is below 0.5 but is gt 1's best candidate
    assert match(torch.zeros(3, 0), 0.5).tolist() == [-1, -1, -1]
    # gt 1 overlaps no candidate: the baseline's rule matches every candidate (ties at 0); "skip" adds none
    unreached = torch.tensor([[0.6, 0.0], [0.2, 0.0], [0.0, 0.0]])
    with pytest.warns(ParityWarning, match="match_unreached='reference'"):
        assert match(unreached, 0.5).tolist() == [0, 0, 0]
    with pytest.warns(ParityWarning, match="match_unreached='skip'"):
        assert match(unreached, 0.5, "skip").tolist() == [0, -1, -1]
    loss = giou_loss(torch.tensor([[0.0, 2.0], [0.0, 1.0]]), torch.tensor([[1.0, 3.0], [2.0, 3.0]]))
    np.testing.assert_allclose(loss, [2 / 3, 4 / 3], atol=1e-6)


def test_boundary_scores_hand_worked():
    logit = lambda p: torch.log(torch.tensor(p) / (1 - torch.tensor(p)))  # noqa: E731
    out = {"cls_logits": torch.zeros(1, 2, 2), "refined": torch.tensor([[[1.5, 3.0], [0.0, 10.0]]]),
           "startness": logit([[0.1, 0.2, 0.3, 0.4]]), "endness": logit([[0.5, 0.6, 0.7, 0.8]])}
    cfg = SimpleNamespace(cls_loss="balanced", use_boundary_scores=True, boundary_score="reference")
    # MQ/Infer.py: mean of steps floor/ceil (1.5 -> (0.2 + 0.3) / 2; 3 -> 0.8; 10 clipped to step 3), x softmax 0.5
    np.testing.assert_allclose(class_scores(out, 0, cfg)[:, 0], [0.5 * 0.25 * 0.8, 0.5 * 0.1 * 0.8], rtol=1e-5)
    cfg.boundary_score = "interp"  # between step centres: 1.5 -> step 1 exactly; 3.0 -> halfway steps 2 and 3
    np.testing.assert_allclose(class_scores(out, 0, cfg)[0, 0], 0.5 * 0.2 * 0.75, rtol=1e-5)


def test_auxiliary_targets_and_balanced_bce():
    act, st, en = auxiliary_targets(torch.tensor([[2.0, 5.0]]), 8, action="centre")
    assert act.tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    # the baseline's rule: frames round(2.4)=2 .. round(5.5)=6 (round half to even), inclusive
    assert auxiliary_targets(torch.tensor([[2.4, 5.5]]), 8)[0].tolist() == [0, 0, 1, 1, 1, 1, 1, 0]
    np.testing.assert_allclose(st, [0.5, 1, 1, 0.5, 0, 0, 0, 0])
    np.testing.assert_allclose(en, [0, 0, 0, 0.5, 1, 1, 0.5, 0])
    valid = torch.ones(1, 8, dtype=torch.bool)
    # zero logits: each half contributes 0.5 * log 2 whatever the class balance
    assert math.isclose(float(balanced_bce(torch.zeros(1, 8), act[None], valid)), math.log(2), rel_tol=1e-6)
    assert math.isclose(float(balanced_bce(torch.zeros(1, 8), torch.zeros(1, 8), valid)), 0.5 * math.log(2),
                        rel_tol=1e-6)


def test_soft_nms_hand_worked():
    seg = np.array([[0, 10], [0, 10], [5, 15], [0, 10]], dtype=float)
    keep, score = soft_nms(seg, np.array([0.9, 0.8, 0.7, 0.6]), np.array([0, 0, 0, 1]), sigma=0.5, top_n=10)
    d = math.exp(-(1 / 9) / 0.5)  # decay at IoU 1/3
    assert keep.tolist() == [0, 3, 2, 1]  # class 1 is never suppressed by class 0
    np.testing.assert_allclose(score, [0.9, 0.6, 0.7 * d, 0.8 * math.exp(-2) * d])
    # one class: the duplicate of the best and the former class-1 copy both decay by exp(-1 / 0.5)
    assert soft_nms(seg, np.array([0.9, 0.8, 0.7, 0.6]), np.zeros(4), 0.5, top_n=2)[0].tolist() == [0, 2]


def test_positions_to_seconds_with_parts():
    parts = torch.tensor([[0.0, 20.0, 10.0], [24.0, 40.0, 10.0]])  # original (20 steps) + magnified (40)
    sec = positions_to_seconds(torch.tensor([[4.0, 8.0], [32.0, 40.0], [-3.0, 2.0]]), parts)
    np.testing.assert_allclose(sec, [[2.0, 4.0], [2.0, 4.0], [0.0, 1.0]], atol=1e-6)


# ------------------------------------------------------------------------------------------ layers
@pytest.mark.parametrize("mode", ["feat_ctr", "dif_ctr"])
def test_graph_conv_equals_explicit_edge_conv(mode):
    torch.manual_seed(0)
    g = GraphConv(6, 3, mode=mode)
    x, mask = torch.randn(2, 10, 6), torch.ones(2, 10, dtype=torch.bool)
    idx = knn_indices(x, mask, 3)
    nb = x[torch.arange(2)[:, None, None], idx]
    ctr = x[:, :, None].expand_as(nb)
    edge = torch.cat((nb, ctr) if mode == "feat_ctr" else (nb - ctr, ctr), dim=-1)
    w = torch.cat((g.neigh.weight, g.centre.weight), dim=1)
    explicit = (edge @ w.T + g.neigh.bias).amax(dim=2)
    np.testing.assert_allclose(g(x, mask).detach(), explicit.detach(), atol=1e-5)


def test_knn_skips_padding_and_crosses_stitched_parts():
    x = torch.randn(1, 12, 4)
    mask = torch.ones(1, 12, dtype=torch.bool)
    mask[0, 8:] = False
    assert knn_indices(x, mask, 4).max() < 8
    part = torch.tensor([[0] * 6 + [1] * 6])
    idx = knn_indices(x, torch.ones(1, 12, dtype=torch.bool), 4, part)
    own = part[0][idx[0]] == part[0][:, None]
    assert (own.sum(1) == 2).all()  # half of every step's neighbours are from the other part


def _batch(B=3, T=64, D=8):
    gs = torch.tensor([[[3.0, 10.0], [20.0, 50.0]], [[0.0, 0.0], [0.0, 0.0]], [[60.0, 64.0], [0.0, 0.0]]])[:B]
    gl = torch.tensor([[1, 2], [0, 0], [2, 0]])[:B]
    return {"feats": torch.randn(B, T, D), "mask": torch.ones(B, T, dtype=torch.bool), "gt_segments": gs,
            "gt_labels": gl, "parts": torch.tensor([[[0.0, T, 32.0], [0.0, 0.0, 32.0]]] * B),
            "clip_uid": [f"c{i}" for i in range(B)]}


@pytest.mark.parametrize("cls_loss", ["balanced", "focal"])
def test_model_criterion_decode(cls_loss, one_thread):
    torch.manual_seed(0)
    model, crit, decode = vsgn.build(vsgn.Config(video_dim=8, labels=("a", "b"), cls_loss=cls_loss, **TINY))
    b = _batch()
    out = model(b)
    n = 64 * 2 + 32 * 2 + 16 * 2
    assert out["cls_logits"].shape == (3, n, 3) and out["refined"].shape == (3, n, 2)
    assert out["actionness"].shape == (3, 64)
    losses = crit(out, b)
    assert torch.isfinite(losses["loss"]) and losses["num_pos"] > 0
    losses["loss"].backward()
    assert model.bd_start[0].weight.grad.abs().sum() > 0  # the boundary adjustment is trained
    preds = decode({k: v.detach() for k, v in out.items()}, b)
    assert len(preds) == 3 and 0 < len(preds[0]) <= 200
    p = preds[0]
    assert all(0 <= x["segment"][0] < x["segment"][1] <= 32.0 and x["label"] in ("a", "b") for x in p)
    assert [x["score"] for x in p] == sorted((x["score"] for x in p), reverse=True)


def test_self_stitched_batch(one_thread):
    """Original (20 steps) + gap (4) + magnified copy (40): losses train, predictions land inside the clip."""
    torch.manual_seed(0)
    model, crit, decode = vsgn.build(vsgn.Config(video_dim=8, labels=("a", "b"), stitching=True, **TINY))
    b = _batch(B=1)
    b["part"] = torch.tensor([[0] * 20 + [-1] * 4 + [1] * 40])
    b["mask"] = b["part"] >= 0
    b["parts"] = torch.tensor([[[0.0, 20.0, 10.0], [24.0, 40.0, 10.0]]])
    b["gt_segments"] = torch.tensor([[[4.0, 8.0], [32.0, 40.0]]])  # one instance at 2-4 s, in both parts
    b["gt_labels"] = torch.tensor([[1, 1]])
    out = model(b)
    losses = crit(out, b)
    assert torch.isfinite(losses["loss"]) and losses["num_pos"] > 0
    preds = decode({k: v.detach() for k, v in out.items()}, b)[0]
    assert preds and all(0.0 <= p["segment"][0] < p["segment"][1] <= 10.0 for p in preds)


def test_batch_of_empty_clips_trains(one_thread):
    model, crit, _ = vsgn.build(vsgn.Config(video_dim=8, labels=("a",), **TINY))
    b = _batch()
    b["gt_labels"].zero_()
    losses = crit(model(b), b)
    assert float(losses["loss_reg"].detach()) == 0.0 and float(losses["num_pos"]) == 0
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()


def test_bad_config_and_input():
    with pytest.raises(vsgn.VSGNConfigError, match="multiple of"):
        vsgn.Config(temporal_scale=6, num_levels=3)  # level 2 would have 1.5 steps
    with pytest.raises(vsgn.VSGNConfigError, match="label vocabulary"):
        vsgn.build(vsgn.Config(**TINY))
    model, _, _ = vsgn.build(vsgn.Config(video_dim=8, labels=("a",), **TINY))
    b = _batch()
    with pytest.raises(VSGNInputError, match="feature dim"):
        model({**b, "feats": torch.randn(3, 64, 5)})
    with pytest.raises(VSGNInputError, match="temporal_scale=64"):
        model({**b, "feats": torch.randn(3, 3, 8), "mask": torch.ones(3, 3, dtype=torch.bool)})


# ------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vsgn")
    store = FeatureStore(str(root / "s.zarr"))
    data = make_synthetic_mq(store, num_videos=16, seed=0)
    val = list(data.val)
    # a val clip with a label never seen in training: it stays in the metric as a miss, with a warning
    val.append(MQClip(val[0].video_uid, "novel_clip", val[0].clip_video_start_sec, val[0].clip_video_end_sec,
                      [MQInstance("never_seen", 3.0, 9.0)]))
    train_p, val_p = write_mq_json(data.train, root / "train.json"), write_mq_json(val, root / "val.json")
    metrics = runner.train("vsgn", store, data.feature_set, train_p, root / "run", val_annotations=val_p,
                           head_overrides=TINY, train_overrides=dict(
                               epochs=16, batch_size=4, lr=1e-3, step_milestones=(12,), device="cpu",
                               progress=False))
    torch.set_num_threads(n)
    return SimpleNamespace(store=store, data=data, val=val, val_path=val_p, run=root / "run", metrics=metrics,
                           root=root)


def test_trained_head_beats_chance(trained):
    rng = np.random.default_rng(0)
    chance = []
    for _ in range(3):  # random segments and labels with random scores, as many as the head predicts
        res = {}
        for c in trained.val:
            s = rng.uniform(0, c.clip_duration, 200)
            e = s + rng.uniform(0, 1, 200) * (c.clip_duration - s)
            res[c.clip_uid] = [{"label": str(rng.choice(trained.data.labels)), "score": float(rng.random()),
                                "segment": [float(a), float(b)]} for a, b in zip(s, e)]
        chance.append(evaluate_mq(trained.val, {"results": res})["mAP"])
    got = trained.metrics["mAP"]
    print(f"VSGN mAP {got:.3f} vs chance {chance}")
    assert got > 3 * max(chance) and got > max(chance) + 0.2, (got, chance)


def test_run_directory_contents(trained):
    conf = json.loads((trained.run / "config.json").read_text())
    assert conf["head"] == "vsgn" and conf["benchmark"] == "mq" and conf["feature_set"] == "synthetic-mq"
    assert conf["val_annotations"] == str(trained.val_path) and conf["store"] == trained.store.url
    assert conf["head_config"]["labels"] == trained.data.labels
    sub = json.loads((trained.run / "predictions.json").read_text())
    assert sub["version"] == "1.0" and sub["challenge"] == "ego4d_moment_queries"
    assert set(sub["results"]) == {c.clip_uid for c in trained.val}
    p = sub["results"][trained.val[0].clip_uid][0]
    assert set(p) == {"label", "score", "segment"} and p["label"] in trained.data.labels
    m = json.loads((trained.run / "metrics.json").read_text())
    assert m["mAP"] == pytest.approx(trained.metrics["mAP"]) and "R@1 tIoU=0.5" in m
    # per-class tables are `egoflow evaluate`'s (metrics.json is flat): the written predictions, scored
    per_class = evaluate_mq_files(trained.val_path, trained.run / "predictions.json")["per_class"]
    assert per_class["never_seen"]["AP"] == 0.0
    assert (trained.run / "best.pt").exists()


def test_predict_reproduces_predictions(trained, tmp_path, one_thread):
    out = runner.predict("vsgn", trained.run, trained.store.url, trained.val_path, tmp_path / "p.json")
    again = json.loads(Path(out).read_text())["results"]
    before = json.loads((trained.run / "predictions.json").read_text())["results"]
    uid = trained.val[1].clip_uid
    assert len(again[uid]) == len(before[uid])
    np.testing.assert_allclose([p["score"] for p in again[uid]], [p["score"] for p in before[uid]], rtol=1e-5)


def test_bad_inputs_at_train_and_predict(trained, tmp_path):
    st = trained.store
    st.create_feature_set("other-dim", {"name": "x"}, dim=5, dtype="float32")
    st.write_video("other-dim", trained.data.val[0].video_uid, np.zeros((4, 5)), np.arange(4.0))
    with pytest.raises(MQDataError, match="has dim 5"):
        runner.predict("vsgn", trained.run, st, trained.val_path, tmp_path / "p.json", feature_set="other-dim")
    empty = [MQClip("v", "c", 0.0, 10.0, [])]
    with pytest.raises(MQDataError, match="no labelled"):
        runner.train("vsgn", st, trained.data.feature_set, empty, tmp_path / "r")


def test_demo_step_quick(trained, tmp_path, one_thread):
    root = trained.root
    ctx = SimpleNamespace(store=trained.store.url, feature_set=trained.data.feature_set, text_set=None,
                          mq_train=root / "train.json", mq_val=root / "val.json", out_dir=tmp_path / "demo",
                          device="cpu", seed=0, quick=True)
    r = vsgn.SPEC.demo(ctx, runner)
    assert r["benchmark"] == "mq" and 0 <= r["metrics"]["mAP"] <= 1
    assert json.loads(Path(r["predictions"]).read_text())["challenge"] == "ego4d_moment_queries"
