"""VSGN losses as the Ego4D MQ baseline computes them: balanced CE (or focal), GIoU of both stages, balanced aux.

Ground truth comes in the batch as ``gt_segments [B, G, 2]`` (positions on the resampled axis) and
``gt_labels [B, G]`` (1..C; 0 pads). A clip without instances contributes only negatives.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from egoflow.evaluate.parity import ParityWarning
from egoflow.heads.vsgn.layers import decode_segments, encode_segments


def segment_iou(a: torch.Tensor, b: torch.Tensor, offset: float = 0.0) -> torch.Tensor:
    """IoU of every segment in ``a [N, 2]`` with every segment in ``b [G, 2]`` -> ``[N, G]``.

    ``offset`` is added to the lengths of ``a`` only, as the Ego4D baseline does when it matches its inclusive
    anchors/predictions against ground truth (its ``_iou_anchors_gts``).

    A torch twin of ``egoflow.formats.temporal_iou(union="sum")`` on purpose: it labels anchors of a batch that
    lives on the training device (no round trip to numpy per clip), and a ``1e-6`` floor instead of ``empty``.
    """
    inter = (torch.min(a[:, None, 1], b[None, :, 1]) - torch.max(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    union = (a[:, 1] - a[:, 0] + offset).clamp(min=0)[:, None] + (b[:, 1] - b[:, 0]).clamp(min=0)[None] - inter
    return inter / union.clamp(min=1e-6)


def match(iou: torch.Tensor, thr: float, unreached: str = "reference") -> torch.Tensor:
    """Index of the ground truth matched to each of N candidates (``iou [N, G]``), -1 when none.

    A candidate matches its best ground truth when IoU >= ``thr``; besides, every ground truth keeps the
    candidates that overlap it most (ties included) and matches them to *their* best ground truth, so that no
    instance goes without a positive (the baseline's low-quality matches). A ground truth that no candidate
    overlaps ties at IoU 0 with every candidate: "reference" keeps the baseline's literal rule (then every
    candidate is matched), "skip" gives that instance no extra positives; both warn (ParityWarning) when it happens.
    """
    if iou.shape[1] == 0:
        return torch.full((iou.shape[0],), -1, dtype=torch.long, device=iou.device)
    best, idx = iou.max(dim=1)
    matched = torch.where(best >= thr, idx, torch.full_like(idx, -1))
    top = iou.max(dim=0).values  # [G]
    low = iou == top[None]
    if not (top > 0).all():
        warnings.warn(f"VSGN matching: {int((top <= 0).sum())} ground-truth instance(s) overlap no candidate; "
                      f"match_unreached={unreached!r} ('reference': every candidate becomes a positive, as in the "
                      "Ego4D baseline; 'skip': none)", ParityWarning, stacklevel=2)
        if unreached == "skip":
            low &= top[None] > 0
    cand = low.any(dim=1)
    matched[cand] = idx[cand]
    return matched


def giou_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-pair 1 - GIoU of segments ``pred [N, 2]`` and ``gt [N, 2]`` -> ``[N]`` (the baseline's 1e-7 terms)."""
    p0, p1 = torch.min(pred[:, 0], pred[:, 1]), torch.max(pred[:, 0], pred[:, 1])
    inter = (torch.min(p1, gt[:, 1]) - torch.max(p0, gt[:, 0])).clamp(min=0)
    union = (p1 - p0) + (gt[:, 1] - gt[:, 0]) - inter + 1e-7
    hull = torch.max(p1, gt[:, 1]) - torch.min(p0, gt[:, 0]) + 1e-7
    return 1 - (inter / union - (hull - union) / hull)


