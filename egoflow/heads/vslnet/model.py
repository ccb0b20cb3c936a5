"""VSLNet head for Ego4D Natural Language Queries, trained from cached features.

Zhang et al., ACL 2020, "Span-based Localizing Network for Natural Language Video Localization"; defaults follow
the Ego4D NLQ baseline. The model sees only arrays: video step features [B, T, Dv] with a mask, token-level query
features [B, L, Dt] with a mask, and per-step time boundaries for decoding windows in clip seconds.

    model, criterion, decode = build(Config(video_dim=512, text_dim=512))
    out = model(batch); loss = criterion(out, batch)["loss"]; preds = decode(out, batch)

From a feature store through the shared runner: `egoflow.heads.runner.train("vslnet", ...)` (hooks in head.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from egoflow.heads.dropout import use_fast_dropout
from egoflow.heads.vslnet.layers import (
    ConditionedSpanPredictor,
    ContextQueryAttention,
    FeatureEncoder,
    Highlighter,
    Projection,
    QueryConcat,
    highlight_loss,
)


@dataclass
class Config:
    video_dim: int = 512  # dim of the store's video features (checked against the feature set before training)
    text_dim: int = 512  # dim of the token-level query features (checked against the text set)
    dim: int = 128  # common model dim
    num_heads: int = 8  # attention heads in the feature encoders
    kernel_size: int = 7  # depthwise conv kernel (steps)
    conv_layers: int = 4  # depthwise-separable conv layers per encoder
    max_pos_len: int = 128  # longer clips are resampled to this many steps
    dropout: float = 0.2  # dropout everywhere
    highlight_weight: float = 5.0  # weight of the highlighting loss against the span loss
    highlight_extension: float = 0.1  # foreground = answer window extended by this ratio of its length each side
    topk: int = 5  # windows returned per query by decode
    drop_zero_length_train: bool = True  # drop training queries whose answer window has zero length
    skip_missing: bool = False  # drop (and count) queries whose video/text features are missing, else fail
    conditioned: bool = False  # query-conditioned feature set (fused extractor): one sequence per (clip, query)
    predictor: str = "transformer"  # span predictor: "transformer" (baseline with cached text tokens) | "rnn"
    mask_conv_padding: bool = True  # egoflow option: zero padded steps before each conv (baseline: off)
    pos_init_std: float = 0.02  # egoflow option: position embedding init std (baseline: torch's N(0, 1) = 1.0)
    fast_dropout: bool = True  # CPU dropout masks from torch.rand: nn.Dropout's distribution, ~2x cheaper draws


class VSLNet(nn.Module):
    """Span localisation of a query in a clip.

    batch: "feats" [B, T, Dv] float, "mask" [B, T] bool, "text" [B, L, Dt] float, "text_mask" [B, L] bool.
    returns: "start_logits", "end_logits", "highlight_logits", each [B, T] (padding at a very negative value).
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        if cfg.predictor not in ("transformer", "rnn"):
            raise ValueError(f"vslnet predictor must be 'transformer' or 'rnn', got {cfg.predictor!r}")
        self.video_proj = Projection(cfg.video_dim, cfg.dim, cfg.dropout)
        # cached text tokens are the baseline's frozen-BERT output: one linear map, no dropout (its query_affine)
        self.query_proj = nn.Linear(cfg.text_dim, cfg.dim)
        enc = dict(dim=cfg.dim, num_heads=cfg.num_heads, kernel_size=cfg.kernel_size, num_layers=cfg.conv_layers,
                   max_pos_len=cfg.max_pos_len, dropout=cfg.dropout, mask_padding=cfg.mask_conv_padding,
                   pos_init_std=cfg.pos_init_std)
        self.encoder = FeatureEncoder(**enc)  # shared by video and query
        self.cq_attention = ContextQueryAttention(cfg.dim, cfg.dropout)
        self.cq_concat = QueryConcat(cfg.dim)
        self.highlighter = Highlighter(cfg.dim)
        self.predictor = ConditionedSpanPredictor(
            FeatureEncoder(**enc) if cfg.predictor == "transformer" else None, cfg.dim)
        self.apply(_init_weights)
        if cfg.fast_dropout:  # the same keep probability and scale; other masks per seed (heads/dropout.py)
            use_fast_dropout(self)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        v_mask, q_mask = batch["mask"], batch["text_mask"]
        # the baseline's order (video projection, query projection, query encoder, video encoder): with dropout
        # on and fast_dropout=False, the same seed then draws the baseline's masks
        v = self.video_proj(batch["feats"])
        q = self.encoder(self.query_proj(batch["text"]), q_mask)
        v = self.encoder(v, v_mask)
        x = self.cq_concat(self.cq_attention(v, q, v_mask, q_mask), q, q_mask)
        h = self.highlighter(x, v_mask)
        # gate each step by its foreground probability so the span predictor focuses on the highlighted region
        x = x * torch.sigmoid(h).unsqueeze(-1)
        start, end = self.predictor(x, v_mask)
        return {"start_logits": start, "end_logits": end, "highlight_logits": h}


