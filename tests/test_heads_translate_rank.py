"""gen+disc fusion of class scores (egoflow.heads.translate.rank.fuse) on a hand-worked example."""
import math

import pytest
import torch

from egoflow.heads.translate.rank import fuse, standardize


def test_fusion_is_the_weighted_sum_of_per_clip_standardized_scores():
    gen = torch.tensor([[-1.0, -2.0, -3.0]])  # mean log-likelihoods: mean -2, population std sqrt(2/3)
    disc = torch.tensor([[0.0, 4.0, 2.0]])  # logits: mean 2, population std sqrt(8/3)
    s = math.sqrt(1.5)
    assert standardize(gen)[0].tolist() == pytest.approx([s, 0.0, -s])
    assert standardize(disc)[0].tolist() == pytest.approx([-s, s, 0.0])
    assert fuse(gen, disc, 0.5)[0].tolist() == pytest.approx([0.0, s / 2, -s / 2])
    assert fuse(gen, disc, 0.25)[0].tolist() == pytest.approx([0.5 * s, 0.25 * s, -0.75 * s])
    # the winner moves with the weight: the ranking alone picks class 0, the layers alone class 1
    assert int(fuse(gen, disc, 0.0).argmax()) == 0 and int(fuse(gen, disc, 1.0).argmax()) == 1


def test_fusion_ignores_each_sides_scale_and_offset_and_a_constant_row():
    g = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    d = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(fuse(g, d, 0.3), fuse(10 * g - 7, 0.1 * d + 3, 0.3), atol=1e-5)
    assert torch.equal(standardize(torch.full((1, 3), 2.0)), torch.zeros(1, 3))
