"""VSGN building blocks: box coding, anchors, kNN graph conv, xGPN level, towers, interpolation.

After Zhao, Thabet & Ghanem, "Video Self-Stitching Graph Network for Temporal Action Localization" (ICCV 2021)
and its use as the Ego4D Moment Queries baseline. Coordinates are continuous positions on the resampled clip
axis: step ``i`` covers ``[i, i + 1)``, so a position ``x`` is ``x * duration / temporal_scale`` seconds
(see ``egoflow.heads.vsgn.data``). Every shape below is ``[batch, time, dim]`` unless said otherwise.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# box coding (centre, log-width) with the usual detection weights, so that regression outputs start near 0
BOX_WEIGHTS = (10.0, 5.0)
MAX_LOG_SCALE = math.log(1000.0 / 16)


def encode_segments(gt: torch.Tensor, anchors: torch.Tensor, offset: float = 0.0) -> torch.Tensor:
    """Regression targets of segments ``gt [N, 2]`` w.r.t. ``anchors [N, 2]`` -> ``[N, 2]`` (dx, dw).

    ``offset`` is added to every length: 0 for continuous segments, 1 for the Ego4D baseline's inclusive
    "pixel" boxes (its ``TO_REMOVE = 1``: a box ``[a, b]`` is ``b - a + 1`` long).
    """
    aw = (anchors[:, 1] - anchors[:, 0] + offset).clamp(min=1e-6)
    ac = (anchors[:, 0] + anchors[:, 1]) / 2
    gw = (gt[:, 1] - gt[:, 0] + offset).clamp(min=1e-6)
    gc = (gt[:, 0] + gt[:, 1]) / 2
    return torch.stack((BOX_WEIGHTS[0] * (gc - ac) / aw, BOX_WEIGHTS[1] * torch.log(gw / aw)), dim=-1)


def decode_segments(reg: torch.Tensor, anchors: torch.Tensor, offset: float = 0.0) -> torch.Tensor:
    """Inverse of ``encode_segments``: ``reg [..., N, 2]``, ``anchors [N, 2]`` or ``[..., N, 2]`` -> ``[..., N, 2]``."""
    aw = anchors[..., 1] - anchors[..., 0] + offset
    ac = (anchors[..., 0] + anchors[..., 1]) / 2
    dx = reg[..., 0] / BOX_WEIGHTS[0]
    dw = (reg[..., 1] / BOX_WEIGHTS[1]).clamp(max=MAX_LOG_SCALE)  # exp() of a huge width would overflow
    c = dx * aw + ac
    w = torch.exp(dw) * aw
    return torch.stack((c - 0.5 * (w - offset), c + 0.5 * (w - offset)), dim=-1)


def make_anchors(temporal_scale: int, num_levels: int, scales: tuple[float, ...], offset: float = 0.0) -> torch.Tensor:
    """Anchors of every level, finest first: ``[N, 2]`` positions, N = sum_l (T / 2^l) * len(scales).

    Level ``l`` has stride ``s = 2^l``; its ``j``-th step is centred at ``(j + 0.5) s`` and carries one anchor
    of width ``scale * s`` per scale (``scale * s - offset`` end minus start, see ``encode_segments``),
    ordered [position, scale] to match the towers' output layout.
    """
    out = []
    for lvl in range(num_levels):
        s = 2 ** lvl
        n = temporal_scale // s
        ctr = (torch.arange(n, dtype=torch.float32) + 0.5) * s
        w = torch.tensor(scales, dtype=torch.float32) * s - offset
        out.append(torch.stack((ctr[:, None] - 0.5 * w, ctr[:, None] + 0.5 * w), dim=-1).reshape(-1, 2))
    return torch.cat(out)


def knn_indices(x: torch.Tensor, mask: torch.Tensor, k: int, part: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of the ``k`` nearest steps in feature space: ``x [B, T, C]``, ``mask [B, T]`` -> ``[B, T, k]``.

    Padded steps are never chosen as neighbours. With self-stitching (``part [B, T]``: 0 original, 1 magnified,
    -1 gap) half of the neighbours of a stitched sample come from the other part, so that the two scales of the
    same content exchange information (VSGN's cross-scale edges).
    """
    k = min(k, x.shape[1])
    d = torch.cdist(x, x)  # [B, T, T]
    big = torch.finfo(d.dtype).max / 4
    d = d.masked_fill(~mask[:, None, :], big)
    idx = d.topk(k, dim=-1, largest=False).indices
    if part is None or k < 2:
        return idx
    stitched = (part == 1).any(dim=1)  # [B]
    if not stitched.any():
        return idx
    same = part[:, :, None] == part[:, None, :]
    kh = k // 2
    near = d.masked_fill(~same, big).topk(k - kh, dim=-1, largest=False).indices
    cross = d.masked_fill(same, big).topk(kh, dim=-1, largest=False).indices
    return torch.where(stitched[:, None, None], torch.cat((near, cross), dim=-1), idx)


