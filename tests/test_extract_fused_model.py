"""The fused backbone (egoflow.extract.fused.model): shapes, alpha = 0 / fusion off equal the unfused path,
registry. Random-initialised tiny configs only (no weights can be downloaded in tests)."""
import pytest
import torch

from egoflow.extract.fused import FusedModelError, create_fused_model, list_fused_models


@pytest.fixture(scope="module")
def tiny():
    return create_fused_model("egovlpv2-tiny", seed=0)


def _inputs(cfg, B=2, L=7):
    g = torch.Generator().manual_seed(0)
    video = torch.randn(B, cfg.num_frames, 3, cfg.image_size, cfg.image_size, generator=g)
    ids = torch.randint(3, cfg.vocab_size, (B, L), generator=g)
    ids[:, 0] = 0
    mask = torch.ones(B, L, dtype=torch.long)
    ids[1, 4], ids[1, 5:], mask[1, 5:] = 2, cfg.pad_id, 0
    return video, ids, mask


def test_registry_lists_configs_and_refuses_unknown():
    names = list_fused_models()
    assert "egovlpv2-base" in names and "egovlpv2-tiny" in names
    assert any(n.startswith("clip-fused-") for n in names)
    with pytest.raises(FusedModelError, match="unknown fused model"):
        create_fused_model("egovlpv2-huge")
    with pytest.raises(FusedModelError, match="fused_layers"):
        create_fused_model("egovlpv2-tiny", fused_layers=9)


def test_shapes(tiny):
    cfg = tiny.cfg
    video, ids, mask = _inputs(cfg)
    with torch.no_grad():
        assert tiny.encode_video(video).shape == (2, cfg.proj_dim)
        assert tiny.encode_text(ids, mask).shape == (2, cfg.proj_dim)
        out = tiny.forward_fused(video, ids, mask)
    assert out["video"].shape == (2, cfg.width) and out["vtm"].shape == (2, 2)
    assert out["text"].shape == (2, 7, cfg.text_width)
    assert len(tiny.alphas()) == 2 * cfg.fused_layers and all(float(a.detach()) == 0 for a in tiny.alphas())


def test_alpha_zero_equals_fusion_off_and_unfused_towers(tiny):
    video, ids, mask = _inputs(tiny.cfg)
    with torch.no_grad():
        on = tiny.forward_fused(video, ids, mask)
        off = tiny.forward_fused(video, ids, mask, fusion=False)
        for k in ("video", "vtm", "text"):
            assert torch.equal(on[k], off[k]), k
        # the fused path's text tower at alpha = 0 is the dual text tower, token for token
        assert torch.equal(on["text"], tiny.text(ids, mask))
        # and its video tower is the dual video tower (given the same CLS token and final norm)
        v = tiny.video.run(tiny.video.embed(video, tiny.video.cls_token))
        t, bias = tiny.text_lower(ids, mask)
        lower = tiny.video.run(tiny.video.embed(video, tiny.video.cls_token), 0, tiny.lower)
        v2, _ = tiny.fuse(lower, t, bias)
        assert torch.equal(v, v2)


def test_nonzero_alpha_changes_outputs_and_wrong_frames_refused():
    m = create_fused_model("egovlpv2-tiny", seed=1)
    video, ids, mask = _inputs(m.cfg)
    with torch.no_grad():
        off = m.forward_fused(video, ids, mask, fusion=False)
        for a in m.alphas():
            a.fill_(0.5)
        on = m.forward_fused(video, ids, mask)
        assert (on["video"] - off["video"]).abs().max() > 1e-3
        assert torch.equal(m.forward_fused(video, ids, mask, fusion=False)["video"], off["video"])
        # padding of the text never matters: more padding, same outputs
        ids2 = torch.cat([ids, torch.full((2, 3), m.cfg.pad_id)], 1)
        mask2 = torch.cat([mask, torch.zeros(2, 3, dtype=torch.long)], 1)
        assert torch.allclose(m.forward_fused(video, ids2, mask2)["vtm"], on["vtm"], atol=1e-5)
    with pytest.raises(ValueError, match="takes 4 frames"):
        m.encode_video(video[:, :3])


def test_window_cache_and_cls_only_give_the_plain_numbers():
    m = create_fused_model("egovlpv2-tiny", seed=2)
    video, ids, mask = _inputs(m.cfg)
    with torch.no_grad():
        for a in m.alphas():
            a.fill_(0.7)
        plain = m.forward_fused(video, ids, mask)
        cache = m.window_cache(video)
        t, bias = m.text_lower(ids, mask)
        v, t2 = m.fuse(cache["v"], t, bias, cache=cache, cls_only=True)
        out = m.fused_outputs(v, t2)
    assert v.shape[1] == 1
    assert torch.allclose(out["video"], plain["video"], atol=1e-5)
    assert torch.allclose(out["vtm"], plain["vtm"], atol=1e-5)
    assert torch.allclose(t2, plain["text"], atol=1e-5)
