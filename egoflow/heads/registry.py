"""One registry of task heads, in the open_clip manner: ``list_heads()``, ``create_head(name, **overrides)``.

A head is a package ``egoflow/heads/<name>/`` that exposes a :class:`~egoflow.heads.spec.HeadSpec`; adding a
head is that folder plus one entry in ``_BUILTIN`` below. The imports are plain, so a reader (or import-linter)
can follow ``egoflow train NAME`` from the CLI through :mod:`egoflow.heads.runner` into the head.
"""
from __future__ import annotations

from egoflow.heads import laviti, linear, summarizer, translate, vsgn, vslnet, zeroshot
from egoflow.heads.spec import HeadSpec, config_from_dict

_BUILTIN = (vslnet.SPEC, vsgn.SPEC, laviti.SPEC, laviti.CHARADES_SPEC, summarizer.SPEC, *linear.SPECS.values(),
            *translate.SPECS, *zeroshot.SPECS)
_REGISTRY: dict[str, HeadSpec] = {s.name: s for s in _BUILTIN}


class UnknownHead(KeyError):
    pass


def register(spec: HeadSpec) -> HeadSpec:
    """Add a head at run time (a plugin, a test); the built-in heads are ``_BUILTIN``."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"a head named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def list_heads() -> list[str]:
    """Names of the registered heads."""
    return sorted(_REGISTRY)


def zero_shot_heads() -> list[str]:
    """Names of the predict-only heads that need no run directory (``egoflow predict NAME`` without --run)."""
    return sorted(n for n, s in _REGISTRY.items() if s.zero_shot)


def get_spec(name: str) -> HeadSpec:
    if name not in _REGISTRY:
        raise UnknownHead(f"unknown head {name!r}; available: {', '.join(list_heads())}")
    return _REGISTRY[name]


def describe_heads() -> dict[str, dict]:
    return {n: {"benchmark": s.benchmark, "description": s.description} for n, s in sorted(_REGISTRY.items())}


def head_config(name: str, **overrides):
    """The head's Config with ``overrides`` applied (unknown keys are an error)."""
    spec = get_spec(name)
    return config_from_dict(spec.Config, overrides, spec.name)


def create_head(name: str, **overrides):
    """``build(Config(**overrides))`` of head ``name`` -> (model, criterion, decode)."""
    spec = get_spec(name)
    return spec.build(config_from_dict(spec.Config, overrides, spec.name))
