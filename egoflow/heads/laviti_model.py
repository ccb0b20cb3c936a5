"""LAVITI network: frame features -> conv tokens + temporal embeddings -> transformer -> moment queries.

Shapes: B chunks, T frames, D frame-feature dim, L = ceil(T / kernel) visual tokens, d = heads * head_dim model
width, N moment queries, E text-embedding dim (the joint CLIP space), K temporal-embedding (TE) table size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Config:
    input_dim: int = 512  # D of the stored frame features (train_from_store sets it from the feature set)
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
    nms_iou: float = 0.5  # temporal NMS among a query's ranked moments (duplicate queries predict one moment)

    @property
    def width(self) -> int:
        return self.heads * self.head_dim


def sinusoidal_table(n: int, dim: int) -> torch.Tensor:
    """1D sine/cosine position embeddings ``[n, dim]`` (Transformer, Vaswani et al.) for positions 0..n-1."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(n, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


def sample_te(table: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linearly interpolate the TE table ``[K, d]`` at relative times ``pos [...]`` in [0, 1] -> ``[..., d]``.

    This is the "interpolate to the token count" of the paper, done per position so that chunks of different
    lengths in one batch, ground-truth start/end times and every frame time all read the same table.
    """
    k = table.shape[0]
    x = pos.clamp(0.0, 1.0) * (k - 1)
    i0 = x.floor().long().clamp(max=k - 1)
    i1 = (i0 + 1).clamp(max=k - 1)
    w = (x - i0.to(x.dtype)).unsqueeze(-1).to(table.dtype)
    return table[i0] * (1 - w) + table[i1] * w


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


class LavitiModel(nn.Module):
    """Set-prediction model over one chunk of frame features.

    ``forward(batch)`` reads ``feats [B, T, D]``, ``mask [B, T]`` (bool, True = real frame) and
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
        self.proj = nn.Conv1d(cfg.input_dim, d, kernel_size=cfg.kernel, stride=cfg.kernel)
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
        """Frames ``[B, T, D]`` -> tokens ``[B, L, d]``, token mask ``[B, L]``, token relative time ``[B, L]``.

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