def _init_weights(m: nn.Module) -> None:
    """The baseline's init: Xavier-uniform linear/conv weights, zero biases, torch's own LSTM init."""
    if isinstance(m, (nn.Linear, nn.Conv1d)):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LSTM):
        m.reset_parameters()


class Criterion(nn.Module):
    """Cross-entropy on start and end step + highlight_weight x foreground BCE.

    batch: "start_idx", "end_idx" [B] long, "highlight" [B, T] float 0/1, "mask" [B, T].
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.highlight_weight = cfg.highlight_weight

    def forward(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        span = F.cross_entropy(outputs["start_logits"], batch["start_idx"]) + F.cross_entropy(
            outputs["end_logits"], batch["end_idx"])
        hl = highlight_loss(outputs["highlight_logits"], batch["highlight"], batch["mask"])
        return {"loss": span + self.highlight_weight * hl, "span_loss": span.detach(), "highlight_loss": hl.detach()}


def topk_spans(start_logits: torch.Tensor, end_logits: torch.Tensor, mask: torch.Tensor, k: int):
    """Best k (start <= end) step pairs by P(start) * P(end).

    start_logits, end_logits [B, T]; mask [B, T]. Returns (start_idx [B, k], end_idx [B, k], score [B, k]);
    pairs that do not exist (fewer than k valid pairs) have score -1.
    """
    t = start_logits.shape[1]
    p_s = torch.softmax(start_logits.float(), dim=1)
    p_e = torch.softmax(end_logits.float(), dim=1)
    joint = p_s.unsqueeze(2) * p_e.unsqueeze(1)  # [B, T, T]
    valid = torch.ones(t, t, dtype=torch.bool, device=joint.device).triu()
    valid = valid & mask.unsqueeze(2) & mask.unsqueeze(1)
    joint = joint.masked_fill(~valid, -1.0)
    score, flat = joint.flatten(1).topk(min(k, t * t), dim=1)
    return flat // t, flat % t, score


class Decode:
    """Outputs -> per-query top-k windows in clip seconds.

    batch needs "step_starts", "step_ends" [B, T] (clip seconds of each step's extent) and "mask".
    Returns one dict per query: {"windows": [[start_sec, end_sec], ...] (best first, no two identical),
    "scores": [...]}.
    """

    def __init__(self, topk: int = 5):
        self.topk = topk

    def __call__(self, outputs: dict, batch: dict) -> list[dict]:
        mask = batch["mask"]
        # ask for extra pairs: distinct step pairs can map to identical seconds when steps have zero extent
        s, e, score = topk_spans(outputs["start_logits"], outputs["end_logits"], mask, 2 * self.topk)
        s, e, score = s.cpu().numpy(), e.cpu().numpy(), score.cpu().numpy()
        starts = batch["step_starts"].cpu().numpy()
        ends = batch["step_ends"].cpu().numpy()
        preds = []
        for b in range(s.shape[0]):
            windows, scores, seen = [], [], set()
            for si, ei, sc in zip(s[b], e[b], score[b]):
                if sc < 0:
                    break
                w = (round(float(starts[b, si]), 6), round(float(ends[b, ei]), 6))
                if w in seen:
                    continue
                seen.add(w)
                windows.append(list(w))
                scores.append(float(sc))
                if len(windows) == self.topk:
                    break
            preds.append({"windows": windows, "scores": scores})
        return preds


def build(cfg: Config | None = None) -> tuple[VSLNet, Criterion, Decode]:
    cfg = cfg or Config()
    if cfg.dim % cfg.num_heads:
        raise ValueError(f"vslnet dim={cfg.dim} must be divisible by num_heads={cfg.num_heads}")
    if cfg.topk < 1:
        raise ValueError(f"vslnet topk must be >= 1, got {cfg.topk}")
    return VSLNet(cfg), Criterion(cfg), Decode(cfg.topk)

