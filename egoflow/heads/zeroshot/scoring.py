"""How a clip and a text are scored in zero-shot retrieval: pluggable, CLIP dual-encoder cosine by default.

A scorer maps ``clips`` (one ``[T_i, D]`` array of store features per clip) and ``texts`` (the store's
``TextFeatures``: pooled ``[M, D]``, tokens ``[M, L, D]`` when stored) to similarities ``[N clips, M texts]``.
Another scorer (e.g. a fused backbone's video-text matching head) registers under its own name and is chosen
with ``egoflow predict ... --scorer NAME``.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

SCORERS: dict[str, Callable] = {}


def register_scorer(name: str, fn: Callable) -> Callable:
    """Add ``fn(clips: list[[T, D]], texts) -> [N, M]`` under ``name``."""
    if name in SCORERS and SCORERS[name] is not fn:
        raise ValueError(f"a scorer named {name!r} is already registered")
    SCORERS[name] = fn
    return fn


def get_scorer(name: str) -> Callable:
    if name not in SCORERS:
        raise KeyError(f"unknown zero-shot scorer {name!r}; available: {', '.join(sorted(SCORERS))}")
    return SCORERS[name]


def unit(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def pool(clips: list[np.ndarray]) -> np.ndarray:
    """Mean of each clip's L2-normalised steps, normalised again -> ``[N, D]`` (CLIP video = mean of frames)."""
    return unit(np.stack([unit(c).mean(0) for c in clips]))


def clip_cosine(clips: list[np.ndarray], texts) -> np.ndarray:
    """Frozen CLIP dual encoder: cosine of the mean-pooled clip embedding and the pooled text embedding."""
    pooled = getattr(texts, "pooled", texts)
    v, t = pool(clips), unit(pooled)
    if v.shape[1] != t.shape[1]:
        raise ValueError(f"clip features are {v.shape[1]}-d but text embeddings {t.shape[1]}-d: the feature set "
                         "and text set come from different models")
    return v @ t.T


register_scorer("clip", clip_cosine)
