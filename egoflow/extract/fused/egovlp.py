"""EgoVLP (Lin et al. 2022; the Ego4D challenge report's features): a dual video-text encoder.

* video: the frozen-in-time divided space-time ViT (TimeSformer blocks of :mod:`egoflow.extract.fused.video`,
  LayerNorm eps 1e-6, no fusion). A window of F frames uses the first F rows of the temporal embedding, so one
  model takes any F up to ``num_frames`` (the reference's rule: the released 16-row embedding serves its 4-frame
  EgoMCQ / NLQ / MQ windows). Video embedding: CLS of the last block after the final LayerNorm -> ``vid_proj``
  (one Linear).
* text: DistilBERT (:mod:`egoflow.extract.fused.egovlp_text`); text embedding: its CLS token -> ``txt_proj``
  (ReLU, then Linear); token features (the NLQ text side): every token -> ``txt_proj``.

Module names equal the reference's (``video_model``, ``text_model``, ``vid_proj.0``, ``txt_proj.1``), so the
released ``egovlp.pth`` loads by dropping the ``module.`` prefix (:mod:`egoflow.extract.fused.egovlp_checkpoint`).
There is no fusion: query-conditioned features and VTM scores do not exist for this model (dual = alpha 0).
"""
from __future__ import annotations

import sys

import torch
from torch import nn

from egoflow.extract.fused.config import EgoVLPConfig, FusedModelError, get_egovlp_config
from egoflow.extract.fused.egovlp_text import DistilBert
from egoflow.extract.fused.video import PatchEmbed, SpaceTimeBlock


class SpaceTimeViT(nn.Module):
    """Video tower: ``[B, F, 3, S, S]`` (F <= num_frames) -> CLS feature ``[B, width]``."""

    def __init__(self, cfg: EgoVLPConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.width
        self.patch_embed = PatchEmbed(cfg.patch_size, D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.patches_per_frame + 1, D))
        self.temporal_embed = nn.Parameter(torch.zeros(1, cfg.num_frames, D))
        self.blocks = nn.ModuleList(SpaceTimeBlock(D, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(D, eps=cfg.ln_eps)
        for m in self.blocks.modules():  # the reference's norm_layer is LayerNorm(eps=1e-6) everywhere
            if isinstance(m, nn.LayerNorm):
                m.eps = cfg.ln_eps

    def tokens(self, video: torch.Tensor) -> torch.Tensor:
        """``[B, F, 3, S, S]`` -> embedded tokens ``[B, 1 + F*P, D]`` (frame-major, CLS first)."""
        b, nf, c, h, w = video.shape
        s = self.cfg.image_size
        if not 0 < nf <= self.cfg.num_frames or (h, w) != (s, s):
            raise FusedModelError(f"video of {nf} frames of {h}x{w} px; {self.cfg.name} takes 1..{self.cfg.num_frames}"
                                  f" frames of {s}x{s}")
        x = self.patch_embed.proj(video.reshape(b * nf, c, h, w)).flatten(2).transpose(1, 2)
        x = x.reshape(b, -1, x.shape[-1])
        p = self.cfg.patches_per_frame
        x = x + self.pos_embed[:, 1:].repeat(1, nf, 1) + self.temporal_embed[:, :nf].repeat_interleave(p, 1)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(b, -1, -1)
        return torch.cat([cls, x], dim=1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.tokens(video)
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):  # only the CLS row is read: the last block computes just that row
            x = blk(x, video.shape[1], cls_only=i == last)
        return self.norm(x)[:, 0]


class EgoVLPModel(nn.Module):
    """Dual encoder: :meth:`encode_video` ``[B, F, 3, S, S]`` -> ``[B, proj_dim]``, :meth:`encode_text` ids/mask
    ``[B, L]`` -> ``[B, proj_dim]`` (neither L2-normalised; :func:`similarity` is the reference's cosine)."""

    dual_only = True  # no fusion layers, no VTM / MLM heads

    def __init__(self, cfg: EgoVLPConfig):
        super().__init__()
        self.cfg = cfg
        self.video_model = SpaceTimeViT(cfg)
        self.text_model = DistilBert(cfg)
        self.vid_proj = nn.Sequential(nn.Linear(cfg.width, cfg.proj_dim))
        self.txt_proj = nn.Sequential(nn.ReLU(), nn.Linear(cfg.text_width, cfg.proj_dim))
        for m in self.modules():  # only for pretrained=none: a seeded, BERT-style random init
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for p in (self.video_model.pos_embed, self.video_model.cls_token):
            nn.init.trunc_normal_(p, std=0.02)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        return self.vid_proj(self.video_model(video))

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.txt_proj(self.text_model(ids, mask)[:, 0])

    # the names FusedEncoder.encode_text reads token features through (as the EgoVLPv2 model has them)
    @property
    def text(self) -> nn.Module:
        return self.text_model  # (ids, mask) -> last hidden states [B, L, text width]

    @property
    def text_proj(self) -> nn.Module:
        return self.txt_proj

    def encode_text_tokens(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Every token projected, as the reference's NLQ token features: ``[B, L, proj_dim]`` (its NLQ script
        keeps rows 1 .. n-2 of each string: no [CLS], no [SEP])."""
        return self.txt_proj(self.text_model(ids, mask))

    def nlq_token_features(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference NLQ text side: each string's projected tokens without [CLS] and [SEP] -> (features
        ``[B, L - 2, proj_dim]`` zero after each string's length, lengths ``[B]`` = real tokens - 2)."""
        tok = self.encode_text_tokens(ids, mask)
        n = mask.sum(1) - 2
        keep = torch.arange(tok.shape[1] - 2, device=ids.device)[None] < n[:, None]
        return tok[:, 1:-1] * keep[..., None], n

    def forward_fused(self, *args, **kwargs):
        raise FusedModelError(f"{self.cfg.name} is a dual encoder (EgoVLP has no fusion layers and no VTM head): "
                              "only dual (cosine) scores and dual features exist; use --score dual")


def similarity(text: torch.Tensor, video: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity ``[Nt, Nv]`` of un-normalised embeddings (norms clamped at ``eps``, as the reference)."""
    t = text / text.norm(dim=1, keepdim=True).clamp_min(eps)
    v = video / video.norm(dim=1, keepdim=True).clamp_min(eps)
    return t @ v.T


def create_egovlp(name: str = "egovlp-base", pretrained: str | None = None, strict: bool = True, seed: int = 0,
                  **overrides) -> EgoVLPModel:
    """Build an EgoVLP model by registry name; ``pretrained`` a checkpoint path (the released ``egovlp.pth``
    or any state dict with its names) or None (seeded random init, with a loud warning). Eval mode, CPU, fp32."""
    cfg = get_egovlp_config(name, **{k: v for k, v in overrides.items() if v is not None})
    torch.manual_seed(seed)
    model = EgoVLPModel(cfg)
    if pretrained is None or str(pretrained).lower() in ("", "none"):
        print(f"WARNING: {name} is RANDOMLY INITIALISED (pretrained=none): features are only good for testing the "
              "pipeline, not for research numbers.", file=sys.stderr, flush=True)
        model.load_report = None
    else:
        from egoflow.extract.fused.checkpoint import read_state_dict
        from egoflow.extract.fused.egovlp_checkpoint import load_egovlp_state_dict

        model.load_report = load_egovlp_state_dict(model, read_state_dict(pretrained), str(pretrained),
                                                   strict=strict)
    return model.eval()


__all__ = ["EgoVLPModel", "SpaceTimeViT", "create_egovlp", "similarity"]
