"""EgoVLP dual encoder (egoflow.extract.fused.egovlp, egovlp_text, egovlp_checkpoint) against the reference.

tests/fixtures/egovlp_tiny_reference.pt was recorded with the public reference code (showlab/EgoVLP
model/model.py FrozenInTime + model/video_transformer.py SpaceTimeTransformer, DistilBERT from transformers) at
a tiny size with seeded random weights; see tests/fixtures/README.md. Each test writes the state dict in the
released egovlp.pth format and loads it through the real path (create_fused_model / the encoder / the CLI).
"""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from egoflow.cli import main
from egoflow.extract.fused import FusedModelError, create_fused_model
from egoflow.extract.fused.egovlp import similarity
from egoflow.extract.fused.egovlp_text import WordPiece
from egoflow.extract.fused.encoder import create_fused_encoder

FIXTURES = Path(__file__).parent / "fixtures"
TOL = 1e-5


@pytest.fixture(scope="module")
def fx():
    return torch.load(FIXTURES / "egovlp_tiny_reference.pt", weights_only=True)


def released(path: Path, state: dict) -> str:
    """A checkpoint as the EgoVLP trainer saves it (egovlp.pth)."""
    torch.save({"arch": "FrozenInTime", "epoch": 10, "state_dict": state, "monitor_best": 0.0,
                "optimizer": {"state": {}, "param_groups": [{"lr": 3e-5}]}, "config": {"name": "EgoClip_4f"}}, path)
    return str(path)


@pytest.fixture(scope="module")
def ckpt(fx, tmp_path_factory):
    return released(tmp_path_factory.mktemp("egovlp") / "egovlp.pth", fx["state_dict"])


@pytest.fixture(scope="module")
def vocab(fx, tmp_path_factory):
    d = tmp_path_factory.mktemp("distilbert")
    (d / "vocab.txt").write_text("\n".join(fx["vocab"]) + "\n", encoding="utf-8")
    return d


def test_registry_names_and_base_size():
    with pytest.raises(FusedModelError, match="unknown EgoVLP model 'egovlp-huge'; known: egovlp-base, egovlp-tiny"):
        create_fused_model("egovlp-huge")
    m = create_fused_model("egovlp-base", depth=1, text_depth=1)  # real widths; 1 layer each keeps it fast
    sd = m.state_dict()
    assert sd["video_model.pos_embed"].shape == (1, 197, 768) and sd["video_model.temporal_embed"].shape[1] == 16
    assert sd["text_model.embeddings.word_embeddings.weight"].shape == (30522, 768)
    assert sd["vid_proj.0.weight"].shape == (256, 768) and sd["txt_proj.1.weight"].shape == (256, 768)


def test_reference_parity(fx, ckpt):
    m = create_fused_model("egovlp-tiny", pretrained=ckpt)
    rep = m.load_report
    assert rep.missing == [] and rep.unexpected == [] and rep.loaded == len(m.state_dict()) == len(fx["state_dict"])
    with torch.no_grad():
        v, t = m.encode_video(fx["video"]), m.encode_text(fx["ids"], fx["mask"])
        got = {"video_embeds": v, "text_embeds": t, "sim": similarity(t, v),
               "video_embeds_3f": m.encode_video(fx["video_3f"]),  # fewer frames: first rows of temporal_embed
               "text_tokens": m.encode_text_tokens(fx["ids"], fx["mask"])}
    for k, x in got.items():
        assert x.shape == fx[k].shape, k
        assert (x - fx[k]).abs().max() <= TOL, k
    with torch.no_grad():
        feats, n = m.nlq_token_features(fx["ids"], fx["mask"])
    for i in range(len(n)):  # the reference's NLQ script keeps rows 1 .. n-2 of each string
        real = int(fx["mask"][i].sum())
        assert int(n[i]) == real - 2 and not feats[i, real - 2:].any()
        assert (feats[i, :real - 2] - fx["text_tokens"][i, 1:real - 1]).abs().max() <= TOL
        with torch.no_grad():  # it tokenizes one string at a time (no padding): the same rows
            alone, _ = m.nlq_token_features(fx["ids"][i:i + 1, :real], fx["mask"][i:i + 1, :real])
        assert (alone[0] - feats[i, :real - 2]).abs().max() <= TOL
    assert fx["sim"].max() - fx["sim"].min() > 0.2 and (fx["video_embeds"] - fx["video_embeds_3f"]).abs().max() > 0.1


def test_tokenizer_equals_reference(fx, vocab):
    ids, mask = WordPiece(vocab, max_length=24)(fx["strings"])
    assert torch.equal(ids, fx["ids"]) and torch.equal(mask, fx["mask"])  # accents, ##pieces, [UNK], truncation
    (vocab.parent / "roberta").mkdir(exist_ok=True)
    (vocab.parent / "roberta" / "vocab.txt").write_text("<s>\n<pad>\nhello\n")
    with pytest.raises(FusedModelError, match=r"vocab.txt: lacks the WordPiece special tokens \[PAD\], \[UNK\]"):
        WordPiece(vocab.parent / "roberta")
    with pytest.raises(FusedModelError, match="missing vocab.txt"):
        WordPiece(vocab.parent / "nowhere")


