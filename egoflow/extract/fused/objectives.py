"""The EgoVLP / EgoVLPv2 pre-training objectives, one rule per function, for fusion tuning (``tune.py``).

Read from the reference code (showlab/EgoVLP@928406c model/loss.py, data_loader/EgoClip_EgoMCQ_dataset.py;
facebookresearch/EgoVLPv2@550c059 EgoVLPv2/model/model.py, trainer/trainer_egoclip.py) and written here:

* EgoNCE positives (action-aware): two clips are positives when their narrations share at least one noun *and*
  one verb of the taxonomy, and every clip is its own positive.
* EgoNCE loss: -mean_i log sum_{j in pos(i)} softmax_j(s_ij / T), text->video plus video->text (summed, T 0.05).
* Scene-aware negatives: every sampled clip brings one more clip drawn uniformly from its video's same
  ``chunk_s``-second chunk (narration time // 60 in EgoVLP; it may draw itself), added to the batch.
* MLM: 15% of the real tokens picked; of those 80% become <mask>, 10% a random vocabulary token, 10% stay;
  the loss is on the picked tokens only.
* VTM with hard negatives: half the batch keeps its pair (label 1), the other half (label 0) swaps either the
  clip or the text (a fair coin) for one drawn by softmax(similarity / T) among non-positives; loss weight 2.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def egonce_positives(nouns: torch.Tensor, verbs: torch.Tensor) -> torch.Tensor:
    """Multi-hot tags ``nouns [B, Vn]``, ``verbs [B, Vv]`` -> positives ``[B, B]`` bool (shared noun and verb)."""
    n, v = nouns.float(), verbs.float()
    pos = ((n @ n.T) > 0) & ((v @ v.T) > 0)
    return pos | torch.eye(len(n), dtype=torch.bool, device=pos.device)


def tags_from_labels(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer labels as tags: one noun and one verb per label, so same label <=> positives."""
    onehot = F.one_hot(labels.long()).bool()
    return onehot, onehot


def egonce_loss(sim: torch.Tensor, positives: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """``sim [B, B]`` cosine of text i with video j; ``positives [B, B]`` bool. Both directions, summed."""
    t2v = torch.log((torch.softmax(sim / temperature, dim=1) * positives).sum(1)).mean()
    v2t = torch.log((torch.softmax(sim.T / temperature, dim=1) * positives).sum(1)).mean()
    return -(t2v + v2t)


def scene_chunks(video_ids: list[str], times: torch.Tensor, chunk_s: float = 60.0) -> torch.Tensor:
    """Chunk id ``[N]`` long: one per (video, floor(time / chunk_s))."""
    keys = [(v, int(t // chunk_s)) for v, t in zip(video_ids, times.tolist())]
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return torch.tensor([index[k] for k in keys])


def scene_negatives(idx: torch.Tensor, chunks: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each sampled index, one index drawn uniformly from the same chunk (itself included)."""
    out = []
    for i in idx.tolist():
        same = torch.nonzero(chunks == chunks[i]).squeeze(1)
        out.append(same[torch.randint(len(same), (1,), generator=generator)])
    return torch.cat(out)


def mlm_mask(ids: torch.Tensor, real: torch.Tensor, mask_id: int, vocab_size: int, generator: torch.Generator,
             prob: float = 0.15, mask_frac: float = 0.8, random_frac: float = 0.1
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking of ``ids [B, L]`` where ``real`` (not special, not padding). Returns (inputs, picked)."""
    picked = real & (torch.rand(ids.shape, generator=generator) < prob)
    u = torch.rand(ids.shape, generator=generator)
    to_mask = picked & (u < mask_frac)
    to_random = picked & (u >= mask_frac) & (u < mask_frac + random_frac)
    inputs = ids.masked_fill(to_mask, mask_id)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    return torch.where(to_random, random_ids, inputs), picked


def vtm_pairs(sim: torch.Tensor, positives: torch.Tensor, temperature: float, generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs for VTM over a batch of B (text i, video i): returns (video index, text index, label) each ``[B]``.

    ``sim [B, B]`` text-video cosine. Half the rows (rounded down) keep their pair; each other row swaps its
    video (coin > 0.5) or its text for a hard negative drawn, as the reference indexes it, by softmax(sim / T)
    of row i of the video->text (video swap) or text->video (text swap) similarity with positives zeroed
    (+1e-9 everywhere, so a row of positives only still draws).
    """
    b = len(sim)
    labels = torch.cat([torch.ones(b // 2), torch.zeros(b - b // 2)])[torch.randperm(b, generator=generator)]
    s = sim.detach()
    w_v2t = torch.softmax(s / temperature, dim=1).masked_fill(positives, 0) + 1e-9
    w_t2v = torch.softmax(s.T / temperature, dim=1).masked_fill(positives, 0) + 1e-9
    vi, ti = torch.arange(b), torch.arange(b)
    for i in torch.nonzero(labels == 0).squeeze(1).tolist():
        if torch.rand(1, generator=generator) > 0.5:
            vi[i] = torch.multinomial(w_t2v[i], 1, generator=generator)
        else:
            ti[i] = torch.multinomial(w_v2t[i], 1, generator=generator)
    return vi, ti, labels.long()
