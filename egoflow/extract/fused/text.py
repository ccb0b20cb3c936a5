"""RoBERTa-shaped text tower with gated text->video cross-attention in its top M layers (EgoVLPv2 eq. 3).

Post-LN BERT layers. In a fused layer the self-attention output ``a`` becomes ``a + alpha_t2i * CrossAttn(a,
video)`` before the residual LayerNorm and the FFN; ``alpha_t2i`` is a learnable scalar initialised to 0.
Module names follow ``transformers``' RoBERTa (``embeddings``, ``encoder.layer.N.attention.self.query`` ...) so
that roberta-base and the released EgoVLPv2 checkpoint map one to one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Embeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.pad_id = cfg.pad_id
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.text_width, padding_idx=cfg.pad_id)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.text_width, padding_idx=cfg.pad_id)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.text_width)
        self.LayerNorm = nn.LayerNorm(cfg.text_width, eps=cfg.text_ln_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``[B, L]`` -> ``[B, L, Dt]``; positions count real tokens from pad_id + 1, as RoBERTa does."""
        real = ids.ne(self.pad_id).long()
        pos = torch.cumsum(real, dim=1) * real + self.pad_id
        if int(pos.max()) >= self.position_embeddings.num_embeddings:
            n = self.position_embeddings.num_embeddings - self.pad_id - 1
            raise ValueError(f"text of {ids.shape[1]} tokens is longer than the {n} positions this model has")
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, kv_dim: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(kv_dim, dim), nn.Linear(kv_dim, dim)

    def forward(self, x, kv, bias=None, kv_proj=None):
        """x ``[B, L, D]`` attends to kv ``[B, M, Dkv]`` (or its precomputed ``kv_proj`` = (key, value) ``[B, M,
        D]`` each); bias additive ``[B, 1, 1, M]`` -> ``[B, L, D]``."""
        B, L, D = x.shape
        h = self.heads

        def split(t):
            return t.reshape(t.shape[0], t.shape[1], h, D // h).transpose(1, 2).expand(B, -1, -1, -1)

        k, v = kv_proj if kv_proj is not None else (self.key(kv), self.value(kv))
        y = F.scaled_dot_product_attention(split(self.query(x)), split(k), split(v), attn_mask=bias)
        return y.transpose(1, 2).reshape(B, L, D)


class _Dense(nn.Module):
    def __init__(self, d_in: int, d_out: int, eps: float | None = None):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        if eps is not None:
            self.LayerNorm = nn.LayerNorm(d_out, eps=eps)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, kv_dim: int, eps: float | None):
        super().__init__()
        self.self = SelfAttention(dim, heads, kv_dim)
        self.output = _Dense(dim, dim, eps)  # its LayerNorm is applied by the layer, after the fusion


class TextLayer(nn.Module):
    def __init__(self, cfg, fused: bool):
        super().__init__()
        D = cfg.text_width
        self.attention = Attention(D, cfg.text_heads, D, cfg.text_ln_eps)
        if fused:
            self.crossattention_t2i = Attention(D, cfg.text_heads, cfg.width, None)
            self.alpha_t2i = nn.Parameter(torch.zeros(1))
        self.intermediate = _Dense(D, cfg.text_mlp)
        self.output = _Dense(cfg.text_mlp, D, cfg.text_ln_eps)

    @property
    def fused(self) -> bool:
        return hasattr(self, "alpha_t2i")

    def video_kv(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Key/value projections of video tokens ``[B, N, Dv]`` for this layer's cross-attention (query-free)."""
        sa = self.crossattention_t2i.self
        return sa.key(video), sa.value(video)

    def forward(self, x, bias, video=None, video_kv=None):
        """x ``[B, L, Dt]``, bias ``[B, 1, 1, L]``, video tokens ``[B, N, Dv]`` (fused path only) or their
        cached key/value projections ``video_kv`` (see :meth:`video_kv`)."""
        a = self.attention.output.dense(self.attention.self(x, x, bias))
        if (video is not None or video_kv is not None) and self.fused:  # video tokens are never padding
            c = self.crossattention_t2i.output.dense(self.crossattention_t2i.self(a, video, kv_proj=video_kv))
            a = a + self.alpha_t2i * c
        a = self.attention.output.LayerNorm(a + x)
        y = self.output.dense(F.gelu(self.intermediate.dense(a)))
        return self.output.LayerNorm(y + a)


class TextEncoder(nn.Module):
    """Text tower: ids ``[B, L]`` + mask ``[B, L]`` -> tokens ``[B, L, Dt]``."""

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = Embeddings(cfg)
        first_fused = cfg.text_depth - cfg.fused_layers
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(TextLayer(cfg, i >= first_fused) for i in range(cfg.text_depth))

    @staticmethod
    def attention_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """mask ``[B, L]`` (1 = token) -> additive ``[B, 1, 1, L]`` (0 or dtype min), as transformers does."""
        return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    def run(self, x, bias, start: int = 0, stop: int | None = None, video=None):
        for layer in self.encoder.layer[start:stop]:
            x = layer(x, bias, video)
        return x

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Unfused (dual-encoder) path: all tokens ``[B, L, Dt]``."""
        x = self.embeddings(ids)
        return self.run(x, self.attention_bias(mask, x.dtype))
