"""Linear heads over pooled clip features (the linear-probe protocol of video-language pretraining papers).

One network for every clip-level task: masked mean of the clip's steps ``feats [B, T, Dv]`` (+ the question's
pooled text embedding ``text [B, Dt]`` for QA) -> one linear classifier per output (EK-100: verb and noun). PNR
scores every step instead (``per_step``): the keyframe is the argmax over the clip's steps. EgoTaskQA on a
query-conditioned set (``conditioned``): the steps are already the fused (video, question) features, no text.
With ``hidden`` the classifier is Linear -> ReLU -> Dropout(hidden_dropout) -> Linear (``hidden=-1``: as wide as
the output, EgoVLPv2's EgoTaskQA head ``projector_2(dropout(relu(projector_1(cls))))``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

MASKED = -1e4  # logit of a padded step: far below any real score, finite so cross-entropy stays finite


@dataclass
class Config:
    video_dim: int = 512  # width of the store's features (filled from the feature set)
    text_dim: int = 0  # width of the question embedding (EgoTaskQA; filled from the text set); 0 = video only
    num_classes: tuple = (2,)  # classes of each output, e.g. (verbs, nouns); unused when per_step
    per_step: bool = False  # PNR: one score per step, cross-entropy over the clip's steps
    hidden: int = 0  # 0: a linear layer (the probe); > 0: one hidden ReLU layer this wide; -1: as wide as the output
    dropout: float = 0.0  # on the pooled input while training
    hidden_dropout: float = 0.0  # after the hidden ReLU (EgoVLPv2's EgoTaskQA head: 0.2)
    normalize: bool = True  # L2-normalise video and text vectors (CLIP embeddings are compared by cosine)
    probe: str = "torch"  # "torch": trained by the loop | "lbfgs": scikit-learn L-BFGS logistic regression
    c_grid: tuple = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)  # lbfgs: inverse L2 strengths swept on validation
    max_iter: int = 1000  # lbfgs: iteration limit of each fit
    answers: tuple = ()  # EgoTaskQA: the answer vocabulary (class index -> string), saved with the run
    interval_fps: float = 30.0  # EgoTaskQA: frame rate of the question intervals' frame numbers
    skip_missing: bool = False  # leave out (and count) samples whose video is not in the store, not an error
    conditioned: bool = False  # EgoTaskQA: steps are the fused (video, question) features of a query-conditioned set


class LinearHead(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        if cfg.probe not in ("torch", "lbfgs"):
            raise ValueError(f"probe must be 'torch' or 'lbfgs', got {cfg.probe!r}")
        if cfg.probe == "lbfgs" and cfg.hidden:
            raise ValueError("probe='lbfgs' fits a linear layer: set hidden=0")
        self.cfg = cfg
        if cfg.hidden < -1 or (cfg.hidden == -1 and (cfg.per_step or len(cfg.num_classes) != 1)):
            raise ValueError(f"hidden must be >= 0, or -1 (as wide as a single output), got {cfg.hidden}")
        in_dim = cfg.video_dim + cfg.text_dim
        hidden = cfg.num_classes[0] if cfg.hidden == -1 else cfg.hidden
        self.drop = nn.Dropout(cfg.dropout)
        self.body = (nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(cfg.hidden_dropout)) if hidden
                     else nn.Identity())
        width = hidden or in_dim
        self.outputs = nn.ModuleList(nn.Linear(width, c) for c in ((1,) if cfg.per_step else cfg.num_classes))
        # The L-BFGS probe fixes the weights; the loop then fits only this temperature (argmax and top-k unchanged).
        self.log_scale = nn.Parameter(torch.zeros(()), requires_grad=cfg.probe == "lbfgs")

    def inputs(self, batch: dict) -> torch.Tensor:
        """The probe's design matrix: pooled ``[B, Dv (+Dt)]``, or per step ``[B, T, Dv (+Dt)]`` when per_step."""
        feats, mask = batch["feats"], batch["mask"]
        if self.cfg.normalize:
            feats = F.normalize(feats, dim=-1)
        if self.cfg.per_step:
            x = feats
        else:
            m = mask.unsqueeze(-1).to(feats.dtype)
            x = (feats * m).sum(1) / m.sum(1).clamp(min=1.0)
            if self.cfg.normalize:
                x = F.normalize(x, dim=-1)
        if self.cfg.text_dim:
            t = F.normalize(batch["text"], dim=-1) if self.cfg.normalize else batch["text"]
            x = torch.cat([x, t.unsqueeze(1).expand(-1, x.shape[1], -1) if self.cfg.per_step else t], dim=-1)
        return x

    def forward(self, batch: dict) -> dict:
        """``{"logits": [per output [B, C]]}``, or ``{"step_logits": [B, T]}`` (padded steps at MASKED)."""
        h = self.body(self.drop(self.inputs(batch)))
        scale = self.log_scale.exp()
        if self.cfg.per_step:
            s = self.outputs[0](h).squeeze(-1) * scale
            return {"step_logits": s.masked_fill(~batch["mask"], MASKED)}
        return {"logits": [o(h) * scale for o in self.outputs]}


class Criterion(nn.Module):
    """Cross-entropy of each output against ``targets [B, K]`` (PNR: the keyframe's step index ``[B, 1]``)."""

    def forward(self, out: dict, batch: dict) -> dict:
        y = batch["targets"]
        if "step_logits" in out:
            loss = F.cross_entropy(out["step_logits"], y[:, 0])
            return {"loss": loss}
        losses = {f"ce{k}": F.cross_entropy(lg, y[:, k]) for k, lg in enumerate(out["logits"])}
        return {"loss": sum(losses.values()), **losses}


class Decode:
    """Per sample: ``{"scores": [per output C logits]}`` or ``{"step": argmax step, "step_scores": [T]}``."""

    def __call__(self, out: dict, batch: dict) -> list[dict]:
        if "step_logits" in out:
            s = out["step_logits"].float().cpu()
            lengths = batch["mask"].sum(1).tolist()
            return [{"step": int(s[i, :n].argmax()), "step_scores": s[i, :n].tolist()} for i, n in enumerate(lengths)]
        logits = [lg.float().cpu().numpy() for lg in out["logits"]]
        return [{"scores": [lg[i] for lg in logits]} for i in range(len(logits[0]))]


def build(cfg: Config):
    """-> (model, criterion, decode)."""
    return LinearHead(cfg), Criterion(), Decode()
