"""Load a VSGN checkpoint of the Ego4D MQ baseline (EGO4D/episodic-memory, MQ/Models) into egoflow's VSGN.

    sd = torch.load("checkpoint/best.pth.tar", map_location="cpu")["state_dict"]
    model, _, _ = build(Config(video_dim=2304, labels=labels))   # labels: the baseline's 110 classes
    report = load_reference_state_dict(model, sd)

Key map (baseline -> egoflow): ``xGPN.conv0`` -> ``stem``, ``xGPN.levels_enc.i.tconv1`` -> ``enc.i.tconv``,
``xGPN.levels_enc.i.nconv1.mlp`` (one ``Linear(2C, C)`` on ``[x_neigh, x_centre]``) -> ``enc.i.graph.neigh``
(first C input columns + bias) and ``enc.i.graph.centre`` (last C columns), ``xGPN.levels_dec`` -> ``up``,
``xGPN.levels1`` -> ``fuse``, ``xGPN.levels2`` -> ``lateral``, ``head_dec.{cls,bbox}_tower`` ->
``{cls,reg}_tower.body``, ``head_dec.cls_logits`` / ``bbox_pred`` -> ``{cls,reg}_tower.out``,
``head_{actionness,startness,endness}`` -> ``aux.*``, ``bd_adjust.{start,end}_conv`` (a kernel-3 conv over the
three boundary points) -> ``bd_{start,end}`` (``Linear(3H, H)`` over the points laid end to end). Without the
graph (``use_xGPN`` off) ``xGPN.levels_enc.i.0`` -> ``enc.i.tconv``.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from egoflow.heads.reference_keys import ReferenceCheckpointError, load_strict, rename, strip_module

__all__ = ["ReferenceCheckpointError", "convert_reference_state_dict", "load_reference_state_dict"]

_RULES = [
    (r"xGPN\.conv0\.0\.(\w+)", r"stem.0.\1"),
    (r"xGPN\.levels_enc\.(\d+)\.tconv1\.(\w+)", r"enc.\1.tconv.\2"),
    (r"xGPN\.levels_enc\.(\d+)\.0\.(\w+)", r"enc.\1.tconv.\2"),
    (r"xGPN\.levels_enc\.(\d+)\.nconv1\.mlp\.(\w+)", r"enc.\1.graph.mlp.\2"),  # split below
    (r"xGPN\.levels_dec\.(\d+)\.0\.(\w+)", r"up.\1.0.\2"),
    (r"xGPN\.levels1\.(\d+)\.0\.(\w+)", r"fuse.\1.0.\2"),
    (r"xGPN\.levels2\.(\d+)\.0\.(\w+)", r"lateral.\1.0.\2"),
    (r"head_dec\.cls_tower\.(\d+)\.(\w+)", r"cls_tower.body.\1.\2"),
    (r"head_dec\.bbox_tower\.(\d+)\.(\w+)", r"reg_tower.body.\1.\2"),
    (r"head_dec\.cls_logits\.(\w+)", r"cls_tower.out.\1"),
    (r"head_dec\.bbox_pred\.(\w+)", r"reg_tower.out.\1"),
    (r"head_(actionness|startness|endness)\.(\d)\.(\w+)", r"aux.\1.\2.\3"),
    (r"bd_adjust\.(start|end)_conv\.(\d)\.(\w+)", r"bd_\1.\2.\3"),
]


def convert_reference_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Baseline keys/shapes -> egoflow's (see the module docstring for the map)."""
    out = {}
    for key, value in sd.items():
        new = rename(strip_module(key), _RULES, "VSGN baseline")
        if ".graph.mlp." in new:  # Linear(2C, C) on [x_neigh, x_centre] = W_n x_neigh + b + W_c x_centre
            base = new.split(".mlp.")[0]
            if new.endswith("bias"):
                out[base + ".neigh.bias"] = value
            else:
                c = value.shape[1] // 2
                out[base + ".neigh.weight"], out[base + ".centre.weight"] = value[:, :c], value[:, c:]
            continue
        if re.fullmatch(r"bd_(start|end)\.0\.weight", new):  # conv [H, H, 3] over points -> Linear [H, 3H]
            value = value.permute(0, 2, 1).reshape(value.shape[0], -1)
        elif re.fullmatch(r"bd_(start|end)\.2\.weight", new):  # 1x1 conv [1, H, 1] -> Linear [1, H]
            value = value[..., 0]
        out[new] = value
    return out


def load_reference_state_dict(model: nn.Module, sd: dict[str, torch.Tensor]) -> dict:
    """Load a baseline checkpoint into ``model`` (strict: every tensor must fit this Config)."""
    converted = convert_reference_state_dict(sd)
    load_strict(model, converted, "VSGN baseline", ignore=("anchors",),
                hint=" (video_dim, hidden_dim, num_levels, num_head_layers, anchor_scales, labels, use_graph)")
    return {"loaded": len(sd)}
