"""``clip-fused-<open_clip model>``: temporal attention and gated cross-attention added to the top M blocks of
an open_clip ViT's image and text towers, so fusion sits on top of any checkpoint a user can download.

Every added module enters through a learnable scalar gate initialised to 0 (``x + gate * f(LN(x))``): the
temporal attention (each patch position over the window's frames) and the two cross-attentions (image tokens
-> text tokens, text tokens -> the window's image tokens). At gates = 0 the model *is* frozen CLIP: the dual
video feature of a window is the mean of its L2-normalised frame embeddings, exactly what
``egoflow extract --encoder clip --window F`` stores (tested). The same API as :class:`FusedModel` (dual and
fused paths, ``video_lower`` / ``fuse`` reuse split, VTM head), so extraction and scoring treat both alike.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from egoflow.extract.fused.checkpoint import read_weights
from egoflow.extract.fused.config import FusedModelError


class GatedAttention(nn.Module):
    """``x + gate * MHA(LN(x), kv)``, gate a scalar initialised to 0 (identity at init)."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, kdim=kv_dim or dim, vdim=kv_dim or dim, batch_first=True)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x, kv=None, pad=None):
        """x ``[B, N, D]``, kv ``[B, M, Dkv]`` (None: self-attention), pad ``[B, M]`` True = ignore."""
        q = self.norm(x)
        y = self.attn(q, q if kv is None else kv, q if kv is None else kv, key_padding_mask=pad,
                      need_weights=False)[0]
        return x + self.gate * y


