"""Loading EgoVLPv2 checkpoints (egoflow.extract.fused.checkpoint) and the reference-parity fixture.

tests/fixtures/egovlpv2_tiny_reference.pt was recorded with the public reference code (facebookresearch/
EgoVLPv2, FrozenInTime at a tiny size, random weights incl. non-zero alphas); see tests/fixtures/README.md.
"""
from pathlib import Path

import pytest
import torch

from egoflow.extract.fused import FusedModelError, create_fused_model
from egoflow.extract.fused.checkpoint import read_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "egovlpv2_tiny_reference.pt"


@pytest.fixture(scope="module")
def fx():
    return torch.load(FIXTURE, weights_only=True)


def test_reference_parity(fx):
    m = create_fused_model("egovlpv2-tiny", pretrained=str(FIXTURE), **fx["config"])
    rep = m.load_report
    assert rep.missing == [] and rep.unexpected == [] and rep.loaded == len(m.state_dict())
    assert rep.ignored == ["module.text_model.embeddings.position_ids"]
    with torch.no_grad():
        out = m.forward_fused(fx["video"], fx["ids"], fx["mask"])
        got = {"video_embeds": m.encode_video(fx["video"]), "text_embeds": m.encode_text(fx["ids"], fx["mask"]),
               "vtm_logits": out["vtm"], "fused_video": out["video"], "mlm_logits": m.mlm_logits(out["text"])}
    for k, v in got.items():
        assert v.shape == fx[k].shape, k
        assert (v - fx[k]).abs().max() <= 1e-4, k
    assert (fx["vtm_logits"][:, 1] - fx["vtm_logits"][:, 0]).abs().min() > 1e-3  # not a degenerate fixture


def test_missing_and_unexpected_keys_are_named(fx, tmp_path):
    sd = dict(fx["state_dict"])
    sd.pop("module.itm_score.fc.weight")
    sd["module.video_model.blocks.0.extra.weight"] = torch.zeros(1)
    p = tmp_path / "ck.pth"
    torch.save({"state_dict": sd, "epoch": 3}, p)
    with pytest.raises(FusedModelError, match=r"missing 1 \(vtm_head.weight\); unexpected 1 "
                                               r"\(module.video_model.blocks.0.extra.weight\)"):
        create_fused_model("egovlpv2-tiny", pretrained=str(p), **fx["config"])
    m = create_fused_model("egovlpv2-tiny", pretrained=str(p), strict=False, **fx["config"])
    assert m.load_report.missing == ["vtm_head.weight"]


def test_other_size_or_architecture_refused(fx, tmp_path):
    with pytest.raises(FusedModelError, match=r"shape .* expects"):
        create_fused_model("egovlpv2-tiny", pretrained=str(FIXTURE))  # fixture is narrower than egovlpv2-tiny
    p = tmp_path / "clip.pt"
    torch.save({"visual.conv1.weight": torch.zeros(2), "logit_scale": torch.zeros(())}, p)
    with pytest.raises(FusedModelError, match="another architecture"):
        create_fused_model("egovlpv2-tiny", pretrained=str(p), **fx["config"])
    with pytest.raises(FusedModelError, match="does not exist"):
        create_fused_model("egovlpv2-tiny", pretrained=str(tmp_path / "nope.pth"))


def test_frames_interpolated_with_warning_image_size_refused(fx):
    cfg = {**fx["config"], "num_frames": 8}
    with pytest.warns(UserWarning, match="made for 4 frames, model uses 8: bilinear"):
        m = create_fused_model("egovlpv2-tiny", pretrained=str(FIXTURE), **cfg)
    te = m.video.temporal_embed.detach()
    ref = fx["state_dict"]["module.video_model.temporal_embed"]
    assert te.shape == (1, 8, cfg["width"])
    assert torch.allclose(te[0, 0], ref[0, 0]) and torch.allclose(te[0, -1], ref[0, -1])
    with pytest.raises(FusedModelError, match="patches per frame"):
        create_fused_model("egovlpv2-tiny", pretrained=str(FIXTURE), **{**fx["config"], "image_size": 64})


class ConfigParser:  # stands in for the reference's parse_config.ConfigParser pickled in the released file
    def __init__(self):
        self.x = 1


