"""Load a VSLNet checkpoint of the Ego4D NLQ baseline (EGO4D/episodic-memory, NLQ/VSLNet) into egoflow's VSLNet.

    sd = torch.load("vslnet_41184.t7", map_location="cpu")
    model, _, _ = build(Config(video_dim=2304, text_dim=768))
    report = load_reference_state_dict(model, sd)

The baseline writes its 1x1 convolutions as ``Conv1d`` (weights ``[out, in, 1]``) and some vectors as ``[dim, 1]``
parameters; egoflow uses ``nn.Linear``. The text embedder's own weights (``embedding_net.*``: a frozen BERT, or
GloVe + character convs) are not part of egoflow's head: its text side is the cached token features of a text
set, which must come from the same text model for the numbers to carry over.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from egoflow.heads.reference_keys import ReferenceCheckpointError, load_strict, rename, strip_module

__all__ = ["ReferenceCheckpointError", "convert_reference_state_dict", "load_reference_state_dict"]

# (baseline key pattern, egoflow key template); applied in order, first match wins
_ENCODER = [
    (r"pos_embedding\.position_embeddings\.(\w+)$", r"pos.\1"),
    (r"conv_block\.depthwise_separable_conv\.(\d+)\.0\.(\w+)$", r"convs.depthwise.\1.\2"),
    (r"conv_block\.depthwise_separable_conv\.(\d+)\.1\.(\w+)$", r"convs.pointwise.\1.\2"),
    (r"conv_block\.layer_norms\.(\d+)\.(\w+)$", r"convs.norms.\1.\2"),
    (r"attention_block\.(query|key|value)\.conv1d\.(\w+)$", r"attn.\1.\2"),
    (r"attention_block\.out_layer\.conv1d\.(\w+)$", r"attn.out.\1"),
    (r"attention_block\.layer_norm(\d)\.(\w+)$", r"attn.norm\1.\2"),
]
_RULES = [
    (r"video_affine\.linear\.conv1d\.(\w+)$", r"video_proj.linear.\1"),
    (r"query_affine\.(\w+)$", r"query_proj.\1"),
    *[(r"feature_encoder\." + a, "encoder." + b) for a, b in _ENCODER],
    *[(r"predictor\.encoder\." + a, "predictor.encoder." + b) for a, b in _ENCODER],
    (r"cq_attention\.w4C$", "cq_attention.w_c.weight"),
    (r"cq_attention\.w4Q$", "cq_attention.w_q.weight"),
    (r"cq_attention\.w4mlu$", "cq_attention.w_m"),
    (r"cq_attention\.cqa_linear\.conv1d\.(\w+)$", r"cq_attention.out.\1"),
    (r"cq_concat\.weighted_pool\.weight$", "cq_concat.score.weight"),
    (r"cq_concat\.conv1d\.conv1d\.(\w+)$", r"cq_concat.out.\1"),
    (r"highlight_layer\.conv1d\.conv1d\.(\w+)$", r"highlighter.linear.\1"),
    (r"predictor\.(start|end)_layer_norm\.(\w+)$", r"predictor.\1_norm.\2"),
    (r"predictor\.(start|end)_block\.(\d)\.conv1d\.(\w+)$", r"predictor.\1_head.\2.\3"),
    (r"predictor\.(start|end)_encoder\.lstm\.(\w+)$", r"predictor.\1_rnn.\2"),
]
_TEXT_EMBEDDER = re.compile(r"^embedding_net\.")


def convert_reference_state_dict(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Baseline keys/shapes -> egoflow's. Returns (state dict, baseline keys of the text embedder left out)."""
    out, skipped = {}, []
    for key, value in sd.items():
        key = strip_module(key)
        if _TEXT_EMBEDDER.match(key):
            skipped.append(key)
            continue
        new = rename(key, _RULES, "VSLNet baseline")
        if value.dim() == 3 and value.shape[-1] == 1 and "depthwise" not in new and "pointwise" not in new \
                and new != "cq_attention.w_m":
            value = value[..., 0]  # 1x1 Conv1d [out, in, 1] -> Linear [out, in]
        elif new in ("cq_attention.w_c.weight", "cq_attention.w_q.weight", "cq_concat.score.weight"):
            value = value.t()  # [dim, 1] vector -> Linear(dim, 1).weight [1, dim]
        out[new] = value
    return out, skipped


def load_reference_state_dict(model: nn.Module, sd: dict[str, torch.Tensor]) -> dict:
    """Load a baseline checkpoint into ``model`` (strict on the head's own weights); returns what was skipped."""
    converted, skipped = convert_reference_state_dict(sd)
    load_strict(model, converted, "VSLNet baseline")
    return {"loaded": len(converted), "skipped_text_embedder": len(skipped)}