class GraphConv(nn.Module):
    """Edge convolution over the k-nearest-neighbour graph: agg_k Linear([x_neigh, x_centre]). ``[B, T, C]``.

    The linear layer on a concatenation splits into ``W_n x_neigh + W_c x_centre``, so each step is projected
    once and the projections are gathered; same numbers as projecting every edge, k times cheaper.
    """

    def __init__(self, dim: int, k: int, mode: str = "feat_ctr", agg: str = "max"):
        super().__init__()
        if mode not in ("feat_ctr", "dif_ctr", "feat") or agg not in ("max", "mean"):
            raise ValueError(f"graph conv: mode {mode!r} / agg {agg!r} not supported")
        self.k, self.mode, self.agg = k, mode, agg
        self.neigh = nn.Linear(dim, dim)
        self.centre = None if mode == "feat" else nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, part: torch.Tensor | None = None) -> torch.Tensor:
        B = x.shape[0]
        idx = knn_indices(x.detach(), mask, self.k, part)  # the graph is a selection, not differentiated
        pn = self.neigh(x)
        h = pn[torch.arange(B, device=x.device)[:, None, None], idx]  # [B, T, k, C]
        h = h.amax(dim=2) if self.agg == "max" else h.mean(dim=2)
        if self.centre is not None:
            c = self.centre(x)
            if self.mode == "dif_ctr":  # W_n (x_n - x_c) + W_c x_c
                c = c - (pn - self.neigh.bias)
            h = h + c  # the centre term is the same for every edge, so it commutes with max/mean
        return h


class XGN(nn.Module):
    """One xGPN encoder level: temporal conv in parallel with the graph conv, summed, ReLU, max-pooled by ``stride``.

    Without the graph (the baseline's ``use_xGPN`` off) a level is one strided conv + ReLU, as in the baseline.
    """

    def __init__(self, dim: int, k: int, stride: int, use_graph: bool, mode: str, agg: str):
        super().__init__()
        self.tconv = nn.Conv1d(dim, dim, 3, stride=1 if use_graph else stride, padding=1)
        self.graph = GraphConv(dim, k, mode, agg) if use_graph else None
        self.stride = stride

    def forward(self, x, mask, part=None):
        """``x [B, T, C]``, ``mask [B, T]`` -> ``[B, T / stride, C]``, mask and part pooled alike."""
        out = self.tconv(x.transpose(1, 2)).transpose(1, 2)
        if self.graph is not None:
            out = out + self.graph(x, mask, part)
        out = F.relu(out)
        if self.stride == 2:
            if self.graph is not None:
                out = F.max_pool1d(out.transpose(1, 2), 2).transpose(1, 2)
            mask = mask.view(mask.shape[0], -1, 2).any(-1)
            part = None if part is None else part.view(part.shape[0], -1, 2).amax(-1)
        return out, mask, part


def conv_relu(dim: int) -> nn.Module:
    return nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1), nn.ReLU())


class Tower(nn.Module):
    """``layers`` x (conv, GroupNorm, ReLU) then a conv to ``out`` channels; shared across pyramid levels."""

    def __init__(self, dim: int, layers: int, out: int):
        super().__init__()
        groups = math.gcd(32, dim)
        mods: list[nn.Module] = []
        for _ in range(layers):
            mods += [nn.Conv1d(dim, dim, 3, padding=1), nn.GroupNorm(groups, dim), nn.ReLU()]
        self.body = nn.Sequential(*mods)
        self.out = nn.Conv1d(dim, out, 3, padding=1)

    def forward(self, x):  # [B, C, T] -> [B, out, T]
        return self.out(self.body(x))


def take_at(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Features of ``x [B, T, H]`` at the steps ``trunc(pos)`` (clamped to the clip), ``pos [B, M]`` -> ``[B, M, H]``.

    The Ego4D baseline's boundary-adjustment lookup (``long()`` truncation, no interpolation).
    """
    i = pos.long().clamp(0, x.shape[1] - 1)
    return torch.gather(x, 1, i[..., None].expand(-1, -1, x.shape[-1]))


def sample_at(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``x [B, T, H]`` at continuous positions ``pos [B, M]`` -> ``[B, M, H]``.

    Step ``i`` is centred at ``i + 0.5``; positions outside are clamped to the first/last step.
    """
    T = x.shape[1]
    u = (pos - 0.5).clamp(0, T - 1)
    i0 = u.floor().long().clamp(max=T - 1)
    i1 = (i0 + 1).clamp(max=T - 1)
    a = (u - i0.to(u.dtype))[..., None]
    H = x.shape[-1]
    g0 = torch.gather(x, 1, i0[..., None].expand(-1, -1, H))
    g1 = torch.gather(x, 1, i1[..., None].expand(-1, -1, H))
    return g0 * (1 - a) + g1 * a
