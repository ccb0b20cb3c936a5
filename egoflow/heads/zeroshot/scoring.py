"""How a clip and a text are scored in zero-shot retrieval: pluggable, CLIP dual-encoder cosine by default.

A :class:`Scorer` scores :class:`Span` s (a stretch of a video, or a whole video) against text strings:
``matrix(clips, texts) -> [N, M]`` and ``pairs(clips, texts) -> [N]`` (``clips[i]`` with ``texts[i]``; NaN where
a clip cannot be scored, e.g. its video is not in a folder of videos). Two scorers exist:

* :class:`StoreScorer` reads the clips' store features and the texts' stored embeddings and applies a score
  function registered here by name (``clip``: CLIP cosine; ``egoflow predict ... --scorer NAME``). A score
  function maps ``clips`` (one ``[T_i, D]`` array per clip) and ``texts`` (the store's ``TextFeatures``: pooled
  ``[M, D]``, tokens ``[M, L, D]`` when stored) to ``[N clips, M texts]``.
* the fused backbone's scorer (``egoflow.fused_cli.FusedScorer``: decodes the videos, runs the fused model) is
  built by the CLI and passed in as the ``scorer`` option: heads never import ``egoflow.extract``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from egoflow.datasets.errors import AnnotationError

SCORERS: dict[str, Callable] = {}


@dataclass(frozen=True)
class Span:
    """A clip to score."""

    video_uid: str  # the video: a store uid, or a file stem in a folder of videos
    start: float | None = None  # seconds from the video's start; None: the whole video
    end: float | None = None  # seconds (with start)
    where: str = ""  # the annotation key or row it comes from, for errors


class Scorer(Protocol):
    def matrix(self, clips: list[Span], texts: list[str]) -> np.ndarray:
        """``[len(clips), len(texts)]``: every clip against every text."""

    def pairs(self, clips: list[Span], texts: list[str]) -> np.ndarray:
        """``[len(clips)]``: clips[i] against texts[i]; NaN where the clip cannot be scored."""


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


class ClipWindows:
    """Store features of spans, loading each video once; a missing video names the file and record."""

    def __init__(self, store, feature_set: str, source):
        self.store, self.feature_set, self.source = store, feature_set, source
        self.have, self.cache = set(store.videos(feature_set)), {}

    def __call__(self, span: Span) -> np.ndarray:
        uid = span.video_uid
        if uid not in self.have:
            raise AnnotationError(self.source, span.where, f"video {uid!r} is not in feature set "
                                  f"{self.feature_set!r} of {self.store.url}")
        if uid not in self.cache:
            self.cache[uid] = self.store.read_video(self.feature_set, uid)
        vf = self.cache[uid]
        if span.start is None:
            return vf.feats
        keep = (vf.times >= span.start) & (vf.times <= span.end)
        if not keep.any():  # shorter than a step: the step nearest the window's centre
            return vf.feats[[int(np.argmin(np.abs(vf.times - (span.start + span.end) / 2)))]]
        return vf.feats[keep]


class StoreScorer:
    """A :class:`Scorer` over store features and a text set, with the score function ``fn`` (``SCORERS``)."""

    def __init__(self, store, feature_set: str, text_set: str, source, fn: Callable):
        self.store, self.text_set, self.fn = store, text_set, fn
        self.windows = ClipWindows(store, feature_set, source)

    def _texts(self, strings: list[str]):
        return self.store.load_texts(self.text_set, strings)  # KeyError names the strings never encoded

    def matrix(self, clips: list[Span], texts: list[str]) -> np.ndarray:
        return np.asarray(self.fn([self.windows(c) for c in clips], self._texts(list(texts))))

    def pairs(self, clips: list[Span], texts: list[str]) -> np.ndarray:
        """Each distinct text against the clips it is paired with (its embedding is looked up once)."""
        distinct = list(dict.fromkeys(texts))
        tf = self._texts(distinct)
        at: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            at.setdefault(t, []).append(i)
        out = np.full(len(clips), np.nan)
        for j, t in enumerate(distinct):
            one = type(tf)(tf.pooled[j:j + 1], None if tf.tokens is None else tf.tokens[j:j + 1],
                           None if tf.lengths is None else tf.lengths[j:j + 1])
            out[at[t]] = np.asarray(self.fn([self.windows(clips[i]) for i in at[t]], one))[:, 0]
        return out
