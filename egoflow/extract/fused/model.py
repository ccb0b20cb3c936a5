"""The fused backbone: video and text towers, dual projections, fusion heads (VTM, MLM).

Two paths, as in EgoVLPv2:

* dual (fusion off): each tower alone, CLS token -> 3-layer projection -> ``[B, proj_dim]``; cosine scores;
* fused: both towers run their lower ``depth - M`` layers alone, then the top M layers side by side, video
  block i attending to the text tokens entering text layer i and vice versa. The fused video path has its own
  CLS token and final LayerNorm (``fusion_cls`` / ``fusion_norm``, as the released model). Its outputs are the
  query-conditioned video feature (the fused video CLS, ``[B, width]``) and the VTM logits ``[B, 2]``
  (index 1 = "matches").

The lower layers of the fused video path do not depend on the text, which is the reuse point for many queries
per window: :meth:`FusedModel.video_lower` once per window, :meth:`FusedModel.fuse` once per query.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from egoflow.extract.fused.config import FusedConfig
from egoflow.extract.fused.text import TextEncoder
from egoflow.extract.fused.video import TimeSformer


def projection(d_in: int, d_out: int) -> nn.Sequential:
    """EgoVLPv2's "minimal" projection: Linear(no bias) - ReLU - Linear - ReLU - Linear."""
    return nn.Sequential(nn.Linear(d_in, d_out, bias=False), nn.ReLU(), nn.Linear(d_out, d_out), nn.ReLU(),
                         nn.Linear(d_out, d_out))


def projections(cfg: FusedConfig) -> tuple[nn.Sequential, nn.Sequential]:
    """(video, text) dual projections: ``minimal`` (EgoVLPv2.pth) or ``small`` (the smallproj checkpoints,
    EgoVLPv2's model_epic_charades.py: video Linear, text ReLU then Linear; module indices kept so the
    reference names ``vid_proj.0`` / ``txt_proj.1`` map one to one)."""
    if cfg.projection == "small":
        return (nn.Sequential(nn.Linear(cfg.width, cfg.proj_dim)),
                nn.Sequential(nn.ReLU(), nn.Linear(cfg.text_width, cfg.proj_dim)))
    return projection(cfg.width, cfg.proj_dim), projection(cfg.text_width, cfg.proj_dim)


class MLMHead(nn.Module):
    def __init__(self, cfg: FusedConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.text_width, cfg.text_width)
        self.norm = nn.LayerNorm(cfg.text_width, eps=1e-12)  # RobertaConfig's default eps, as the reference
        self.decoder = nn.Linear(cfg.text_width, cfg.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, x):
        """text tokens ``[B, L, Dt]`` -> vocabulary logits ``[B, L, V]``."""
        return self.decoder(self.norm(F.gelu(self.dense(x)))) + self.bias


