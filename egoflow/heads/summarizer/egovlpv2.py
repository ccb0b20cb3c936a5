"""EgoVLPv2's own QFVS summarizer (facebookresearch/EgoVLPv2 ``QFVS/model/model_summary.py``), to load its
checkpoints and to reproduce its numbers.

It reads *query-fused* features (EgoVLPv2's fusion layers run on each shot with one prompt), one tensor per text
condition, in the reference's segment layout ``[B, T, S, L, D]``: S KTS segments, each padded to L shot slots
(the reference: 20 x 200). Per segment row: + a sinusoid table -> ``nn.TransformerEncoder`` (post-norm, ReLU,
sequence-first) -> Linear(D, 8) -> ReLU -> Dropout(0.2) -> Linear(8, 1). It has no text input of its own: the
prompt only enters through the fused features. egoflow's default summarizer (``model.py``) is another model.

Padding (``padding``): the reference passes a *float* ``src_key_padding_mask`` of ones on padded slots, and torch
adds a float mask to the attention logits, so padded slots are not masked: they are attended with +1 on their
logits. ``"add-one"`` (default) computes exactly that; ``"exclude"`` masks them out. Under ``"add-one"`` the
padded slots' features matter (the reference pads before fusion, so its padded slots hold fused padding).

    model = ReferenceSummarizer(ReferenceConfig(dim=768, num_heads=2, num_layers=2))
    load_reference_state_dict(model, torch.load("summary.pth"))
    logits = model({"seg_feats": x, "seg_len": seg_len})["logits"]   # [B, T, N] over the real shots
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from egoflow.heads.reference_keys import ReferenceCheckpointError, load_strict, rename, strip_module


@dataclass
class ReferenceConfig:
    dim: int = 768  # feature width = model width (the reference has no input projection); even
    num_heads: int = 2  # attention heads (QFVS.yml nhead)
    num_layers: int = 2  # transformer layers per segment row (QFVS.yml num_layers)
    ffn_dim: int = 2048  # feed-forward width (torch's TransformerEncoderLayer default, which the reference keeps)
    dropout: float = 0.1  # transformer dropout (torch default, kept by the reference)
    head_hidden: int = 8  # width of the projector before the score
    head_dropout: float = 0.2  # dropout between the projector and the score
    last_bias: float = -1.91  # initial score bias (main.py passes -1.91)
    padding: str = "add-one"  # "add-one": the reference's float mask (+1 on padded slots' logits) | "exclude"


def reference_sinusoid(length: int, dim: int) -> torch.Tensor:
    """The reference's position table ``[length, dim]``: column i (even) is sin(p / 10000^(2i / d)) and column
    i + 1 is cos(p / 10000^(2(i + 1) / d)), exponents the standard table does not use; computed in float64."""
    if dim % 2:
        raise ValueError(f"the reference position table needs an even width, got {dim}")
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    i = torch.arange(0, dim, 2, dtype=torch.float64)
    pe = torch.empty(length, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos / 10000.0 ** (2 * i / dim))
    pe[:, 1::2] = torch.cos(pos / 10000.0 ** (2 * (i + 1) / dim))
    return pe.float()


def slot_mask(seg_len: torch.Tensor, slots: int) -> torch.Tensor:
    """``[B, S, L]`` bool: True on the real shots of each segment row (the first ``seg_len`` slots)."""
    return torch.arange(slots, device=seg_len.device) < seg_len[..., None]


class ReferenceSummarizer(nn.Module):
    """batch: "seg_feats" [B, T, S, L, D] (T text conditions), "seg_len" [B, S] int (real shots per row).
    returns: "seg_logits" [B, T, S, L]; "logits" [B, T, N] the real shots in segment order (N = most shots in
    the batch, zeros after a video's last shot) and "shot_mask" [B, N]."""

    def __init__(self, cfg: ReferenceConfig):
        super().__init__()
        if cfg.padding not in ("add-one", "exclude"):
            raise ValueError(f"padding must be 'add-one' or 'exclude', got {cfg.padding!r}")
        if cfg.dim % 2:
            raise ValueError(f"the reference position table needs an even feature width, got {cfg.dim}")
        self.cfg = cfg
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.num_heads, cfg.ffn_dim, cfg.dropout)
        self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.proj = nn.Linear(cfg.dim, cfg.head_hidden)
        self.drop = nn.Dropout(cfg.head_dropout)
        self.score = nn.Linear(cfg.head_hidden, 1)
        nn.init.normal_(self.score.weight, std=0.1)  # runner_train: xavier, then overwritten by N(0, 0.1)
        nn.init.constant_(self.score.bias, cfg.last_bias)

    def forward(self, batch: dict) -> dict:
        x, seg_len = batch["seg_feats"], batch["seg_len"]
        b, t, s, slots, d = x.shape
        valid = slot_mask(seg_len, slots)  # [B, S, L]
        rows = x.reshape(b * t * s, slots, d) + reference_sinusoid(slots, d).to(x.device, x.dtype)
        pad = (~valid).unsqueeze(1).expand(b, t, s, slots).reshape(b * t * s, slots)
        if self.cfg.padding == "add-one":
            key_mask = pad.to(x.dtype)  # added to the logits by torch, as the reference's float mask is
        else:
            key_mask = pad.clone()
            key_mask[:, 0] = False  # an empty row keeps one slot, so that its softmax stays finite
        h = self.encoder(rows.transpose(0, 1), src_key_padding_mask=key_mask).transpose(0, 1)
        seg_logits = self.score(self.drop(torch.relu(self.proj(h)))).reshape(b, t, s, slots)
        # the real shots in segment order (the reference's masked_select), padded to the batch's longest video
        n = valid.flatten(1).sum(1)
        rank = valid.flatten(1).cumsum(1).reshape(b, s, slots) - 1
        bi = torch.arange(b, device=x.device)[:, None, None].expand(b, s, slots)
        flat = seg_logits.new_zeros(b, int(n.max()), t)
        flat[bi[valid], rank[valid]] = seg_logits.permute(0, 2, 3, 1)[valid]
        shot_mask = torch.arange(flat.shape[1], device=x.device) < n[:, None]
        return {"seg_logits": seg_logits, "logits": flat.permute(0, 2, 1), "shot_mask": shot_mask}


