"""FusedEncoder's recipe settings: token features of the text tower (EgoVLPv2 "hidden", EgoVLP "proj-inner"),
the reference transform in preprocess, bad settings, the untuned-fusion check. Tiny random egovlpv2-tiny."""
import numpy as np
import pytest
import torch

from egoflow.extract import reference as R
from egoflow.extract.fused.config import FusedModelError
from egoflow.extract.fused.encoder import create_fused_encoder
from egoflow.extract.fused.extract import UntunedFusionError, check_fusion_tuned
from egoflow.extract.fused.tokenizer import write_tiny_vocab


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return str(write_tiny_vocab(tmp_path_factory.mktemp("tok"), ["person", "opens", "the", "door", "red"]))


def _enc(tok, **kw):
    return create_fused_encoder("egovlpv2-tiny", "none", tok, num_frames=4, precision="fp32", device="cpu", **kw)


@pytest.mark.parametrize("mode", ["hidden", "proj-inner"])
def test_token_features_are_the_reference_tensor(tok, mode):
    e = _enc(tok, text_tokens=mode)
    strings = ["person opens the door", "red door"]
    P, T, L = e.encode_text(strings, tokens=True)
    for j, s in enumerate(strings):
        ids, mask = e.tokenize([s])
        n = int(mask.sum())
        with torch.no_grad():
            h = e.model.text(ids, mask)
            ref = e.model.text_proj(h)[0, 1:n - 1] if mode == "proj-inner" else h[0, :n]
        assert L[j] == len(ref)
        np.testing.assert_allclose(T[j, :L[j]], ref.numpy(), atol=1e-6)
        assert not T[j, L[j]:].any()  # zero padding
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), 1, atol=1e-5)
    assert _enc(tok).encode_text(strings, tokens=True)[1] is None  # no recipe: pooled only, as before


def test_reference_transform_in_preprocess(tok):
    e = _enc(tok, transform="crop256-224")
    frames = np.random.default_rng(0).integers(0, 256, (3, 40, 71, 3), dtype=np.uint8)
    want = R.transform(frames, "crop256-224", e.mean.flatten().tolist(), e.std.flatten().tolist(), e.image_size)
    assert torch.equal(e.preprocess(frames), want) and want.shape == (3, 3, 32, 32)
    assert e.describe()["crop"] == "crop256-224"


def test_bad_reference_settings_and_untuned_fusion(tok, capsys):
    with pytest.raises(FusedModelError, match="unknown frame rule"):
        _enc(tok, frame_rule="every-other")
    with pytest.raises(FusedModelError, match="window_rate"):
        _enc(tok, frame_rule="start-end-decord")
    e = _enc(tok)
    assert "every fusion gate is 0" in check_fusion_tuned(e) and "WARNING" in capsys.readouterr().err
    with pytest.raises(UntunedFusionError):
        check_fusion_tuned(e, strict=True)
    with torch.no_grad():
        e.model.alphas()[0].fill_(0.5)
    try:
        assert check_fusion_tuned(e, strict=True) == ""
    finally:
        with torch.no_grad():
            e.model.alphas()[0].fill_(0.0)  # the encoder is cached per process