@pytest.mark.parametrize("frames,fix", [(6, "zeros"), (6, "bilinear"), (2, "zeros")])
def test_temporal_embedding_follows_reference_rule(fx, ckpt, frames, fix):
    how = {"zeros": "zeros after them", "bilinear": "bilinear interpolation"}[fix] if frames > 4 else "keeping the"
    with pytest.warns(UserWarning, match=f"made for 4 frames, model uses {frames}: {how}"):
        m = create_fused_model("egovlp-tiny", pretrained=ckpt, num_frames=frames, temporal_fix=fix)
    te = m.video_model.temporal_embed.detach()
    assert torch.equal(te, fx[f"temporal_{frames}_{fix}"])
    if fix == "bilinear":
        with torch.no_grad():
            assert (m.encode_video(fx["video_6f"]) - fx["video_embeds_6f_bilinear"]).abs().max() <= TOL
    with pytest.raises(FusedModelError, match=rf"takes 1..{frames} frames"):
        m.encode_video(torch.zeros(1, frames + 1, 3, 32, 32))


def test_keys_accounted_for(fx, tmp_path):
    sd = dict(fx["state_dict"])
    sd["module.text_model.embeddings.position_ids"] = torch.arange(24)[None]  # transformers 4.x buffer
    m = create_fused_model("egovlp-tiny", pretrained=released(tmp_path / "a.pth", sd))
    assert m.load_report.ignored == ["module.text_model.embeddings.position_ids"]
    sd.pop("module.txt_proj.1.bias")
    sd["module.video_model.blocks.0.extra.weight"] = torch.zeros(1)
    p = released(tmp_path / "b.pth", sd)
    with pytest.raises(FusedModelError, match=r"missing 1 \(txt_proj.1.bias\); unexpected 1 "
                                               r"\(module.video_model.blocks.0.extra.weight\)"):
        create_fused_model("egovlp-tiny", pretrained=p)
    assert create_fused_model("egovlp-tiny", pretrained=p, strict=False).load_report.missing == ["txt_proj.1.bias"]
    plain = released(tmp_path / "c.pth", {k.removeprefix("module."): v for k, v in fx["state_dict"].items()})
    assert create_fused_model("egovlp-tiny", pretrained=plain).load_report.loaded == len(fx["state_dict"])


def test_wrong_architecture_one_line(fx, ckpt, tmp_path):
    with pytest.raises(FusedModelError, match="is an EgoVLPv2 checkpoint .* --model egovlpv2-base"):
        create_fused_model("egovlp-tiny", pretrained=str(FIXTURES / "egovlpv2_tiny_reference.pt"))
    clip = released(tmp_path / "clip.pt", {"visual.conv1.weight": torch.zeros(2), "logit_scale": torch.zeros(())})
    with pytest.raises(FusedModelError, match="none of its 2 keys is an EgoVLP key"):
        create_fused_model("egovlp-tiny", pretrained=clip)
    wrong = r"egovlp.pth: module\.video_model\.\S+ has shape \(.*24\), egovlp-tiny expects \(.*32\)"
    with pytest.raises(FusedModelError, match=wrong):
        create_fused_model("egovlp-tiny", pretrained=ckpt, width=32)
    with pytest.raises(FusedModelError, match="16 patches per frame, egovlp-tiny 64"):
        create_fused_model("egovlp-tiny", pretrained=ckpt, image_size=64)
    with pytest.raises(FusedModelError, match="is an EgoVLP checkpoint .* --model egovlp-base"):
        create_fused_model("egovlpv2-tiny", pretrained=ckpt)  # and the other way round
    with pytest.raises(FusedModelError, match="temporal_fix 'nearest' is not zeros or bilinear"):
        create_fused_model("egovlp-tiny", temporal_fix="nearest")


def test_encoder_dual_features_and_text(fx, ckpt, vocab):
    enc = create_fused_encoder("egovlp-tiny", ckpt, str(vocab), num_frames=4, precision="fp32", device="cpu")
    assert enc.dim == 12 and enc.describe()["model"] == "egovlp-tiny"
    p, _, _ = enc.encode_text(list(fx["strings"]))  # real tokenizer path, L2-normalised
    np.testing.assert_allclose(p, F.normalize(fx["text_embeds"], dim=-1).numpy(), atol=TOL)
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (3, 4, 40, 48, 3), dtype=np.uint8)
    with torch.no_grad():
        want = F.normalize(enc.model.encode_video(enc._clips(clips)), dim=-1).numpy()
    np.testing.assert_allclose(enc.encode_windows(clips), want, atol=TOL)
    with pytest.raises(FusedModelError, match="dual encoder .* not query-conditioned features"):
        enc.window_tokens(clips)
    with pytest.raises(FusedModelError, match="dual encoder"):
        enc.fused_dim  # noqa: B018 - read before a conditioned set is created
    with pytest.raises(FusedModelError, match="dual encoder .* use --score dual"):
        enc.model.forward_fused(None, None, None)


