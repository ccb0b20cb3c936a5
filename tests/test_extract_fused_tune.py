"""Light fusion tuning (egoflow.extract.fused.tune) on generated narrated clips: VTM accuracy on held-out pairs
rises well above chance. clip-fused on the random-initialised tiny open_clip config (frozen), so only the added
fusion modules learn; each concept of egoflow.datasets.synthetic.videos is narrated with its own verb."""
import numpy as np
import pytest
import torch

from egoflow.datasets.synthetic.videos import CONCEPTS, make_video
from egoflow.extract.fused import create_fused_model
from egoflow.extract.fused.encoder import FusedEncoder, FusedEncoderConfig
from egoflow.extract.fused.extract import iter_windows
from egoflow.extract.fused.objectives import scene_chunks
from egoflow.extract.fused.tune import (
    TuneConfig,
    save_fusion,
    tune_fusion,
    vtm_accuracy,
)
from egoflow.extract.pipeline import ExtractConfig


def _pairs(enc, d, seeds):
    clips, texts, labels = [], [], []
    for k, c in enumerate(CONCEPTS):
        for s in seeds:
            p = d / f"c{k}-s{s}.mp4"
            make_video(p, [(0, 2.0, c.name)], fps=8, size=(64, 64), seed=s)
            for w, _ in iter_windows(p, enc, ExtractConfig(fps=4.0)):
                clips.append(w)
                texts += [f"#C C {c.verb} the {c.name}"] * len(w)
                labels += [k] * len(w)
    video = torch.cat([enc._clips(c) for c in clips])
    ids, mask = enc.tokenize(texts)
    return video, ids, mask, torch.tensor(labels)


@pytest.mark.timeout(900)
def test_vtm_accuracy_rises_well_above_chance(tmp_path, one_thread):
    # not the cached create_fused_encoder: tuning changes the model
    enc = FusedEncoder(FusedEncoderConfig("clip-fused-egoflow-tiny-ViT", "none", num_frames=4, precision="fp32",
                                          device="cpu"))
    model = enc.model
    train = _pairs(enc, tmp_path, seeds=(1, 2, 3))
    held = _pairs(enc, tmp_path, seeds=(7, 8))
    before = vtm_accuracy(model, *held)
    hist = tune_fusion(model, *train, cfg=TuneConfig(steps=150, batch=12, lr=2e-3, seed=0))
    after = vtm_accuracy(model, *held)
    print(f"held-out VTM accuracy {before:.3f} -> {after:.3f} ({len(held[0])} clips, chance 0.5)")
    assert np.mean([h["vtm"] for h in hist[-20:]]) < np.mean([h["vtm"] for h in hist[:20]])
    assert after >= 0.8 and after > before + 0.2
    assert any(float(g.detach().abs()) > 0 for g in model.alphas())  # the gates moved off 0
    save_fusion(model, tmp_path / "fusion.pt")
    again = create_fused_model("clip-fused-egoflow-tiny-ViT", num_frames=4,
                               fusion_checkpoint=str(tmp_path / "fusion.pt"))
    assert vtm_accuracy(again, *held) == after


def test_egovlpv2_tuning_with_mlm_runs_all_objectives(one_thread):
    """The EgoVLPv2 configs train their cross-attention, gates and heads with MLM as well (random tiny model)."""
    m = create_fused_model("egovlpv2-tiny", seed=0)
    cfg = m.cfg
    g = torch.Generator().manual_seed(0)
    n = 8
    video = torch.randn(n, cfg.num_frames, 3, cfg.image_size, cfg.image_size, generator=g)
    labels = torch.arange(n) % 4
    ids = torch.randint(5, cfg.vocab_size, (n, 6), generator=g)
    ids[:, 0], ids[:, -1] = 0, 2
    ids[:, 1:3] = (10 + labels * 2)[:, None] + torch.arange(2)  # the label's words
    mask = torch.ones_like(ids)
    frozen = m.video.blocks[0].attn.qkv.weight.clone()
    # tags (nouns, verbs) and scene chunks as Ego4D narrations give them: positives share a noun and a verb,
    # each sampled clip brings one of its video-minute
    nouns = torch.nn.functional.one_hot(labels, 4)
    verbs = torch.nn.functional.one_hot(labels % 2, 2)
    chunks = scene_chunks(["v1"] * 4 + ["v2"] * 4, torch.tensor([0, 10, 70, 80, 0, 5, 10, 15.0]))
    hist = tune_fusion(m, video, ids, mask, cfg=TuneConfig(steps=30, batch=4, lr=3e-3), mask_id=4,
                       tags=(nouns, verbs), chunks=chunks)
    assert {"egonce", "vtm", "mlm"} <= set(hist[-1])
    assert np.mean([h["mlm"] for h in hist[-5:]]) < np.mean([h["mlm"] for h in hist[:5]])
    assert torch.equal(m.video.blocks[0].attn.qkv.weight, frozen)  # lower layers stay frozen
    assert any(float(a.detach().abs()) > 0 for a in m.alphas())
