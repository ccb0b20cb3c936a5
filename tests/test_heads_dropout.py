"""egoflow.heads.dropout: nn.Dropout's distribution from uniform draws, and its use in VSLNet."""
import pytest
import torch
from torch import nn

from egoflow.heads.dropout import Dropout, dropout, use_fast_dropout
from egoflow.heads.vslnet.model import Config, VSLNet


def test_keep_probability_scale_and_gradient():
    torch.manual_seed(0)
    x = torch.rand(1000, 1000) + 1.0  # no zeros: a zero in the output is a dropped element
    x.requires_grad_(True)
    y = dropout(x, 0.2)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.8) < 0.003  # 1e6 draws: sd 4e-4
    assert torch.allclose(y[kept], x.detach()[kept] / 0.8)
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.8)  # the backward multiplies by the same mask


def test_identity_when_not_training_or_p_zero_and_bounds():
    x = torch.randn(4, 5)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            Dropout(p)


def test_a_seed_fixes_the_masks():
    m = Dropout(0.3)
    x = torch.ones(64, 64)
    torch.manual_seed(5)
    a = m(x)
    torch.manual_seed(5)
    assert torch.equal(a, m(x))
    assert not torch.equal(a, m(x))
    m.eval()
    assert torch.equal(m(x), x)


def test_vslnet_swaps_every_dropout_and_keeps_its_state_dict():
    cfg = dict(video_dim=16, text_dim=8, dim=16, num_heads=2, conv_layers=1, max_pos_len=8)
    fast, plain = VSLNet(Config(**cfg)), VSLNet(Config(**cfg, fast_dropout=False))
    kinds = lambda m: {type(x) for x in m.modules() if isinstance(x, (nn.Dropout, Dropout))}  # noqa: E731
    assert kinds(fast) == {Dropout} and kinds(plain) == {nn.Dropout}
    n = sum(isinstance(x, nn.Dropout) for x in plain.modules())
    assert n > 0 and sum(isinstance(x, Dropout) for x in fast.modules()) == n
    assert fast.state_dict().keys() == plain.state_dict().keys()
    assert [x.p for x in fast.modules() if isinstance(x, Dropout)] == [0.2] * n


def test_use_fast_dropout_reaches_nested_containers():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1), nn.ModuleList([nn.Dropout(0.4)]))
    use_fast_dropout(m)
    assert isinstance(m[1], Dropout) and m[1].p == 0.1 and isinstance(m[2][0], Dropout) and m[2][0].p == 0.4
