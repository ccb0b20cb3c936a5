"""VSGN post-processing: scores, positions -> seconds, Gaussian Soft-NMS per class, top-N records.

Positions map to clip seconds through the clip's *parts* (``parts [P, 3]`` rows ``(offset, length,
duration_s)``): a plain clip has one part ``(0, temporal_scale, duration)``; a self-stitched one has the
original and the magnified copy. A position ``x`` in part ``p`` is ``(x - offset) / length * duration``
seconds, the exact inverse of the resampling in ``egoflow.heads.vsgn.data``. The records (``{"label", "score",
"segment"}`` per clip) become the official submission through ``egoflow.formats`` (the runner writes it).
"""
from __future__ import annotations

import numpy as np
import torch

from egoflow.formats import temporal_iou
from egoflow.heads.vsgn.layers import sample_at


def positions_to_seconds(seg: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
    """Segments ``seg [N, 2]`` (positions) -> clip seconds ``[N, 2]``, each clipped to its part.

    A segment belongs to the part that contains its centre (the nearest part when it lies in a gap).
    """
    parts = parts[parts[:, 1] > 0]
    ctr = seg.mean(dim=1)
    lo, hi = parts[:, 0], parts[:, 0] + parts[:, 1]
    dist = torch.clamp(lo[None] - ctr[:, None], min=0) + torch.clamp(ctr[:, None] - hi[None], min=0)
    p = dist.argmin(dim=1)
    off, length, dur = parts[p, 0], parts[p, 1], parts[p, 2]
    local = (seg - off[:, None]).clamp(min=0) / length[:, None]
    local = torch.minimum(local, torch.ones_like(local))
    return local * dur[:, None]


def class_scores(out: dict, b: int, cfg) -> torch.Tensor:
    """Per-anchor class scores ``[N, C]`` of sample ``b``: class probability x boundary confidence."""
    logits = out["cls_logits"][b].float()
    if cfg.cls_loss == "focal":
        prob = torch.sigmoid(logits[:, 1:])
    else:
        prob = torch.softmax(logits, dim=-1)[:, 1:]
    if cfg.use_boundary_scores:
        # VSGN's stage-2 score: how start-like and end-like the refined boundaries are
        ref = out["refined"][b].float()
        st, en = torch.sigmoid(out["startness"][b].float()), torch.sigmoid(out["endness"][b].float())
        if cfg.boundary_score == "reference":  # MQ/Infer.py: mean of the steps floor(x) and ceil(x), x in [0, T-1]
            x = ref.clamp(0, st.shape[0] - 1)
            lo, hi = x.floor().long(), x.ceil().long()
            prob = prob * (((st[lo[:, 0]] + st[hi[:, 0]]) / 2) * ((en[lo[:, 1]] + en[hi[:, 1]]) / 2))[:, None]
        else:  # linear interpolation between step centres (i + 0.5)
            s_at = sample_at(st[None, :, None], ref[None, :, 0])[0, :, 0]
            e_at = sample_at(en[None, :, None], ref[None, :, 1])[0, :, 0]
            prob = prob * (s_at * e_at)[:, None]
    return prob


def soft_nms(seg: np.ndarray, scores: np.ndarray, classes: np.ndarray, sigma: float, top_n: int,
             min_score: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian Soft-NMS within each class over candidates ``seg [M, 2]``, ``scores [M]``, ``classes [M]``.

    Returns ``(indices, scores)`` of at most ``top_n`` kept candidates, best first. Candidates decay as
    ``score * exp(-IoU^2 / sigma)`` by every kept candidate of the same class. One greedy pass over all
    classes gives exactly the per-class results merged by score, because decays never cross classes and
    scores only decrease (so picks come out in non-increasing order). numpy: tiny arrays, many steps.
    """
    classes = np.asarray(classes)
    order = np.argsort(classes, kind="stable")  # each class becomes one contiguous slice
    seg = np.asarray(seg, dtype=np.float64)[order]
    s = np.asarray(scores, dtype=np.float64)[order].copy()
    cls = classes[order]
    bounds = np.searchsorted(cls, cls, side="left"), np.searchsorted(cls, cls, side="right")
    keep, kept = [], []
    for _ in range(min(top_n, len(s))):
        i = int(np.argmax(s))
        if not s[i] > min_score:  # also stops once every candidate is taken (-inf)
            break
        keep.append(int(order[i]))
        kept.append(s[i])
        s[i] = -np.inf
        lo, hi = bounds[0][i], bounds[1][i]
        iou = temporal_iou(seg[i], seg[lo:hi], union="sum")[0]  # decode passes positive lengths only: union > 0
        s[lo:hi] *= np.exp(-(iou * iou) / sigma)
    return np.array(keep, dtype=np.int64), np.array(kept, dtype=np.float64)


def decode_clip(out: dict, b: int, parts: torch.Tensor, cfg) -> list[dict]:
    """Predictions of sample ``b`` as ``[{"label", "score", "segment": [start_s, end_s]}]``, best first."""
    with torch.no_grad():
        prob = class_scores(out, b, cfg).cpu()  # [N, C]
        sec = positions_to_seconds(out["refined"][b].float().cpu(), parts.float().cpu())
        C = prob.shape[1]
        flat = prob.flatten()
        k = min(cfg.pre_nms_topk, flat.numel())
        top, idx = flat.topk(k)
        ok = (top > cfg.min_score) & (sec[idx // C, 1] > sec[idx // C, 0])
        top, idx = top[ok], idx[ok]
        anchor, cls = idx // C, idx % C
        keep, score = soft_nms(sec[anchor].numpy(), top.numpy(), cls.numpy(), cfg.nms_sigma, cfg.max_per_clip,
                               cfg.min_score)
    labels, seg = cfg.labels, sec[anchor].numpy()[keep].tolist()
    out = [{"label": labels[c], "score": sc, "segment": sg}
           for c, sc, sg in zip(cls.numpy()[keep].tolist(), score.tolist(), seg)]
    # best first: Soft-NMS decays scores after selection, and the official MQ recall takes the file's order
    return sorted(out, key=lambda d: -d["score"])


def make_decode(cfg):
    """``decode(outputs, batch) -> list`` (one prediction list per sample, in clip seconds)."""
    def decode(out: dict, batch: dict) -> list[list[dict]]:
        return [decode_clip(out, b, batch["parts"][b], cfg) for b in range(out["cls_logits"].shape[0])]
    return decode
