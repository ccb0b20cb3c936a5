"""Fused video-text backbone (EgoVLPv2 "fusion in the backbone") and clip-fused variants.

    from egoflow.extract.fused import list_fused_models, create_fused_model
    model = create_fused_model("egovlpv2-base", pretrained="EgoVLPv2.pth", num_frames=16)
    model = create_fused_model("egovlp-base", pretrained="egovlp.pth", num_frames=4)  # dual encoder (EgoVLP)
"""
from __future__ import annotations

import sys

import torch

from egoflow.extract.fused.config import (
    FusedConfig,
    FusedModelError,
    get_fused_config,
    list_fused_models,
)
from egoflow.extract.fused.model import FusedModel


def create_fused_model(name: str = "egovlpv2-base", pretrained: str | None = None, strict: bool = True,
                       seed: int = 0, **overrides):
    """Build a fused model by registry name; ``pretrained`` a checkpoint path (released EgoVLPv2 names) or None
    (seeded random init, with a loud warning). Returns the model in eval mode on CPU, fp32. ``egovlp-*`` names
    build the EgoVLP dual encoder (:mod:`egoflow.extract.fused.egovlp`; released ``egovlp.pth`` names)."""
    if name.startswith("egovlp-"):
        from egoflow.extract.fused.egovlp import create_egovlp

        return create_egovlp(name, pretrained=pretrained, strict=strict, seed=seed, **overrides)
    if name.startswith("clip-fused-"):
        from egoflow.extract.fused.clip_fused import create_clip_fused

        return create_clip_fused(name[len("clip-fused-"):], pretrained=pretrained, seed=seed, **overrides)
    cfg = get_fused_config(name, **overrides)
    torch.manual_seed(seed)
    model = FusedModel(cfg)
    if pretrained is None or str(pretrained).lower() in ("", "none"):
        print(f"WARNING: {name} is RANDOMLY INITIALISED (pretrained=none): features are only good for testing the "
              "pipeline, not for research numbers.", file=sys.stderr, flush=True)
        model.load_report = None
    else:
        from egoflow.extract.fused.checkpoint import load_state_dict, read_state_dict

        model.load_report = load_state_dict(model, read_state_dict(pretrained), str(pretrained), strict=strict)
    return model.eval()


__all__ = ["FusedConfig", "FusedModel", "FusedModelError", "create_fused_model", "get_fused_config",
           "list_fused_models"]
