"""LAVITI's losses: the pretraining set loss (matching + three sigmoid losses) and the CharadesEgo fine-tune loss.

Both read the model's outputs (``visual [B, N, E]``, ``start_te`` / ``end_te [B, N, d]``, ``te_table [K, d]``,
``logit_scale`` / ``logit_bias [3]``) and a batch with narrations (or actions): ``text [B, M, E]``,
``text_mask [B, M]``, ``start_pos`` / ``end_pos [B, M]``; the fine-tune loss also ``labels [B, C]``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from egoflow.heads.laviti.matcher import HungarianMatcher, alignment_cosines, alignment_logits

ALIGNMENTS = ("vt", "start", "end")  # order of the three logits / temperatures / losses


class Criterion(nn.Module):
    """Sigmoid contrastive loss over the three alignments after Hungarian matching.

    For each chunk the pair (prediction i, narration j) has label +1 when matched and -1 otherwise, so
    unmatched predictions are pushed to label 0 (probability) against every narration. Each alignment's loss
    is ``-sum log sigmoid(label * (t * cos + b))`` over the chunk's valid pairs, divided by the number of
    matched pairs in the batch (SigLIP divides by its batch size, i.e. its number of positives).
    Returns ``loss`` and the per-alignment ``loss_vt`` / ``loss_start`` / ``loss_end`` plus the temperatures.
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.matcher = HungarianMatcher()

    def forward(self, outputs: dict, batch: dict) -> dict:
        cosines = alignment_cosines(outputs, batch)  # [3, B, N, M]
        logits = alignment_logits(cosines, outputs, self.cfg.max_temperature)
        text_mask = batch["text_mask"]
        labels = -torch.ones_like(logits[0])
        matches = self.matcher(cosines if self.cfg.matcher == "paper" else logits, text_mask)
        for b, (rows, cols) in enumerate(matches):
            labels[b, torch.as_tensor(rows, device=labels.device), torch.as_tensor(cols, device=labels.device)] = 1.0
        num_pos = max(sum(len(r) for r, _ in matches), 1)
        valid = text_mask[:, None, :].to(logits.dtype)  # [B, 1, M]: padded narrations are no pairs at all
        out = {}
        total = logits.new_zeros(())
        for k, name in enumerate(ALIGNMENTS):
            loss = -(F.logsigmoid(labels * logits[k]) * valid).sum() / num_pos
            out[f"loss_{name}"] = loss.detach()
            out[f"temperature_{name}"] = outputs["logit_scale"][k].detach().exp()
            total = total + self.cfg.loss_weights[k] * loss
        out["loss"] = total
        return out


class FinetuneCriterion(nn.Module):
    """``set_loss_weight`` x LAVITI's set loss on the actions + ``class_loss_weight`` x the class loss.

    Class loss: score ``s [B, C]`` = mean over queries of cos(visual embedding, class-name embedding) (the
    evaluation score), logits ``t * s + b`` with a learnable t (clamped) and b, and
    ``-sum_c log sigmoid(z_c * logit_c)`` per chunk (z = +1 present, -1 absent), averaged over the batch.

    ``cfg``: a ``CharadesConfig``. The class-name embeddings ``class_emb [C, E]`` are a buffer (zeros until
    :meth:`set_class_embeddings`: the names come with the run's data, after the network is built).
    """

    def __init__(self, cfg, class_emb: np.ndarray | None = None):
        super().__init__()
        self.cfg = cfg
        self.set_loss = Criterion(cfg)
        self.register_buffer("class_emb", torch.zeros(cfg.num_classes, cfg.text_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(cfg.class_init_temperature)))
        self.logit_bias = nn.Parameter(torch.tensor(float(cfg.class_init_bias)))
        if class_emb is not None:
            self.set_class_embeddings(class_emb)

    @torch.no_grad()
    def set_class_embeddings(self, class_emb: np.ndarray) -> None:
        """Fill the buffer with the L2-normalised class-name embeddings ``[C, E]`` (C = ``cfg.num_classes``)."""
        emb = F.normalize(torch.as_tensor(np.asarray(class_emb, np.float32)), dim=-1)
        if emb.shape != self.class_emb.shape:
            raise ValueError(f"laviti-charades: class embeddings {list(emb.shape)} do not fit num_classes x "
                             f"text_dim = {list(self.class_emb.shape)}")
        self.class_emb.copy_(emb)

    def forward(self, outputs: dict, batch: dict) -> dict:
        out = self.set_loss(outputs, batch)
        total = self.cfg.set_loss_weight * out["loss"]
        score = outputs["visual"].mean(1) @ self.class_emb.T  # [B, C]: mean of cosines = cosine with the mean
        logits = self.logit_scale.exp().clamp(max=self.cfg.class_max_temperature) * score + self.logit_bias
        z = 2.0 * batch["labels"] - 1.0
        cls = -F.logsigmoid(z * logits).sum(1).mean()
        out.update(loss_set=out["loss"].detach(), loss_class=cls.detach(),
                   temperature_class=self.logit_scale.detach().exp())
        out["loss"] = total + self.cfg.class_loss_weight * cls
        return out
