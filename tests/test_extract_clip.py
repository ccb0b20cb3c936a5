import numpy as np
import pytest
import torch

from egoflow.extract.clip import EncoderError, create_encoder, list_models, resolve_precision

TINY = "egoflow-tiny-ViT"


def test_random_init_warns_loudly(capsys):
    import egoflow.extract.clip as clip

    clip._MODEL_CACHE.clear()
    e = create_encoder(TINY, "none", precision="fp32", device="cpu")
    assert "RANDOMLY INITIALISED" in capsys.readouterr().err
    assert e.describe()["pretrained"] == "none" and e.dim == 64 and TINY in list_models()


def test_local_checkpoint_loads_the_saved_weights(tmp_path):
    import open_clip

    from egoflow.extract.clip import _register_configs

    _register_configs()
    torch.manual_seed(123)  # different from the encoder's own random init
    ref = open_clip.create_model(TINY).eval()
    ckpt = tmp_path / "tiny.pt"
    torch.save(ref.state_dict(), ckpt)
    e = create_encoder(TINY, str(ckpt), precision="fp32", device="cpu", normalize=False)
    d = e.describe()
    assert d["pretrained"] == "file" and d["bytes"] == ckpt.stat().st_size
    frames = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    with torch.no_grad():
        want = ref.encode_image(e.preprocess(frames).float()).numpy()
    np.testing.assert_allclose(e.encode_frames(frames), want, rtol=1e-4, atol=1e-5)
    rand = create_encoder(TINY, "none", precision="fp32", device="cpu", normalize=False)
    assert not np.allclose(rand.encode_frames(frames), want, atol=1e-3)  # the file, not the random init


def test_bad_weights_and_model_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(EncoderError, match="bad.pt"):
        create_encoder(TINY, str(bad), device="cpu")
    with pytest.raises(EncoderError, match="unknown open_clip model"):
        create_encoder("ViT-Nope", "none", device="cpu")
    with pytest.raises(EncoderError, match="precision"):
        resolve_precision("int3", torch.device("cpu"))


def test_tensor_preprocess_matches_open_clip_pil_pipeline():
    """Our batched crop/normalise == open_clip's own PIL transform (on a frame already at the target size)."""
    import open_clip
    from PIL import Image

    e = create_encoder(TINY, "none", precision="fp32", device="cpu")
    _, _, pp = open_clip.create_model_and_transforms(TINY)
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (64, 90, 3), dtype=np.uint8)  # shorter side already 64, as the reader gives
    ours = e.preprocess(frame[None])[0]
    theirs = pp(Image.fromarray(frame))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5)
    # a frame at another size is resized first (bicubic): close to PIL's bicubic, not identical
    big = np.asarray(Image.fromarray(frame).resize((180, 128), Image.BICUBIC))
    a = e.encode_frames(big[None])
    b = e.encode_frames(np.asarray(Image.fromarray(big).resize((90, 64), Image.BICUBIC))[None])
    assert float((a * b).sum()) > 0.99


def test_bf16_close_to_fp32():
    frames = np.random.default_rng(2).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    f32 = create_encoder(TINY, "none", precision="fp32", device="cpu").encode_frames(frames)
    b16 = create_encoder(TINY, "none", precision="bf16", device="cpu").encode_frames(frames)
    cos = (f32 * b16).sum(1)
    assert np.all(cos > 0.99)


def test_text_pooled_is_eot_token_and_lengths():
    e = create_encoder(TINY, "none", precision="fp32", device="cpu")
    pooled, tokens, lengths = e.encode_text(["where is the kettle", "a"])
    assert pooled.shape == (2, 64) and tokens.shape == (2, 32, 64)
    assert list(lengths) == [6, 3]  # start + words + end tokens
    np.testing.assert_allclose(tokens[np.arange(2), lengths - 1], pooled, atol=1e-5)
