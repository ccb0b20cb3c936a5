"""The EgoVLPv2 QFVS summarizer (egoflow.heads.summarizer.egovlpv2) equals the reference at tiny size.

The fixture holds what facebookresearch/EgoVLPv2 QFVS (model_summary.Transformer_Encoder driven by
runner_train.Runner_summary_transformer.train, on CPU, dropout 0) produced outside this repository: its state
dict (saved through DataParallel, "module." keys), one batch of two videos (3 KTS segments x 12 slots, padded
slots hold random features), the three conditions' scores, the summed loss, the lr of every step and the
parameters after two and three AdamW steps (the first step has lr 0). Nothing here re-runs the reference.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from egoflow.heads.summarizer.egovlpv2 import (
    ReferenceCheckpointError,
    ReferenceConfig,
    ReferenceSummarizer,
    convert_reference_state_dict,
    load_reference_state_dict,
    reference_sinusoid,
)
from egoflow.heads.summarizer.head import PAPER_TRAIN
from egoflow.heads.summarizer.model import Config, Criterion, Decode
from egoflow.heads.summarizer.model import build as build_head
from egoflow.heads.train import TrainConfig, _lr_lambda, fit

FIXTURE = Path(__file__).parent / "fixtures" / "qfvs_tiny_reference.pt"
CONDITIONS = ("oracle", "concept1", "concept2")  # egoflow's order: query prompt first


@pytest.fixture(scope="module")
def ref():
    return torch.load(FIXTURE)


def _model(ref, **over):
    c = ref["config"]
    cfg = ReferenceConfig(dim=c["model_dim"], num_heads=c["nhead"], num_layers=c["num_layers"],
                          dropout=0.0, head_dropout=0.0, last_bias=ref["last_bias"], **over)
    model = ReferenceSummarizer(cfg)
    report = load_reference_state_dict(model, ref["state_dict"])
    assert report == {"loaded": len(model.state_dict()), "skipped": 1}  # pos.pe, checked against our table
    return model


def _batch(ref) -> dict:
    """The fixture's batch in egoflow's layout: seg_feats [B, 3, S, L, D], labels [B, 3, N], mask [B, N]."""
    x = ref["inputs"]
    n = x["mask_GT"].sum(1)
    width = int(n.max())
    labels = torch.stack([x["oracle_summary"], x["concept1_GT"], x["concept2_GT"]], 1)[:, :, :width]
    return {"seg_feats": torch.stack([x[f"fusedfeat_{c}_batched_list"] for c in CONDITIONS], 1),
            "seg_len": x["seg_len"], "labels": labels, "mask": torch.arange(width) < n[:, None]}


def _criterion() -> Criterion:
    return Criterion(Config(loss_reduction="sum", concept_weight=1.0))


def test_forward_and_loss_equal_the_reference(ref):
    model = _model(ref)
    model.train()  # the reference's training forward (dropout 0 in the fixture)
    b = _batch(ref)
    out = model(b)
    want = torch.stack([ref["train_scores"][c] for c in CONDITIONS], 1)  # [B, 3, S, L], padded slots included
    torch.testing.assert_close(out["seg_logits"], want, atol=1e-5, rtol=0)
    assert torch.equal(out["shot_mask"], b["mask"])
    loss = _criterion()(out, b)["loss"]
    assert float(loss.detach()) == pytest.approx(ref["loss"], abs=1e-5)
    # the mean over the batch (egoflow's default) is another number: the reduction is what the parity rests on
    assert abs(float(Criterion(Config())(out, b)["loss"].detach()) - ref["loss"]) > 1.0


def test_padding_is_added_not_masked(ref):
    """Padded slots carry +1 on their attention logits in the reference; masking them out changes the scores."""
    model, excluded = _model(ref), _model(ref, padding="exclude")
    model.eval(), excluded.eval()
    b = _batch(ref)
    with torch.no_grad():
        got = model(b)["seg_logits"][:, 0]
        other = excluded(b)["seg_logits"][:, 0]
    torch.testing.assert_close(got, ref["eval_scores"], atol=1e-5, rtol=0)
    real = b["seg_len"][..., None] > torch.arange(got.shape[-1])
    assert (got - other)[real].abs().max() > 1e-3
    # and the padded slots' features move the real shots' scores under "add-one" only
    b2 = dict(b, seg_feats=b["seg_feats"].clone())
    b2["seg_feats"][~real[:, None].expand(-1, 3, -1, -1)] = 0.0
    with torch.no_grad():
        assert (model(b2)["seg_logits"][:, 0] - got)[real].abs().max() > 1e-4
        torch.testing.assert_close(excluded(b2)["seg_logits"][:, 0][real], other[real], atol=1e-6, rtol=0)


def test_decode_query_only_plain_topk_equals_the_reference(ref):
    model = _model(ref)
    model.eval()
    b = _batch(ref)
    with torch.no_grad():
        out = model(b)
    n = b["mask"].sum(1)
    batch = {"num_shots": n, "segments": torch.zeros_like(b["mask"], dtype=torch.long), "video": ["a", "b"],
             "query": ["q", "q"]}
    top = ref["config"]["top_percent"]
    got = Decode(top, conditions="query", max_per_segment=0)(out, batch)
    for g, want in zip(got, ref["top_index"]):
        assert g["shots"] == want.tolist() and len(want) == int(len(g["shots"]))


def test_schedule_equals_adjust_learning_rate(ref):
    """cosine-floor with 2 warm-up epochs and bias_lr_scale gives the reference's two groups' lr at every step."""
    c = ref["config"]
    base = 1e-5  # adjust_learning_rate's base_lr
    cfg = TrainConfig(epochs=5, lr=base * c["learning_rate_weights"], schedule="cosine-floor", warmup_epochs=2,
                      bias_lr_scale=c["learning_rate_biases"] / c["learning_rate_weights"])
    f = _lr_lambda(cfg, 3)
    for step, (w, bias) in enumerate(ref["lrs_5x3"]):
        assert cfg.lr * f(step) == pytest.approx(w, rel=1e-12, abs=1e-18)
        assert cfg.lr * cfg.bias_lr_scale * f(step) == pytest.approx(bias, rel=1e-12, abs=1e-18)
    assert f(0) == 0.0  # the reference's first step does not move the weights
    assert PAPER_TRAIN["schedule"] == "cosine-floor" and PAPER_TRAIN["warmup_epochs"] == 2


class _OneBatch(torch.utils.data.Dataset):
    def __init__(self, batch):
        self.batch = batch

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return self.batch


@pytest.mark.parametrize("steps", [2, 3])
def test_training_steps_equal_the_reference(ref, steps):
    """fit() with the reference's optimiser (AdamW, decay 0.1 on both groups, weights / biases lr, cosine-floor,
    no clipping) moves every parameter as the reference's loop did: 2 steps (warm-up, the first at lr 0) and a
    3rd (after the warm-up)."""
    c = ref["config"]
    model = _model(ref)
    train = {**PAPER_TRAIN, "epochs": steps, "batch_size": 1, "lr": 1e-5 * c["learning_rate_weights"],
             "bias_lr_scale": c["learning_rate_biases"] / c["learning_rate_weights"], "progress": False}
    res = fit(model, _criterion(), _OneBatch(_batch(ref)), lambda items: items[0], TrainConfig(**train))
    assert res.history[0]["train_loss"] == pytest.approx(ref["losses"][0], abs=1e-5)
    want, _ = convert_reference_state_dict(ref[f"state_dict_after_{steps}"])
    got = model.state_dict()
    worst = max((got[k] - v).abs().max().item() for k, v in want.items())
    assert worst <= 1e-5, worst
    start, _ = convert_reference_state_dict(ref["state_dict"])
    assert max((got[k] - v).abs().max().item() for k, v in start.items()) > 1e-4  # the steps did move them
    # one lr for all parameters (no biases group) lands elsewhere
    other = _model(ref)
    fit(other, _criterion(), _OneBatch(_batch(ref)), lambda items: items[0],
        TrainConfig(**{**train, "bias_lr_scale": 1.0}))
    assert max((other.state_dict()[k] - v).abs().max().item() for k, v in want.items()) > 1e-4


def test_position_table_and_bad_checkpoints_are_named(ref):
    pe = ref["state_dict"]["module.pos.pe"][0]
    torch.testing.assert_close(reference_sinusoid(pe.shape[0], pe.shape[1]), pe, atol=1e-6, rtol=0)
    # the standard table (both columns of a pair at one frequency) is not the reference's
    assert not torch.allclose(reference_sinusoid(8, 16)[:, 1::2], torch.cos(
        torch.arange(8.0)[:, None] / 10000 ** (torch.arange(0, 16, 2) / 16)), atol=1e-3)
    with pytest.raises(ReferenceCheckpointError, match="unknown key 'extra.weight'"):
        convert_reference_state_dict({**ref["state_dict"], "module.extra.weight": torch.zeros(1)})
    with pytest.raises(ReferenceCheckpointError, match="pos.pe"):
        convert_reference_state_dict({**ref["state_dict"], "module.pos.pe": pe[None] + 0.1})
    # the unused template layer real checkpoints carry is skipped and counted
    tpl = {k.replace("transformer_encoder.layers.0.", "encoder_layer."): v for k, v in ref["state_dict"].items()
           if ".layers.0." in k}
    sd, skipped = convert_reference_state_dict({**ref["state_dict"], **tpl})
    assert len(skipped) == len(tpl) + 1 and not any("encoder_layer" in k for k in sd)
    wrong = ReferenceSummarizer(ReferenceConfig(dim=16, num_heads=2, num_layers=2))
    with pytest.raises(ReferenceCheckpointError, match="missing .*encoder.layers.1"):
        load_reference_state_dict(wrong, ref["state_dict"])
    with pytest.raises(ValueError, match="even width"):
        reference_sinusoid(4, 7)


def test_egovlpv2_arch_trains_from_a_conditioned_store(tmp_path):
    """arch=egovlpv2 reads each query's shots under its query and both concept prompts, lays them out per KTS
    segment (kts_lmax + 1 slots a row) and trains through the runner; a plain set or a missing prompt is named."""
    from egoflow.datasets.qfvs import concept_prompt, load_qfvs, query_prompt
    from egoflow.datasets.synthetic.qfvs import make_qfvs
    from egoflow.features_store import FeatureStore
    from egoflow.features_store.conditioned import write_conditioned
    from egoflow.heads import runner
    from egoflow.heads.registry import head_config
    from egoflow.heads.summarizer.data import SummarizerDataError, collate_qfvs, load_split

    syn = make_qfvs(tmp_path / "data", str(tmp_path / "s.zarr"), num_shots=(60, 70, 50, 60), queries_per_video=4,
                    summary_fraction=0.05, dim=16, seed=0)
    store = FeatureStore(syn.store)
    videos = load_qfvs(syn.root)
    g = np.random.default_rng(0)
    for name, with_concepts in (("cond", True), ("cond-query-only", False)):
        store.create_feature_set(name, {"encoder": "fused", "conditioned": "query"}, dim=16, dtype="float32")
        for uid, v in videos.items():
            vf = store.read_video(syn.feature_set, uid)
            prompts = sorted({query_prompt(*q.concepts) for q in v.queries}
                             | ({concept_prompt(c) for q in v.queries for c in q.concepts} if with_concepts else set()))
            fused = np.stack([vf.feats + g.normal(size=16).astype(np.float32) for _ in prompts])  # one shift a prompt
            write_conditioned(store, name, uid, prompts, fused, vf.times)
    head = dict(arch="egovlpv2", conditioned=True, kts_lmax=15, top_percent=0.05, num_heads=2, ffn_dim=32)
    cfg = head_config("summarizer", video_dim=16, text_dim=16, **head)
    _, data = load_split(store, "cond", syn.text_set, syn.root, ["P01"], cfg)
    b = collate_qfvs([data[0], data[1]])
    assert b["seg_feats"].shape[:2] == (2, 3) and b["seg_feats"].shape[3] == 16  # kts_lmax + 1 slots
    assert torch.equal(b["seg_len"].sum(1), b["num_shots"])
    s0 = data[0]
    bnd = s0.video.boundaries
    seg = 1 if len(bnd) > 2 else 0
    a, c = int(bnd[seg]), int(bnd[seg + 1])
    torch.testing.assert_close(b["seg_feats"][0, :, seg, :c - a], s0.video.cond[:, a:c])
    assert not torch.equal(s0.video.cond[0], s0.video.cond[1])  # the concept prompt's shots are its own
    model, crit, _ = build_head(cfg)
    out = model(b)
    assert out["logits"].shape == b["labels"].shape and torch.isfinite(crit(out, b)["loss"])
    with pytest.raises(SummarizerDataError, match="arch egovlpv2 reads query-fused shots"):
        load_split(store, syn.feature_set, syn.text_set, syn.root, ["P01"], head_config(
            "summarizer", video_dim=16, text_dim=16, **{**head, "conditioned": False}))
    with pytest.raises(SummarizerDataError, match="was not extracted"):
        load_split(store, "cond-query-only", syn.text_set, syn.root, ["P01"], cfg)
    m = runner.train("summarizer", store, "cond", syn.root, tmp_path / "run", text_set=syn.text_set,
                     head_overrides={**head, "train_videos": ("P01", "P02"), "test_video": "P03"},
                     train_overrides=dict(epochs=1, batch_size=4, progress=False))
    assert 0.0 <= m["F1"] <= 1.0


def test_paper_head_builds_the_reference_model():
    from egoflow.heads.registry import head_config
    from egoflow.heads.summarizer.head import PAPER_HEAD

    cfg = head_config("summarizer", video_dim=768, text_dim=768, **PAPER_HEAD)
    model, crit, decode = build_head(cfg)
    assert isinstance(model, ReferenceSummarizer) and len(model.encoder.layers) == 2
    assert model.encoder.layers[0].linear1.out_features == 2048 and model.encoder.layers[0].self_attn.num_heads == 2
    assert float(model.score.bias.detach()) == pytest.approx(-1.91, abs=1e-4)
    assert (decode.cap, decode.cond, crit.reduce) == (0, "query", "sum")
    with pytest.raises(ValueError, match="even feature width"):
        build_head(head_config("summarizer", video_dim=15, text_dim=8, **PAPER_HEAD))
