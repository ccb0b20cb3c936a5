"""TimeSformer with divided space-time attention (frozen-in-time variant, as EgoVLPv2) and gated video->text
cross-attention in its top M blocks.

Tokens are one CLS + F x P patch tokens, frame-major (``[batch, 1 + F*P, width]``). In each block the CLS token
attends to every token; a patch token attends first over time (the same patch in every frame, plus CLS), then
over space (every patch of its frame, plus CLS). As in the reference, the time-attention output only feeds the
space attention's input; the residual stream gets ``x + space_out`` (then the MLP). In a fused block the space
attention's output is followed by ``out + alpha_i2t * CrossAttn(LN(out), text)`` with ``alpha_i2t`` a learnable
scalar initialised to 0, so an untrained (or alpha = 0) fused block is exactly the unfused block.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class DividedAttention(nn.Module):
    """Self-attention over time or space groups, CLS attending globally; optional gated cross-attention to text.

    ``group="space"``: groups are frames (P tokens each); ``group="time"``: groups are patch positions (F tokens).
    """

    def __init__(self, dim: int, heads: int, text_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        if text_dim is not None:  # names follow the released checkpoint (video->text = "i2t")
            self.qkv_text_i2t = nn.Linear(text_dim, dim * 2)
            self.qkv_i2t = nn.Linear(dim, dim)
            self.proj_i2t = nn.Linear(dim, dim)
            self.alpha_i2t = nn.Parameter(torch.zeros(1))
            self.norm_i2t_i = nn.LayerNorm(dim)

    @property
    def fused(self) -> bool:
        return hasattr(self, "alpha_i2t")

    def forward(self, x: torch.Tensor, frames: int, group: str, text: torch.Tensor | None = None,
                text_bias: torch.Tensor | None = None) -> torch.Tensor:
        """x ``[B, 1 + F*P, D]`` -> ``[B, 1 + F*P, D]``; text ``[B, L, Dt]``, text_bias ``[B, 1, 1, L]`` additive."""
        return self.gate(self.attend(x, frames, group), text, text_bias)

    def gate(self, x: torch.Tensor, text=None, text_bias=None) -> torch.Tensor:
        """The fusion step on a self-attention output: ``x + alpha_i2t * CrossAttn(LN(x), text)``."""
        if text is not None and self.fused:
            x = x + self.alpha_i2t * self.cross(x, text, text_bias)
        return x

    def attend(self, x: torch.Tensor, frames: int, group: str, cls_only: bool = False) -> torch.Tensor:
        """Divided self-attention + output projection: ``[B, 1 + F*P, D]`` -> same (``[B, 1, D]`` with
        ``cls_only``: only the CLS row, which attends to every token)."""
        B, N, D = x.shape
        h, d = self.heads, D // self.heads
        q, k, v = self.qkv(x).view(B, N, 3, h, d).permute(2, 0, 3, 1, 4)  # each [B, h, N, d]
        cls_out = F.scaled_dot_product_attention(q[:, :, :1], k, v)  # [B, h, 1, d]
        if cls_only:
            return self.proj(cls_out.transpose(1, 2).reshape(B, 1, D))
        P = (N - 1) // frames

        def grouped(t):  # [B, h, F*P, d] -> [B, h, G, S, d]
            t = t[:, :, 1:].reshape(B, h, frames, P, d)
            return t if group == "space" else t.transpose(2, 3)

        qg, kg, vg = grouped(q), grouped(k), grouped(v)
        G = qg.shape[2]
        kg = torch.cat([k[:, :, None, :1].expand(B, h, G, 1, d), kg], dim=3)
        vg = torch.cat([v[:, :, None, :1].expand(B, h, G, 1, d), vg], dim=3)
        out = F.scaled_dot_product_attention(qg, kg, vg)  # [B, h, G, S, d]
        if group == "time":
            out = out.transpose(2, 3)
        out = torch.cat([cls_out, out.reshape(B, h, N - 1, d)], dim=2)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))

    def cross(self, x: torch.Tensor, text: torch.Tensor, text_bias: torch.Tensor | None) -> torch.Tensor:
        """Video tokens ``[B, N, D]`` attend to text tokens ``[B, L, Dt]`` (padding masked by ``text_bias``)."""
        B, N, D = x.shape
        h, d = self.heads, D // self.heads
        kt, vt = self.qkv_text_i2t(text).view(B, text.shape[1], 2, h, d).permute(2, 0, 3, 1, 4)
        q = self.qkv_i2t(self.norm_i2t_i(x)).view(B, N, h, d).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, kt, vt, attn_mask=text_bias)
        return self.proj_i2t(y.transpose(1, 2).reshape(B, N, D))


class SpaceTimeBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, text_dim: int | None = None):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = DividedAttention(dim, heads, text_dim)  # space (+ fusion)
        self.timeattn = DividedAttention(dim, heads)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, frames: int, text=None, text_bias=None, cls_only: bool = False):
        """x ``[B, 1 + F*P, D]`` -> same shape (``[B, 1, D]``: CLS only); text only in fused blocks."""
        return self.post(x[:, :1] if cls_only else x, self.pre(x, frames, cls_only), text, text_bias)

    def pre(self, x, frames: int, cls_only: bool = False):
        """The text-independent part: time attention feeding the space self-attention (its projected output)."""
        t = x + self.timeattn.attend(self.norm3(x), frames, "time")
        return self.attn.attend(self.norm1(t), frames, "space", cls_only)

    def post(self, x, s, text=None, text_bias=None):
        """Fusion gate on the space-attention output ``s``, residual, MLP."""
        x = x + self.attn.gate(s, text, text_bias)
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)


class TimeSformer(nn.Module):
    """Video tower: ``[B, F, 3, S, S]`` -> tokens ``[B, 1 + F*P, D]``; fused blocks are the last ``fused`` ones."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        D = cfg.width
        self.patch_embed = PatchEmbed(cfg.patch_size, D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.patches_per_frame + 1, D))
        self.temporal_embed = nn.Parameter(torch.zeros(1, cfg.num_frames, D))
        first_fused = cfg.depth - cfg.fused_layers
        self.blocks = nn.ModuleList(SpaceTimeBlock(D, cfg.heads, cfg.mlp_ratio,
                                                   cfg.text_width if i >= first_fused else None)
                                    for i in range(cfg.depth))
        self.norm = nn.LayerNorm(D)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def embed(self, video: torch.Tensor, cls_token: torch.Tensor) -> torch.Tensor:
        """video ``[B, F, 3, S, S]`` -> ``[B, 1 + F*P, D]`` with spatial + temporal position embeddings."""
        B, Fr, C, H, W = video.shape
        if Fr != self.cfg.num_frames or self.cfg.image_size != H or self.cfg.image_size != W:
            raise ValueError(f"video of {Fr} frames of {H}x{W} px; this model takes {self.cfg.num_frames} frames "
                             f"of {self.cfg.image_size}x{self.cfg.image_size}")
        x = self.patch_embed.proj(video.reshape(B * Fr, C, H, W)).flatten(2).transpose(1, 2)
        x = x.reshape(B, -1, x.shape[-1])
        P = self.cfg.patches_per_frame
        pos = self.pos_embed[:, 1:].repeat(1, Fr, 1) + self.temporal_embed.repeat_interleave(P, 1)
        x = x + pos
        cls = cls_token.expand(B, -1, -1) + self.pos_embed[:, :1]
        return torch.cat([cls, x], dim=1)

    def run(self, x: torch.Tensor, start: int = 0, stop: int | None = None, text=None, text_bias=None):
        """Blocks ``[start, stop)`` on tokens ``[B, N, D]``; text reaches only fused blocks."""
        for blk in self.blocks[start:stop]:
            x = blk(x, self.cfg.num_frames, text, text_bias)
        return x

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Unfused (dual-encoder) path: ``[B, F, 3, S, S]`` -> CLS feature ``[B, D]``."""
        return self.norm(self.run(self.embed(video, self.cls_token)))[:, 0]
