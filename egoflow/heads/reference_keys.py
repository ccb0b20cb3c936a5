"""What the heads' reference-checkpoint loaders share (``<head>/reference.py``, ``summarizer/egovlpv2.py``): key
renaming by ordered rules and one strict fit check, so each loader keeps only its own map and shape transforms.

Reference checkpoints are saved through ``nn.DataParallel`` more often than not: a ``module.`` prefix is dropped.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from egoflow.errors import EgoflowUserError


class ReferenceCheckpointError(EgoflowUserError, ValueError):
    """A reference checkpoint that does not map onto the head (unknown key, wrong shape, missing weights)."""


def strip_module(key: str) -> str:
    return key[len("module."):] if key.startswith("module.") else key


def rename(key: str, rules: list[tuple[str, str]], what: str) -> str:
    """``key`` through the first ``(pattern, template)`` of ``rules`` that matches it whole."""
    for pattern, template in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, template, key)
    raise ReferenceCheckpointError(f"unknown key {key!r} in the {what} checkpoint")


def load_strict(model: nn.Module, converted: dict[str, torch.Tensor], what: str, hint: str = "",
                ignore: tuple[str, ...] = ()) -> None:
    """Load ``converted`` into ``model`` after one check naming every tensor of the wrong shape, every weight
    missing and every one left over (``ignore``: buffers the model computes itself)."""
    have = {k: v for k, v in model.state_dict().items() if k not in ignore}
    bad = [f"{k}: {tuple(v.shape)} vs {tuple(have[k].shape)}" for k, v in converted.items()
           if k in have and have[k].shape != v.shape]
    missing, extra = sorted(set(have) - set(converted)), sorted(set(converted) - set(have))
    if bad or missing or extra:
        raise ReferenceCheckpointError(
            f"the {what} checkpoint does not fit this Config{hint}: " + "; ".join(
                ([f"shape {', '.join(bad[:4])}"] if bad else []) + ([f"missing {missing[:6]}"] if missing else [])
                + ([f"unexpected {extra[:6]}"] if extra else [])))
    model.load_state_dict(converted, strict=not ignore)
