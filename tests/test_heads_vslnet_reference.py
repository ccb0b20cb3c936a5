"""VSLNet equals the Ego4D NLQ baseline (EGO4D/episodic-memory NLQ/VSLNet, predictor=bert) at tiny size.

The fixture holds what the baseline itself produced outside this repository (its state dict, one padded batch,
its outputs, losses and parameters after one AdamW step of its own training loop); nothing here re-runs it.
"""
from pathlib import Path

import pytest
import torch

from egoflow.heads.train import TrainConfig, fit
from egoflow.heads.vslnet.head import BASELINE_HEAD, BASELINE_TRAIN
from egoflow.heads.vslnet.model import Config, build
from egoflow.heads.vslnet.reference import (
    ReferenceCheckpointError,
    convert_reference_state_dict,
    load_reference_state_dict,
)

FIXTURE = Path(__file__).parent / "fixtures" / "vslnet_tiny_reference.pt"


@pytest.fixture(scope="module")
def ref():
    return torch.load(FIXTURE)


def _model(ref):
    c = ref["config"]
    sizes = dict(video_dim=c["video_feature_dim"], text_dim=768, dim=c["dim"], num_heads=c["num_heads"],
                 max_pos_len=c["max_pos_len"], dropout=c["drop_rate"], highlight_weight=c["highlight_lambda"])
    model, criterion, decode = build(Config(**{**BASELINE_HEAD, **sizes}))
    report = load_reference_state_dict(model, ref["state_dict"])
    assert report["loaded"] == len(ref["state_dict"])
    return model, criterion, decode


def test_forward_and_loss_equal_the_baseline(ref):
    model, criterion, decode = _model(ref)
    model.train()  # the baseline's training forward (dropout 0 in the fixture)
    b, want = ref["inputs"], ref["outputs"]
    out = model(b)
    m = b["mask"]
    torch.testing.assert_close(torch.sigmoid(out["highlight_logits"]), want["highlight_scores"], atol=1e-5, rtol=0)
    for k in ("start_logits", "end_logits"):
        torch.testing.assert_close(out[k][m], want[k][m], atol=1e-5, rtol=0)
        assert (out[k][~m] < -1e29).all()  # padded steps masked as the baseline masks them
    losses = criterion(out, b)
    for k in ("loss", "span_loss", "highlight_loss"):
        assert float(losses[k].detach()) == pytest.approx(ref["losses"][k], abs=1e-5)
    # decoding ranks the same top-5 (start, end) pairs as the baseline's extract_index
    model.eval()
    with torch.no_grad():
        out = model(b)
    from egoflow.heads.vslnet.model import topk_spans
    s, e, _ = topk_spans(out["start_logits"], out["end_logits"], m, 5)
    assert torch.equal(s, want["top5_start"]) and torch.equal(e, want["top5_end"])


class _OneBatch(torch.utils.data.Dataset):
    def __init__(self, batch):
        self.batch = batch

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return self.batch


def test_one_training_step_equals_the_baseline(ref):
    """fit() with the baseline's optimiser settings moves every parameter as the baseline's loop did."""
    model, criterion, _ = _model(ref)
    c = ref["config"]
    cfg = TrainConfig(**{**BASELINE_TRAIN, "epochs": 1, "batch_size": 1, "lr": c["init_lr"],
                         "grad_clip": c["clip_norm"], "progress": False})
    fit(model, criterion, _OneBatch(ref["inputs"]), lambda items: items[0], cfg)
    after, _ = convert_reference_state_dict(ref["state_dict_after_step"])
    got = model.state_dict()
    worst = max((got[k] - v).abs().max().item() for k, v in after.items())
    assert worst <= 1e-5, worst
    # and torch's own AdamW would not have: the optimiser choice is what the parity rests on
    model2, criterion2, _ = _model(ref)
    fit(model2, criterion2, _OneBatch(ref["inputs"]), lambda items: items[0],
        TrainConfig(**{**cfg.__dict__, "optimizer": "adamw"}))
    got2 = model2.state_dict()
    assert max((got2[k] - v).abs().max().item() for k, v in after.items()) > 1e-4


def test_wrong_config_and_unknown_keys_are_named(ref):
    model, _, _ = build(Config(video_dim=13, text_dim=768, dim=16, num_heads=4, max_pos_len=24))
    with pytest.raises(ReferenceCheckpointError, match="video_proj.linear.weight"):
        load_reference_state_dict(model, ref["state_dict"])
    with pytest.raises(ReferenceCheckpointError, match="unknown key 'extra.weight'"):
        convert_reference_state_dict({**ref["state_dict"], "extra.weight": torch.zeros(1)})
    # the baseline's frozen BERT weights are not the head's: skipped and counted
    bert_key = "embedding_net.embedder.pooler.bias"
    sd, skipped = convert_reference_state_dict({**ref["state_dict"], bert_key: torch.zeros(2)})
    assert skipped == [bert_key] and bert_key not in sd
