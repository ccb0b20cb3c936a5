"""Registry of task heads: name -> module with ``Config``, ``build``, ``train_from_store``, ``predict_from_store``.

Modules are imported lazily so that listing heads (or importing one) does not import every head's dependencies.
"""
from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

_HEADS = {
    "vslnet": ("egoflow.heads.vslnet", "nlq", "VSLNet span localisation for Ego4D natural-language queries"),
    "vsgn": ("egoflow.heads.vsgn", "mq", "VSGN temporal action localisation for Ego4D moment queries"),
    "summarizer": ("egoflow.heads.summarizer", "qfvs", "KTS + transformer query-focused video summarizer"),
    "laviti": ("egoflow.heads.laviti", "nlq", "LAVITI language-video-time set prediction; zero-shot NLQ"),
    "laviti-charades": ("egoflow.heads.laviti_charades", "charades",
                        "LAVITI on CharadesEgo: fine-tune a pretraining run (--init); zero-shot with predict"),
}


class UnknownHead(KeyError):
    pass


def list_heads() -> list[str]:
    """Names of the registered heads."""
    return sorted(_HEADS)


def describe_heads() -> dict[str, dict]:
    return {k: {"module": m, "benchmark": b, "description": d} for k, (m, b, d) in sorted(_HEADS.items())}


def get_head(name: str) -> ModuleType:
    """The module implementing head ``name``."""
    if name not in _HEADS:
        raise UnknownHead(f"unknown head {name!r}; available: {', '.join(list_heads())}")
    return importlib.import_module(_HEADS[name][0])


def head_config(name: str, **overrides):
    """The head's dataclass config with ``overrides`` applied (unknown keys are an error)."""
    cfg_cls = get_head(name).Config
    known = {f.name for f in dataclasses.fields(cfg_cls)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise TypeError(f"head {name!r} has no config field(s) {bad}; fields: {sorted(known)}")
    return cfg_cls(**overrides)


def create_head(name: str, **overrides):
    """``build(Config(**overrides))`` of head ``name`` -> (model, criterion, decode)."""
    return get_head(name).build(head_config(name, **overrides))
