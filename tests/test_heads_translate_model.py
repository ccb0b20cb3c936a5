"""VideoTranslate network options (egoflow.heads.translate.model / sizes): which encoder output feeds the linear
layers (``disc_pool``), the gen+disc training loss, and T5 shapes by name. Tiny random networks only: a t5-large
is never built here (the shape table is checked instead)."""
import pytest
import torch

from egoflow.heads.translate.model import Config, build, fusion_of
from egoflow.heads.translate.sizes import T5_SIZES, size_fields
from egoflow.heads.translate.text import TranslateInputError

TINY = dict(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=4, dropout=0.0)


def _model(**kw):
    torch.manual_seed(0)
    cfg = Config(video_dim=16, vocab_size=40, mode="discriminative", num_classes=(5,), multilabel=True, **TINY, **kw)
    return build(cfg)


def _batch():
    g = torch.Generator().manual_seed(1)
    return {"prefix_ids": torch.randint(4, 40, (3, 2), generator=g), "prefix_mask": torch.ones(3, 2, dtype=torch.bool),
            "feats": torch.randn(3, 5, 16, generator=g),
            "mask": torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 5]).bool(),
            "target_ids": torch.tensor([[5, 6, 1], [7, 1, 0], [8, 9, 1]]),
            "target_mask": torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1]]).bool(), "labels": torch.eye(5)[:3]}


def _layer_input(model, batch):
    seen = []
    hook = model.classifiers[0].register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
    model.eval()
    with torch.no_grad():
        model(batch)
    hook.remove()
    return seen[0]


def test_mean_pooling_feeds_the_masked_mean_of_prefix_and_video():
    model, _, _ = _model(disc_pool="mean")
    b = _batch()
    h, m = model.encode(b, with_text=False)
    want = torch.stack([h[i][m[i]].mean(0) for i in range(3)])
    assert torch.allclose(_layer_input(model, b), want, atol=1e-6)
    assert not hasattr(model, "disc_token")


def test_token_pooling_feeds_the_learned_tokens_own_output():
    model, _, _ = _model(disc_pool="token")
    b = _batch()
    h, m = model.encode(b, with_text=False, token=True)
    got = _layer_input(model, b)
    assert h.shape[1] == 1 + 2 + 5 and m[:, 0].all()  # [token; prefix; video]
    assert torch.allclose(got, h[:, 0], atol=1e-6)
    assert not torch.allclose(got, (h * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True), atol=1e-3)
    with torch.no_grad():  # the token is what is learnt: changing it changes what the layer reads
        model.disc_token.add_(1.0)
    assert not torch.allclose(_layer_input(model, b), got, atol=1e-4)
    b2 = dict(b, feats=b["feats"] + 1.0)  # and it reads the video through attention
    assert not torch.allclose(_layer_input(model, b2), _layer_input(model, b), atol=1e-4)


def test_the_token_is_made_last_so_a_mean_network_and_old_runs_are_unchanged():
    mean, _, _ = _model(disc_pool="mean")
    token, _, _ = _model(disc_pool="token")
    a, b = mean.state_dict(), token.state_dict()
    assert set(b) - set(a) == {"disc_token"}
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_gen_disc_trains_both_losses_and_scores_with_the_layers_only_in_eval():
    model, crit, _ = _model(fusion="gen+disc")
    b = _batch()
    model.train()
    out = model(b)
    losses = crit(out, b)
    assert set(out) == {"logits", "class_logits"}
    assert losses["loss"].item() == pytest.approx(losses["gen"].item() + losses["disc"].item(), rel=1e-6)
    model.eval()
    assert set(model(b)) == {"class_logits"}
    plain, crit2, _ = _model(fusion="disc")
    plain.train()
    assert set(plain(b)) == {"class_logits"} and set(crit2(plain(b), b)) == {"loss"}


def test_fusion_rules_and_their_checks():
    assert fusion_of(Config()) == "gen" and fusion_of(Config(mode="discriminative", num_classes=(2,))) == "disc"
    with pytest.raises(ValueError, match="needs mode=discriminative"):
        build(Config(video_dim=16, vocab_size=40, fusion="gen+disc", **TINY))
    with pytest.raises(ValueError, match="disc_pool"):
        build(Config(video_dim=16, vocab_size=40, disc_pool="cls", **TINY))
    with pytest.raises(ValueError, match="fusion must be"):
        build(Config(video_dim=16, vocab_size=40, fusion="both", **TINY))


def test_t5_shape_table():
    from transformers import T5Config
    small = T5Config()  # transformers' defaults are t5-small's shape
    assert {k: getattr(small, k) for k in ("d_model", "d_ff", "d_kv", "num_heads", "num_layers",
                                           "num_decoder_layers")} == \
        {k: v for k, v in T5_SIZES["t5-small"].items() if k not in ("feed_forward_proj", "tie_word_embeddings")}
    for name, s in T5_SIZES.items():
        assert s["d_model"] == s["num_heads"] * s["d_kv"], name
    assert (T5_SIZES["t5-large"]["d_model"], T5_SIZES["t5-large"]["num_layers"]) == (1024, 24)
    assert (T5_SIZES["t5-base"]["d_model"], T5_SIZES["t5-base"]["num_layers"]) == (768, 12)


def test_size_fills_the_shape_and_refuses_a_contradiction():
    kw = size_fields({"size": "t5-large", "num_frames": 8})
    assert kw["d_model"] == 1024 and kw["d_ff"] == 4096 and kw["num_heads"] == 16 and kw["num_frames"] == 8
    assert size_fields({"size": "", "d_model": 32}) == {"size": "", "d_model": 32}  # "": the fields as set
    assert size_fields({"size": "t5-base", "d_model": 768})["num_layers"] == 12  # agreeing is fine
    with pytest.raises(TranslateInputError, match="size=t5-large has d_model=1024, but the config sets d_model=32"):
        size_fields({"size": "t5-large", "d_model": 32})
    with pytest.raises(TranslateInputError, match="not a known T5 size"):
        size_fields({"size": "t5-huge"})
