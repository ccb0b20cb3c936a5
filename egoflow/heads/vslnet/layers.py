"""Building blocks of VSLNet (Zhang et al., ACL 2020), written for egoflow after the Ego4D NLQ baseline.

The structure (pre-norm residual convs, a self-attention block whose only feed-forward is one linear layer after
the second norm, LayerNorm eps 1e-6, context-query attention without bias, norms after the conditioned encoders)
is the Ego4D baseline's, so its trained weights load (``reference.py``) and a run reproduces its numbers.

Shapes: B batch, T video steps, L query tokens, D model dim. Masks are bool, True = valid position.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NORM_EPS = 1e-6  # the baseline's LayerNorm eps (torch's default is 1e-5)


def mask_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Set padded positions to -1e30 (the baseline's value; finfo.min/2 where -1e30 does not fit, e.g. fp16)."""
    return logits.masked_fill(~mask, max(-1e30, torch.finfo(logits.dtype).min / 2))


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.softmax(mask_logits(logits, mask), dim=dim)


class Projection(nn.Module):
    """Dropout + linear map of input features [B, N, in_dim] -> [B, N, dim]."""

    def __init__(self, in_dim: int, dim: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.linear = nn.Linear(in_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.drop(x))


class DepthwiseSeparableConvs(nn.Module):
    """Stack of pre-norm residual depthwise-separable 1-D convs over time: [B, N, D] -> [B, N, D].

    Depthwise (per channel, local in time) + pointwise (mixes channels) is the QANet encoder's cheap
    replacement for a full conv: it captures local temporal context at ~1/kernel of the cost.
    ``mask_padding`` (an egoflow option, off in the baseline) zeroes padded steps before each conv so padding
    does not leak into the last valid steps.
    """

    def __init__(self, dim: int, kernel_size: int, num_layers: int, dropout: float, mask_padding: bool = False):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(dim, eps=NORM_EPS) for _ in range(num_layers))
        self.depthwise = nn.ModuleList(
            nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim, bias=False)
            for _ in range(num_layers)
        )
        self.pointwise = nn.ModuleList(nn.Conv1d(dim, dim, 1) for _ in range(num_layers))
        self.drop = nn.Dropout(dropout)
        self.mask_padding = mask_padding

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(-1).to(x.dtype)
        for norm, dw, pw in zip(self.norms, self.depthwise, self.pointwise):
            y = norm(x)
            if self.mask_padding:
                y = y * keep
            y = F.relu(pw(dw(y.transpose(1, 2)))).transpose(1, 2)
            x = x + self.drop(y)
        return x


