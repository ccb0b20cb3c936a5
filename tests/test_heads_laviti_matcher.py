import itertools

import numpy as np
import pytest
import torch

from egoflow.heads.laviti.criterion import Criterion
from egoflow.heads.laviti.matcher import HungarianMatcher, alignment_cosines, alignment_logits, hungarian_match
from egoflow.heads.laviti.model import Config


def brute_force(p_vt, p_s, p_e):
    """Best assignment by enumerating all injections of the (smaller) GT set into predictions."""
    prod = p_vt * p_s * p_e
    n, m = prod.shape
    best, arg = -1.0, None
    for rows in itertools.permutations(range(n), m):
        v = sum(prod[r, c] for c, r in enumerate(rows))
        if v > best:
            best, arg = v, rows
    return best, arg


def test_product_cost_lets_one_factor_veto_a_pair():
    # visual-text alone prefers the diagonal, but the start TE says prediction 0 starts where narration 1 does
    # and prediction 1 where narration 0 does: the product must follow "what AND when", i.e. the swap.
    p_vt = np.array([[0.9, 0.6], [0.6, 0.9]])
    p_s = np.array([[0.1, 0.9], [0.9, 0.1]])
    p_e = np.ones((2, 2))
    rows, cols = hungarian_match(p_vt, p_s, p_e)
    # diagonal: 0.9*0.1 + 0.9*0.1 = 0.18; swap: 0.6*0.9 + 0.6*0.9 = 1.08
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]


def test_more_predictions_than_narrations_leaves_predictions_unmatched():
    p_vt = np.array([[0.2, 0.3], [0.9, 0.1], [0.1, 0.2], [0.3, 0.8]])
    ones = np.ones_like(p_vt)
    rows, cols = hungarian_match(p_vt, ones, ones)
    assert rows.tolist() == [1, 3] and cols.tolist() == [0, 1]  # each GT gets its best distinct prediction


def test_matches_brute_force_on_random_matrices():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n, m = int(rng.integers(2, 6)), int(rng.integers(1, 4))
        m = min(m, n)
        ps = [rng.random((n, m)) for _ in range(3)]
        rows, cols = hungarian_match(*ps)
        got = sum(ps[0][r, c] * ps[1][r, c] * ps[2][r, c] for r, c in zip(rows, cols))
        best, _ = brute_force(*ps)
        assert got == pytest.approx(best)
        assert len(set(rows)) == len(rows) == m and sorted(cols.tolist()) == list(range(m))


def test_shape_mismatch_and_empty():
    with pytest.raises(ValueError, match="one \\[N, M\\] shape"):
        hungarian_match(np.ones((3, 2)), np.ones((3, 2)), np.ones((2, 3)))
    rows, cols = hungarian_match(np.ones((4, 0)), np.ones((4, 0)), np.ones((4, 0)))
    assert rows.size == cols.size == 0


def test_batch_matcher_ignores_padded_narrations_and_maps_columns_back():
    # chunk 0 has narrations at columns 0 and 2 (column 1 is padding that would be the best match)
    logits = torch.full((3, 1, 3, 3), -5.0)
    logits[:, 0, 0, 1] = 10.0  # padding column: must never be matched
    logits[:, 0, 1, 2] = 5.0
    logits[:, 0, 2, 0] = 5.0
    mask = torch.tensor([[True, False, True]])
    (rows, cols), = HungarianMatcher()(logits, mask)
    assert 1 not in cols.tolist()
    assert dict(zip(rows.tolist(), cols.tolist())) == {1: 2, 2: 0}


def test_alignment_logits_use_temperature_bias_and_te_table():
    table = torch.eye(4)  # TE k = e_k; positions 0, 1/3, 2/3, 1 hit the rows exactly
    batch = {"text": torch.tensor([[[1.0, 0, 0], [0, 2.0, 0]]]), "start_pos": torch.tensor([[0.0, 1.0]]),
             "end_pos": torch.tensor([[1 / 3, 2 / 3]])}
    outputs = {"visual": torch.tensor([[[1.0, 0, 0]]]), "start_te": torch.tensor([[[0.0, 0, 0, 3.0]]]),
               "end_te": torch.tensor([[[0.0, 1.0, 0, 0]]]), "te_table": table,
               "logit_scale": torch.log(torch.tensor([2.0, 3.0, 4.0])), "logit_bias": torch.tensor([-1.0, 0.0, 1.0])}
    lg = alignment_logits(alignment_cosines(outputs, batch), outputs)
    assert lg.shape == (3, 1, 1, 2)
    # cos(visual, text) = [1, 0]; cos(start, TE(0)) = 0, cos(start, TE(1)) = 1; cos(end, TE(1/3)) = 1, TE(2/3) = 0
    assert torch.allclose(lg[0, 0, 0], torch.tensor([2 * 1 - 1.0, 2 * 0 - 1.0]))
    assert torch.allclose(lg[1, 0, 0], torch.tensor([0.0, 3.0]))
    assert torch.allclose(lg[2, 0, 0], torch.tensor([4 + 1.0, 1.0]))
    capped = alignment_logits(alignment_cosines(outputs, batch), outputs, max_temperature=2.5)
    assert torch.allclose(capped[2, 0, 0], torch.tensor([2.5 + 1.0, 1.0]))


def test_paper_cost_and_learned_cost_choose_differently():
    """The paper's cost (product of sigmoid(cos)) is soft; the learned SigLIP logits (t 10, b -5 here) make one
    poor alignment veto a pair. Narration 0 agrees strongly on two alignments and poorly on one, narration 1
    moderately on all three: the paper matches 0, the learned cost 1."""
    cos = torch.tensor([[1.0, 0.55], [1.0, 0.55], [0.2, 0.55]]).view(3, 1, 1, 2)
    mask = torch.tensor([[True, True]])
    (_, paper), = HungarianMatcher()(cos, mask)
    (_, learned), = HungarianMatcher()(10 * cos - 5, mask)
    assert paper.tolist() == [0] and learned.tolist() == [1]


def test_criterion_matches_on_cosines_with_the_paper_matcher():
    seen = []
    outputs = {"visual": torch.nn.functional.normalize(torch.randn(1, 2, 3), dim=-1),
               "start_te": torch.randn(1, 2, 4), "end_te": torch.randn(1, 2, 4), "te_table": torch.randn(5, 4),
               "logit_scale": torch.log(torch.tensor([10.0, 10.0, 10.0])), "logit_bias": torch.full((3,), -5.0)}
    batch = {"text": torch.randn(1, 2, 3), "text_mask": torch.tensor([[True, True]]),
             "start_pos": torch.tensor([[0.1, 0.5]]), "end_pos": torch.tensor([[0.3, 0.9]])}
    for kind in ("paper", "learned"):
        crit = Criterion(Config(matcher=kind))
        crit.matcher = lambda scores, mask, inner=crit.matcher: seen.append(scores) or inner(scores, mask)
        crit(outputs, batch)
    cos = alignment_cosines(outputs, batch)
    assert torch.allclose(seen[0], cos) and torch.allclose(seen[1], alignment_logits(cos, outputs))
