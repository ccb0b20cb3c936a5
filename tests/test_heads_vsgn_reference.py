"""VSGN equals the Ego4D MQ baseline (EGO4D/episodic-memory MQ/Models, use_xGPN) at tiny size.

The fixture holds what the baseline itself produced outside this repository (its state dict, one batch as its
loader yields it, its pyramid/head/boundary-adjusted outputs, its loss terms and the parameters after one Adam
step of its own training loop); nothing here re-runs it.
"""
import math
from pathlib import Path

import pytest
import torch

from egoflow.heads.train import TrainConfig, fit
from egoflow.heads.vsgn.head import REFERENCE_HEAD, REFERENCE_TRAIN, TRAIN_DEFAULTS
from egoflow.heads.vsgn.loss import auxiliary_targets, balanced_bce, reference_bce
from egoflow.heads.vsgn.model import Config, build
from egoflow.heads.vsgn.reference import (
    ReferenceCheckpointError,
    convert_reference_state_dict,
    load_reference_state_dict,
)

FIXTURE = Path(__file__).parent / "fixtures" / "vsgn_tiny_reference.pt"
LOSS_NAMES = {"loss_cls": "loss_cls_dec", "loss_reg": "loss_reg_dec", "loss_adjust": "loss_bd_adjust",
              "loss_action": "loss_action", "loss_start": "loss_start", "loss_end": "loss_end", "loss": "loss"}


@pytest.fixture(scope="module")
def ref():
    return torch.load(FIXTURE)


def _config(ref, **over):
    c = ref["config"]
    sizes = dict(video_dim=c["input_feat_dim"], labels=tuple("abcd")[:c["decoder_num_classes"] - 1],
                 temporal_scale=c["temporal_scale"], hidden_dim=c["bb_hidden_dim"], num_levels=c["num_levels"],
                 num_head_layers=c["num_head_layers"], num_neighbours=c["num_neigh"],
                 anchor_scales=tuple(c["anchor_scale"]), graph_mode=c["nfeat_mode"], graph_agg=c["agg_type"],
                 iou_thr_anchor=c["iou_thr"][1], iou_thr_stage1=c["iou_thr"][1], iou_thr_stage2=c["iou_thr"][2])
    return Config(**{**REFERENCE_HEAD, **sizes, **over})


def _model(ref, **over):
    model, criterion, decode = build(_config(ref, **over))
    assert load_reference_state_dict(model, ref["state_dict"])["loaded"] == len(ref["state_dict"])
    return model, criterion


def _batch(ref):
    """The baseline's batch in egoflow's layout: feats [B, T, C], gt positions = normalised bounds x T."""
    inp, T = ref["inputs"], ref["config"]["temporal_scale"]
    g = inp["gt_bbox"]
    assert (inp["num_frms"] == T).all()  # full clips: no zero padding, where egoflow masks the graph and loss
    return {"feats": inp["video_data"].transpose(1, 2), "mask": torch.ones(g.shape[0], T, dtype=torch.bool),
            "gt_segments": g[..., :2] * T, "gt_labels": g[..., 2].long()}


def _flat(levels, width):
    """Baseline head outputs (coarse level first, [B, A*width, T_l]) -> egoflow's [B, N, width], finest first."""
    return torch.cat([x.permute(0, 2, 1).reshape(x.shape[0], -1, width) for x in levels[::-1]], 1)