def balanced_bce(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Half the mean BCE over positive steps plus half over negative steps (positives are rare)."""
    pos = (target > 0.5) & valid
    neg = (~pos) & valid
    ce = F.binary_cross_entropy_with_logits(logits, pos.to(logits.dtype), reduction="none")
    loss = logits.new_zeros(())
    if pos.any():
        loss = loss + 0.5 * ce[pos].mean()
    if neg.any():
        loss = loss + 0.5 * ce[neg].mean()
    return loss


def reference_bce(prob: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The baseline's ``bi_loss``: -(w1 t log(p + 1e-5) + w0 (1 - t) log(1 - p + 1e-5)) averaged over valid steps.

    With n steps of which n+ positive, w1 = n / (2 n+) and w0 = n / (2 (n - n+)): half a mean over positives plus
    half over negatives. The baseline divides by zero without positives (or negatives); egoflow drops that half.
    """
    p, t = prob[valid], (target[valid] > 0.5).to(prob.dtype)
    n, n_pos = t.numel(), t.sum()
    if n == 0:
        return prob.sum() * 0.0
    if 0 < n_pos < n:
        ratio = n / n_pos
        c0 = 0.5 * ratio / (ratio - 1)
        c1 = c0 * (ratio - 1)
    else:
        c1 = c0 = torch.tensor(0.5 * n / max(float(n_pos), float(n - n_pos)), dtype=prob.dtype, device=prob.device)
    return -torch.mean(c1 * t * torch.log(p + 1e-5) + c0 * (1.0 - t) * torch.log(1.0 - p + 1e-5))


def auxiliary_targets(gt: torch.Tensor, T: int, edge: float = 3.0,
                      action: str = "reference") -> tuple[torch.Tensor, ...]:
    """Actionness/start/end targets ``[T]`` from segments ``gt [G, 2]`` (positions).

    Action ("reference", the Ego4D baseline's loader): steps ``round(start) .. round(end)`` (ends clipped to the
    clip); "centre": steps whose centre ``i + 0.5`` lies in the segment. Start (end): the fraction of step
    ``[i, i + 1)`` inside a window of ``edge`` steps centred on a start (end) boundary, best over instances.
    """
    lo = torch.arange(T, dtype=gt.dtype, device=gt.device)
    hi, ctr = lo + 1, lo + 0.5
    if gt.shape[0] == 0:
        z = torch.zeros(T, device=gt.device)
        return z, z, z
    if action == "reference":
        left, right = torch.round(gt[:, 0]).clamp(min=0), torch.round(gt[:, 1]).clamp(max=T - 1)
        act = ((lo[:, None] >= left[None]) & (lo[:, None] <= right[None])).any(1).float()
    else:
        act = ((ctr[:, None] >= gt[None, :, 0]) & (ctr[:, None] <= gt[None, :, 1])).any(1).float()

    def ioa(b):  # fraction of each step inside [b - edge/2, b + edge/2], best over instances
        inter = (torch.min(hi[:, None], b[None] + edge / 2) - torch.max(lo[:, None], b[None] - edge / 2)).clamp(0)
        return inter.max(dim=1).values
    return act, ioa(gt[:, 0]), ioa(gt[:, 1])


class VSGNCriterion(nn.Module):
    """``criterion(outputs, batch) -> {"loss", "loss_cls", "loss_reg", "loss_adjust", "loss_action", ...}``."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg

    def forward(self, out: dict, batch: dict) -> dict:
        cfg, o = self.cfg, self.cfg.box_offset
        cls, seg, ref, anchors = out["cls_logits"], out["segments"], out["refined"], out["anchors"]
        B, N, _ = cls.shape
        T = out["actionness"].shape[1]
        labels = torch.zeros(B, N, dtype=torch.long, device=cls.device)
        reg_pred, reg_gt, adj_pred, adj_gt = [], [], [], []
        aux_t = []
        rule = "reference" if cfg.aux_loss == "reference" else "centre"
        for b in range(B):
            keep = batch["gt_labels"][b] > 0
            gts, lab = batch["gt_segments"][b][keep], batch["gt_labels"][b][keep]
            # stage 1 regression: anchors that overlap an instance regress onto it. The target goes through the
            # box coder and back, as in the baseline (its width clamp then also bounds the target)
            m = match(segment_iou(anchors, gts, o), cfg.iou_thr_anchor, cfg.match_unreached)
            pos = m >= 0
            reg_pred.append(seg[b][pos])
            reg_gt.append(decode_segments(encode_segments(gts[m[pos]], anchors[pos], o), anchors[pos], o))
            # classification: labels by the overlap of the *predicted* coarse segments (as in the baseline)
            iou_p = segment_iou(seg[b].detach(), gts, o)
            m1 = match(iou_p, cfg.iou_thr_stage1, cfg.match_unreached)
            if len(lab):
                labels[b] = torch.where(m1 >= 0, lab[m1.clamp(min=0)], 0)
            # stage 2: coarse segments that already fit well are refined towards their instance
            m2 = match(iou_p, cfg.iou_thr_stage2, cfg.match_unreached)
            p2 = m2 >= 0
            adj_pred.append(ref[b][p2])
            a2 = seg[b][p2].detach() if cfg.bd_detach else seg[b][p2]
            adj_gt.append(decode_segments(encode_segments(gts[m2[p2]], a2, o), a2, o))
            aux_t.append(auxiliary_targets(gts, T, action=rule))
        # anchors centred on padding (or on a self-stitching gap) are neither positive nor negative
        ctr = ((anchors[:, 0] + anchors[:, 1]) / 2).floor().long().clamp(0, T - 1)
        anchor_valid = batch["mask"].bool()[:, ctr]
        losses = {"loss_cls": self.cls_loss(cls, labels, anchor_valid)}
        losses["loss_reg"] = self.reg_loss(torch.cat(reg_pred), torch.cat(reg_gt), cls)
        losses["loss_adjust"] = self.reg_loss(torch.cat(adj_pred), torch.cat(adj_gt), cls)
        valid = batch["mask"].bool()
        for i, name in enumerate(("action", "start", "end")):
            tgt = torch.stack([t[i] for t in aux_t])
            logits = out[("actionness", "startness", "endness")[i]]
            losses[f"loss_{name}"] = (reference_bce(torch.sigmoid(logits), tgt, valid) if cfg.aux_loss == "reference"
                                      else balanced_bce(logits, tgt, valid))
        losses["loss"] = (cfg.w_cls * losses["loss_cls"] + cfg.w_reg * losses["loss_reg"]
                          + cfg.w_adjust * losses["loss_adjust"]
                          + cfg.w_aux * (losses["loss_action"] + losses["loss_start"] + losses["loss_end"]))
        losses["num_pos"] = (labels > 0).sum().detach().float()
        return losses

    def reg_loss(self, pred: torch.Tensor, gt: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if pred.shape[0] == 0:  # no positives in the batch (e.g. only empty clips): nothing to regress
            return like.sum() * 0.0
        return giou_loss(pred, gt).mean()

    def cls_loss(self, logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``logits [B, N, K]`` (K = C + 1), ``labels [B, N]`` in 0..C."""
        cfg = self.cfg
        pos, neg = (labels > 0) & valid, (labels == 0) & valid
        if cfg.cls_loss == "focal":
            # sigmoid focal loss over the C foreground classes; background = all zeros
            onehot = F.one_hot(labels, logits.shape[-1])[..., 1:].to(logits.dtype)
            x = logits[..., 1:]
            p = torch.sigmoid(x)
            ce = F.binary_cross_entropy_with_logits(x, onehot, reduction="none")
            pt = p * onehot + (1 - p) * (1 - onehot)
            at = cfg.focal_alpha * onehot + (1 - cfg.focal_alpha) * (1 - onehot)
            fl = (at * (1 - pt) ** cfg.focal_gamma * ce).sum(-1)
            return fl[valid].sum() / pos.sum().clamp(min=1)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
        ce = ce.view_as(labels)
        loss = logits.sum() * 0.0
        if pos.any():
            loss = loss + ce[pos].mean()
        if neg.any():
            loss = loss + ce[neg].mean()
        return loss


__all__ = ["VSGNCriterion", "auxiliary_targets", "balanced_bce", "reference_bce", "giou_loss", "match", "segment_iou"]