def test_cli_extract_and_wrong_checkpoint_exit_2(fx, ckpt, vocab, tmp_path, capsys):
    from egoflow.datasets.synthetic.videos import make_video
    from egoflow.features_store import FeatureStore

    make_video(tmp_path / "v" / "clip.mp4", [(0, 1.6, "red kettle")], fps=10, size=(48, 40), seed=2)
    store = str(tmp_path / "s.zarr")
    args = ["extract", str(tmp_path / "v"), "--store", store, "--encoder", "fused", "--model", "egovlp-tiny",
            "--frames", "4", "--fps", "5", "--tokenizer", str(vocab), "--precision", "fp32", "--quiet"]
    assert main([*args, "--pretrained", ckpt]) == 0
    s = FeatureStore(store, mode="r")
    (name,) = s.feature_sets()
    vf = s.read_video(name, "clip")
    assert vf.feats.shape == (2, 12) and np.allclose(np.linalg.norm(vf.feats, axis=1), 1, atol=2e-3)
    capsys.readouterr()
    assert main([*args, "--pretrained", str(FIXTURES / "egovlpv2_tiny_reference.pt"), "--feature-set", "x"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "is an EgoVLPv2 checkpoint" in err[0]
    assert FeatureStore(store, mode="r").feature_sets() == [name]  # nothing written, nothing lost
    strings = list(fx["strings"][:5])  # the reference's tokenizer did not truncate these
    (tmp_path / "q.txt").write_text("\n".join(strings) + "\n")
    assert main(["encode-text", str(tmp_path / "q.txt"), "--store", store, "--encoder", "fused", "--model",
                 "egovlp-tiny", "--pretrained", ckpt, "--tokenizer", str(vocab), "--precision", "fp32",
                 "--frames", "4"]) == 0
    s = FeatureStore(store, mode="r")
    (tset,) = s.text_sets()
    got = s.load_texts(tset, strings).pooled
    np.testing.assert_allclose(got, F.normalize(fx["text_embeds"][:5], dim=-1).numpy(), atol=2e-3)  # fp16 store


def test_predict_egomcq_dual_only(ckpt, vocab, tmp_path, capsys):
    import json

    from egoflow.datasets.synthetic.videos import make_video
    from egoflow.extract.fused.scoring import clip_frames, pair_scores

    make_video(tmp_path / "v" / "v1.mp4", [(0, 2, "red kettle"), (2, 4, "blue mug")], fps=10, size=(48, 40), seed=3)

    def clip(s, e):
        return {"video_uid": "v1", "clip_start": s, "clip_end": e, "clip_text": ""}
    mcq = {"0": {"query": {**clip(0, 1), "clip_text": "the red cup"}, "answer": 1, "types": 2,
                 "choices": {str(i): clip(i * 0.7, i * 0.7 + 0.6) for i in range(5)}}}
    (tmp_path / "mcq.json").write_text(json.dumps(mcq))
    args = ["predict", "egomcq", "--annotations", str(tmp_path / "mcq.json"), "--videos", str(tmp_path / "v"),
            "--encoder", "fused", "--model", "egovlp-tiny", "--pretrained", ckpt, "--frames", "4",
            "--tokenizer", str(vocab), "--precision", "fp32", "--device", "cpu", "--fps", "10"]
    assert main([*args, "--out", str(tmp_path / "p.json"), "--score", "dual"]) == 0
    got = json.loads((tmp_path / "p.json").read_text())["results"]["0"]  # the official submission
    enc = create_fused_encoder("egovlp-tiny", ckpt, str(vocab), num_frames=4, precision="fp32", device="cpu")
    clips = np.stack(clip_frames(tmp_path / "v" / "v1.mp4", [(i * 0.7, i * 0.7 + 0.6) for i in range(5)], 4, 10.0,
                                 enc.image_size))
    want = pair_scores(enc, clips, ["the red cup"] * 5, "dual")["dual"]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.ptp(want) > 1e-3
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "q.json")]) == 2  # default --score ensemble needs a VTM head
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "use --score dual" in err[0] and not (tmp_path / "q.json").exists()


def test_egovlp_nlq_token_features_are_the_reference_text_side(fx, ckpt, vocab):
    """The egovlp-nlq recipe's text_tokens="proj-inner": encode_text stores what EgoVLP's NLQ script stores
    (projected tokens without [CLS]/[SEP], nlq_token_features, parity-tested above) and the pooled embedding."""
    enc = create_fused_encoder("egovlp-tiny", ckpt, str(vocab), num_frames=4, precision="fp32", device="cpu",
                               text_tokens="proj-inner")
    strings = list(fx["strings"])
    pooled, toks, lens = enc.encode_text(strings, tokens=True)
    ids, mask = enc.tokenize(strings)
    with torch.no_grad():
        want, n = enc.model.nlq_token_features(ids, mask)
    assert lens.tolist() == n.tolist()
    np.testing.assert_allclose(toks, want[:, :toks.shape[1]].numpy(), atol=TOL)
    np.testing.assert_allclose(pooled, F.normalize(fx["text_embeds"], dim=-1).numpy(), atol=TOL)