# (reference key pattern, egoflow key template); the reference saves through nn.DataParallel ("module.")
_RULES = [
    (r"transformer_encoder\.(.+)", r"encoder.\1"),
    (r"projector_1\.(weight|bias)", r"proj.\1"),
    (r"summ_head\.(weight|bias)", r"score.\1"),
]
# an unused template layer (nn.TransformerEncoder trains deep copies of it) and the fixed position table
_SKIP = re.compile(r"encoder_layer\..+|pos\.pe")


def convert_reference_state_dict(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Reference keys -> :class:`ReferenceSummarizer` keys. Returns (state dict, reference keys left out).

    The position table the checkpoint carries (``pos.pe``) must be the one egoflow computes (checked)."""
    out, skipped = {}, []
    for key, value in sd.items():
        key = strip_module(key)
        if _SKIP.fullmatch(key):
            if key == "pos.pe":
                want = reference_sinusoid(value.shape[-2], value.shape[-1])
                if (value.reshape(want.shape).float() - want).abs().max() > 1e-6:
                    raise ReferenceCheckpointError("the checkpoint's position table 'pos.pe' is not the QFVS "
                                                   "reference's")
            skipped.append(key)
            continue
        out[rename(key, _RULES, "QFVS summarizer")] = value
    return out, skipped


def load_reference_state_dict(model: ReferenceSummarizer, sd: dict[str, torch.Tensor]) -> dict:
    """Load a reference checkpoint into ``model`` (strict); returns counts of loaded and skipped keys."""
    converted, skipped = convert_reference_state_dict(sd)
    load_strict(model, converted, "QFVS summarizer", hint=" (ReferenceConfig)")
    return {"loaded": len(converted), "skipped": len(skipped)}

