"""Query-focused video summarizer (QFVS): shot features + query text -> per-shot scores -> top 2% shots.

Pipeline (egoflow's model, ``arch="egoflow"``; EgoVLPv2's own is ``egovlpv2.py``): 5-second shot features
[N, Dv] and the token embeddings of a text condition [L, Dt] -> cross-attention from every shot to the text tokens,
fused with the shot (``[x, a, x * a]``) -> a transformer encoder (``num_layers``, 1 by default) across the shots
*within each KTS segment* -> a linear score per shot. Each query is run under three text conditions: the query
prompt ("There is a A and a B") scored against the oracle summary, and each concept prompt ("There is a A")
against the shots tagged with that concept (BCE on all three). The summary is the top ``top_percent`` shots
(``Decode``).

    model, criterion, decode = build(Config(video_dim=512, text_dim=512))
    out = model(batch); loss = criterion(out, batch)["loss"]; summaries = decode(out, batch)

Store + QFVS folder -> batches: ``data.py``; the runner's hooks: ``head.py``; the QFVS leave-one-out protocol
and the random-scores baseline: ``protocol.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from egoflow.heads.summarizer.egovlpv2 import ReferenceConfig, ReferenceSummarizer


@dataclass
class Config:
    arch: str = "egoflow"  # "egoflow" (this module) | "egovlpv2" (EgoVLPv2's own model, egovlpv2.py: needs a
    #   conditioned set with every query and concept prompt; its width is video_dim, text and dim unused)
    padding: str = "add-one"  # egovlpv2 arch: padded slots get +1 on their attention logits, as the reference
    #   computes | "exclude" (masked out)
    ffn_dim: int = 0  # egovlpv2 arch: feed-forward width (0 = 2048, torch's default the reference keeps)
    video_dim: int = 512  # Dv of the store features (the runner fills it from the feature set)
    text_dim: int = 512  # Dt of the text embeddings (filled from the text set)
    dim: int = 256  # model width
    num_heads: int = 4  # attention heads (cross-attention and segment transformer)
    num_layers: int = 1  # transformer layers across the shots of a KTS segment
    ffn_mult: int = 2  # feed-forward width = ffn_mult * dim
    dropout: float = 0.1  # dropout in attention / feed-forward
    top_percent: float = 0.02  # summary length as a fraction of the video's shots (QFVS: 2%)
    max_per_segment: int = 3  # at most this many summary shots from one KTS segment (0 = plain top-k)
    decode_conditions: str = "all"  # summary score: "query" condition only, or mean of query + both concepts
    concept_weight: float = 1.0  # weight of the two per-concept BCE terms against the oracle term
    loss_reduction: str = "mean"  # over a batch's samples: "mean" | "sum" (the EgoVLPv2 runner adds them up)
    prior: float = 0.05  # initial sigmoid score (bias init), summaries are rare
    shot_seconds: float = 5.0  # QFVS shot length; store steps are averaged per shot
    kts_lmax: int = 200  # longest KTS segment in shots (also bounds KTS memory/time)
    kts_max_change_points: int = 40  # most KTS change points per video (raised if lmax needs more)
    kts_vmax: float = 1.0  # KTS penalty weight
    kts_kernel: str = "cosine"  # KTS kernel on the shot features: "cosine" | "linear" (EgoVLPv2: X X^T) | "rbf"
    conditioned: bool = False  # query-conditioned feature set (fused extractor): shots per (video, query prompt)
    train_videos: tuple = ("P01", "P02", "P03")  # QFVS videos to train on
    test_video: str = "P04"  # held-out video (leave-one-out protocol)


def _sinusoid(length: int, dim: int, device) -> torch.Tensor:
    """Sine/cosine positions ``[length, dim]`` of the shots in a KTS segment. Not shared with LAVITI's
    ``sinusoidal_table``: that one multiplies the frequency terms in another order, which differs in the last
    float32 bits for most ``dim`` (500 of the even dims 2..1024), so one shared table would move a head's numbers."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe


