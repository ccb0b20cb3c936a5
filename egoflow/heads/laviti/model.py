"""LAVITI (Liu et al., "Contrastive Language Video Time Pre-training", 2024) on cached CLIP frame features.

A transformer over a whole chunk (600 s) of frame features decodes N learnable moment queries; each predicts a
language-aligned visual embedding and start/end temporal embeddings (TEs). Predictions are matched to the
chunk's narrations by a three-way Hungarian matching and aligned with sigmoid (SigLIP) contrastive losses
(criterion.py). A time is read out as the frame whose TE is most similar to the predicted TE.

Shapes: B chunks, T frames, Dv frame-feature dim (``video_dim``), L = ceil(T / kernel) visual tokens,
d = heads * head_dim model width, N moment queries, E text-embedding dim (the joint CLIP space), K TE table size.

    model, criterion, decode = build(Config(video_dim=512, text_dim=512))
    out = model(batch); loss = criterion(out, batch)["loss"]; moments = decode(out, batch)

Two tasks share the network: pretraining / zero-shot NLQ (``Config``, ``build``) and CharadesEgo fine-tuning
(``CharadesConfig``, ``build_charades``: the same model, the fine-tune criterion).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from egoflow.heads.laviti.criterion import Criterion, FinetuneCriterion
from egoflow.heads.laviti.temporal import sample_te, sinusoidal_table

# the keys that shape the network's weights: a fine-tune from a pretraining run cannot change them
ARCHITECTURE = ("video_dim", "text_dim", "heads", "head_dim", "enc_layers", "dec_layers", "ffn_mult", "kernel",
                "num_queries", "num_time_embeddings")


@dataclass
class Config:
    video_dim: int = 512  # Dv of the stored frame features (the runner sets it from the feature set)
    text_dim: int = 512  # E of the pooled text embeddings the visual head is aligned to
    heads: int = 8  # attention heads in encoder and decoder
    head_dim: int = 64  # dims per head; model width d = heads * head_dim
    enc_layers: int = 6  # transformer encoder layers over visual tokens
    dec_layers: int = 6  # DETR-style decoder layers over the moment queries
    ffn_mult: int = 4  # feed-forward width = ffn_mult * d
    dropout: float = 0.1  # dropout inside the transformer layers
    kernel: int = 7  # frames per visual token: non-overlapping 1D conv, kernel = stride
    num_queries: int = 256  # N learnable moment queries; more narrations than this are subsampled per step
    num_time_embeddings: int = 256  # K learnable TEs spanning relative time [0, 1] of a chunk
    chunk_s: float = 600.0  # training chunk length in seconds (also the cut for long clips at prediction)
    interval_reach: float = 0.5  # narration start/end drawn from [t - r*gap_prev, t] and [t, t + r*gap_next]
    default_gap_s: float = 4.0  # gap assumed for a narration with no neighbour at all
    narration_pass: str | None = "narration_pass_1"  # Ego4D pass to train on (None: all passes)
    init_temperature: float = 10.0  # SigLIP init of the learnable logit scale t (shared start for all 3)
    init_bias: float = -10.0  # SigLIP init of the learnable logit bias b
    max_temperature: float = 100.0  # clamp of t, as in CLIP, against logit blow-up
    loss_weights: tuple = (1.0, 1.0, 1.0)  # weights of the (visual-text, start-TE, end-TE) sigmoid losses
    top_k: int = 5  # moments returned per NLQ query
    nms_iou: float = 0.5  # egoflow option: temporal NMS among a query's ranked moments at this IoU (0: off, the paper)
    matcher: str = "learned"  # Hungarian cost: "paper" (sigmoid of plain cosines) | "learned" (of SigLIP logits)

    @property
    def width(self) -> int:
        return self.heads * self.head_dim


@dataclass
class CharadesConfig(Config):
    """The network's fields plus the CharadesEgo fine-tune's (``laviti-charades``)."""

    num_classes: int = 157  # C classes of the class list (the task sets it; sizes the class-name buffer)
    class_loss_weight: float = 1.0  # weight of the video-level sigmoid class loss (what the mAP ranks by)
    set_loss_weight: float = 1.0  # weight of the pretraining set loss on the action intervals (0: class loss only)
    class_init_temperature: float = 10.0  # start of the learnable scale t of the class logits t * score + b
    class_init_bias: float = -5.0  # start of the learnable bias b: sigmoid(-5) ~ 1/150, about one class of 157
    class_max_temperature: float = 100.0  # clamp of t, as in CLIP


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


class LavitiModel(nn.Module):
    """Set-prediction model over one chunk of frame features.

    ``forward(batch)`` reads ``feats [B, T, Dv]``, ``mask [B, T]`` (bool, True = real frame) and
    ``frame_pos [B, T]`` (frame time / chunk duration, in [0, 1]) and returns

    - ``visual [B, N, E]``: L2-normalised, language-aligned embedding of each moment query
    - ``start_te`` / ``end_te [B, N, d]``: predicted start/end temporal embeddings (unnormalised)
    - ``te_table [K, d]``: the learnable TEs, ``logit_scale`` / ``logit_bias [3]``: SigLIP temperature/bias of
      the (visual-text, start, end) alignments, ``token_mask [B, L]``.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        d = cfg.width
        self.proj = nn.Conv1d(cfg.video_dim, d, kernel_size=cfg.kernel, stride=cfg.kernel)
        self.proj_norm = nn.LayerNorm(d)
        # learnable, but started as sinusoids so nearby relative times begin similar and far ones dissimilar
        self.te_table = nn.Parameter(sinusoidal_table(cfg.num_time_embeddings, d))
        enc = nn.TransformerEncoderLayer(d, cfg.heads, cfg.ffn_mult * d, cfg.dropout, activation="gelu",
                                         batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(enc, cfg.enc_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)
        dec = nn.TransformerDecoderLayer(d, cfg.heads, cfg.ffn_mult * d, cfg.dropout, activation="gelu",
                                         batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(dec, cfg.dec_layers, norm=nn.LayerNorm(d))
        self.queries = nn.Embedding(cfg.num_queries, d)
        self.visual_head = mlp(d, d, cfg.text_dim)
        self.start_head = mlp(d, d, d)
        self.end_head = mlp(d, d, d)
        self.logit_scale = nn.Parameter(torch.full((3,), math.log(cfg.init_temperature)))
        self.logit_bias = nn.Parameter(torch.full((3,), float(cfg.init_bias)))

    def tokens(self, feats: torch.Tensor, mask: torch.Tensor, frame_pos: torch.Tensor):
        """Frames ``[B, T, Dv]`` -> tokens ``[B, L, d]``, token mask ``[B, L]``, token relative time ``[B, L]``.

        T is zero-padded to a multiple of the kernel; a token is valid when it holds at least one real frame,
        so a clip shorter than one kernel still yields one (partial) token at prediction time.
        """
        k = self.cfg.kernel
        B, T, _ = feats.shape
        pad = (-T) % k
        m = mask.to(feats.dtype)
        x = F.pad(feats * m.unsqueeze(-1), (0, 0, 0, pad))
        m = F.pad(m, (0, pad))
        pos = F.pad(frame_pos.to(feats.dtype) * m[:, :T], (0, pad))
        x = self.proj_norm(self.proj(x.transpose(1, 2)).transpose(1, 2))
        counts = m.view(B, -1, k).sum(-1)
        token_mask = counts > 0
        token_pos = pos.view(B, -1, k).sum(-1) / counts.clamp(min=1)
        return x, token_mask, token_pos

    def forward(self, batch: dict) -> dict:
        feats, mask = batch["feats"], batch["mask"]
        x, token_mask, token_pos = self.tokens(feats, mask, batch["frame_pos"])
        x = x + sample_te(self.te_table, token_pos)
        pad = ~token_mask
        memory = self.encoder(x, src_key_padding_mask=pad)
        q = self.queries.weight.unsqueeze(0).expand(feats.shape[0], -1, -1)
        h = self.decoder(q, memory, memory_key_padding_mask=pad)
        return {
            "visual": F.normalize(self.visual_head(h), dim=-1),
            "start_te": self.start_head(h),
            "end_te": self.end_head(h),
            "te_table": self.te_table,
            "logit_scale": self.logit_scale,
            "logit_bias": self.logit_bias,
            "token_mask": token_mask,
        }


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


def _check(cfg: Config) -> None:
    if cfg.kernel < 1 or cfg.num_queries < 1 or cfg.num_time_embeddings < 2:
        raise ValueError(f"laviti: kernel, num_queries must be >= 1 and num_time_embeddings >= 2, got {cfg}")
    if cfg.matcher not in ("paper", "learned"):
        raise ValueError(f"laviti: matcher must be 'paper' or 'learned', got {cfg.matcher!r}")
    if not 0.0 < cfg.interval_reach <= 1.0:
        raise ValueError(f"laviti: interval_reach must be in (0, 1] (bounded by the neighbours), "
                         f"got {cfg.interval_reach}")


def build(cfg: Config | None = None) -> tuple[LavitiModel, Criterion, Decode]:
    """DETR-style constructor: ``(model, criterion, decode)`` for ``cfg`` (defaults: the paper's sizes)."""
    cfg = cfg or Config()
    _check(cfg)
    return LavitiModel(cfg), Criterion(cfg), Decode()


def build_charades(cfg: CharadesConfig | None = None) -> tuple[LavitiModel, FinetuneCriterion, Decode]:
    """The same network with the CharadesEgo fine-tune criterion (class-name buffer to be filled by the run)."""
    cfg = cfg or CharadesConfig()
    _check(cfg)
    if cfg.num_classes < 1:
        raise ValueError(f"laviti-charades: num_classes must be >= 1, got {cfg.num_classes}")
    return LavitiModel(cfg), FinetuneCriterion(cfg), Decode()