class ClipFusedModel(nn.Module):
    def __init__(self, clip: nn.Module, model_name: str, num_frames: int = 16, fused_layers: int = 2):
        super().__init__()
        from open_clip.transformer import TextTransformer, VisionTransformer

        self.clip = clip.eval().requires_grad_(False)  # frozen: only the added modules train
        v = clip.visual
        t = clip.text if isinstance(getattr(clip, "text", None), TextTransformer) else clip
        if not isinstance(v, VisionTransformer) or not hasattr(t, "transformer"):
            raise FusedModelError(f"clip-fused-{model_name}: needs an open_clip ViT image tower and its own text "
                                  "transformer (ResNet / HF-text models are not supported)")
        self.tower = t
        vblocks, tblocks = v.transformer.resblocks, t.transformer.resblocks
        M = fused_layers
        if not 0 < M <= min(len(vblocks), len(tblocks)):
            raise FusedModelError(f"clip-fused-{model_name}: fused_layers {M} not in [1, "
                                  f"{min(len(vblocks), len(tblocks))}]")
        Dv, Dt = v.transformer.width, t.transformer.width
        hv, ht = vblocks[0].attn.num_heads, tblocks[0].attn.num_heads
        self.model_name, self.num_frames, self.fused_layers = model_name, num_frames, M
        self.v_lower, self.t_lower = len(vblocks) - M, len(tblocks) - M
        self.temporal = nn.ModuleList(GatedAttention(Dv, hv) for _ in range(M))
        self.v2t = nn.ModuleList(GatedAttention(Dv, hv, Dt) for _ in range(M))
        self.t2v = nn.ModuleList(GatedAttention(Dt, ht, Dv) for _ in range(M))
        E = clip.text_projection.shape[-1] if isinstance(clip.text_projection, torch.Tensor) else \
            clip.text_projection.out_features
        self.embed_dim = E
        self.vtm_head = nn.Sequential(nn.Linear(3 * E, E), nn.GELU(), nn.Linear(E, 2))
        size = v.image_size
        self.image_size = int(size if isinstance(size, int) else size[0])

    def alphas(self) -> list[nn.Parameter]:
        return [m.gate for m in (*self.temporal, *self.v2t, *self.t2v)]

    def fusion_parameters(self) -> list[nn.Parameter]:
        """What fusion tuning trains (everything but the frozen CLIP)."""
        return [p for n, p in self.named_parameters() if not n.startswith("clip.")]

    # towers ------------------------------------------------------------------------------------------------
    @staticmethod
    def _run(blocks, x, mask=None):
        """open_clip residual blocks on batch-first tokens ``[B, N, D]`` (open_clip >= 2.24 runs batch-first)."""
        for r in blocks:
            x = r(x, attn_mask=mask)
        return x

    def video_lower(self, video: torch.Tensor) -> torch.Tensor:
        """``[B, F, 3, S, S]`` -> frame tokens after the unfused blocks ``[B, F, N, Dv]``."""
        B, Fr = video.shape[:2]
        if Fr != self.num_frames:
            raise ValueError(f"video of {Fr} frames; this model takes {self.num_frames}")
        v = self.clip.visual
        x = self._run(v.transformer.resblocks[:self.v_lower], v._embeds(video.flatten(0, 1)))
        return x.view(B, Fr, *x.shape[1:])

    def text_lower(self, ids: torch.Tensor, mask: torch.Tensor | None = None):
        """open_clip token ids ``[B, L]`` -> (tokens after the unfused blocks ``[B, L, Dt]``, (ids, attn mask))."""
        t = self.tower
        if hasattr(t, "_embeds"):
            x, am = t._embeds(ids)
        else:
            x, am = t.token_embedding(ids) + t.positional_embedding[:ids.shape[1]], t.attn_mask
        if am is not None and am.dim() == 2:
            am = am[:ids.shape[1], :ids.shape[1]]
        return self._run(t.transformer.resblocks[:self.t_lower], x, am), (ids, am)

    def fuse(self, v, t, bias, fusion: bool = True):
        """Top M blocks side by side: v ``[B, F, N, Dv]``, t ``[B, L, Dt]`` -> (v, t)."""
        ids, am = bias
        B, Fr, N, Dv = v.shape
        pad = ids == 0  # open_clip pads with 0
        vb = self.clip.visual.transformer.resblocks[self.v_lower:]
        tb = self.tower.transformer.resblocks[self.t_lower:]
        for i, (bv, bt) in enumerate(zip(vb, tb)):
            x = bv(v.flatten(0, 1)).view(B, Fr, N, Dv)
            x = self.temporal[i](x.transpose(1, 2).flatten(0, 1)).view(B, N, Fr, Dv).transpose(1, 2)
            y = bt(t, attn_mask=am)
            if fusion:
                x = self.v2t[i](x.reshape(B, Fr * N, Dv), t, pad).view(B, Fr, N, Dv)
                y = self.t2v[i](y, v.reshape(B, Fr * N, Dv))
            v, t = x, y
        return v, t

    def _video_embed(self, v):
        """``[B, F, N, Dv]`` -> mean of the L2-normalised frame embeddings ``[B, E]``."""
        vis = self.clip.visual
        pooled, _ = vis._pool(v.flatten(0, 1))
        if vis.proj is not None:
            pooled = pooled @ vis.proj
        return F.normalize(pooled.view(*v.shape[:2], -1), dim=-1).mean(1)

    def _text_embed(self, t, ids):
        from open_clip.transformer import text_global_pool

        tw = self.tower
        x = text_global_pool(tw.ln_final(t), ids, getattr(tw, "text_pool_type", "argmax"),
                             eos_token_id=getattr(tw, "text_eos_id", None))
        proj = tw.text_projection
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    # the FusedModel API ----------------------------------------------------------------------------------
    def encode_video(self, video):
        """Dual path ``[B, F, 3, S, S]`` -> ``[B, E]`` (mean of normalised frame embeddings; no text needed)."""
        return self._video_embed(self._upper_video(self.video_lower(video)))

    def _upper_video(self, v):
        """Top M image blocks + temporal attention, no text: ``[B, F, N, Dv]`` -> same."""
        B, Fr, N, Dv = v.shape
        for i, bv in enumerate(self.clip.visual.transformer.resblocks[self.v_lower:]):
            x = bv(v.flatten(0, 1)).view(B, Fr, N, Dv)
            v = self.temporal[i](x.transpose(1, 2).flatten(0, 1)).view(B, N, Fr, Dv).transpose(1, 2)
        return v

    def encode_text(self, ids, mask=None):
        t, (ids, am) = self.text_lower(ids)
        return self._text_embed(self._run(self.tower.transformer.resblocks[self.t_lower:], t, am), ids)

    def fused_outputs(self, v, t, ids):
        ve = F.normalize(self._video_embed(v), dim=-1)
        te = F.normalize(self._text_embed(t, ids), dim=-1)
        return {"video": ve, "vtm": self.vtm_head(torch.cat([ve, te, ve * te], dim=-1))}

    def forward_fused(self, video, ids, mask=None, fusion: bool = True):
        t, bias = self.text_lower(ids)
        v, t = self.fuse(self.video_lower(video), t, bias, fusion)
        return {**self.fused_outputs(v, t, ids), "text": t}


def create_clip_fused(model: str, pretrained: str | None = None, seed: int = 0, num_frames: int = 16,
                      fused_layers: int = 2, fusion_checkpoint: str | None = None) -> ClipFusedModel:
    """open_clip ``model`` with ``pretrained`` weights (tag, path or None) + seeded fusion modules (gates 0), or
    tuned fusion weights from ``fusion_checkpoint`` (written by fusion tuning)."""
    import open_clip

    from egoflow.extract.clip import _register_configs

    _register_configs()
    if model not in open_clip.list_models():
        raise FusedModelError(f"clip-fused-{model}: unknown open_clip model {model!r}")
    torch.manual_seed(seed)
    none = pretrained is None or str(pretrained).lower() in ("", "none")
    clip = open_clip.create_model(model, pretrained=None if none else pretrained, device="cpu")
    m = ClipFusedModel(clip, model, num_frames, fused_layers)
    if fusion_checkpoint:
        sd = read_weights(fusion_checkpoint, "--fusion-checkpoint")
        bad = m.load_state_dict(sd, strict=False)
        if bad.unexpected_keys or any(not k.startswith("clip.") for k in bad.missing_keys):
            raise FusedModelError(f"{fusion_checkpoint}: not fusion weights of clip-fused-{model} "
                                  f"(missing {bad.missing_keys[:4]}, unexpected {bad.unexpected_keys[:4]})")
    return m.eval()