class SelfAttentionBlock(nn.Module):
    """Pre-norm masked multi-head self-attention, then norm -> linear, both residual: [B, N, D] -> [B, N, D].

    As in the baseline there is no output projection inside the attention: the one linear layer after the
    second norm mixes the heads.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [B, N, D] -> [B, H, N, D/H]
        b, n, d = x.shape
        return x.view(b, n, self.num_heads, d // self.num_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.drop(self.norm1(x))
        q, k, v = self._heads(self.query(y)), self._heads(self.key(y)), self._heads(self.value(y))
        # scaled on q [B, H, N, D/H] rather than on the scores [B, H, N, N]: N/(D/H) times fewer divisions, and
        # the same numbers where sqrt(D/H) is a power of two (the baseline's 128 / 8 heads)
        scores = torch.matmul(q / math.sqrt(q.shape[-1]), k.transpose(-1, -2))
        attn = self.drop(masked_softmax(scores, mask[:, None, None, :], dim=-1))
        ctx = torch.matmul(attn, v).transpose(1, 2).reshape(x.shape)
        r = self.drop(ctx) + x
        return self.drop(self.out(self.drop(self.norm2(r)))) + r


class FeatureEncoder(nn.Module):
    """Learned position embedding -> depthwise-separable convs -> self-attention: [B, N, D] -> [B, N, D].

    One instance is shared by video and query, as in VSLNet: sharing puts both modalities in one space before
    context-query attention compares them. ``pos_init_std``: the baseline keeps torch's N(0, 1) embedding init.
    """

    def __init__(self, dim: int, num_heads: int, kernel_size: int, num_layers: int, max_pos_len: int,
                 dropout: float, mask_padding: bool = False, pos_init_std: float = 1.0):
        super().__init__()
        self.max_pos_len = max_pos_len
        self.pos = nn.Embedding(max_pos_len, dim)
        nn.init.normal_(self.pos.weight, std=pos_init_std)
        self.convs = DepthwiseSeparableConvs(dim, kernel_size, num_layers, dropout, mask_padding)
        self.attn = SelfAttentionBlock(dim, num_heads, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        if n > self.max_pos_len:
            raise ValueError(f"sequence of {n} steps is longer than max_pos_len={self.max_pos_len}; "
                             "resample the clip (egoflow.heads.vslnet.data does) or raise max_pos_len")
        x = x + self.pos(torch.arange(n, device=x.device)).unsqueeze(0)
        return self.attn(self.convs(x, mask), mask)


class ContextQueryAttention(nn.Module):
    """Context-query attention (BiDAF/QANet style): video [B, T, D] x query [B, L, D] -> [B, T, D].

    Trilinear similarity S[t, l] = w_c.c_t + w_q.q_l + w_m.(c_t * q_l); A = softmax_l(S) q is the query seen
    from each step, B = softmax_l(S) softmax_t(S)^T c brings back steps that are similar to the same words.
    """

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.w_c = nn.Linear(dim, 1, bias=False)
        self.w_q = nn.Linear(dim, 1, bias=False)
        self.w_m = nn.Parameter(torch.empty(1, 1, dim))
        nn.init.xavier_uniform_(self.w_m)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(4 * dim, dim)

    def forward(self, c: torch.Tensor, q: torch.Tensor, c_mask: torch.Tensor, q_mask: torch.Tensor) -> torch.Tensor:
        cd, qd = self.drop(c), self.drop(q)  # dropout on the similarity only; the outputs use c and q as they are
        s = self.w_c(cd) + self.w_q(qd).transpose(1, 2) + torch.matmul(cd * self.w_m, qd.transpose(1, 2))
        s_q = masked_softmax(s, q_mask.unsqueeze(1), dim=2)  # [B, T, L] attention over words
        s_c = masked_softmax(s, c_mask.unsqueeze(2), dim=1)  # [B, T, L] attention over steps
        a = torch.matmul(s_q, q)  # [B, T, D]
        b = torch.matmul(torch.matmul(s_q, s_c.transpose(1, 2)), c)  # [B, T, D]
        return self.out(torch.cat([c, a, c * a, c * b], dim=-1))


class QueryConcat(nn.Module):
    """Attention-pool the query [B, L, D] to one vector and fuse it into every step: [B, T, D] -> [B, T, D]."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1, bias=False)
        self.out = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor, q: torch.Tensor, q_mask: torch.Tensor) -> torch.Tensor:
        alpha = masked_softmax(self.score(q).squeeze(-1), q_mask, dim=1)  # [B, L]
        pooled = torch.einsum("bl,bld->bd", alpha, q)
        return self.out(torch.cat([x, pooled.unsqueeze(1).expand_as(x)], dim=-1))


class Highlighter(nn.Module):
    """Query-guided highlighting: foreground logit per step [B, T, D] -> [B, T] (padding masked)."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask_logits(self.linear(x).squeeze(-1), mask)


def highlight_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked binary cross-entropy of foreground logits [B, T] against 0/1 labels [B, T].

    Foreground steps get twice the weight of background ones (as in the VSLNet baseline) because the answer
    window is usually a small part of the clip. On logits rather than on sigmoid scores: the same value where
    the baseline's BCELoss does not saturate, and no -100 clamp where it does.
    """
    weight = torch.where(labels > 0, 2.0, 1.0) * mask.to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")
    return (loss * weight).sum() / mask.sum().clamp(min=1)


class ConditionedSpanPredictor(nn.Module):
    """Start/end logits [B, T] from fused features [B, T, D]; the end encoder reads the start encoder's output so
    the end boundary is predicted conditioned on the start.

    ``encoder``: a FeatureEncoder run twice (the baseline's transformer predictor, used with cached text
    features) or None for its "rnn" predictor (two LSTMs, no norms).
    """

    def __init__(self, encoder: FeatureEncoder | None, dim: int):
        super().__init__()
        self.encoder = encoder
        if encoder is None:
            self.start_rnn = nn.LSTM(dim, dim, batch_first=True)
            self.end_rnn = nn.LSTM(dim, dim, batch_first=True)
        else:
            self.start_norm = nn.LayerNorm(dim, eps=NORM_EPS)
            self.end_norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.start_head = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, 1))
        self.end_head = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.encoder is None:
            keep = mask.unsqueeze(-1).to(x.dtype)
            h_start = self.start_rnn(x)[0] * keep
            h_end = self.end_rnn(h_start)[0] * keep
        else:
            h_start = self.encoder(x, mask)
            h_end = self.encoder(h_start, mask)
            h_start, h_end = self.start_norm(h_start), self.end_norm(h_end)
        start = self.start_head(torch.cat([h_start, x], dim=-1)).squeeze(-1)
        end = self.end_head(torch.cat([h_end, x], dim=-1)).squeeze(-1)
        return mask_logits(start, mask), mask_logits(end, mask)