def test_pyramid_heads_and_boundary_adjustment_equal_the_baseline(ref):
    model, _ = _model(ref)
    want = ref["outputs"]
    enc, dec = [], []
    for m in model.enc:
        m.register_forward_hook(lambda mod, i, o: enc.append(o[0].transpose(1, 2)))
    for m in model.fuse:
        m.register_forward_hook(lambda mod, i, o: dec.append(o))
    torch.testing.assert_close(model.anchors, want["anchors"], atol=0, rtol=0)
    model.train()
    out = model(_batch(ref))
    for got, exp in zip(enc + dec, want["feats_enc"] + want["feats_dec"], strict=True):
        torch.testing.assert_close(got, exp, atol=1e-5, rtol=0)
    K = ref["config"]["decoder_num_classes"]
    torch.testing.assert_close(out["cls_logits"], _flat(want["cls_pred_dec"], K), atol=1e-5, rtol=0)
    torch.testing.assert_close(out["reg"], _flat(want["reg_pred_dec"], 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(out["segments"], want["loc_dec"], atol=1e-5, rtol=0)
    for n in ("actionness", "startness", "endness"):
        torch.testing.assert_close(torch.sigmoid(out[n]), want[n], atol=1e-6, rtol=0)
    # inference path (the baseline's is_train='false'): softmax scores, coarse and adjusted segments
    model.eval()
    with torch.no_grad():
        out = model(_batch(ref))
    torch.testing.assert_close(torch.softmax(out["cls_logits"], -1), want["infer_score_dec"], atol=1e-6, rtol=0)
    torch.testing.assert_close(out["segments"], want["infer_loc_dec"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out["refined"], want["infer_loc_adjusted"], atol=1e-5, rtol=0)


def test_loss_terms_and_targets_equal_the_baseline(ref):
    model, criterion = _model(ref)
    model.train()
    batch = _batch(ref)
    losses = criterion(model(batch), batch)
    for ours, theirs in LOSS_NAMES.items():
        assert float(losses[ours].detach()) == pytest.approx(ref["losses"][theirs], abs=1e-5), ours
    # the actionness/start/end targets the baseline's loader made, from the same positions
    inp, T = ref["inputs"], ref["config"]["temporal_scale"]
    for b in range(batch["feats"].shape[0]):
        n = int(inp["num_gt"][b])
        act, st, en = auxiliary_targets(batch["gt_segments"][b, :n], T)
        assert torch.equal(act > 0.5, inp["gt_action"][b] > 0.5)
        torch.testing.assert_close(st, inp["gt_start"][b], atol=1e-5, rtol=0)
        torch.testing.assert_close(en, inp["gt_end"][b], atol=1e-5, rtol=0)
    # egoflow's earlier choices are options, and each one moves the numbers
    for over in ({"box_offset": 0.0}, {"bd_mode": "interp"}):
        m2, c2 = _model(ref, **over)
        m2.train()
        other = c2(m2(batch), batch)
        assert abs(float(other["loss"].detach()) - ref["losses"]["loss"]) > 1e-4, over
    # aux_loss="logits": exact BCE on logits where the baseline caps -log at log(1e5) through its +1e-5
    logit, tgt, valid = torch.tensor([[-20.0, 20.0]]), torch.tensor([[1.0, 0.0]]), torch.ones(1, 2, dtype=torch.bool)
    assert float(reference_bce(torch.sigmoid(logit), tgt, valid)) == pytest.approx(math.log(1e5), abs=1e-3)
    assert float(balanced_bce(logit, tgt, valid)) == pytest.approx(20.0, abs=1e-3)


class _OneBatch(torch.utils.data.Dataset):
    def __init__(self, batch):
        self.batch = batch

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return self.batch


def test_one_adam_step_equals_the_baseline(ref):
    """fit() with the head's training defaults (MQ/Train.py: Adam + L2, no clipping) moves every parameter alike.

    Left out: the conv biases right before a GroupNorm with one channel per group (hidden 32 = 32 groups here).
    The norm cancels them, so their true gradient is 0 and what both sides hold is float noise (~1e-8) that
    Adam's first step, g / (|g| + 1e-8), blows up to anything up to lr; checked to be noise instead.
    """
    c = ref["config"]
    after = convert_reference_state_dict(ref["state_dict_after_step"])
    cancelled = {f"{t}_tower.body.{3 * i}.bias" for t in ("cls", "reg") for i in range(c["num_head_layers"])}
    worst = {}
    for clip in (0.0, 1.0):
        model, criterion = _model(ref)
        cfg = TrainConfig(**{**TRAIN_DEFAULTS, **REFERENCE_TRAIN, "epochs": 1, "batch_size": 1, "lr": c["train_lr"],
                             "weight_decay": c["weight_decay"], "progress": False, "grad_clip": clip})
        fit(model, criterion, _OneBatch(_batch(ref)), lambda items: items[0], cfg)
        got = model.state_dict()
        worst[clip] = max((got[k] - v).abs().max().item() for k, v in after.items() if k not in cancelled)
    assert REFERENCE_TRAIN["grad_clip"] == 0.0 and worst[0.0] <= 1e-5, worst
    assert worst[1.0] > 1e-4  # clipping (fit's generic default) is not the baseline's loop
    model, criterion = _model(ref)
    batch = _batch(ref)
    criterion(model(batch), batch)["loss"].backward()
    grads = dict(model.named_parameters())
    # noise: two orders of magnitude below the smallest real gradient
    assert max(grads[k].grad.abs().max().item() for k in cancelled) < 1e-2 * min(
        grads[k].grad.abs().max().item() for k in after if k not in cancelled)


def test_wrong_config_and_unknown_keys_are_named(ref):
    model, _, _ = build(_config(ref, num_head_layers=1))
    with pytest.raises(ReferenceCheckpointError, match="unexpected.*cls_tower.body.3"):
        load_reference_state_dict(model, ref["state_dict"])
    model, _, _ = build(Config(**{**_config(ref).__dict__, "video_dim": 13}))
    with pytest.raises(ReferenceCheckpointError, match="stem.0.weight"):
        load_reference_state_dict(model, ref["state_dict"])
    with pytest.raises(ReferenceCheckpointError, match="unknown key 'extra.weight'"):
        convert_reference_state_dict({**ref["state_dict"], "extra.weight": torch.zeros(1)})
    # DataParallel checkpoints ("module." prefix, how MQ/Train.py saves) load too
    model, _, _ = build(_config(ref))
    load_reference_state_dict(model, {"module." + k: v for k, v in ref["state_dict"].items()})
