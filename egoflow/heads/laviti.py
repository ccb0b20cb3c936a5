"""LAVITI (Liu et al., "Contrastive Language Video Time Pre-training", 2024) on cached CLIP frame features.

A transformer over a whole chunk (600 s) of frame features decodes N learnable moment queries; each predicts a
language-aligned visual embedding and start/end temporal embeddings (TEs). Predictions are matched to the
chunk's narrations by a three-way Hungarian matching and aligned with sigmoid (SigLIP) contrastive losses. A
time is read out as the frame whose TE is most similar to the predicted TE. Zero-shot NLQ ranks the moments by
query-text similarity; zero-shot CharadesEgo scores a class by the mean similarity of all moments to its name.

Files: ``laviti_model.py`` (network, Config), ``laviti_matcher.py`` (matching), ``laviti_data.py`` (chunks,
narration intervals, batches), ``laviti_zeroshot.py`` (NLQ / CharadesEgo), ``laviti_run.py`` (store I/O:
train_from_store, predict_from_store, demo_step). Choices the paper leaves open: docs/heads_laviti.md.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from egoflow.heads.runs import lazy_entry_points
from egoflow.heads.laviti_matcher import HungarianMatcher, alignment_logits
from egoflow.heads.laviti_model import Config, LavitiModel, sample_te

ALIGNMENTS = ("vt", "start", "end")  # order of the three logits / temperatures / losses


class Criterion(nn.Module):
    """Sigmoid contrastive loss over the three alignments after Hungarian matching.

    For each chunk the pair (prediction i, narration j) has label +1 when matched and -1 otherwise, so
    unmatched predictions are pushed to label 0 (probability) against every narration. Each alignment's loss
    is ``-sum log sigmoid(label * (t * cos + b))`` over the chunk's valid pairs, divided by the number of
    matched pairs in the batch (SigLIP divides by its batch size, i.e. its number of positives).
    Returns ``loss`` and the per-alignment ``loss_vt`` / ``loss_start`` / ``loss_end`` plus the temperatures.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.matcher = HungarianMatcher()

    def forward(self, outputs: dict, batch: dict) -> dict:
        logits = alignment_logits(outputs, batch, self.cfg.max_temperature)  # [3, B, N, M]
        text_mask = batch["text_mask"]
        labels = -torch.ones_like(logits[0])
        matches = self.matcher(logits, text_mask)
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


@torch.no_grad()
def readout_times(te: torch.Tensor, table: torch.Tensor, batch: dict) -> torch.Tensor:
    """Predicted TEs ``[B, N, d]`` -> times ``[B, N]`` (float64 seconds, chunk offset included).

    The time is that of the frame whose TE (the table read at the frame's relative time) is most similar to the
    predicted TE: the paper's "argmax over all TEs", at the resolution of the stored frames.
    """
    frame_te = F.normalize(sample_te(table, batch["frame_pos"]), dim=-1)  # [B, T, d]
    sim = F.normalize(te, dim=-1) @ frame_te.transpose(1, 2)  # [B, N, T]
    sim = sim.masked_fill(~batch["mask"][:, None, :], float("-inf"))
    idx = sim.argmax(-1)
    return batch["frame_times"].gather(1, idx) + batch["offset"][:, None]


class Decode:
    """``(outputs, batch) -> [{"start": [N], "end": [N], "visual": [N, E]}]`` per chunk, numpy, seconds.

    Times are in the time base of the chunk's ``offset`` (video time for training chunks, clip time for NLQ
    clips); a prediction whose end reads out before its start is swapped.
    """

    def __call__(self, outputs: dict, batch: dict) -> list[dict]:
        start = readout_times(outputs["start_te"], outputs["te_table"], batch)
        end = readout_times(outputs["end_te"], outputs["te_table"], batch)
        lo, hi = torch.minimum(start, end), torch.maximum(start, end)
        vis = outputs["visual"].detach().float().cpu().numpy()
        return [{"start": lo[b].cpu().numpy(), "end": hi[b].cpu().numpy(), "visual": vis[b]}
                for b in range(len(vis))]


def build(cfg: Config | None = None) -> tuple[LavitiModel, Criterion, Decode]:
    """DETR-style constructor: ``(model, criterion, decode)`` for ``cfg`` (defaults: the paper's sizes)."""
    cfg = cfg or Config()
    if cfg.kernel < 1 or cfg.num_queries < 1 or cfg.num_time_embeddings < 2:
        raise ValueError(f"laviti: kernel, num_queries must be >= 1 and num_time_embeddings >= 2, got {cfg}")
    if not 0.0 < cfg.interval_reach <= 1.0:
        raise ValueError(f"laviti: interval_reach must be in (0, 1] (bounded by the neighbours), "
                         f"got {cfg.interval_reach}")
    return LavitiModel(cfg), Criterion(cfg), Decode()


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(d: dict) -> Config:
    known = {f.name for f in dataclasses.fields(Config)}
    d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
    return Config(**d)


train_from_store, predict_from_store, demo_step = lazy_entry_points("egoflow.heads.laviti_run")