class Summarizer(nn.Module):
    """Per-shot summary logits of a video under each of its text conditions.

    batch: "feats" [B, N, Dv] shot features, "mask" [B, N] bool, "text" [B, T, L, Dt], "text_mask" [B, T, L],
    "seg_index" [S, Ls] (flat shot index b * N + i of each KTS segment's shots, -1 pads).
    returns: "logits" [B, T, N].
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.shot_proj = nn.Sequential(nn.Linear(cfg.video_dim, d), nn.LayerNorm(d))
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.LayerNorm(d))
        self.cross = nn.MultiheadAttention(d, cfg.num_heads, dropout=cfg.dropout, batch_first=True)
        self.fuse = nn.Sequential(nn.Linear(3 * d, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, d))
        self.sim_proj = nn.Linear(2, d)
        self.norm = nn.LayerNorm(d)
        layer = nn.TransformerEncoderLayer(d, cfg.num_heads, cfg.ffn_mult * d, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.segment_encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.score = nn.Linear(d, 1)
        nn.init.normal_(self.score.weight, std=0.02)
        nn.init.constant_(self.score.bias, math.log(cfg.prior / (1 - cfg.prior)))

    def forward(self, batch: dict) -> dict:
        shots, text, tmask = batch["feats"], batch["text"], batch["text_mask"]
        b, n, _ = shots.shape
        t = text.shape[1]
        d = self.cfg.dim
        x = self.shot_proj(shots).unsqueeze(1).expand(b, t, n, d).reshape(b * t, n, d)
        k = self.text_proj(text).reshape(b * t, text.shape[2], d)
        a, _ = self.cross(x, k, k, key_padding_mask=~tmask.reshape(b * t, -1), need_weights=False)
        # cosine of the shot with each text token (max and mean over real tokens): a concept-agnostic relevance
        # cue, so what is learnt on the training concepts carries over to unseen ones
        km = tmask.reshape(b * t, 1, -1)
        sim = F.normalize(x, dim=-1) @ F.normalize(k, dim=-1).transpose(1, 2)  # [B*T, N, L]
        smax = sim.masked_fill(~km, -1.0).amax(-1, keepdim=True)
        smean = (sim * km).sum(-1, keepdim=True) / km.sum(-1, keepdim=True).clamp(min=1)
        h = self.norm(x + self.fuse(torch.cat([x, a, x * a], dim=-1)) + self.sim_proj(torch.cat([smax, smean], -1)))
        # shots of one KTS segment attend only to each other: gather segments into rows, encode, scatter back
        seg = batch["seg_index"]  # flat index b * N + i into [B, N]; -1 pads
        rows = torch.cat([torch.where(seg >= 0, (seg // n * t + j) * n + seg % n, seg) for j in range(t)])
        valid = rows >= 0
        flat = h.reshape(b * t * n, d)
        g = flat[rows.clamp(min=0)] + _sinusoid(rows.shape[1], d, h.device)
        g = self.segment_encoder(g, src_key_padding_mask=~valid)
        out = flat.index_put((rows[valid],), g[valid])
        return {"logits": self.score(out).reshape(b, t, n)}


class Criterion(nn.Module):
    """BCE over the real shots: oracle summary (query condition) + concept_weight x the two concept conditions,
    each the mean over a video's shots, then the mean (or sum) over the batch's samples.

    outputs "logits" [B, 3, N]; batch "labels" [B, 3, N], "mask" [B, N] (real shots)."""

    def __init__(self, cfg: Config):
        super().__init__()
        if cfg.loss_reduction not in ("mean", "sum"):
            raise ValueError(f"loss_reduction must be 'mean' or 'sum', got {cfg.loss_reduction!r}")
        self.w, self.reduce = cfg.concept_weight, cfg.loss_reduction

    def forward(self, outputs: dict, batch: dict) -> dict:
        logits, labels, mask = outputs["logits"], batch["labels"], batch["mask"]
        m = mask.unsqueeze(1).float()
        bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none") * m
        per = bce.sum(-1) / m.sum(-1).clamp(min=1)  # [B, T]
        red = torch.sum if self.reduce == "sum" else torch.mean
        oracle, concepts = red(per[:, 0]), red(per[:, 1:].sum(1))
        return {"loss": oracle + self.w * concepts, "oracle_bce": oracle.detach(), "concept_bce": concepts.detach()}


class Decode:
    """Summary per sample: the top ``top_percent`` shots (at least one) by score, at most ``max_per_segment``
    from one KTS segment (0 = no cap) so that the summary covers the video instead of one long scene.

    The score is the query condition's probability (``conditions="query"``, as in EgoVLPv2) or the mean of the
    query and the two concept conditions (``"all"``).
    """

    def __init__(self, top_percent: float = 0.02, shot_seconds: float = 5.0, max_per_segment: int = 3,
                 conditions: str = "all"):
        if conditions not in ("query", "all"):
            raise ValueError(f"conditions must be 'query' or 'all', got {conditions!r}")
        self.top, self.sec, self.cap, self.cond = top_percent, shot_seconds, max_per_segment, conditions

    def __call__(self, outputs: dict, batch: dict) -> list[dict]:
        prob = torch.sigmoid(outputs["logits"].detach().float()).cpu()
        prob = prob[:, 0] if self.cond == "query" else prob.mean(1)  # [B, N]
        out = []
        for i, n in enumerate(batch["num_shots"].tolist()):
            k = max(1, int(n * self.top))
            seg = batch["segments"][i, :n].tolist()
            chosen, used = [], {}
            for j in torch.argsort(prob[i, :n], descending=True, stable=True).tolist():
                if self.cap <= 0 or used.get(seg[j], 0) < self.cap:
                    chosen.append(j)
                    used[seg[j]] = used.get(seg[j], 0) + 1
                    if len(chosen) == k:
                        break
            if len(chosen) < k:  # the cap left too few shots: fill with the best remaining ones
                rest = [j for j in torch.argsort(prob[i, :n], descending=True).tolist() if j not in set(chosen)]
                chosen += rest[:k - len(chosen)]
            idx = sorted(chosen)
            out.append({"video": batch["video"][i], "query": batch["query"][i], "shots": idx,
                        "times": [[j * self.sec, (j + 1) * self.sec] for j in idx]})
        return out


def build(cfg: Config | None = None) -> tuple[nn.Module, Criterion, Decode]:
    """``(model, criterion, decode)`` for ``cfg``; ``arch`` picks the model, the loss and decode are shared."""
    cfg = cfg or Config()
    if cfg.arch not in ("egoflow", "egovlpv2"):
        raise ValueError(f"arch must be 'egoflow' or 'egovlpv2', got {cfg.arch!r}")
    if cfg.arch == "egovlpv2":
        model = ReferenceSummarizer(ReferenceConfig(
            dim=cfg.video_dim, num_heads=cfg.num_heads, num_layers=cfg.num_layers, ffn_dim=cfg.ffn_dim or 2048,
            dropout=cfg.dropout, last_bias=math.log(cfg.prior / (1 - cfg.prior)), padding=cfg.padding))
    else:
        model = Summarizer(cfg)
    return model, Criterion(cfg), Decode(cfg.top_percent, cfg.shot_seconds, cfg.max_per_segment,
                                         cfg.decode_conditions)