class FusedModel(nn.Module):
    def __init__(self, cfg: FusedConfig):
        super().__init__()
        self.cfg = cfg
        self.video = TimeSformer(cfg)
        self.text = TextEncoder(cfg)
        self.video_proj, self.text_proj = projections(cfg)
        self.fusion_cls = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.fusion_norm = nn.LayerNorm(cfg.width, eps=1e-6)
        self.fusion_text_in = nn.Linear(cfg.text_width, cfg.text_width)
        self.fusion_video_in = nn.Linear(cfg.width, cfg.text_width)
        self.text_pooler = nn.Linear(cfg.text_width, cfg.text_width)
        self.video_pooler = nn.Linear(cfg.text_width, cfg.text_width)
        self.vtm_head = nn.Linear(2 * cfg.text_width, 2)
        self.mlm = MLMHead(cfg) if cfg.mlm_head else None
        self._init()

    def _init(self):
        for m in self.modules():  # BERT-style init for everything the reference does not init otherwise
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.video.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.video.cls_token, std=0.02)
        nn.init.trunc_normal_(self.fusion_cls, std=0.02)
        for p in self.alphas():
            nn.init.zeros_(p)

    @property
    def lower(self) -> int:
        """Number of unfused layers at the bottom of each tower."""
        return self.cfg.depth - self.cfg.fused_layers

    def alphas(self) -> list[nn.Parameter]:
        """The fusion gates: alpha_i2t of each fused video block, alpha_t2i of each fused text layer."""
        return [b.attn.alpha_i2t for b in self.video.blocks if b.attn.fused] + \
               [la.alpha_t2i for la in self.text.encoder.layer if la.fused]

    # dual path ---------------------------------------------------------------------------------------------
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``[B, F, 3, S, S]`` (normalised) -> dual embedding ``[B, proj_dim]`` (not L2-normalised)."""
        return self.video_proj(self.video(video))

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids/mask ``[B, L]`` -> dual embedding ``[B, proj_dim]`` (CLS token, not L2-normalised)."""
        return self.text_proj(self.text(ids, mask)[:, 0])

    # fused path --------------------------------------------------------------------------------------------
    def video_lower(self, video: torch.Tensor) -> torch.Tensor:
        """``[B, F, 3, S, S]`` -> fused-path video tokens after the unfused layers ``[B, 1 + F*P, width]``."""
        return self.video.run(self.video.embed(video, self.fusion_cls), 0, self.lower)

    def text_lower(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids/mask ``[B, L]`` -> (text tokens after the unfused layers ``[B, L, Dt]``, bias ``[B, 1, 1, L]``)."""
        x = self.text.embeddings(ids)
        bias = self.text.attention_bias(mask, x.dtype)
        return self.text.run(x, bias, 0, self.lower), bias

    def fuse(self, v: torch.Tensor, t: torch.Tensor, bias: torch.Tensor, fusion: bool = True,
             cache: dict | None = None, cls_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The top M layers side by side: v ``[B, N, D]``, t ``[B, L, Dt]`` -> (v, t) after them.

        ``fusion=False`` runs the same layers without cross-attention (identical to alpha = 0). ``cache`` (from
        :meth:`window_cache`, with ``v = cache["v"]``) skips the text-independent work of the first fused layer;
        ``cls_only`` computes only the CLS row of the last video block (returned v is ``[B, 1, D]``): all that
        :meth:`fused_outputs` reads. Both give the same numbers as the plain path.
        """
        M = self.cfg.fused_layers
        for i, (blk, layer) in enumerate(zip(self.video.blocks[self.lower:], self.text.encoder.layer[self.lower:])):
            text = t if fusion else None
            if i == 0 and cache is not None:
                v_next = blk.post(v, cache["s"], text, bias)
                t = layer(t, bias, video_kv=cache["kv"] if fusion else None)
            else:
                v_next = blk(v, self.cfg.num_frames, text, bias, cls_only=cls_only and i == M - 1)
                t = layer(t, bias, v if fusion else None)
            v = v_next
        return v, t

    def window_cache(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything of the fused path that does not depend on the text, once per window: the lower tokens
        ``v [B, N, D]``, the first fused block's space-attention output ``s`` and the first fused text layer's
        key/value projections of ``v`` (``kv``)."""
        v = self.video_lower(video)
        if self.cfg.fused_layers == 0:
            return {"v": v}
        blk, layer = self.video.blocks[self.lower], self.text.encoder.layer[self.lower]
        return {"v": v, "s": blk.pre(v, self.cfg.num_frames), "kv": layer.video_kv(v)}

    def fused_outputs(self, v: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Top-layer tokens -> {"video": conditioned video feature ``[B, width]``, "vtm": logits ``[B, 2]``}."""
        vcls = self.fusion_norm(v)[:, 0]
        tp = torch.tanh(self.text_pooler(self.fusion_text_in(t[:, 0])))
        vp = torch.tanh(self.video_pooler(self.fusion_video_in(vcls)))
        return {"video": vcls, "vtm": self.vtm_head(torch.cat([tp, vp], dim=-1))}

    def forward_fused(self, video: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, fusion: bool = True
                      ) -> dict[str, torch.Tensor]:
        """The whole fused model on (video, text) pairs: ``[B, F, 3, S, S]``, ``[B, L]`` -> fused_outputs + "text"
        (final text tokens ``[B, L, Dt]``)."""
        t, bias = self.text_lower(ids, mask)
        v, t = self.fuse(self.video_lower(video), t, bias, fusion)
        return {**self.fused_outputs(v, t), "text": t}

    def mlm_logits(self, t: torch.Tensor) -> torch.Tensor:
        """Fused text tokens ``[B, L, Dt]`` -> vocabulary logits ``[B, L, V]`` (through the fusion text transform,
        as the reference)."""
        return self.mlm(self.fusion_text_in(t))

    def vtm_score(self, video, ids, mask) -> torch.Tensor:
        """P(match) ``[B]`` of each (video, text) pair."""
        return self.forward_fused(video, ids, mask)["vtm"].softmax(-1)[:, 1]
