"""One test per pre-training rule of egoflow.extract.fused.objectives (EgoVLP / EgoVLPv2 reference rules)."""
import math

import torch

from egoflow.extract.fused.objectives import (
    egonce_loss,
    egonce_positives,
    mlm_mask,
    scene_chunks,
    scene_negatives,
    tags_from_labels,
    vtm_pairs,
)


def test_positives_need_a_shared_noun_and_a_shared_verb():
    # clip 0: cut onion; 1: cut tomato; 2: wash onion; 3: cut onion + wash (two verbs); 4: no tags
    nouns = torch.tensor([[1, 0], [0, 1], [1, 0], [1, 0], [0, 0]])
    verbs = torch.tensor([[1, 0], [1, 0], [0, 1], [1, 1], [0, 0]])
    pos = egonce_positives(nouns, verbs)
    assert pos.tolist() == [[True, False, False, True, False],
                            [False, True, False, False, False],
                            [False, False, True, True, False],
                            [True, False, True, True, False],
                            [False, False, False, False, True]]  # untagged: itself only
    n, v = tags_from_labels(torch.tensor([0, 1, 0]))
    assert egonce_positives(n, v).tolist() == [[True, False, True], [False, True, False], [True, False, True]]


def test_egonce_loss_by_hand():
    sim = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1], [0.4, 0.0, 0.7]])
    pos = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 0, 1]]).bool()
    t = 0.05

    def direction(m):
        total = 0.0
        for i in range(3):
            e = [math.exp(m[i][j] / t) for j in range(3)]
            total += math.log(sum(e[j] for j in range(3) if pos[i][j]) / sum(e))
        return total / 3

    want = -(direction(sim.tolist()) + direction(sim.T.tolist()))
    assert abs(float(egonce_loss(sim, pos, t)) - want) < 1e-5
    # a positive that is not the diagonal lowers the loss against plain InfoNCE
    assert float(egonce_loss(sim, pos, t)) < float(egonce_loss(sim, torch.eye(3, dtype=torch.bool), t))


def test_scene_negatives_come_from_the_same_video_minute():
    vids = ["a", "a", "a", "b", "b", "a"]
    times = torch.tensor([5.0, 50.0, 70.0, 10.0, 20.0, 119.0])
    chunks = scene_chunks(vids, times)
    assert chunks.tolist() == [0, 0, 1, 2, 2, 1]
    g = torch.Generator().manual_seed(0)
    drawn = {i: set() for i in range(6)}
    for _ in range(200):
        idx = torch.arange(6)
        for i, j in zip(idx.tolist(), scene_negatives(idx, chunks, g).tolist()):
            drawn[i].add(j)
    assert drawn[0] == {0, 1} and drawn[2] == {2, 5} and drawn[3] == {3, 4}


def test_mlm_masks_15_percent_as_80_10_10():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (400, 50), generator=g)
    real = torch.ones_like(ids, dtype=torch.bool)
    real[:, 0] = real[:, -1] = False  # specials are never picked
    inputs, picked = mlm_mask(ids, real, mask_id=4, vocab_size=1000, generator=g)
    assert not picked[:, 0].any() and not picked[:, -1].any()
    assert abs(picked.float().sum() / real.sum() - 0.15) < 0.01
    p = picked
    masked = (inputs == 4) & p
    kept = (inputs == ids) & p
    other = p & ~masked & ~kept
    n = p.sum().item()
    assert abs(masked.sum().item() / n - 0.8) < 0.02
    assert abs(kept.sum().item() / n - 0.1) < 0.02  # a random token may equal the original: ~0.1% on top
    assert abs(other.sum().item() / n - 0.1) < 0.02
    assert torch.equal(inputs[~p], ids[~p])


def test_vtm_half_pairs_half_hard_negatives_never_positives():
    g = torch.Generator().manual_seed(0)
    b = 10
    emb = torch.nn.functional.normalize(torch.randn(2, b, 16, generator=g), dim=-1)
    sim = emb[0] @ emb[1].T  # cosines, as the dual embeddings give (the reference's 1e-9 floor then never wins)
    pos = egonce_positives(*tags_from_labels(torch.arange(b) % 3))
    for _ in range(50):
        vi, ti, lab = vtm_pairs(sim, pos, 0.05, g)
        assert lab.sum() == b // 2
        keep = lab == 1
        assert torch.equal(vi[keep], torch.arange(b)[keep]) and torch.equal(ti[keep], torch.arange(b)[keep])
        for i in torch.nonzero(~keep).squeeze(1).tolist():
            assert (vi[i] == i) != (ti[i] == i)  # exactly one side swapped
            assert not pos[ti[i], vi[i]]  # the new pair is not a positive
