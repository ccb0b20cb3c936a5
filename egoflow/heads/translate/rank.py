"""Ranking candidate strings by the decoder's likelihood: the encoder runs once per clip, the decoder once per
(clip, candidate chunk) with the clip's encoder states broadcast over the chunk.

The score of candidate c for clip b is the *mean* log-probability of its tokens (``</s>`` included) under
teacher forcing: the sum would favour short class names. ``naive_scores`` re-encodes the clip for every
candidate — the loop the batched path must equal (tests) and beat (benchmarks/heads_translate.py).
"""
from __future__ import annotations

import torch


def pad_ids(rows: list[list[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, L]`` ids padded with ``pad_id`` and their bool mask from lists of ids."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = True
    return ids.to(device), mask.to(device)


def token_loglik(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean log-probability of ``ids [N, L]`` (where ``mask``) under ``logits [N, L, V]`` -> ``[N]``."""
    lp = torch.log_softmax(logits.float(), -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    m = mask.to(lp.dtype)
    return (lp * m).sum(-1) / m.sum(-1).clamp_min(1.0)


@torch.no_grad()
def candidate_scores(model, batch: dict, cand_ids: torch.Tensor, cand_mask: torch.Tensor,
                     chunk: int | None = None) -> torch.Tensor:
    """Scores ``[B, C]`` of candidates ``cand_ids [C, L]`` (with ``</s>``) for the clips of ``batch``.

    The encoder runs once for the B clips; the decoder sees B x ``chunk`` (clip, candidate) pairs at a time.
    """
    enc, enc_mask = model.encode(batch)
    b, c = enc.shape[0], cand_ids.shape[0]
    chunk = chunk or model.cfg.rank_chunk
    out = torch.empty((b, c), device=enc.device)
    for s in range(0, c, chunk):
        ids, m = cand_ids[s: s + chunk], cand_mask[s: s + chunk]
        k = ids.shape[0]
        e = enc.unsqueeze(1).expand(b, k, *enc.shape[1:]).reshape(b * k, *enc.shape[1:])
        em = enc_mask.unsqueeze(1).expand(b, k, -1).reshape(b * k, -1)
        ids2, m2 = ids.repeat(b, 1), m.repeat(b, 1)
        out[:, s: s + k] = token_loglik(model.decode_logits(e, em, ids2, m2), ids2, m2).view(b, k)
    return out


@torch.no_grad()
def naive_scores(model, batch: dict, cand_ids: torch.Tensor, cand_mask: torch.Tensor) -> torch.Tensor:
    """The per-candidate loop: encode every clip again for each candidate, decode one candidate -> ``[B, C]``."""
    cols = []
    for c in range(cand_ids.shape[0]):
        enc, enc_mask = model.encode(batch)
        n = int(cand_mask[c].sum())
        ids = cand_ids[c: c + 1, :n].expand(enc.shape[0], -1)
        m = cand_mask[c: c + 1, :n].expand(enc.shape[0], -1)
        cols.append(token_loglik(model.decode_logits(enc, enc_mask, ids, m), ids, m))
    return torch.stack(cols, 1)


@torch.no_grad()
def clip_scores(model, batch: dict, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """Multiple choice over clips: the likelihood of one text ``[1, L]`` under each clip of ``batch`` -> ``[B]``."""
    return candidate_scores(model, batch, text_ids, text_mask)[:, 0]


def standardize(s: torch.Tensor) -> torch.Tensor:
    """Each row of ``s [N, C]`` to mean 0 and (population) std 1 over its C classes; a constant row becomes 0."""
    s = s.float()
    return (s - s.mean(1, keepdim=True)) / s.std(1, keepdim=True, unbiased=False).clamp_min(1e-6)


def fuse(gen: torch.Tensor, disc: torch.Tensor, weight: float) -> torch.Tensor:
    """``fusion="gen+disc"`` class scores ``[N, C]``: ``(1 - weight) * standardize(gen) + weight *
    standardize(disc)`` of the ranking's mean log-likelihoods and the linear layers' logits. The paper's own rule
    was not found (docs/heads_translate.md): standardizing per clip puts the two scales on one footing."""
    return (1.0 - weight) * standardize(gen) + weight * standardize(disc)