def test_training_checkpoint_with_foreign_objects_loads(fx, tmp_path, monkeypatch):
    """The released file also pickles the trainer's config object; it must load without that code."""
    import sys
    import types

    mod = types.ModuleType("parse_config")
    mod.ConfigParser = ConfigParser
    monkeypatch.setattr(ConfigParser, "__module__", "parse_config")
    monkeypatch.setitem(sys.modules, "parse_config", mod)
    p = tmp_path / "released.pth"
    torch.save({"state_dict": fx["state_dict"], "config": ConfigParser()}, p)
    monkeypatch.delitem(sys.modules, "parse_config")  # a user without the reference code
    with pytest.raises((ModuleNotFoundError, AttributeError)):
        torch.load(p, weights_only=False)
    assert len(read_state_dict(p)) == len(fx["state_dict"])


def smallproj_file(path, seed: int = 3) -> dict:
    """A checkpoint in the smallproj files' format: EgoVLPv2's backbone names, and the projection heads of
    model_epic_charades.py written by hand (``vid_proj = Sequential(Linear(768, 256))``, ``txt_proj =
    Sequential(ReLU(), Linear(768, 256))``, here at egovlpv2-tiny's widths 32 / 24 -> 8)."""
    from egoflow.extract.fused.checkpoint import to_reference_names

    base = create_fused_model("egovlpv2-tiny", seed=seed)
    sd = {f"module.{k}": v for k, v in to_reference_names(base).items() if not k.startswith(("vid_proj", "txt_proj"))}
    g = torch.Generator().manual_seed(seed)
    sd.update({"module.vid_proj.0.weight": torch.randn(8, 32, generator=g),
               "module.vid_proj.0.bias": torch.randn(8, generator=g),
               "module.txt_proj.1.weight": torch.randn(8, 24, generator=g),
               "module.txt_proj.1.bias": torch.randn(8, generator=g)})
    torch.save({"state_dict": sd, "epoch": 1}, path)
    return sd


def test_smallproj_checkpoint_loads_into_the_smallproj_config_only(tmp_path):
    sd = smallproj_file(tmp_path / "EgoVLPv2_smallproj.pth")
    m = create_fused_model("egovlpv2-tiny-smallproj", pretrained=str(tmp_path / "EgoVLPv2_smallproj.pth"))
    assert m.load_report.missing == [] and m.load_report.unexpected == []
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, 4, 3, 32, 32, generator=g)
    ids = torch.tensor([[0, 5, 9, 2], [0, 7, 2, 1]])
    mask = (ids != 1).long()
    with torch.no_grad():  # the reference heads: video Linear on the CLS, text ReLU then Linear on the CLS
        want_v = m.video(video) @ sd["module.vid_proj.0.weight"].T + sd["module.vid_proj.0.bias"]
        want_t = m.text(ids, mask)[:, 0].relu() @ sd["module.txt_proj.1.weight"].T + sd["module.txt_proj.1.bias"]
        assert torch.allclose(m.encode_video(video), want_v, atol=1e-6)
        assert torch.allclose(m.encode_text(ids, mask), want_t, atol=1e-6)
    with pytest.raises(FusedModelError, match=r"has the small 8-d projection \(module.vid_proj.0.weight\), "
                                              r"egovlpv2-tiny the minimal 16-d one: load it with --model "
                                              r"egovlpv2-base-smallproj"):
        create_fused_model("egovlpv2-tiny", pretrained=str(tmp_path / "EgoVLPv2_smallproj.pth"))
    from egoflow.extract.fused.checkpoint import to_reference_names

    torch.save({"state_dict": to_reference_names(create_fused_model("egovlpv2-tiny"))}, tmp_path / "v2.pth")
    with pytest.raises(FusedModelError, match="has the minimal 16-d projection .* load it with --model egovlpv2-base"):
        create_fused_model("egovlpv2-tiny-smallproj", pretrained=str(tmp_path / "v2.pth"))
    from egoflow.extract.fused.config import get_fused_config

    base = get_fused_config("egovlpv2-base-smallproj")
    assert (base.proj_dim, base.projection, base.width) == (256, "small", 768)
