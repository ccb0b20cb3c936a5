"""clip-fused-<open_clip model> (egoflow.extract.fused.clip_fused): at gates = 0 it is frozen CLIP.

Random-initialised tiny open_clip config (egoflow-tiny-ViT); both sides are seeded the same way."""
import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from egoflow.extract.clip import create_encoder
from egoflow.extract.fused import FusedModelError, create_fused_model


@pytest.fixture(scope="module")
def pair():
    m = create_fused_model("clip-fused-egoflow-tiny-ViT", num_frames=4, fused_layers=1)
    enc = create_encoder("egoflow-tiny-ViT", "none", precision="fp32", device="cpu")
    return m, enc


def test_gates_zero_equal_frozen_clip_mean_pooled_frames(pair):
    m, enc = pair
    frames = np.random.RandomState(0).randint(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    clip = torch.as_tensor(enc.preprocess(frames))[None]
    ref = enc.encode_frames(frames).mean(0)
    ref /= np.linalg.norm(ref)
    tok = open_clip.get_tokenizer("egoflow-tiny-ViT")(["a person opens a door"])
    with torch.no_grad():
        dual = F.normalize(m.encode_video(clip), dim=-1)[0].numpy()
        fused = m.forward_fused(clip, tok)
        np.testing.assert_allclose(dual, ref, atol=1e-6)
        np.testing.assert_allclose(fused["video"][0].numpy(), ref, atol=1e-6)  # gates 0: the text changes nothing
        assert torch.allclose(m.encode_text(tok), enc.model.encode_text(tok), atol=1e-6)
        for g in m.alphas():
            g.fill_(0.7)
        moved = m.forward_fused(clip, tok)["video"][0].numpy()
        assert np.abs(moved - ref).max() > 1e-3
        assert np.abs(m.forward_fused(clip, tok, fusion=False)["video"][0].numpy() - moved).max() > 1e-4
        for g in m.alphas():
            g.fill_(0.0)
    assert all(not p.requires_grad for p in m.clip.parameters())
    assert m.fusion_parameters() and all(p.requires_grad for p in m.fusion_parameters())


def test_bad_names():
    with pytest.raises(FusedModelError, match="unknown open_clip model"):
        create_fused_model("clip-fused-NoSuchViT")
    with pytest.raises(FusedModelError, match="fused_layers"):
        create_fused_model("clip-fused-egoflow-tiny-ViT", fused_layers=5)
