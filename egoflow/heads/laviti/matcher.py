"""Three-way Hungarian matching of LAVITI's moment predictions to narrations (DETR's matcher, LAVITI's cost).

For one chunk with N predictions and M narrations the cost is ``-(P_vt * P_start * P_end)`` where each
``P [N, M]`` is a sigmoid per alignment: of the plain cosine in the paper (``Config.matcher = "paper"``), or of
the loss's SigLIP logit ``t * cos + b`` with the learned t and b (``"learned"``, an egoflow option: the
probability the loss itself assigns to the pair). A prediction must agree with a narration on *what* and on
*when* (start and end) to be cheap, and the product makes one bad factor veto the pair.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from egoflow.heads.laviti.temporal import sample_te


def hungarian_match(p_vt, p_start, p_end) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one assignment for one chunk.

    ``p_* [N, M]``: probabilities in [0, 1] (arrays or tensors). Returns ``(pred_idx, gt_idx)``, both int64 of
    length ``min(N, M)``, sorted by ``pred_idx``. With M > N some narrations stay unmatched (the dataset
    subsamples narrations so this does not happen in training).
    """
    parts = [np.asarray(p.detach().cpu() if torch.is_tensor(p) else p, dtype=np.float64)
             for p in (p_vt, p_start, p_end)]
    if not (parts[0].shape == parts[1].shape == parts[2].shape) or parts[0].ndim != 2:
        raise ValueError(f"matcher: the three probability matrices must share one [N, M] shape, got "
                         f"{[list(p.shape) for p in parts]}")
    if parts[0].size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cost = -(parts[0] * parts[1] * parts[2])
    rows, cols = linear_sum_assignment(cost)
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def alignment_cosines(outputs: dict, batch: dict) -> torch.Tensor:
    """Cosines of the three alignments, ``[3, B, N, M]`` (visual-text, start TE, end TE).

    Ground-truth TEs are the TE table read at the narrations' relative start/end times, so the same table
    that positions the visual tokens also defines what a time "looks like" to the decoder's TE heads.
    """
    table = outputs["te_table"]
    gt_start = F.normalize(sample_te(table, batch["start_pos"]), dim=-1)  # [B, M, d]
    gt_end = F.normalize(sample_te(table, batch["end_pos"]), dim=-1)
    text = F.normalize(batch["text"], dim=-1)  # [B, M, E]
    sims = torch.stack([
        outputs["visual"] @ text.transpose(1, 2),
        F.normalize(outputs["start_te"], dim=-1) @ gt_start.transpose(1, 2),
        F.normalize(outputs["end_te"], dim=-1) @ gt_end.transpose(1, 2),
    ])  # [3, B, N, M]
    return sims


def alignment_logits(cosines: torch.Tensor, outputs: dict, max_temperature: float = 100.0) -> torch.Tensor:
    """SigLIP logits ``t * cos + b`` of the three alignments ``[3, B, N, M]`` with the learned t (clamped), b."""
    scale = outputs["logit_scale"].exp().clamp(max=max_temperature)
    return scale.view(3, 1, 1, 1) * cosines + outputs["logit_bias"].view(3, 1, 1, 1)


class HungarianMatcher:
    """Batch wrapper: ``(scores [3, B, N, M], text_mask [B, M]) -> list of (pred_idx, gt_idx)`` per chunk; the
    cost's probabilities are ``sigmoid(scores)`` (cosines for the paper's cost, SigLIP logits for "learned")."""

    @torch.no_grad()
    def __call__(self, logits: torch.Tensor, text_mask: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
        probs = logits.detach().float().sigmoid().cpu()
        valid = text_mask.cpu()
        out = []
        for b in range(probs.shape[1]):
            cols = torch.nonzero(valid[b]).flatten()
            rows, sub = hungarian_match(*(probs[k, b][:, cols] for k in range(3)))
            out.append((rows, cols.numpy()[sub].astype(np.int64)))
        return out
